/**
 * The whole browser half of the data path: the client services call the real
 * example edge functions over HTTP, the functions write events to a real
 * database, and the events carry exactly the ids the browser sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createAcceptInvitationHandler } from '../edge/functions/accept-invitation.ts';
import { createInviteUserHandler } from '../edge/functions/invite-user.ts';
import { createManageUserHandler } from '../edge/functions/manage-user.ts';
import { parseTraceparent } from '../trace-context/traceparent.ts';
import { createInvitationService } from './services/invitation-service.ts';
import { createUserCommandService } from './services/user-command-service.ts';
import { signAccessToken } from './test-access-token.ts';
import { type ReceivedRequest, type TestServer, startTestServer } from './test-server.ts';
import { TracedRequestError, startUserAction } from './traced-fetch.ts';

const db = useTestDatabase();

const ORGANIZATION_ID = '3c9f1e2d-7a6b-4c5d-9e8f-0a1b2c3d4e5f';
const ADMIN = { userId: '5b0e8f2c-1d3a-4c6e-8f90-a1b2c3d4e5f6', sessionId: '8a3c1f9e-2b7d-4e61-9c05-3f1d2a6b7c80' };
const INVITEE = { userId: 'e5f6a1b2-c3d4-4e6e-8f90-1d3a5b0e8f2c', sessionId: '2c7e9a41-5d3b-4f08-a6e2-9b1c0d4f7e35' };

let server: TestServer;
/** Access tokens by user id, minted in beforeAll. */
const tokens: Record<string, string> = {};
const accessToken = (user: { userId: string }) => tokens[user.userId];

interface EventRow {
  id: string;
  event_type: string;
  correlation_id: string | null;
  session_id: string | null;
  trace_id: string | null;
  parent_span_id: string | null;
}

async function eventsOf(streamType: string, streamId: string): Promise<EventRow[]> {
  return db.sql<EventRow[]>`
    select id::text, event_type, correlation_id::text, session_id::text,
           tracing.trace_id_to_hex(trace_id) as trace_id,
           tracing.span_id_to_hex(parent_span_id) as parent_span_id
    from tracing.domain_events
    where stream_type = ${streamType} and stream_id = ${streamId}
    order by id`;
}

/** The trace position the browser put on a request, as the server received it. */
function sentContext(request: ReceivedRequest | undefined) {
  const parsed = parseTraceparent(request?.headers.get('traceparent'));
  if (!parsed.ok) throw new Error('the client sent no valid traceparent');
  return { traceId: parsed.traceparent.traceId, spanId: parsed.traceparent.parentId };
}

beforeAll(async () => {
  for (const user of [ADMIN, INVITEE]) tokens[user.userId] = await signAccessToken(user);
  // Span recording is the edge toolkit's concern and tested there; here the events are what matter.
  const deps = { sql: db.sql, recordSpans: false };
  const functions: Record<string, (request: Request) => Promise<Response>> = {
    '/functions/v1/invite-user': createInviteUserHandler(deps),
    '/functions/v1/accept-invitation': createAcceptInvitationHandler(deps),
    '/functions/v1/manage-user': createManageUserHandler(deps),
  };
  server = await startTestServer((request) => {
    const handler = functions[new URL(request.url).pathname];
    return handler ? handler(request) : new Response('no such function', { status: 404 });
  });
});

afterAll(async () => {
  await server?.close();
});

describe('client services against the example edge functions and Postgres', () => {
  it("an invitation and its acceptance are recorded with the browser's correlation, session and trace ids", async () => {
    const adminInvitations = createInvitationService({ baseUrl: server.url, accessToken: accessToken(ADMIN) });
    const invite = startUserAction();
    const { invitationId, expiresAt } = await adminInvitations.inviteUser(
      { organizationId: ORGANIZATION_ID, email: 'new.member@example.com', role: 'member', invitedBy: ADMIN.userId },
      { correlationId: invite.correlationId },
    );
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());
    const inviteSent = sentContext(server.received.at(-1));

    const inviteeInvitations = createInvitationService({ baseUrl: server.url, accessToken: accessToken(INVITEE) });
    const accept = startUserAction();
    await expect(
      inviteeInvitations.acceptInvitation({ invitationId, userId: INVITEE.userId }, { correlationId: accept.correlationId }),
    ).resolves.toEqual({ organizationId: ORGANIZATION_ID, role: 'member' });
    const acceptSent = sentContext(server.received.at(-1));

    expect(await eventsOf('invitation', invitationId)).toEqual([
      {
        id: expect.any(String),
        event_type: 'invitation.created',
        correlation_id: invite.correlationId,
        session_id: ADMIN.sessionId,
        trace_id: inviteSent.traceId,
        // The event belongs to the edge function's server span, whose parent is the browser's span.
        parent_span_id: inviteSent.spanId,
      },
      {
        id: expect.any(String),
        event_type: 'invitation.accepted',
        correlation_id: accept.correlationId,
        session_id: INVITEE.sessionId,
        trace_id: acceptSent.traceId,
        parent_span_id: acceptSent.spanId,
      },
    ]);
    const joined = (await eventsOf('user', INVITEE.userId)).filter((event) => event.correlation_id === accept.correlationId);
    expect(joined).toMatchObject([{ event_type: 'user.organization_joined', session_id: INVITEE.sessionId, trace_id: acceptSent.traceId }]);
  });

  it("a refused call reaches the UI with the ids the server used, which are the browser's", async () => {
    const admin = createInvitationService({ baseUrl: server.url, accessToken: accessToken(ADMIN) });
    const { invitationId } = await admin.inviteUser({ organizationId: ORGANIZATION_ID, email: 'twice@example.com', role: 'viewer' });
    const invitee = createInvitationService({ baseUrl: server.url, accessToken: accessToken(INVITEE) });
    await invitee.acceptInvitation({ invitationId, userId: INVITEE.userId });

    const retry = startUserAction();
    const error = await invitee
      .acceptInvitation({ invitationId, userId: INVITEE.userId }, { correlationId: retry.correlationId })
      .catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(TracedRequestError);
    expect(error).toMatchObject({
      status: 409,
      message: 'Invitation already accepted',
      correlationId: retry.correlationId,
      traceId: sentContext(server.received.at(-1)).traceId,
    });
  });

  it('input the function refuses comes back with its issues', async () => {
    const admin = createInvitationService({ baseUrl: server.url, accessToken: accessToken(ADMIN) });
    const error = await admin
      .inviteUser({ organizationId: ORGANIZATION_ID, email: 'not an email', role: 'member' })
      .catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(TracedRequestError);
    expect(error).toMatchObject({ status: 400, details: { issues: [expect.objectContaining({ path: 'email' })] } });
  });

  it("a user command's event is the one the function reports, with the browser's ids", async () => {
    const users = createUserCommandService({ baseUrl: server.url, accessToken: accessToken(ADMIN) });
    const action = startUserAction();
    const result = await users.manageUser(
      { action: 'change_role', organizationId: ORGANIZATION_ID, userId: INVITEE.userId, role: 'admin', changedBy: ADMIN.userId },
      { correlationId: action.correlationId },
    );
    const sent = sentContext(server.received.at(-1));
    expect(result).toEqual({ userId: INVITEE.userId, action: 'change_role', eventId: expect.any(String) });
    const events = await eventsOf('user', INVITEE.userId);
    expect(events.find((event) => event.id === result.eventId)).toEqual({
      id: result.eventId,
      event_type: 'user.role_changed',
      correlation_id: action.correlationId,
      session_id: ADMIN.sessionId,
      trace_id: sent.traceId,
      parent_span_id: sent.spanId,
    });
  });
});
