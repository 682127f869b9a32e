// Replays guard the determinism of the workflow and its interceptors.
//
// A history recorded by the real server is replayed by a worker built from
// today's code: any change to the commands the workflow or the interceptors
// produce (an activity more or less, a different order) fails the replay.
// Replays do not compare headers, so the span ids are checked separately:
// those in the recorded schedule commands must be exactly the ones
// span-ids.ts derives from the history's own workflow id, run id and
// activity ids, which is what any replay recomputes.
//
// The committed fixture was written by this file's first test with
// TRACEGRES_RECORD_HISTORY=1; rerecord it when the workflow changes on
// purpose (and keep the old one if running workflows must still replay).
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { generateSpanId, generateTraceId } from '../trace-context/ids.ts';
import { parseTraceparent } from '../trace-context/traceparent.ts';
import { organizationBootstrapStarter } from './client.ts';
import { activitySpanId, workflowSpanId } from './span-ids.ts';
import { ACTIVITY_SPAN_ID_HEADER, TRACEPARENT_HEADER } from '../trace-context/headers.ts';
import { useTemporal } from './testing/temporal-server.ts';
import { bundleWorkflows, startWorker, tracingClient, uniqueTaskQueue, useWorkflowBundle } from './testing/workflow-harness.ts';
import { RECORD_WORKFLOW_SPAN_ACTIVITY, type WorkflowSpanRecord } from './workflow-span.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/organization-bootstrap.history.json', import.meta.url));

/** The fixture file: the history as the Temporal CLI writes it, plus the workflow id it does not contain. */
interface HistoryFixture {
  workflowId: string;
  history: unknown;
}

const db = useTestDatabase();
const temporal = useTemporal();
const bundle = useWorkflowBundle();

type History = ReturnType<typeof historyFromJSON>;

function decodeHeader(fields: Record<string, Payload> | null | undefined, name: string): unknown {
  const payload = fields?.[name];
  return payload === undefined ? undefined : defaultPayloadConverter.fromPayload(payload);
}

function runIdOf(history: History): string {
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const runId = started?.originalExecutionRunId;
  if (!runId) throw new Error('history does not start with WorkflowExecutionStarted');
  return runId;
}

/** Checks every schedule command's trace headers against the ids derived from the history. */
function expectDerivedSpanIds(workflowId: string, history: History): void {
  const runId = runIdOf(history);
  const wfSpan = workflowSpanId(workflowId, runId);
  const scheduled = (history.events ?? []).flatMap((e) =>
    e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : [],
  );
  expect(scheduled.map((a) => a.activityType?.name)).toEqual([
    'createOrganization',
    'inviteFirstAdmin',
    'sendWelcomeNotification',
    'completeBootstrap',
    RECORD_WORKFLOW_SPAN_ACTIVITY,
  ]);
  for (const attributes of scheduled) {
    const fields = attributes.header?.fields as Record<string, Payload> | undefined;
    const traceparent = parseTraceparent(decodeHeader(fields, TRACEPARENT_HEADER) as string);
    expect(traceparent.ok && traceparent.traceparent.parentId).toBe(wfSpan);
    expect(decodeHeader(fields, ACTIVITY_SPAN_ID_HEADER)).toBe(activitySpanId(workflowId, runId, attributes.activityId ?? ''));
  }
  const recordCall = scheduled.at(-1);
  const [record] = (recordCall?.input?.payloads ?? []).map((p) =>
    defaultPayloadConverter.fromPayload(p as Payload),
  ) as WorkflowSpanRecord[];
  expect(record?.spanId).toBe(wfSpan);
}

describe('replay', () => {
  it('replays a history the real server recorded just now', async (ctx) => {
    temporal.require(ctx);
    const taskQueue = uniqueTaskQueue('replay');
    const worker = await startWorker(temporal.env, { sql: db.sql, bundle: bundle(), taskQueue });
    const client = tracingClient(temporal.env);
    const start = organizationBootstrapStarter(client, { taskQueue });
    const organizationId = randomUUID();
    const history = await worker.runUntil(async () => {
      const { workflowId } = await start({
        organizationId,
        organizationName: 'Initech',
        adminEmail: 'bill@initech.example',
        correlationId: randomUUID(),
        sessionId: randomUUID(),
        traceId: generateTraceId(),
        parentSpanId: generateSpanId(),
        traceFlags: 1,
        tracestate: null,
      });
      const handle = client.workflow.getHandle(workflowId);
      await handle.result();
      return { workflowId, history: await handle.fetchHistory() };
    });

    await Worker.runReplayHistory({ workflowBundle: bundle() }, history.history, history.workflowId);
    expectDerivedSpanIds(history.workflowId, history.history);

    if (process.env.TRACEGRES_RECORD_HISTORY === '1') {
      const fixture: HistoryFixture = { workflowId: history.workflowId, history: JSON.parse(historyToJSON(history.history)) };
      await writeFile(FIXTURE, `${JSON.stringify(fixture, null, 2)}\n`);
    }
  });

  it("replays the committed history with today's workflow and interceptors", async () => {
    const fixture = JSON.parse(await readFile(FIXTURE, 'utf8')) as HistoryFixture;
    await Worker.runReplayHistory({ workflowBundle: bundle() }, fixture.history, fixture.workflowId);
  });

  it('finds in the committed history exactly the span ids a replay derives', async () => {
    const fixture = JSON.parse(await readFile(FIXTURE, 'utf8')) as HistoryFixture;
    expectDerivedSpanIds(fixture.workflowId, historyFromJSON(fixture.history));
  });

  it('fails the replay when the interceptors are missing, so interceptor changes cannot slip through', async () => {
    const fixture = JSON.parse(await readFile(FIXTURE, 'utf8')) as HistoryFixture;
    const bare = await bundleWorkflows({ withInterceptors: false });
    await expect(Worker.runReplayHistory({ workflowBundle: bare }, fixture.history, fixture.workflowId)).rejects.toThrow(
      /[Nn]ondeterminis/,
    );
  }, 60_000);
});
