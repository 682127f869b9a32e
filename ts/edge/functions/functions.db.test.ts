// The example edge functions against a real database: each request leaves
// the right domain events, stamped with the request's trace (the server
// span as span_id, the caller's span as parent), and bad input gets a 400
// that carries the correlation id and writes nothing.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../../db/tests/helpers/test-database.ts';
import { emitEvent } from '../../store/emit-event.ts';
import { extractTracingContext } from '../../trace-context/extract.ts';
import { generateSpanId, generateTraceId } from '../../trace-context/ids.ts';
import { createSpan, type FinishedSpan } from '../../trace-context/span.ts';
import { createAcceptInvitationHandler } from './accept-invitation.ts';
import { createInviteUserHandler } from './invite-user.ts';
import { createManageUserHandler } from './manage-user.ts';
import type { OrganizationBootstrapParams } from '../../workflows/organization-bootstrap-types.ts';
import { createOrganizationBootstrapHandler } from './organization-bootstrap.ts';

const db = useTestDatabase();

const ORGANIZATION = '3c9f1e2d-7a6b-4c5d-9e8f-0a1b2c3d4e5f';
const USER = '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const ADMIN = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';

interface Caller {
  traceId: string;
  parentSpanId: string;
  correlationId: string;
  sessionId: string;
  headers: Record<string, string>;
}

/** A browser-like caller with its own trace, correlation and session ids. */
function caller(): Caller {
  const traceId = generateTraceId();
  const parentSpanId = generateSpanId();
  const correlationId = crypto.randomUUID();
  const sessionId = crypto.randomUUID();
  return {
    traceId,
    parentSpanId,
    correlationId,
    sessionId,
    headers: {
      traceparent: `00-${traceId}-${parentSpanId}-01`,
      'x-correlation-id': correlationId,
      'x-session-id': sessionId,
      'content-type': 'application/json',
    },
  };
}

