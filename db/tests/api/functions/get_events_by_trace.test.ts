// api.get_events_by_trace: a trace's events oldest first (the story of the
// request), including events not tied to any span, in keyset pages.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { insertEvent, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

const page = (tx: Tx, first: number | null, after: { created_at: Date; id: string } | null = null, trace = traceId('t1')) =>
  tx`select * from api.get_events_by_trace(${trace}, ${first}, ${after?.created_at ?? null}, ${after?.id ?? null})`;

describe('api.get_events_by_trace', () => {
  it('returns the trace events oldest first, with and without a span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const late = await insertEvent(tx, { at: 30, span: 'a', type: 'late' });
      const early = await insertEvent(tx, { at: 0, span: null, type: 'early' });
      const middle = await insertEvent(tx, { at: 10, span: 'b', type: 'middle' });
      await insertEvent(tx, { at: 5, trace: 'other', type: 'elsewhere' });
      const rows = await page(tx, null);
      expect(rows.map((r) => r.id)).toEqual([early, middle, late]);
      expect(rows[0]).toMatchObject({ trace_id: traceId('t1'), span_id: null });
    });
  });

  it('pages forward across equal timestamps without skipping or repeating', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const ids: string[] = [];
      for (const at of [0, 5, 5, 5, 5, 9, 12]) ids.push(await insertEvent(tx, { at, span: 'a' }));
      const seen: string[] = [];
      let rows = await page(tx, 2);
      while (rows.length > 0) {
        seen.push(...rows.map((r) => r.id as string));
        const last = rows[rows.length - 1]!;
        rows = await page(tx, 2, { created_at: last.created_at as Date, id: last.id as string });
      }
      expect(seen).toEqual(ids);
    });
  });

  it('refuses a malformed trace id and a bad page size, naming the argument', async () => {
    const run = (trace: string | null, first: number) => db.sql`select * from api.get_events_by_trace(${trace}, ${first})`.catch((e) => e);
    expect((await run('nope', 10)).message).toMatch(/^p_trace_id must be 32 lowercase hex characters/);
    expect((await run(null, 10)).message).toMatch(/^p_trace_id is required/);
    expect((await run(traceId('t1'), 0)).message).toMatch(/^p_first must be between 1 and 500/);
    expect((await run(traceId('t1'), 501)).message).toMatch(/^p_first must be between 1 and 500/);
  });
});
