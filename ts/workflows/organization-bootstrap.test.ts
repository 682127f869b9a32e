// The organization-bootstrap workflow on a real Temporal server with a real
// worker: trace context reaches every activity through the interceptors,
// each activity's events hang off its own span under the workflow span, and
// a retried activity writes its events and span once.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { generateSpanId, generateTraceId } from '../trace-context/ids.ts';
import type { OrganizationBootstrapParams } from './organization-bootstrap-types.ts';
import { organizationBootstrapStarter } from './client.ts';
import { withTraceContext } from './interceptors/client.ts';
import { organizationBootstrapWorkflowId } from './names.ts';
import type { organizationBootstrap } from './organization-bootstrap.ts';
import { activitySpanId, workflowSpanId } from './span-ids.ts';
import { useTemporal } from './testing/temporal-server.ts';
import {
  eventsOfTrace,
  flakyMailer,
  spansOfTrace,
  startWorker,
  tracingClient,
  uniqueTaskQueue,
  useWorkflowBundle,
} from './testing/workflow-harness.ts';

const db = useTestDatabase();
const temporal = useTemporal();
const bundle = useWorkflowBundle();

/** The caller's span, as an edge function would hold it. */
function starterSpan() {
  return {
    traceId: generateTraceId(),
    spanId: generateSpanId(),
    traceFlags: 0x01,
    tracestate: 'tracegres=edge,other=1',
    correlationId: randomUUID(),
    sessionId: randomUUID(),
  };
}

function bootstrapParams(organizationId: string, trace: Partial<OrganizationBootstrapParams> = {}): OrganizationBootstrapParams {
  return {
    organizationId,
    organizationName: 'Acme Rocket Works',
    adminEmail: 'founder@acme.example',
    // Filled in by the tests that exercise explicit params.
    correlationId: '',
    sessionId: null,
    traceId: '',
    parentSpanId: '',
    traceFlags: 1,
    tracestate: null,
    ...trace,
  };
}

const ACTIVITY_TYPES = ['createOrganization', 'inviteFirstAdmin', 'sendWelcomeNotification', 'completeBootstrap'];

