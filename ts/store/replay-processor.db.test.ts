// The replay processor loop against a real database: woken by the run's
// NOTIFY, it hands each replayed event to the handler in order, reports the
// outcome, and records a processing span under the run's trace. The demo's
// order processor declines the payment before the fix and passes it after,
// archived by retention or not.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { seedDemo } from '../../cli/demo.ts';
import { startDemoOrderProcessor } from '../../cli/demo-order-processor.ts';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { archiveEvent } from '../../db/tests/helpers/trace-fixtures.ts';
import { startReplayProcessor, type ReplayProcessor } from './replay-processor.ts';

const db = useTestDatabase();
let processor: ReplayProcessor | undefined;
afterEach(async () => {
  await processor?.stop();
  processor = undefined;
});

async function startRun(correlationId: string, reason: string): Promise<string> {
  const [run] = await db.sql`select (api.start_replay(${reason}, p_correlation_id => ${correlationId}::uuid)).id`;
  return String(run!.id);
}

const runOf = (id: string) => db.sql`select * from api.get_replay_run(${id})`.then((rows) => rows[0]!);

describe('the replay processor', () => {
  it('replays a failed payment: declined again before the fix, processed after it, with spans under the run', async () => {
    const demo = await seedDemo(db.sql, { requests: 3 });
    const correlation = demo.failedRequest.correlationId;

    processor = await startDemoOrderProcessor(db.sql, { fixed: false, pollMs: 60_000 });
    const before = await startRun(correlation, 'try again before the fix');
    await expect.poll(async () => (await runOf(before)).status, { timeout: 10_000 }).toBe('completed');
    const declined = await db.sql`select event_type, state, error from api.get_replay_items(${before}) where event_type like 'payment.%'`;
    expect(declined).toEqual([{ event_type: 'payment.failed', state: 'failed', error: 'card declined: insufficient funds' }]);
    await processor.stop();

    processor = await startDemoOrderProcessor(db.sql, { fixed: true, pollMs: 60_000 });
    const after = await startRun(correlation, 'card bug fixed');
    await expect.poll(async () => (await runOf(after)).status, { timeout: 10_000 }).toBe('completed');
    const items = await db.sql`select event_type, original_state, state from api.get_replay_items(${after}) order by position`;
    expect(items.find((i) => i.event_type === 'payment.failed')).toEqual({
      event_type: 'payment.failed',
      original_state: 'failed',
      state: 'processed',
    });
    expect(items.every((i) => i.state === 'processed')).toBe(true);
    // Its trace: the run's root span, and one processing span per event
    // under it (each recorded just after its report, so the last one may
    // land after the run completed).
    const run = await runOf(after);
    const timeline = () =>
      db.sql`select name, parent_span_id, depth, service from api.get_trace_timeline(${run.trace_id}) order by position`;
    await expect.poll(async () => (await timeline()).length, { timeout: 10_000 }).toBe(items.length + 1);
    const spans = await timeline();
    expect(spans[0]).toMatchObject({ name: 'replay run', depth: 0 });
    expect(spans.slice(1).map((s) => [s.depth, s.service, s.parent_span_id])).toEqual(items.map(() => [1, 'order-worker', run.span_id]));
    expect(spans.map((s) => s.name)).toContain('replay payment.failed');
  });

  it('replays a failed payment that retention archived: its body from the archive, its outcome written there', async () => {
    const demo = await seedDemo(db.sql, { requests: 3 });
    const correlation = demo.failedRequest.correlationId;
    const events = await db.sql`select id from tracing.domain_events where correlation_id = ${correlation}::uuid`;
    await db.sql.begin(async (tx) => {
      for (const event of events) await archiveEvent(tx, event.id);
    });

    const handled: string[] = [];
    processor = await startReplayProcessorForTest(handled);
    const run = await startRun(correlation, 'card bug fixed');
    await expect.poll(async () => (await runOf(run)).status, { timeout: 10_000 }).toBe('completed');
    const items = await db.sql`select event_type, archived, state from api.get_replay_items(${run}) order by position`;
    expect(items.length).toBe(events.length);
    expect(items.every((i) => i.archived === true && i.state === 'processed')).toBe(true);
    expect(handled).toEqual(items.map((i) => i.event_type));
    const [payment] = await db.sql`
      select processed_at is not null as processed, processing_error from tracing.domain_events_archive
      where correlation_id = ${correlation}::uuid and event_type = 'payment.failed'`;
    expect(payment).toEqual({ processed: true, processing_error: null });
  });

  it("hands a stuck processor's event to another once its lease runs out, and refuses the stuck one's late report", async () => {
    const demo = await seedDemo(db.sql, { requests: 3 });
    let unstick!: () => void;
    const stuck = new Promise<void>((resolve) => (unstick = resolve));
    const logged: string[] = [];
    const log = vi.spyOn(console, 'error').mockImplementation((line: unknown) => void logged.push(String(line)));
    try {
      const stuckProcessor = await startReplayProcessor(db.sql, {
        processor: 'stuck',
        service: 'order-worker',
        pollMs: 60_000,
        lease: '1 second',
        handle: () => stuck,
      });
      const run = await startRun(demo.failedRequest.correlationId, 'lease test');
      const first = () => db.sql`select state, claimed_by, attempts from tracing.replay_items where run_id = ${run} and position = 1`;
      await expect.poll(async () => (await first())[0]!.claimed_by, { timeout: 10_000 }).toBe('stuck');

      processor = await startReplayProcessorForTest([], 300);
      await expect.poll(async () => (await runOf(run)).status, { timeout: 10_000 }).toBe('completed');
      expect((await first())[0]).toEqual({ state: 'processed', claimed_by: 'every-event', attempts: 2 });

      // The stuck processor wakes up and reports on a claim it lost.
      unstick();
      await expect
        .poll(() => logged.some((line) => line.includes('p_claim_token does not hold this event')), { timeout: 10_000 })
        .toBe(true);
      await stuckProcessor.stop();
      expect((await first())[0]).toEqual({ state: 'processed', claimed_by: 'every-event', attempts: 2 });
    } finally {
      log.mockRestore();
    }
  });
});

/** A processor that gets every event through, noting each event type it was handed. */
function startReplayProcessorForTest(handled: string[], pollMs = 60_000): Promise<ReplayProcessor> {
  return startReplayProcessor(db.sql, {
    processor: 'every-event',
    service: 'order-worker',
    pollMs,
    async handle(event) {
      handled.push(event.event_type);
    },
  });
}
