/**
 * manage-user: an admin changes a member's role, or deactivates or
 * reactivates the member.
 *
 *   POST { action: 'change_role', organizationId, userId, role, changedBy? }
 *        -> event user.role_changed
 *   POST { action: 'deactivate', organizationId, userId, reason?, changedBy? }
 *        -> event user.deactivated
 *   POST { action: 'reactivate', organizationId, userId, changedBy? }
 *        -> event user.reactivated
 *   -> 200 { userId, action, eventId }
 *
 * Deployed as an edge function:
 *
 *   import postgres from 'npm:postgres';
 *   Deno.serve(createManageUserHandler({ sql: postgres(Deno.env.get('DATABASE_URL')!) }));
 */
import { emitEvent } from '../../store/emit-event.ts';
import { ORGANIZATION_ATTRIBUTE } from '../../trace-context/span-record.ts';
import { withTracing } from '../with-tracing.ts';
import { readInput, tracingOptions, type FunctionDependencies } from './common.ts';
import { MEMBER_ROLES } from '../../contracts/member-roles.ts';

export const MANAGE_USER_ACTIONS = ['change_role', 'deactivate', 'reactivate'] as const;

const EVENT_TYPES = {
  change_role: 'user.role_changed',
  deactivate: 'user.deactivated',
  reactivate: 'user.reactivated',
} as const;

export function createManageUserHandler(deps: FunctionDependencies): (request: Request) => Promise<Response> {
  return withTracing(
    async (request, { span }) => {
      const input = await readInput(request, span, (check) => {
        const action = check.oneOf('action', MANAGE_USER_ACTIONS);
        return {
          action,
          organizationId: check.uuid('organizationId'),
          userId: check.uuid('userId'),
          changedBy: check.uuid('changedBy', { optional: true }) ?? null,
          // Only a role change needs a role; only a deactivation may give a reason.
          role: action === 'change_role' ? check.oneOf('role', MEMBER_ROLES) : undefined,
          reason: action === 'deactivate' ? (check.string('reason', { optional: true, max: 500 }) ?? null) : undefined,
        };
      });
      if (!input.ok) return input.response;
      const { action, organizationId, userId, changedBy, role, reason } = input.value;
      if (action === undefined || organizationId === undefined || userId === undefined) throw new Error('unreachable: checked input');

      span.attributes[ORGANIZATION_ATTRIBUTE] = organizationId;
      span.attributes['tracegres.user_action'] = action;
      const data: Record<string, unknown> = { userId, organizationId, changedBy };
      if (action === 'change_role') data.role = role;
      if (action === 'deactivate') data.reason = reason;

      const event = await emitEvent(
        deps.sql,
        { streamType: 'user', streamId: userId, eventType: EVENT_TYPES[action], organizationId, data },
        span,
      );
      return Response.json({ userId, action, eventId: event.id });
    },
    tracingOptions('manage-user', deps),
  );
}
