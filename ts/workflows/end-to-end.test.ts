// End to end: a traced request from a browser reaches the
// organization-bootstrap edge function, which starts the workflow on a real
// Temporal server; a real worker runs it; the database then holds one
// connected trace: client span -> edge server span -> workflow span ->
// activity spans, with every event under the span that emitted it.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createOrganizationBootstrapHandler } from '../edge/functions/organization-bootstrap.ts';
import { generateSpanId, generateTraceId } from '../trace-context/ids.ts';
import { organizationBootstrapStarter } from './client.ts';
import type { organizationBootstrap } from './organization-bootstrap.ts';
import { activitySpanId, workflowSpanId } from './span-ids.ts';
import { useTemporal } from './testing/temporal-server.ts';
import {
  eventsOfTrace,
  spansOfTrace,
  spanStoreExists,
  startWorker,
  tracingClient,
  uniqueTaskQueue,
  useWorkflowBundle,
  type SpanRow,
} from './testing/workflow-harness.ts';

const db = useTestDatabase();
const temporal = useTemporal();
const bundle = useWorkflowBundle();

/** withTracing records the edge span without holding the response back; wait for it. */
async function waitForSpan(traceId: string, spanId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const spans = await spansOfTrace(db.sql, traceId);
    if (spans.some((s) => s.span_id === spanId)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`span ${spanId} was never recorded`);
}

/** A row of api.timeline_span, the columns this test reads. */
interface TimelineRow {
  span_id: string;
  parent_span_id: string | null;
  depth: number;
  is_placeholder: boolean;
  event_count: number;
}

/** The query API's timeline when the schema has it (null otherwise). */
async function timeline(traceId: string): Promise<TimelineRow[] | null> {
  const [found] = await db.sql<{ fn: string | null }[]>`select to_regprocedure('api.get_trace_timeline(text)')::text as fn`;
  if (found?.fn == null) return null;
  return db.sql<TimelineRow[]>`
    select span_id, parent_span_id, depth, is_placeholder, event_count
    from api.get_trace_timeline(${traceId})`;
}

