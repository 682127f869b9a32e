// api.get_trace_timeline: a trace as a tree, correct on messy traces
// (missing parents, parent cycles, spans known only from their events,
// several roots, children outside their parent), with self time and the
// critical path, and fast enough for 10,000 spans.
import { beforeAll, describe, expect, it } from 'vitest';
import { nestedPlans } from '../../helpers/nested-plans.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { insertEvent, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

interface Row {
  span_id: string;
  parent_span_id: string | null;
  recorded_parent_span_id: string | null;
  name: string | null;
  depth: number;
  position: number;
  sibling_index: number;
  child_count: number;
  offset_ms: number;
  duration_ms: number;
  self_time_ms: number;
  on_critical_path: boolean;
  is_inferred: boolean;
  is_placeholder: boolean;
  breaks_cycle: boolean;
  cut_at_depth_limit: boolean;
  trace_cut_at_limit: boolean;
  event_count: number;
  events: Array<{ id: number; event_type: string; offset_ms: number }>;
  status: string | null;
  start_time: Date;
  end_time: Date;
}

// Span ids back to the labels the fixtures were written with.
const labels = new Map<string, string>();
for (const label of [
  'root',
  'a',
  'b',
  'c',
  'd',
  'e',
  'x',
  'y',
  'r',
  'p1',
  'p2',
  'q',
  'ghost',
  'ghost2',
  'lost',
  'kid',
  'cyc1',
  'cyc2',
  'cyc3',
  'under',
  'self',
  'r1',
  'r2',
]) {
  labels.set(spanId(label), label);
}
const label = (id: string | null) => (id === null ? null : (labels.get(id) ?? id));

async function timeline(tx: Tx | typeof db.sql, trace = 't1'): Promise<Row[]> {
  return (await tx`select * from api.get_trace_timeline(${traceId(trace)})`) as unknown as Row[];
}

function byLabel(rows: Row[]): Record<string, Row> {
  return Object.fromEntries(rows.map((r) => [label(r.span_id)!, r]));
}

describe('a well-formed tree', () => {
  // root 0..100 with a 0..30, b 20..60 (overlapping a), c 65..90;
  // inside c: e 66..75 and d 70..80 (overlapping).
  const tree = [
    span('root', { start: 0, end: 100, status: 'ok' }),
    span('a', { parent: 'root', start: 0, end: 30 }),
    span('b', { parent: 'root', start: 20, end: 60 }),
    span('c', { parent: 'root', start: 65, end: 90, status: 'error' }),
    span('d', { parent: 'c', start: 70, end: 80 }),
    span('e', { parent: 'c', start: 66, end: 75 }),
  ];

  it('comes depth-first, children by start time, with depth, parent and sibling order', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, tree);
      const rows = await timeline(tx);
      expect(rows.map((r) => [label(r.span_id), label(r.parent_span_id), r.depth, r.position, r.sibling_index, r.child_count])).toEqual([
        ['root', null, 0, 0, 0, 3],
        ['a', 'root', 1, 1, 0, 0],
        ['b', 'root', 1, 2, 1, 0],
        ['c', 'root', 1, 3, 2, 2],
        ['e', 'c', 2, 4, 0, 0],
        ['d', 'c', 2, 5, 1, 0],
      ]);
      expect(rows.every((r) => !r.is_inferred && !r.is_placeholder && !r.breaks_cycle && !r.cut_at_depth_limit)).toBe(true);
      expect(rows[0]).toMatchObject({ trace_id: traceId('t1'), name: 'root', status: 'ok' });
      expect(byLabel(rows).c!.status).toBe('error');
    });
  });

  it('gives offsets from the trace start, durations and self time with overlapping children counted once', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, tree);
      const rows = byLabel(await timeline(tx));
      expect(Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, [r.offset_ms, r.duration_ms, r.self_time_ms]]))).toEqual({
        // a and b overlap: together they cover 0..60; c covers 65..90.
        root: [0, 100, 15],
        a: [0, 30, 30],
        b: [20, 40, 40],
        // e and d overlap: together 66..80.
        c: [65, 25, 11],
        e: [66, 9, 9],
        d: [70, 10, 10],
      });
    });
  });

  it('marks the critical path: last child to finish, then what finished before it started', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, tree);
      const rows = await timeline(tx);
      // c finished last (90); before c started (65) b finished last (60);
      // a ended (30) after b started (20), so it did not hold anything up.
      // Inside c, d finished last; e ended after d started.
      expect(rows.filter((r) => r.on_critical_path).map((r) => label(r.span_id))).toEqual(['root', 'b', 'c', 'd']);
    });
  });
});