function post(who: Caller, body: unknown): Request {
  return new Request('https://edge.example/functions/v1/fn', {
    method: 'POST',
    headers: who.headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

interface StoredEvent {
  stream_type: string;
  stream_id: string;
  event_type: string;
  event_data: Record<string, unknown>;
  event_metadata: Record<string, unknown>;
  organization_id: string | null;
  session_id: string | null;
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  trace_field_errors: unknown;
}

async function eventsOf(correlationId: string): Promise<StoredEvent[]> {
  return db.sql<StoredEvent[]>`
    select stream_type, stream_id, event_type, event_data, event_metadata,
           organization_id::text, session_id::text,
           tracing.trace_id_to_hex(trace_id) as trace_id,
           tracing.span_id_to_hex(span_id) as span_id,
           tracing.span_id_to_hex(parent_span_id) as parent_span_id,
           trace_field_errors
    from tracing.domain_events
    where correlation_id = ${correlationId}::uuid
    order by id`;
}

/** The server span id, as the response's traceresponse header reports it. */
function serverSpanId(response: Response): string {
  const value = response.headers.get('traceresponse') ?? '';
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]$/.exec(value);
  if (!match?.[2]) throw new Error(`no traceresponse: ${value}`);
  return match[2];
}

/** Every event of `who` belongs to the server span of `response`, whose parent is the caller's span. */
function expectStampedBy(events: StoredEvent[], who: Caller, response: Response): void {
  const spanId = serverSpanId(response);
  for (const event of events) {
    expect(event).toMatchObject({
      trace_id: who.traceId,
      span_id: spanId,
      parent_span_id: who.parentSpanId,
      session_id: who.sessionId,
      trace_field_errors: null,
    });
    expect(event.event_metadata).toMatchObject({
      trace_id: who.traceId,
      span_id: spanId,
      parent_span_id: who.parentSpanId,
      correlation_id: who.correlationId,
      session_id: who.sessionId,
    });
  }
}

async function expectBadInput(response: Response, who: Caller, fields: string[]): Promise<void> {
  expect(response.status).toBe(400);
  expect(response.headers.get('x-correlation-id')).toBe(who.correlationId);
  const body = (await response.json()) as {
    error: { message: string; correlationId: string; traceId: string; details: { issues: { path: string }[] } };
  };
  expect(body.error.correlationId).toBe(who.correlationId);
  expect(body.error.traceId).toBe(who.traceId);
  expect(body.error.details.issues.map((i) => i.path).sort()).toEqual([...fields].sort());
  expect(await eventsOf(who.correlationId)).toEqual([]);
}

describe('invite-user', () => {
  const handler = () => createInviteUserHandler({ sql: db.sql, recordSpans: false });

  it('emits invitation.created on the invitation stream, stamped with the request trace', async () => {
    const who = caller();
    const response = await handler()(
      post(who, { organizationId: ORGANIZATION, email: 'Ada@Example.com', role: 'admin', invitedBy: ADMIN }),
    );
    expect(response.status).toBe(201);
    expect(response.headers.get('x-correlation-id')).toBe(who.correlationId);
    const body = (await response.json()) as { invitationId: string; expiresAt: string };

    const events = await eventsOf(who.correlationId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      stream_type: 'invitation',
      stream_id: body.invitationId,
      event_type: 'invitation.created',
      organization_id: ORGANIZATION,
      event_data: {
        invitationId: body.invitationId,
        organizationId: ORGANIZATION,
        email: 'ada@example.com',
        role: 'admin',
        invitedBy: ADMIN,
        expiresAt: body.expiresAt,
      },
    });
    expect(events[0]?.event_metadata.service).toBe('invite-user');
    expectStampedBy(events, who, response);
  });

  it('answers bad input with a 400 naming every field, and writes nothing', async () => {
    const who = caller();
    await expectBadInput(await handler()(post(who, { organizationId: 'acme', email: 'not-an-email', role: 'emperor' })), who, [
      'organizationId',
      'email',
      'role',
    ]);
    const malformed = caller();
    await expectBadInput(await handler()(post(malformed, '{"organizationId":')), malformed, ['body']);
  });

  it('refuses methods other than POST', async () => {
    const who = caller();
    const response = await handler()(new Request('https://edge.example/f', { headers: who.headers }));
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST, OPTIONS');
    expect(response.headers.get('x-correlation-id')).toBe(who.correlationId);
  });
});

describe('accept-invitation', () => {
  const invite = (request: Request) => createInviteUserHandler({ sql: db.sql, recordSpans: false })(request);
  const accept = () => createAcceptInvitationHandler({ sql: db.sql, recordSpans: false });

  async function invitation(role = 'member'): Promise<string> {
    const response = await invite(post(caller(), { organizationId: ORGANIZATION, email: 'grace@example.com', role }));
    return ((await response.json()) as { invitationId: string }).invitationId;
  }

  it('emits invitation.accepted and user.organization_joined in the accepting request trace', async () => {
    const invitationId = await invitation('viewer');
    const who = caller();
    const response = await accept()(post(who, { invitationId, userId: USER }));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ organizationId: ORGANIZATION, role: 'viewer' });

    const events = await eventsOf(who.correlationId);
    expect(events.map((e) => [e.stream_type, e.stream_id, e.event_type])).toEqual([
      ['invitation', invitationId, 'invitation.accepted'],
      ['user', USER, 'user.organization_joined'],
    ]);
    expect(events[1]?.event_data).toEqual({ userId: USER, organizationId: ORGANIZATION, role: 'viewer', invitationId });
    expect(events.every((e) => e.organization_id === ORGANIZATION)).toBe(true);
    expectStampedBy(events, who, response);
  });

  it('refuses a second acceptance with 409', async () => {
    const invitationId = await invitation();
    expect((await accept()(post(caller(), { invitationId, userId: USER }))).status).toBe(200);
    const who = caller();
    const again = await accept()(post(who, { invitationId, userId: USER }));
    expect(again.status).toBe(409);
    expect(again.headers.get('x-correlation-id')).toBe(who.correlationId);
    expect(await eventsOf(who.correlationId)).toEqual([]);
  });

  it('lets only one of two concurrent acceptances through', async () => {
    const invitationId = await invitation();
    const statuses = await Promise.all([
      accept()(post(caller(), { invitationId, userId: USER })),
      accept()(post(caller(), { invitationId, userId: ADMIN })),
    ]);
    expect(statuses.map((r) => r.status).sort()).toEqual([200, 409]);
  });

  it('answers 404 for an unknown invitation and 410 for an expired one', async () => {
    const who = caller();
    const missing = await accept()(post(who, { invitationId: crypto.randomUUID(), userId: USER }));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { correlationId: string } }).error.correlationId).toBe(who.correlationId);

    const expiredId = crypto.randomUUID();
    const span = createSpan(extractTracingContext(new Request('https://edge.example/')), 'seed', { service: 'test' });
    await emitEvent(
      db.sql,
      {
        streamType: 'invitation',
        streamId: expiredId,
        eventType: 'invitation.created',
        organizationId: ORGANIZATION,
        data: {
          invitationId: expiredId,
          organizationId: ORGANIZATION,
          email: 'x@example.com',
          role: 'member',
          expiresAt: '2000-01-01T00:00:00.000Z',
        },
      },
      span,
    );
    expect((await accept()(post(caller(), { invitationId: expiredId, userId: USER }))).status).toBe(410);
  });

  it('answers bad input with a 400', async () => {
    const who = caller();
    await expectBadInput(await accept()(post(who, { invitationId: 'x' })), who, ['invitationId', 'userId']);
  });
});