describe('browser -> edge function -> Temporal workflow -> activities', () => {
  it('leaves one connected trace in the database', async (ctx) => {
    temporal.require(ctx);
    expect(await spanStoreExists(db.sql), 'tracing.record_spans must exist for this test').toBe(true);

    const taskQueue = uniqueTaskQueue('e2e');
    const worker = await startWorker(temporal.env, { sql: db.sql, bundle: bundle(), taskQueue });
    const client = tracingClient(temporal.env);
    const handler = createOrganizationBootstrapHandler({
      sql: db.sql,
      startWorkflow: organizationBootstrapStarter(client, { taskQueue }),
    });

    // The browser's side: its own span, sent as traceparent, with its ids.
    const traceId = generateTraceId();
    const clientSpanId = generateSpanId();
    const correlationId = randomUUID();
    const sessionId = randomUUID();
    const request = new Request('https://edge.example/functions/v1/organization-bootstrap', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: `00-${traceId}-${clientSpanId}-01`,
        'x-correlation-id': correlationId,
        'x-session-id': sessionId,
      },
      body: JSON.stringify({ organizationName: 'Globex Corporation', adminEmail: 'hank@globex.example' }),
    });

    const { body, runId, result } = await worker.runUntil(async () => {
      const response = await handler(request);
      expect(response.status).toBe(202);
      const json = (await response.json()) as { organizationId: string; workflowId: string };
      const handle = client.workflow.getHandle<typeof organizationBootstrap>(json.workflowId);
      const output = await handle.result();
      const description = await handle.describe();
      return { body: json, runId: description.runId, result: output };
    });
    expect(result.organizationId).toBe(body.organizationId);
    const { organizationId, workflowId } = body;

    // The edge function's server span: the one span of the trace whose parent is the browser's.
    const events = await eventsOfTrace(db.sql, traceId);
    const edgeSpanId = events.find((e) => e.event_type === 'organization.bootstrap_requested')?.span_id;
    expect(edgeSpanId).toBeDefined();
    if (edgeSpanId === undefined) return;
    await waitForSpan(traceId, edgeSpanId);

    const wfSpanId = workflowSpanId(workflowId, runId);
    const activities = ['createOrganization', 'inviteFirstAdmin', 'sendWelcomeNotification', 'completeBootstrap'];
    const activitySpanIds = activities.map((_, i) => activitySpanId(workflowId, runId, i + 1));

    // Spans: every hop, each under the one before it.
    const spans = await spansOfTrace(db.sql, traceId);
    const byId = new Map<string, SpanRow>(spans.map((s) => [s.span_id, s]));
    expect(spans).toHaveLength(2 + activities.length);
    expect(byId.get(edgeSpanId)).toMatchObject({ parent_span_id: clientSpanId, service: 'organization-bootstrap' });
    expect(byId.get(wfSpanId)).toMatchObject({ parent_span_id: edgeSpanId, name: 'RunWorkflow:organizationBootstrap' });
    activities.forEach((type, i) => {
      expect(byId.get(activitySpanIds[i] ?? ''), type).toMatchObject({ parent_span_id: wfSpanId, name: `RunActivity:${type}` });
    });
    const [ids] = await db.sql<{ correlation: string[]; session: string[]; organization: string[] }[]>`
      select array_agg(distinct correlation_id::text) as correlation,
             array_agg(distinct session_id::text) as session,
             array_agg(distinct organization_id::text) as organization
      from tracing.spans where trace_id = tracing.hex_to_trace_id(${traceId})`;
    expect(ids).toEqual({ correlation: [correlationId], session: [sessionId], organization: [organizationId] });

    // Events: the edge function's under its server span, each activity's under its own span.
    expect(events.map((e) => [e.event_type, e.span_id, e.parent_span_id])).toEqual([
      ['organization.bootstrap_requested', edgeSpanId, clientSpanId],
      ['organization.bootstrap_workflow_started', edgeSpanId, clientSpanId],
      ['organization.created', activitySpanIds[0], wfSpanId],
      ['invitation.created', activitySpanIds[1], wfSpanId],
      ['invitation.email_sent', activitySpanIds[1], wfSpanId],
      ['notification.sent', activitySpanIds[2], wfSpanId],
      ['organization.bootstrap_completed', activitySpanIds[3], wfSpanId],
    ]);
    expect(new Set(events.map((e) => e.correlation_id))).toEqual(new Set([correlationId]));
    expect(new Set(events.map((e) => e.session_id))).toEqual(new Set([sessionId]));

    // Walking parents up from any activity span reaches the browser's span
    // through the edge and workflow spans: one trace, no breaks.
    for (const start of activitySpanIds) {
      const path: string[] = [];
      let cursor: string | null | undefined = start;
      while (cursor != null && byId.has(cursor)) {
        path.push(cursor);
        cursor = byId.get(cursor)?.parent_span_id;
      }
      expect(path).toEqual([start, wfSpanId, edgeSpanId]);
      expect(cursor).toBe(clientSpanId);
    }

    // The query API's view of the same trace, once it exists: the browser's
    // span, never recorded, is a placeholder root; every hop one level deeper.
    const rows = await timeline(traceId);
    if (rows !== null) {
      expect(rows.map((r) => [r.span_id, r.parent_span_id, r.depth, r.is_placeholder, r.event_count])).toEqual([
        [clientSpanId, null, 0, true, 0],
        [edgeSpanId, clientSpanId, 1, false, 2],
        [wfSpanId, edgeSpanId, 2, false, 0],
        [activitySpanIds[0], wfSpanId, 3, false, 1],
        [activitySpanIds[1], wfSpanId, 3, false, 2],
        [activitySpanIds[2], wfSpanId, 3, false, 1],
        [activitySpanIds[3], wfSpanId, 3, false, 1],
      ]);
    }
  });
});