describe('organization-bootstrap workflow', () => {
  it("carries the starter's trace context through headers to every activity's events", async (ctx) => {
    temporal.require(ctx);
    const taskQueue = uniqueTaskQueue('bootstrap');
    const worker = await startWorker(temporal.env, { sql: db.sql, bundle: bundle(), taskQueue });
    const client = tracingClient(temporal.env);
    const span = starterSpan();
    const organizationId = randomUUID();
    const workflowId = organizationBootstrapWorkflowId(organizationId);

    // No trace fields in the params: the context must come from the
    // starter's span through the client interceptor and the headers alone.
    const { result, runId } = await worker.runUntil(async () => {
      const handle = await withTraceContext(span, () =>
        client.workflow.start<typeof organizationBootstrap>('organizationBootstrap', {
          args: [bootstrapParams(organizationId)],
          taskQueue,
          workflowId,
        }),
      );
      return { result: await handle.result(), runId: handle.firstExecutionRunId };
    });
    expect(result.organizationId).toBe(organizationId);
    expect(result.slug).toBe('acme-rocket-works');

    const wfSpan = workflowSpanId(workflowId, runId);
    const events = await eventsOfTrace(db.sql, span.traceId);
    expect(events.map((e) => e.event_type)).toEqual([
      'organization.created',
      'invitation.created',
      'invitation.email_sent',
      'notification.sent',
      'organization.bootstrap_completed',
    ]);
    // Activity ids default to the schedule command's sequence number: 1..4 in order.
    const expectedSpanByActivity = new Map(ACTIVITY_TYPES.map((type, i) => [type, activitySpanId(workflowId, runId, i + 1)]));
    for (const event of events) {
      const activityType = event.event_metadata.temporal_activity_type as string;
      expect(event.trace_id).toBe(span.traceId);
      expect(event.span_id).toBe(expectedSpanByActivity.get(activityType));
      expect(event.parent_span_id).toBe(wfSpan);
      expect(event.correlation_id).toBe(span.correlationId);
      expect(event.session_id).toBe(span.sessionId);
      expect(event.organization_id).toBe(organizationId);
      expect(event.event_metadata.tracestate).toBe('tracegres=edge,other=1');
      expect(event.event_metadata.temporal_workflow_id).toBe(workflowId);
      expect(event.event_metadata.idempotency_key).toBe(
        `${workflowId}/${runId}/${event.event_metadata.temporal_activity_id as string}/${event.event_type}`,
      );
    }
    // Four activities, four distinct spans.
    expect(new Set(events.map((e) => e.span_id)).size).toBe(4);

    const spans = await spansOfTrace(db.sql, span.traceId);
    const workflowRow = spans.find((s) => s.span_id === wfSpan);
    expect(workflowRow).toMatchObject({
      parent_span_id: span.spanId,
      name: 'RunWorkflow:organizationBootstrap',
      service: 'bootstrap-worker',
    });
    expect(workflowRow?.attributes).toMatchObject({
      'temporal.workflow.id': workflowId,
      'temporal.run.id': runId,
      'organization.id': organizationId,
      'tracegres.trace_source': 'headers',
    });
    for (const [type, spanId] of expectedSpanByActivity) {
      const row = spans.find((s) => s.span_id === spanId);
      expect(row, type).toMatchObject({ parent_span_id: wfSpan, name: `RunActivity:${type}`, service: 'bootstrap-worker' });
      expect(row?.attributes['temporal.activity.attempt']).toBe(1);
    }
    // The span-recording activity adds no span of its own.
    expect(spans).toHaveLength(5);
  });

  it('takes the trace context from explicit params when the starter has no current span', async (ctx) => {
    temporal.require(ctx);
    const taskQueue = uniqueTaskQueue('bootstrap-params');
    const worker = await startWorker(temporal.env, { sql: db.sql, bundle: bundle(), taskQueue });
    // A client without the interceptor, like the Temporal CLI or another SDK.
    const client = temporal.env.client;
    const span = starterSpan();
    const organizationId = randomUUID();
    const workflowId = organizationBootstrapWorkflowId(organizationId);
    const params = bootstrapParams(organizationId, {
      traceId: span.traceId,
      parentSpanId: span.spanId,
      correlationId: span.correlationId,
      sessionId: span.sessionId,
    });
    const runId = await worker.runUntil(async () => {
      const handle = await client.workflow.start<typeof organizationBootstrap>('organizationBootstrap', {
        args: [params],
        taskQueue,
        workflowId,
      });
      await handle.result();
      return handle.firstExecutionRunId;
    });
    const events = await eventsOfTrace(db.sql, span.traceId);
    expect(events).toHaveLength(5);
    expect(new Set(events.map((e) => e.parent_span_id))).toEqual(new Set([workflowSpanId(workflowId, runId)]));
    expect(new Set(events.map((e) => e.correlation_id))).toEqual(new Set([span.correlationId]));
    const spans = await spansOfTrace(db.sql, span.traceId);
    const workflowRow = spans.find((s) => s.name === 'RunWorkflow:organizationBootstrap');
    expect(workflowRow?.parent_span_id).toBe(span.spanId);
    expect(workflowRow?.attributes['tracegres.trace_source']).toBe('params');
  });

  it('writes the events and span of a retried activity once', async (ctx) => {
    temporal.require(ctx);
    const taskQueue = uniqueTaskQueue('bootstrap-retry');
    // The invitation mail fails once: inviteFirstAdmin's first attempt has
    // already stored invitation.created when it fails, and is retried.
    const mailer = flakyMailer('organization-invitation');
    const worker = await startWorker(temporal.env, { sql: db.sql, bundle: bundle(), taskQueue, mailer });
    const client = tracingClient(temporal.env);
    const span = starterSpan();
    const organizationId = randomUUID();
    const workflowId = organizationBootstrapWorkflowId(organizationId);
    const runId = await worker.runUntil(async () => {
      const handle = await withTraceContext(span, () =>
        client.workflow.start<typeof organizationBootstrap>('organizationBootstrap', {
          args: [bootstrapParams(organizationId)],
          taskQueue,
          workflowId,
        }),
      );
      await handle.result();
      return handle.firstExecutionRunId;
    });
    expect(mailer.failures).toBe(1);

    const inviteSpan = activitySpanId(workflowId, runId, 2);
    const events = await eventsOfTrace(db.sql, span.traceId);
    const invitationEvents = events.filter((e) => e.span_id === inviteSpan);
    expect(invitationEvents.map((e) => [e.event_type, e.event_metadata.temporal_attempt])).toEqual([
      ['invitation.created', 1],
      ['invitation.email_sent', 2],
    ]);
    expect(events.map((e) => e.event_type)).toEqual([
      'organization.created',
      'invitation.created',
      'invitation.email_sent',
      'notification.sent',
      'organization.bootstrap_completed',
    ]);
    // The retry asked the provider with the same key the failed attempt used.
    expect(mailer.sent.filter((m) => m.template === 'organization-invitation')).toHaveLength(1);

    const spans = await spansOfTrace(db.sql, span.traceId);
    const inviteRows = spans.filter((s) => s.span_id === inviteSpan);
    expect(inviteRows).toHaveLength(1);
    // Written by the attempt that ended the activity, not by the failed one.
    expect(inviteRows[0]?.attributes['temporal.activity.attempt']).toBe(2);
    expect(inviteRows[0]?.status).not.toBe('error');
    expect(spans).toHaveLength(5);
  });

  it('starts one workflow per organization, however often the request is repeated', async (ctx) => {
    temporal.require(ctx);
    const taskQueue = uniqueTaskQueue('bootstrap-repeat');
    const worker = await startWorker(temporal.env, { sql: db.sql, bundle: bundle(), taskQueue });
    const client = tracingClient(temporal.env);
    const start = organizationBootstrapStarter(client, { taskQueue });
    const span = starterSpan();
    const organizationId = randomUUID();
    const params = bootstrapParams(organizationId, {
      traceId: span.traceId,
      parentSpanId: span.spanId,
      correlationId: span.correlationId,
      sessionId: span.sessionId,
    });
    await worker.runUntil(async () => {
      const first = await start(params);
      const second = await start(params);
      expect(second).toEqual(first);
      await client.workflow.getHandle(first.workflowId).result();
    });
    const created = (await eventsOfTrace(db.sql, span.traceId)).filter((e) => e.event_type === 'organization.created');
    expect(created).toHaveLength(1);
  });
});