describe('children outside their parent', () => {
  it('count only the overlapping part, for self time and the critical path', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // x outlives the root (async work); y starts before it (clock skew).
      await recordSpans(tx, [
        span('root', { trace: 't2', start: 0, end: 100 }),
        span('x', { trace: 't2', parent: 'root', start: 50, end: 150 }),
        span('y', { trace: 't2', parent: 'root', start: -10, end: 20 }),
      ]);
      const rows = byLabel(await timeline(tx, 't2'));
      // Covered: x 50..100 and y 0..20.
      expect(rows.root!.self_time_ms).toBe(30);
      expect(rows.root!.offset_ms).toBe(10);
      expect(rows.y!.offset_ms).toBe(0);
      expect([rows.root!.on_critical_path, rows.x!.on_critical_path, rows.y!.on_critical_path]).toEqual([true, true, true]);
    });
  });
});

describe('missing parents', () => {
  it('hang orphans under a placeholder for each missing parent, spanning its children', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('r', { trace: 't3', start: 0, end: 50 }),
        span('p1', { trace: 't3', parent: 'ghost', start: 10, end: 20 }),
        span('p2', { trace: 't3', parent: 'ghost', start: 15, end: 40 }),
        span('q', { trace: 't3', parent: 'ghost2', start: 5, end: 8 }),
      ]);
      const rows = await timeline(tx, 't3');
      expect(rows.map((r) => [label(r.span_id), label(r.parent_span_id), r.depth, r.is_placeholder])).toEqual([
        ['r', null, 0, false],
        ['ghost2', null, 0, true],
        ['q', 'ghost2', 1, false],
        ['ghost', null, 0, true],
        ['p1', 'ghost', 1, false],
        ['p2', 'ghost', 1, false],
      ]);
      const ghost = byLabel(rows).ghost!;
      expect(ghost).toMatchObject({ name: null, status: null, offset_ms: 10, duration_ms: 30, child_count: 2, event_count: 0, events: [] });
      // Roots in start order.
      expect(rows.filter((r) => r.depth === 0).map((r) => [label(r.span_id), r.sibling_index])).toEqual([
        ['r', 0],
        ['ghost2', 1],
        ['ghost', 2],
      ]);
    });
  });

  it('shows a trace whose root was never recorded', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [span('a', { trace: 't3', parent: 'root', start: 0, end: 10 })]);
      const rows = await timeline(tx, 't3');
      expect(rows.map((r) => [label(r.span_id), r.is_placeholder, r.on_critical_path])).toEqual([
        ['root', true, true],
        ['a', false, true],
      ]);
    });
  });
});

describe('spans known only from their events', () => {
  it('are inferred from their events and keep their recorded children', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('root', { trace: 't4', start: 0, end: 100 }),
        span('kid', { trace: 't4', parent: 'lost', start: 15, end: 30 }),
      ]);
      // The process running `lost` died before recording it; its events survive.
      await insertEvent(tx, { trace: 't4', span: 'lost', parent: 'root', at: 40, type: 'payment.captured' });
      await insertEvent(tx, { trace: 't4', span: 'lost', parent: 'root', at: 10, type: 'payment.started' });
      await insertEvent(tx, { trace: 't4', span: 'lost', parent: 'root', at: 25, type: 'payment.authorized' });
      await insertEvent(tx, { trace: 't4', span: 'root', at: 5, type: 'order.placed' });
      const rows = await timeline(tx, 't4');
      expect(rows.map((r) => [label(r.span_id), label(r.parent_span_id), r.depth, r.is_inferred])).toEqual([
        ['root', null, 0, false],
        ['lost', 'root', 1, true],
        ['kid', 'lost', 2, false],
      ]);
      const lost = byLabel(rows).lost!;
      expect(lost).toMatchObject({ name: null, offset_ms: 10, duration_ms: 30, event_count: 3, self_time_ms: 15 });
      expect(lost.events.map((e) => [e.event_type, e.offset_ms])).toEqual([
        ['payment.started', 10],
        ['payment.authorized', 25],
        ['payment.captured', 40],
      ]);
      expect(byLabel(rows).root!.events.map((e) => e.event_type)).toEqual(['order.placed']);
    });
  });

  it('make a trace that has only events', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await insertEvent(tx, { trace: 't4', span: 'a', at: 0 });
      await insertEvent(tx, { trace: 't4', span: 'a', at: 7 });
      const rows = await timeline(tx, 't4');
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ is_inferred: true, duration_ms: 7, on_critical_path: true, event_count: 2 });
    });
  });
});

