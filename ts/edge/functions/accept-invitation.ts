/**
 * accept-invitation: the invited user accepts, joining the organization with
 * the invited role.
 *
 *   POST { invitationId, userId }
 *   -> 200 { organizationId, role }, events invitation.accepted and
 *      user.organization_joined (one transaction)
 *   -> 404 unknown invitation, 409 already accepted, 410 expired
 *
 * The invitation is read back from its own event stream, so the example
 * needs no table beyond tracing.domain_events.
 *
 * Deployed as an edge function:
 *
 *   import postgres from 'npm:postgres';
 *   Deno.serve(createAcceptInvitationHandler({ sql: postgres(Deno.env.get('DATABASE_URL')!) }));
 */
import { emitEvent } from '../../store/emit-event.ts';
import { errorResponse } from '../error-response.ts';
import { ORGANIZATION_ATTRIBUTE } from '../../trace-context/span-record.ts';
import { withTracing } from '../with-tracing.ts';
import { readInput, tracingOptions, type FunctionDependencies } from './common.ts';

interface InvitationCreated {
  organizationId: string;
  email: string;
  role: string;
  expiresAt: string;
}

export function createAcceptInvitationHandler(deps: FunctionDependencies): (request: Request) => Promise<Response> {
  return withTracing(
    async (request, { span }) => {
      const input = await readInput(request, span, (check) => ({
        invitationId: check.uuid('invitationId'),
        userId: check.uuid('userId'),
      }));
      if (!input.ok) return input.response;
      const { invitationId, userId } = input.value;
      if (invitationId === undefined || userId === undefined) throw new Error('unreachable: checked input');

      const outcome = await deps.sql.begin(async (tx) => {
        // Two concurrent accepts of one invitation serialise on a lock named
        // after the stream; an advisory lock needs no write grant on the
        // event table and holds until the transaction ends.
        await tx`select pg_advisory_xact_lock(hashtextextended(${`invitation:${invitationId}`}, 0))`;
        const history = await tx<{ event_type: string; event_data: unknown }[]>`
        select event_type, event_data
        from tracing.domain_events
        where stream_type = 'invitation' and stream_id = ${invitationId}
          and event_type in ('invitation.created', 'invitation.accepted')
        order by id`;
        const created = history.find((e) => e.event_type === 'invitation.created')?.event_data as InvitationCreated | undefined;
        if (created === undefined) return { status: 404 as const };
        if (history.some((e) => e.event_type === 'invitation.accepted')) return { status: 409 as const };
        if (Date.parse(created.expiresAt) <= Date.now()) return { status: 410 as const };

        span.attributes[ORGANIZATION_ATTRIBUTE] = created.organizationId;
        const acceptedAt = new Date().toISOString();
        await emitEvent(
          tx,
          {
            streamType: 'invitation',
            streamId: invitationId,
            eventType: 'invitation.accepted',
            organizationId: created.organizationId,
            data: { invitationId, userId, acceptedAt },
          },
          span,
        );
        await emitEvent(
          tx,
          {
            streamType: 'user',
            streamId: userId,
            eventType: 'user.organization_joined',
            organizationId: created.organizationId,
            data: { userId, organizationId: created.organizationId, role: created.role, invitationId },
          },
          span,
        );
        return { status: 200 as const, organizationId: created.organizationId, role: created.role };
      });

      switch (outcome.status) {
        case 404:
          return errorResponse(span, 404, 'Invitation not found');
        case 409:
          return errorResponse(span, 409, 'Invitation already accepted');
        case 410:
          return errorResponse(span, 410, 'Invitation expired');
        default:
          return Response.json({ organizationId: outcome.organizationId, role: outcome.role });
      }
    },
    tracingOptions('accept-invitation', deps),
  );
}
