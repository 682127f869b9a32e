// api.operation_flame_graph: one operation's call trees over many traces,
// summed per call path, with self time counting overlapping children once.
import { describe, expect, it } from 'vitest';
import { expectArgumentErrors } from '../../helpers/argument-errors.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, at, ORG_A, ORG_B, recordSpans, span } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

async function seed(tx: Tx) {
  await recordSpans(tx, [
    // t1: two overlapping children (10-50, 30-70) cover 60 of the root's 100.
    span('root', { trace: 't1', start: 0, end: 100, name: 'checkout', service: 'edge' }),
    span('a', { trace: 't1', parent: 'root', start: 10, end: 50, name: 'charge', service: 'worker' }),
    span('b', { trace: 't1', parent: 'root', start: 30, end: 70, name: 'email', service: 'worker' }),
    span('c', { trace: 't1', parent: 'a', start: 20, end: 40, name: 'insert', service: 'db' }),
    // t2: a failed child that outlasts its parent covers all of it.
    span('root', { trace: 't2', start: 1000, end: 1050, name: 'checkout', service: 'edge' }),
    span('a', { trace: 't2', parent: 'root', start: 1000, end: 1060, name: 'charge', service: 'worker', status: 'error' }),
    // Another tenant's checkout, and one outside the window.
    span('root', { trace: 't3', start: 2000, end: 2100, name: 'checkout', service: 'edge', org: ORG_B }),
    span('root', { trace: 't4', start: 999_999, end: 1_000_100, name: 'checkout', service: 'edge' }),
  ]);
}

const flame = (tx: Tx, from = at(0), to = at(10_000)) =>
  tx`select path, depth, calls::int, traces::int, total_ms, self_ms, error_count::int
     from api.operation_flame_graph(${from}, ${to}, 'edge', 'checkout')`;

/** An expected row of flame(): its depth is its path's, and it has no errors unless `figures` say so. */
const frame = (path: string[], figures: { calls: number; traces: number; total_ms: number; self_ms: number; error_count?: number }) => ({
  path,
  depth: path.length - 1,
  error_count: 0,
  ...figures,
});