describe('parent cycles', () => {
  it('cannot loop: each cycle is cut at its earliest span, and no span is lost', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('r', { trace: 't5', start: 0, end: 100 }),
        // cyc1 -> cyc2 -> cyc3 -> cyc1, with `under` hanging off cyc2.
        span('cyc1', { trace: 't5', parent: 'cyc3', start: 10, end: 50 }),
        span('cyc2', { trace: 't5', parent: 'cyc1', start: 20, end: 40 }),
        span('cyc3', { trace: 't5', parent: 'cyc2', start: 25, end: 30 }),
        span('under', { trace: 't5', parent: 'cyc2', start: 22, end: 24 }),
        // Its own parent.
        span('self', { trace: 't5', parent: 'self', start: 5, end: 6 }),
      ]);
      const rows = await timeline(tx, 't5');
      expect(
        rows.map((r) => [label(r.span_id), label(r.parent_span_id), label(r.recorded_parent_span_id), r.depth, r.breaks_cycle]),
      ).toEqual([
        ['r', null, null, 0, false],
        ['self', null, 'self', 0, true],
        ['cyc1', null, 'cyc3', 0, true],
        ['cyc2', 'cyc1', 'cyc1', 1, false],
        ['under', 'cyc2', 'cyc2', 2, false],
        ['cyc3', 'cyc2', 'cyc2', 2, false],
      ]);
    });
  });
});

describe('several roots', () => {
  it('are trees of their own, the critical path runs through the one that ends the trace', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('r1', { trace: 't6', start: 10, end: 20 }),
        span('r2', { trace: 't6', start: 0, end: 50 }),
        span('a', { trace: 't6', parent: 'r1', start: 11, end: 12 }),
      ]);
      const rows = await timeline(tx, 't6');
      expect(rows.map((r) => [label(r.span_id), r.position, r.sibling_index, r.on_critical_path])).toEqual([
        ['r2', 0, 0, true],
        ['r1', 1, 1, false],
        ['a', 2, 0, false],
      ]);
    });
  });

  it('one after the other are all on the critical path', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [span('r1', { trace: 't6', start: 0, end: 10 }), span('r2', { trace: 't6', start: 10, end: 30 })]);
      const rows = await timeline(tx, 't6');
      expect(rows.map((r) => r.on_critical_path)).toEqual([true, true]);
    });
  });
});

describe('arguments', () => {
  it('returns no rows for a trace that does not exist', async () => {
    expect(await timeline(db.sql, 'nothing-here')).toEqual([]);
  });

  it.each([
    ['too short', 'abc', /^p_trace_id must be 32 lowercase hex characters/],
    ['uppercase', '4BF92F3577B34DA6A3CE929D0E0E4736', /^p_trace_id must be 32 lowercase hex characters/],
    ['a uuid with hyphens', '4bf92f35-77b3-4da6-a3ce-929d0e0e4736', /^p_trace_id must be 32 lowercase hex/],
    ['all zeros', '0'.repeat(32), /^p_trace_id .*not all zeros/],
    ['null', null, /^p_trace_id is required/],
  ])('refuses a trace id that is %s, naming p_trace_id', async (_case, value, message) => {
    const error = await db.sql`select * from api.get_trace_timeline(${value})`.catch((e: { message: string; code: string }) => e);
    expect((error as { message: string }).message).toMatch(message);
    expect((error as { code: string }).code).toBe('22023');
  });
});

