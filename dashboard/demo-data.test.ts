// The demo data the dashboard's "Load demo data" button and `tracegres demo`
// write: realistic traces, read back through the query API as the dashboard
// reads them.
import { describe, expect, it, vi } from 'vitest';
import { demoCommand, seedDemo } from '../cli/demo.ts';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';

const db = useTestDatabase();

describe('demo data', () => {
  it('holds failed requests whose whole trace the API returns, messy parts included', async () => {
    const demo = await seedDemo(db.sql, { requests: 12 });
    expect(demo.requests).toHaveLength(12);
    expect(demo.failedRequest.failed).toBe(true);

    const failed =
      await db.sql`select * from api.get_failed_events(p_first => 500) where correlation_id = ${demo.failedRequest.correlationId}`;
    expect(failed.map((e) => e.event_type)).toContain('payment.failed');
    expect(failed[0]!.trace_id).toBe(demo.failedRequest.traceId);

    const timeline = await db.sql`select * from api.get_trace_timeline(${demo.failedRequest.traceId})`;
    expect(timeline.map((s) => s.name)).toEqual([
      'POST /checkout',
      'checkout',
      'OrderWorkflow',
      'reserveInventory',
      'chargePayment',
      'INSERT payments',
      'sendEmail',
    ]);
    expect(timeline.find((s) => s.name === 'chargePayment')).toMatchObject({ status: 'error', on_critical_path: true });

    // Request 4's workflow span was never recorded: a placeholder holds its activities.
    const lost = await db.sql`select * from api.get_trace_timeline(${demo.requests[4]!.traceId}) where is_placeholder`;
    expect(lost).toHaveLength(1);
    // Request 7's email activity is known only from its events.
    const inferred = await db.sql`select * from api.get_trace_timeline(${demo.requests[7]!.traceId}) where is_inferred`;
    expect(inferred).toHaveLength(1);
    expect(inferred[0]!.event_count).toBe(2);

    const session = await db.sql`select * from api.get_session_traces(${demo.failedRequest.sessionId}::uuid)`;
    expect(session.map((t) => t.trace_id)).toEqual(
      demo.requests.filter((r) => r.sessionId === demo.failedRequest.sessionId).map((r) => r.traceId),
    );
  });

  it('tracegres demo loads it and prints a correlation id to look up', async () => {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      expect(await demoCommand(['--database-url', db.url])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const id = /correlation id ([0-9a-f-]{36})/.exec(lines.join('\n'))?.[1];
    expect(id).toBeDefined();
    const [row] = await db.sql`select count(*)::int as n from api.get_failed_events(p_first => 500) where correlation_id = ${id!}::uuid`;
    expect(row!.n).toBeGreaterThan(0);
  });
});
