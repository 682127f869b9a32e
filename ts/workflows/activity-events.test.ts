// The activity interceptor and emitActivityEvent against a real database,
// with activities run in the SDK's mock activity environment: attempts,
// retry policies and concurrency are set directly, no server needed.
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, type Info } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { emitActivityEvent, type ActivityEvent } from './activity-events.ts';
import { activityTraceContext, activityTracingInterceptor, isFinalFailure } from './interceptors/activity.ts';
import { derivedUuid, fallbackActivitySpanId, workflowTraceId } from './span-ids.ts';
import { eventsOfTrace, spansOfTrace } from './testing/workflow-harness.ts';

const db = useTestDatabase();

function activityEnv(info: Partial<Info>): MockActivityEnvironment {
  return new MockActivityEnvironment(
    { activityType: 'chargeCard', taskQueue: 'tests', scheduledTimestampMs: Date.now() - 250, ...info },
    { interceptors: [activityTracingInterceptor({ sql: db.sql, service: 'unit-worker' })], logger: new DefaultLogger('ERROR') },
  );
}

function execution() {
  return { workflowId: `wf-${randomUUID()}`, runId: randomUUID() };
}

const paymentEvent = {
  streamType: 'payment',
  streamId: 'p-1',
  eventType: 'payment.captured',
  data: { amountCents: 4200 },
};

describe('emitActivityEvent', () => {
  it('stores an event once when two attempts of one activity emit it at the same time', async () => {
    const wf = execution();
    const info = { workflowExecution: wf, activityId: '7' };
    const emit = () => emitActivityEvent(db.sql, paymentEvent);
    // A timed-out first attempt can still be running when the retry starts.
    const results = (await Promise.all([
      activityEnv({ ...info, attempt: 1 }).run(emit),
      activityEnv({ ...info, attempt: 2 }).run(emit),
    ])) as ActivityEvent[];
    expect(results.map((r) => r.duplicate).sort()).toEqual([false, true]);
    expect(results[0]?.id).toBe(results[1]?.id);
    const events = await eventsOfTrace(db.sql, workflowTraceId(wf.workflowId, wf.runId));
    expect(events).toHaveLength(1);
    expect(events[0]?.event_metadata.idempotency_key).toBe(`${wf.workflowId}/${wf.runId}/7/payment.captured`);
  });

  it('keeps events of different activities, types and discriminators apart', async () => {
    const wf = execution();
    await activityEnv({ workflowExecution: wf, activityId: '1' }).run(async () => {
      await emitActivityEvent(db.sql, paymentEvent);
      await emitActivityEvent(db.sql, { ...paymentEvent, eventType: 'payment.receipt_sent' });
      await emitActivityEvent(db.sql, { ...paymentEvent, eventType: 'payment.line_booked' }, { discriminator: 'line-1' });
      await emitActivityEvent(db.sql, { ...paymentEvent, eventType: 'payment.line_booked' }, { discriminator: 'line-2' });
    });
    await activityEnv({ workflowExecution: wf, activityId: '2' }).run(() => emitActivityEvent(db.sql, paymentEvent));
    const events = await eventsOfTrace(db.sql, workflowTraceId(wf.workflowId, wf.runId));
    expect(events.map((e) => e.event_metadata.idempotency_key)).toEqual([
      `${wf.workflowId}/${wf.runId}/1/payment.captured`,
      `${wf.workflowId}/${wf.runId}/1/payment.receipt_sent`,
      `${wf.workflowId}/${wf.runId}/1/payment.line_booked/line-1`,
      `${wf.workflowId}/${wf.runId}/1/payment.line_booked/line-2`,
      `${wf.workflowId}/${wf.runId}/2/payment.captured`,
    ]);
  });

  it("joins the caller's transaction, so a rolled-back business write takes its event along", async () => {
    const wf = execution();
    const rollback = new Error('rollback');
    await activityEnv({ workflowExecution: wf, activityId: '1' }).run(async () => {
      await expect(
        db.sql.begin(async (tx) => {
          await emitActivityEvent(tx, paymentEvent);
          throw rollback;
        }),
      ).rejects.toBe(rollback);
    });
    expect(await eventsOfTrace(db.sql, workflowTraceId(wf.workflowId, wf.runId))).toHaveLength(0);
  });

  it('gives an activity without trace headers ids derived from its execution, the same for every attempt', async () => {
    const wf = execution();
    const seen = await Promise.all(
      [1, 2].map((attempt) =>
        activityEnv({ workflowExecution: wf, activityId: '3', attempt }).run(async () => {
          const trace = activityTraceContext();
          return [trace.traceId, trace.spanId, trace.parentSpanId, trace.correlationId];
        }),
      ),
    );
    const expected = [
      workflowTraceId(wf.workflowId, wf.runId),
      fallbackActivitySpanId(wf.workflowId, wf.runId, '3'),
      null,
      derivedUuid([wf.workflowId, wf.runId]),
    ];
    expect(seen).toEqual([expected, expected]);
  });

  it('stores an event once across retries when it writes as tracegres_writer', async () => {
    const wf = execution();
    /** One attempt of an activity, writing in a transaction of its own as the writer role. */
    const attempt = (activityId: string, n: number) =>
      activityEnv({ workflowExecution: wf, activityId, attempt: n }).run(() =>
        db.sql.begin(async (tx) => {
          await tx`set local role tracegres_writer`;
          return emitActivityEvent(tx, paymentEvent);
        }),
      ) as Promise<ActivityEvent>;
    // The role may not read event_metadata, so the key is looked up through
    // tracing.domain_event_by_idempotency_key.
    await expect(
      db.sql.begin(async (tx) => {
        await tx`set local role tracegres_writer`;
        return tx`select id from tracing.domain_events where event_metadata ? 'idempotency_key'`;
      }),
    ).rejects.toThrow(/permission denied/);

    const first = await attempt('4', 1);
    const retry = await attempt('4', 2);
    expect(first.duplicate).toBe(false);
    expect(retry).toEqual({ ...first, duplicate: true });
    // Overlapping attempts too: the advisory lock makes the later one find the event.
    const overlapping = await Promise.all([attempt('5', 1), attempt('5', 2)]);
    expect(overlapping.map((r) => r.duplicate).sort()).toEqual([false, true]);
    expect(overlapping[0]?.id).toBe(overlapping[1]?.id);

    const events = await eventsOfTrace(db.sql, workflowTraceId(wf.workflowId, wf.runId));
    expect(events.map((e) => e.event_metadata.idempotency_key)).toEqual([first.idempotencyKey, overlapping[0]?.idempotencyKey]);
    expect(events[0]?.event_metadata.temporal_attempt).toBe(1);
  });

  it('refuses to run outside an activity with the tracing interceptor', async () => {
    expect(() => activityTraceContext()).toThrow(/outside an activity/);
    const bare = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
    await expect(bare.run(async () => activityTraceContext())).rejects.toThrow(/activityTracingInterceptor/);
  });
});