describe('api.operation_flame_graph', () => {
  it('sums calls, total and self time per call path over the traces of the window', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await actAs(tx, 'tracegres_reader', ORG_A, () => flame(tx));
      expect(rows).toEqual([
        frame(['edge: checkout'], { calls: 2, traces: 2, total_ms: 150, self_ms: 40 }),
        frame(['edge: checkout', 'worker: charge'], { calls: 2, traces: 2, total_ms: 100, self_ms: 80, error_count: 1 }),
        frame(['edge: checkout', 'worker: charge', 'db: insert'], { calls: 1, traces: 1, total_ms: 20, self_ms: 20 }),
        frame(['edge: checkout', 'worker: email'], { calls: 1, traces: 1, total_ms: 40, self_ms: 40 }),
      ]);
      // An admin sees the other tenant's checkout too.
      const all = await actAs(tx, 'tracegres_admin', null, () => flame(tx));
      expect(all[0]).toMatchObject({ calls: 3, traces: 3 });
    });
  });

  it('takes at most p_max_traces operation spans, newest first', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await tx`select path, calls::int, total_ms from api.operation_flame_graph(${at(0)}, ${at(1500)}, 'edge', 'checkout', 1)`;
      expect(rows).toEqual([
        { path: ['edge: checkout'], calls: 1, total_ms: 50 },
        { path: ['edge: checkout', 'worker: charge'], calls: 1, total_ms: 60 },
      ]);
    });
  });

  it('counts a call nested in a call of the same operation once, under its caller', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        // t6: checkout calls itself (10-60), which inserts (20-40), then charges (70-90).
        span('outer', { trace: 't6', start: 0, end: 100, name: 'checkout', service: 'edge' }),
        span('inner', { trace: 't6', parent: 'outer', start: 10, end: 60, name: 'checkout', service: 'edge' }),
        span('ins', { trace: 't6', parent: 'inner', start: 20, end: 40, name: 'insert', service: 'db' }),
        span('charge', { trace: 't6', parent: 'outer', start: 70, end: 90, name: 'charge', service: 'worker' }),
        // t7: checkout -> charge -> checkout again, through another operation.
        span('c1', { trace: 't7', start: 200, end: 300, name: 'checkout', service: 'edge' }),
        span('w1', { trace: 't7', parent: 'c1', start: 210, end: 290, name: 'charge', service: 'worker' }),
        span('c2', { trace: 't7', parent: 'w1', start: 220, end: 280, name: 'checkout', service: 'edge' }),
      ]);
      const rows = await flame(tx);
      expect(rows).toEqual([
        // Two outermost checkouts (100 + 100 ms): t6 covers 50 + 20, t7 80.
        frame(['edge: checkout'], { calls: 2, traces: 2, total_ms: 200, self_ms: 50 }),
        frame(['edge: checkout', 'edge: checkout'], { calls: 1, traces: 1, total_ms: 50, self_ms: 30 }),
        frame(['edge: checkout', 'edge: checkout', 'db: insert'], { calls: 1, traces: 1, total_ms: 20, self_ms: 20 }),
        frame(['edge: checkout', 'worker: charge'], { calls: 2, traces: 2, total_ms: 100, self_ms: 40 }),
        frame(['edge: checkout', 'worker: charge', 'edge: checkout'], { calls: 1, traces: 1, total_ms: 60, self_ms: 60 }),
      ]);
    });
  });

  it('stops at a parent loop instead of walking it again', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // x and z name each other as parent.
      await recordSpans(tx, [
        span('x', { trace: 't5', parent: 'z', start: 0, end: 100, name: 'checkout', service: 'edge' }),
        span('z', { trace: 't5', parent: 'x', start: 10, end: 60, name: 'loop', service: 'worker' }),
      ]);
      const rows = await tx`select path, calls::int, self_ms from api.operation_flame_graph(${at(0)}, ${at(10_000)}, 'edge', 'checkout')`;
      expect(rows).toEqual([
        { path: ['edge: checkout'], calls: 1, self_ms: 50 },
        { path: ['edge: checkout', 'worker: loop'], calls: 1, self_ms: 50 },
      ]);
    });
  });

  it('roots a parent loop of two calls of the operation at its earlier one', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // Both are checkouts and each names the other as parent: neither is outermost.
      await recordSpans(tx, [
        span('x', { trace: 't8', parent: 'z', start: 0, end: 100, name: 'checkout', service: 'edge' }),
        span('z', { trace: 't8', parent: 'x', start: 10, end: 60, name: 'checkout', service: 'edge' }),
      ]);
      const rows =
        await tx`select path, calls::int, total_ms, self_ms from api.operation_flame_graph(${at(0)}, ${at(10_000)}, 'edge', 'checkout')`;
      expect(rows).toEqual([
        { path: ['edge: checkout'], calls: 1, total_ms: 100, self_ms: 50 },
        { path: ['edge: checkout', 'edge: checkout'], calls: 1, total_ms: 50, self_ms: 50 },
      ]);
    });
  });

  it('names bad arguments (22023)', async () => {
    const cases: [string, RegExp][] = [
      [`select * from api.operation_flame_graph(now() - interval '1 hour', now(), null, 'x')`, /^p_service is required/],
      [`select * from api.operation_flame_graph(now() - interval '1 hour', now(), 'x', null)`, /^p_operation is required/],
      [`select * from api.operation_flame_graph(now() - interval '8 days', now(), 'x', 'y')`, /^p_to must be at most 7 days after p_from/],
      [
        `select * from api.operation_flame_graph(now() - interval '1 hour', now(), 'x', 'y', 10001)`,
        /^p_max_traces must be between 1 and 10000/,
      ],
    ];
    await expectArgumentErrors((query) => db.sql.unsafe(query), cases);
  });
});
