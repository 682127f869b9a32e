// The replay processor loop against a real database: woken by the run's
// NOTIFY, it hands each replayed event to the handler in order, reports the
// outcome, and records a processing span under the run's trace. The demo's
// order processor declines the payment before the fix and passes it after.
import { afterEach, describe, expect, it } from 'vitest';
import { seedDemo } from '../../cli/demo.ts';
import { startDemoOrderProcessor } from '../../cli/demo-order-processor.ts';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import type { ReplayProcessor } from './replay-processor.ts';

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
    // Its trace: the run's root span, and one processing span per event under it.
    const run = await runOf(after);
    const spans = await db.sql`select name, parent_span_id, depth, service from api.get_trace_timeline(${run.trace_id}) order by position`;
    expect(spans[0]).toMatchObject({ name: 'replay run', depth: 0 });
    expect(spans.slice(1).map((s) => [s.depth, s.service, s.parent_span_id])).toEqual(items.map(() => [1, 'order-worker', run.span_id]));
    expect(spans.map((s) => s.name)).toContain('replay payment.failed');
  });
});
