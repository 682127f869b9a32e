/**
 * invite-user: an organization admin invites someone by email.
 *
 *   POST { organizationId, email, role, invitedBy?, expiresInDays? }
 *   -> 201 { invitationId, expiresAt }, event invitation.created
 *
 * Deployed as an edge function:
 *
 *   import postgres from 'npm:postgres';
 *   Deno.serve(createInviteUserHandler({ sql: postgres(Deno.env.get('DATABASE_URL')!) }));
 */
import { emitEvent } from '../../store/emit-event.ts';
import { ORGANIZATION_ATTRIBUTE } from '../../trace-context/span-record.ts';
import { MEMBER_ROLES } from '../../contracts/member-roles.ts';
import { withTracing } from '../with-tracing.ts';
import { readInput, tracingOptions, type FunctionDependencies } from './common.ts';

const DAY_MS = 86_400_000;

export function createInviteUserHandler(deps: FunctionDependencies): (request: Request) => Promise<Response> {
  return withTracing(
    async (request, { span }) => {
      const input = await readInput(request, span, (check) => ({
        organizationId: check.uuid('organizationId'),
        email: check.email('email'),
        role: check.oneOf('role', MEMBER_ROLES),
        invitedBy: check.uuid('invitedBy', { optional: true }) ?? null,
        expiresInDays: check.integer('expiresInDays', { optional: true, min: 1, max: 30 }) ?? 7,
      }));
      if (!input.ok) return input.response;
      const { organizationId, email, role, invitedBy, expiresInDays } = input.value;
      if (organizationId === undefined || email === undefined || role === undefined) throw new Error('unreachable: checked input');

      span.attributes[ORGANIZATION_ATTRIBUTE] = organizationId;
      const invitationId = crypto.randomUUID();
      const expiresAt = new Date(Date.now() + expiresInDays * DAY_MS).toISOString();
      await emitEvent(
        deps.sql,
        {
          streamType: 'invitation',
          streamId: invitationId,
          eventType: 'invitation.created',
          organizationId,
          data: { invitationId, organizationId, email, role, invitedBy, expiresAt },
        },
        span,
      );
      return Response.json({ invitationId, expiresAt }, { status: 201 });
    },
    tracingOptions('invite-user', deps),
  );
}