describe('manage-user', () => {
  const handler = () => createManageUserHandler({ sql: db.sql, recordSpans: false });

  it('emits user.role_changed, user.deactivated and user.reactivated on the user stream', async () => {
    const cases = [
      { body: { action: 'change_role', role: 'admin' }, type: 'user.role_changed', data: { role: 'admin' } },
      { body: { action: 'deactivate', reason: 'left the company' }, type: 'user.deactivated', data: { reason: 'left the company' } },
      { body: { action: 'reactivate' }, type: 'user.reactivated', data: {} },
    ];
    for (const { body, type, data } of cases) {
      const who = caller();
      const response = await handler()(post(who, { ...body, organizationId: ORGANIZATION, userId: USER, changedBy: ADMIN }));
      expect(response.status).toBe(200);
      const events = await eventsOf(who.correlationId);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ stream_type: 'user', stream_id: USER, event_type: type, organization_id: ORGANIZATION });
      expect(events[0]?.event_data).toEqual({ userId: USER, organizationId: ORGANIZATION, changedBy: ADMIN, ...data });
      expectStampedBy(events, who, response);
    }
  });

  it('requires a role for a role change, and a known action', async () => {
    const who = caller();
    await expectBadInput(await handler()(post(who, { action: 'change_role', organizationId: ORGANIZATION, userId: USER })), who, ['role']);
    const other = caller();
    await expectBadInput(await handler()(post(other, { action: 'delete', organizationId: ORGANIZATION, userId: USER })), other, ['action']);
  });
});

describe('organization-bootstrap', () => {
  it('records the request and starts the workflow with the server span as parent', async () => {
    const started: OrganizationBootstrapParams[] = [];
    const spans: FinishedSpan[] = [];
    const handler = createOrganizationBootstrapHandler({
      sql: db.sql,
      recordSpans: false,
      tracing: { onSpanEnd: (s) => spans.push(s) },
      startWorkflow: async (params) => {
        started.push(params);
        return { workflowId: `organization-bootstrap-${params.organizationId}` };
      },
    });
    const who = caller();
    const response = await handler(post(who, { organizationName: 'Acme Ltd', adminEmail: 'Ops@Acme.example' }));
    expect(response.status).toBe(202);
    const body = (await response.json()) as { organizationId: string; workflowId: string };
    expect(body.workflowId).toBe(`organization-bootstrap-${body.organizationId}`);

    expect(started).toEqual([
      {
        organizationId: body.organizationId,
        organizationName: 'Acme Ltd',
        adminEmail: 'ops@acme.example',
        correlationId: who.correlationId,
        sessionId: who.sessionId,
        traceId: who.traceId,
        parentSpanId: serverSpanId(response),
        traceFlags: 1,
        tracestate: null,
      },
    ]);
    const events = await eventsOf(who.correlationId);
    expect(events.map((e) => [e.stream_type, e.stream_id, e.event_type])).toEqual([
      ['organization', body.organizationId, 'organization.bootstrap_requested'],
      ['organization', body.organizationId, 'organization.bootstrap_workflow_started'],
    ]);
    expect(events[0]?.event_data).toEqual({
      organizationId: body.organizationId,
      organizationName: 'Acme Ltd',
      adminEmail: 'ops@acme.example',
    });
    expect(events[1]?.event_data).toEqual({ organizationId: body.organizationId, workflowId: body.workflowId });
    expectStampedBy(events, who, response);
    expect(spans[0]?.attributes['workflow.id']).toBe(body.workflowId);
    expect(spans[0]?.attributes['organization.id']).toBe(body.organizationId);
  });

  it('records the request alone when no workflow engine is wired', async () => {
    const who = caller();
    const organizationId = crypto.randomUUID();
    const response = await createOrganizationBootstrapHandler({ sql: db.sql, recordSpans: false })(
      post(who, { organizationName: 'Solo', adminEmail: 'a@solo.example', organizationId }),
    );
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ organizationId, workflowId: null });
    const events = await eventsOf(who.correlationId);
    expect(events.map((e) => e.event_type)).toEqual(['organization.bootstrap_requested']);
    expectStampedBy(events, who, response);
  });

  it('answers 503 when the workflow cannot start, keeping the request event', async () => {
    const spans: FinishedSpan[] = [];
    const handler = createOrganizationBootstrapHandler({
      sql: db.sql,
      recordSpans: false,
      tracing: { onSpanEnd: (s) => spans.push(s) },
      startWorkflow: () => Promise.reject(new Error('temporal unavailable')),
    });
    const who = caller();
    const response = await handler(post(who, { organizationName: 'Acme', adminEmail: 'a@acme.example' }));
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(text).not.toContain('temporal unavailable');
    expect(JSON.parse(text).error.correlationId).toBe(who.correlationId);
    expect((await eventsOf(who.correlationId)).map((e) => e.event_type)).toEqual(['organization.bootstrap_requested']);
    expect(spans[0]?.status.code).toBe('error');
  });

  it('answers bad input with a 400', async () => {
    const who = caller();
    const handler = createOrganizationBootstrapHandler({ sql: db.sql, recordSpans: false });
    await expectBadInput(await handler(post(who, { organizationName: 'A', adminEmail: 'nope', organizationId: 'x' })), who, [
      'organizationName',
      'adminEmail',
      'organizationId',
    ]);
  });
});