describe('activity spans', () => {
  const retry = { maximumAttempts: 3, initialInterval: 1000, backoffCoefficient: 2 };

  async function spanOf(wf: { workflowId: string; runId: string }, activityId: string) {
    const spanId = fallbackActivitySpanId(wf.workflowId, wf.runId, activityId);
    const spans = await spansOfTrace(db.sql, workflowTraceId(wf.workflowId, wf.runId));
    return spans.filter((s) => s.span_id === spanId);
  }

  it('records the span of a successful attempt, covering the time since scheduling', async () => {
    const wf = execution();
    await activityEnv({ workflowExecution: wf, activityId: '1', attempt: 2, retryPolicy: retry }).run(async () => 'done');
    const [span] = await spanOf(wf, '1');
    expect(span).toMatchObject({ name: 'RunActivity:chargeCard', service: 'unit-worker', status: 'unset' });
    expect(span?.attributes['temporal.activity.attempt']).toBe(2);
    const [timing] = await db.sql<{ duration_ms: number }[]>`
      select duration_ms from tracing.spans where span_id = tracing.hex_to_span_id(${fallbackActivitySpanId(wf.workflowId, wf.runId, '1')})`;
    // Scheduled 250 ms before the attempt began.
    expect(timing?.duration_ms).toBeGreaterThanOrEqual(250);
  });

  it('writes nothing for a failure that will be retried, and the error for the last attempt', async () => {
    const wf = execution();
    const fail = async () => {
      throw new Error('card network down');
    };
    await expect(activityEnv({ workflowExecution: wf, activityId: '1', attempt: 1, retryPolicy: retry }).run(fail)).rejects.toThrow();
    expect(await spanOf(wf, '1')).toHaveLength(0);
    await expect(activityEnv({ workflowExecution: wf, activityId: '1', attempt: 3, retryPolicy: retry }).run(fail)).rejects.toThrow();
    const spans = await spanOf(wf, '1');
    expect(spans).toHaveLength(1);
    expect(spans[0]?.status).toBe('error');
    expect(spans[0]?.attributes).toMatchObject({ 'exception.message': 'card network down', 'temporal.activity.attempt': 3 });
  });

  it('knows which failures end an activity', () => {
    const policy = { maximumAttempts: 3, nonRetryableErrorTypes: ['CardDeclined'] };
    const declined = Object.assign(new Error('declined'), { name: 'CardDeclined' });
    expect(isFinalFailure({ attempt: 1, retryPolicy: policy }, new Error('x'))).toBe(false);
    expect(isFinalFailure({ attempt: 3, retryPolicy: policy }, new Error('x'))).toBe(true);
    expect(isFinalFailure({ attempt: 1, retryPolicy: policy }, declined)).toBe(true);
    expect(isFinalFailure({ attempt: 1, retryPolicy: policy }, ApplicationFailure.nonRetryable('bad input'))).toBe(true);
    expect(isFinalFailure({ attempt: 1, retryPolicy: policy }, ApplicationFailure.retryable('again', 'CardDeclined'))).toBe(true);
    // No maximum: unlimited attempts, never final by count.
    expect(isFinalFailure({ attempt: 50, retryPolicy: {} }, new Error('x'))).toBe(false);
  });
});