describe('large traces', () => {
  // Checks that hold for any tree, on a trace of `count` spans.
  async function checkShape(tx: Tx, trace: string, count: number) {
    const rows = await timeline(tx, trace);
    expect(rows).toHaveLength(count);
    expect(new Set(rows.map((r) => r.span_id)).size).toBe(count);
    const at = new Map(rows.map((r, i) => [r.span_id, i]));
    rows.forEach((r, i) => {
      expect(r.position).toBe(i);
      expect(r.self_time_ms).toBeGreaterThanOrEqual(0);
      if (r.parent_span_id !== null) {
        // Depth-first: the parent comes before its children, one level up.
        const parent = rows[at.get(r.parent_span_id)!]!;
        expect(at.get(r.parent_span_id)!).toBeLessThan(i);
        expect(r.depth).toBe(parent.depth + 1);
      } else {
        expect(r.depth).toBe(0);
      }
    });
    expect(rows.some((r) => r.on_critical_path && r.depth === 0)).toBe(true);
    return rows;
  }

  it('lays out 10,000 spans (random tree, with events) and returns in reasonable time', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`select setseed(0.42)`;
      // Span i's parent is a random earlier span; times nest loosely.
      await tx`
        select tracing.record_spans(jsonb_agg(jsonb_build_object(
          'trace_id', ${traceId('big')}::text, 'span_id', lpad(to_hex(i), 16, '0'),
          'parent_span_id', case when i > 1 then lpad(to_hex(1 + floor(random() * (i - 1))::int), 16, '0') end,
          'name', 'op' || (i % 40), 'service', 'svc' || (i % 3),
          'start_time', to_char((timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          'end_time', to_char((timestamptz '2025-03-01 12:00:00+00' + (i + 1 + i % 500) * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
        from generate_series(1, 10000) i`;
      await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at)
        select 'order', 'o', 'step', jsonb_build_object('trace_id', ${traceId('big')}::text, 'span_id', lpad(to_hex(i * 7), 16, '0')),
               timestamptz '2025-03-01 12:00:00+00' + (i * 7 * interval '1 ms')
        from generate_series(1, 1428) i`;
      const started = performance.now();
      await checkShape(tx, 'big', 10000);
      const elapsed = performance.now() - started;
      console.info(`get_trace_timeline: 10,000 spans in ${elapsed.toFixed(0)} ms (with the checks)`);
      // Generous: catches a quadratic step (which takes minutes), not noise.
      expect(elapsed).toBeLessThan(10_000);
    });
  });

  it('returns at most 10,000 spans, the first in depth-first order, however large the trace', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // A root with 10,050 children.
      await tx`
        select tracing.record_spans(jsonb_agg(jsonb_build_object(
          'trace_id', ${traceId('huge')}::text, 'span_id', lpad(to_hex(i + 1), 16, '0'),
          'parent_span_id', case when i > 0 then lpad(to_hex(1), 16, '0') end,
          'name', 'op',
          'start_time', to_char((timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          'end_time', to_char((timestamptz '2025-03-01 12:00:00+00' + (i + 1) * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
        from generate_series(0, 10050) i`;
      const rows = await timeline(tx, 'huge');
      expect(rows).toHaveLength(10_000);
      expect(rows.map((r) => r.position)).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
      expect(rows[0]!.depth).toBe(0);
      // Children by start time: the last ones are cut.
      expect(rows[9_999]!.span_id).toBe((10_000).toString(16).padStart(16, '0'));
    });
  });

  // A chain `count` spans deep; each level starts 1 ms later and ends 1 ms earlier.
  async function recordChain(tx: Tx, trace: string, count: number) {
    await tx`
      select tracing.record_spans(jsonb_agg(jsonb_build_object(
        'trace_id', ${traceId(trace)}::text, 'span_id', lpad(to_hex(i), 16, '0'),
        'parent_span_id', case when i > 1 then lpad(to_hex(i - 1), 16, '0') end,
        'name', 'level' || i,
        'start_time', to_char((timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'end_time', to_char((timestamptz '2025-03-01 12:00:00+00' + (20000 - i) * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
      from generate_series(1, ${count}) i`;
  }

  it('lays out a chain 1,000 spans deep, the depth limit, whole', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordChain(tx, 'deep', 1000);
      const rows = await checkShape(tx, 'deep', 1000);
      expect(rows[999]!.depth).toBe(999);
      expect(rows.every((r) => r.on_critical_path && !r.cut_at_depth_limit)).toBe(true);
    });
  });

  it('starts a tree of its own every 1,000 levels of a deeper chain, flagged, and loses no span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordChain(tx, 'deep', 5000);
      const rows = await checkShape(tx, 'deep', 5000);
      expect(rows.map((r) => r.depth)).toEqual(Array.from({ length: 5000 }, (_, i) => i % 1000));
      const cut = rows.filter((r) => r.cut_at_depth_limit);
      expect(cut.map((r) => r.position)).toEqual([1000, 2000, 3000, 4000]);
      // The recorded parent stays visible; the tree as shown starts there.
      expect(cut.map((r) => [r.parent_span_id, r.recorded_parent_span_id])).toEqual(
        [1000, 2000, 3000, 4000].map((level) => [null, level.toString(16).padStart(16, '0')]),
      );
      expect(cut.map((r) => r.sibling_index)).toEqual([1, 2, 3, 4]);
      expect(rows[999]!.child_count).toBe(0);
      // The first chunk holds the rest in time, so the critical path stays in it.
      expect(rows.filter((r) => r.on_critical_path)).toHaveLength(1000);
    });
  });
});

describe('bounded work', () => {
  // Span ids as the fixtures below write them: span i is lpad(to_hex(i), 16, '0').
  const hex = (i: number) => i.toString(16).padStart(16, '0');

  // `count` spans, span i starting i ms into the trace, its parent a random
  // earlier span (so every span starts after its parent, as in a real trace).
  async function recordRandomTree(tx: Tx, trace: string, count: number) {
    await tx`select setseed(0.17)`;
    await tx`
      select tracing.record_spans(jsonb_agg(jsonb_build_object(
        'trace_id', ${traceId(trace)}::text, 'span_id', lpad(to_hex(i), 16, '0'),
        'parent_span_id', case when i > 1 then lpad(to_hex(1 + floor(random() * (i - 1))::int), 16, '0') end,
        'name', 'op' || (i % 40),
        'start_time', to_char((timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'end_time', to_char((timestamptz '2025-03-01 12:00:00+00' + (i + 1 + i % 500) * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
      from generate_series(1, ${count}) i`;
  }

  it('builds a 50,000-span trace from its earliest 10,000 spans only, roots and ancestors kept, and says the trace was cut', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordRandomTree(tx, 'flood', 50_000);
      const rows = await timeline(tx, 'flood');
      // What was read shows in the answer: exactly spans 1..10,000, the
      // earliest by start; nothing later made it into the tree.
      expect(rows).toHaveLength(10_000);
      expect(new Set(rows.map((r) => r.span_id))).toEqual(new Set(Array.from({ length: 10_000 }, (_, i) => hex(i + 1))));
      expect(rows.every((r) => r.trace_cut_at_limit)).toBe(true);
      // Every kept span's parent was kept: one root, no placeholders, and the
      // tree as drawn is the tree as recorded.
      expect(rows.filter((r) => r.depth === 0).map((r) => r.span_id)).toEqual([hex(1)]);
      expect(rows.some((r) => r.is_placeholder || r.is_inferred)).toBe(false);
      expect(rows.every((r) => r.parent_span_id === r.recorded_parent_span_id)).toBe(true);
      // A built tree, not a cut list: the child counts add up to the rows below the root.
      expect(rows.reduce((sum, r) => sum + r.child_count, 0)).toBe(9_999);
    });
  });

  it('cuts at 10,001 spans, not at 10,000, dropping the latest', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordRandomTree(tx, 'edge', 10_000);
      const whole = await timeline(tx, 'edge');
      expect(whole).toHaveLength(10_000);
      expect(whole.some((r) => r.trace_cut_at_limit)).toBe(false);
      await tx`
        select tracing.record_spans(jsonb_build_array(jsonb_build_object(
          'trace_id', ${traceId('edge')}::text, 'span_id', ${hex(10_001)}::text, 'parent_span_id', ${hex(1)}::text, 'name', 'late',
          'start_time', '2025-03-01T12:00:30Z', 'end_time', '2025-03-01T12:00:31Z')))`;
      const cut = await timeline(tx, 'edge');
      expect(cut).toHaveLength(10_000);
      expect(cut.every((r) => r.trace_cut_at_limit)).toBe(true);
      expect(cut.some((r) => r.span_id === hex(10_001))).toBe(false);
    });
  });

  it('reads at most 10,000 events of a trace, the earliest, and says the trace was cut', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [span('root', { trace: 'chatty', start: 0, end: 20_000 })]);
      await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at)
        select 'order', 'o', 'step' || i, jsonb_build_object('trace_id', ${traceId('chatty')}::text, 'span_id', ${spanId('root')}::text),
               timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms'
        from generate_series(1, 10001) i`;
      const [root] = await timeline(tx, 'chatty');
      expect(root!.event_count).toBe(10_000);
      expect(root!.events.at(-1)!.event_type).toBe('step10000');
      expect(root!.trace_cut_at_limit).toBe(true);
    });
  });

  it('does not show the events of a recorded span that was cut as a span inferred from them', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordRandomTree(tx, 'late', 10_001);
      // Span 10,001 was recorded but is past the limit; ghost never was.
      await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at)
        values ('order', 'o', 'late.step', jsonb_build_object('trace_id', ${traceId('late')}::text, 'span_id', ${hex(10_001)}::text),
                timestamptz '2025-03-01 12:00:10.001+00'),
               ('order', 'o', 'ghost.step', jsonb_build_object('trace_id', ${traceId('late')}::text, 'span_id', ${spanId('ghost')}::text,
                                                               'parent_span_id', ${hex(1)}::text),
                timestamptz '2025-03-01 12:00:00.5+00')`;
      const rows = await timeline(tx, 'late');
      expect(rows.every((r) => r.trace_cut_at_limit)).toBe(true);
      expect(rows.some((r) => r.span_id === hex(10_001))).toBe(false);
      expect(rows.filter((r) => r.is_inferred).map((r) => label(r.span_id))).toEqual(['ghost']);
    });
  });

  it('says the trace was cut when its spans and events make more than 10,000 rows', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordRandomTree(tx, 'rows', 9_990);
      // Twenty spans known only from their events, late in the trace.
      await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at)
        select 'order', 'o', 'step', jsonb_build_object('trace_id', ${traceId('rows')}::text, 'span_id', lpad(to_hex(20000 + i), 16, '0'),
                                                       'parent_span_id', lpad(to_hex(1), 16, '0')),
               timestamptz '2025-03-01 12:00:20+00' + i * interval '1 ms'
        from generate_series(1, 20) i`;
      const rows = await timeline(tx, 'rows');
      expect(rows).toHaveLength(10_000);
      expect(rows.every((r) => r.trace_cut_at_limit)).toBe(true);
    });
  });
});

describe('index use', () => {
  beforeAll(async () => {
    // Enough other traces that reading a whole table would be the slow way.
    await db.sql`
      select tracing.record_spans(jsonb_agg(jsonb_build_object(
        'trace_id', md5('bg' || (i / 20)), 'span_id', lpad(to_hex(i + 1), 16, '0'),
        'name', 'op', 'start_time', '2025-03-01T12:00:00Z', 'end_time', '2025-03-01T12:00:01Z')))
      from generate_series(1, 20000) i`;
    await db.sql`
      insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata)
      select 'order', 'o', 'step', jsonb_build_object('trace_id', md5('bg' || (i / 5)), 'span_id', lpad(to_hex(i + 1), 16, '0'))
      from generate_series(1, 20000) i`;
    await db.sql`analyze tracing.spans`;
    await db.sql`analyze tracing.domain_events`;
  });

  it('reads a trace through the spans key (trace, span, organization, start) and the events trace index', async () => {
    const plans = (await nestedPlans(db.url, `select * from api.get_trace_timeline(md5('bg' || 7))`)).join('\n');
    // The spans sit in the partition of everything before the migration's
    // next month; the empty partitions may be read whole, at no cost.
    expect(plans).toMatch(/(Index|Index Only|Bitmap Index) Scan (using|on) spans_before_\w+_trace_span_organization_start/);
    expect(plans).toMatch(/(Index|Bitmap Index) Scan (using|on) domain_events_trace_id_idx/);
    expect(plans).not.toMatch(/Seq Scan on (spans_before_\w+|domain_events)\b/);
  });
});
