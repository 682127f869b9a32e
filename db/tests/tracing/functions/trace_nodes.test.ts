// tracing.trace_nodes: a trace's recorded spans, the spans inferred from
// their events and placeholders for missing parents, numbered in start
// order with their parents' numbers.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { ORG_B, insertEvent, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

interface NodeRow {
  num: number;
  parent_num: number;
  span_id: string;
  start_ms: number;
  end_ms: number;
  is_inferred: boolean;
  is_placeholder: boolean;
  event_count: number;
  events: Array<{ event_type: string; offset_ms: number }>;
}

async function nodes(tx: Tx, trace: string): Promise<NodeRow[]> {
  const rows = (await tx`
    select n.num, n.parent_num, tracing.span_id_to_hex(n.span_id) as span_id, n.start_ms, n.end_ms,
           n.is_inferred, n.is_placeholder, n.event_count, n.events
      from tracing.trace_nodes(tracing.hex_to_trace_id(${traceId(trace)}), 10000, 10000) n
     order by n.num`) as unknown as NodeRow[];
  const labels = new Map(['root', 'a', 'b', 'ghost', 'lost', 'kid'].map((l) => [spanId(l), l]));
  return rows.map((r) => ({ ...r, span_id: labels.get(r.span_id) ?? r.span_id }));
}

describe('trace_nodes', () => {
  it('numbers recorded spans in start order, each with its parent number (0 for a root) and times from the trace start', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('root', { start: 10, end: 100 }),
        span('b', { parent: 'root', start: 40, end: 60 }),
        span('a', { parent: 'root', start: 20, end: 30 }),
      ]);
      expect((await nodes(tx, 't1')).map((n) => [n.num, n.span_id, n.parent_num, n.start_ms, n.end_ms])).toEqual([
        [1, 'root', 0, 0, 90],
        [2, 'a', 1, 10, 20],
        [3, 'b', 1, 30, 50],
      ]);
    });
  });

  it('infers a span from its events and adds a placeholder for a parent known neither way', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('root', { start: 0, end: 100 }),
        span('kid', { parent: 'lost', start: 15, end: 30 }),
        span('b', { parent: 'ghost', start: 50, end: 70 }),
      ]);
      await insertEvent(tx, { span: 'lost', parent: 'root', at: 40, type: 'payment.captured' });
      await insertEvent(tx, { span: 'lost', parent: 'root', at: 10, type: 'payment.started' });
      const rows = await nodes(tx, 't1');
      expect(
        rows.map((n) => [n.num, n.span_id, n.parent_num, n.start_ms, n.end_ms, n.is_inferred, n.is_placeholder, n.event_count]),
      ).toEqual([
        [1, 'root', 0, 0, 100, false, false, 0],
        [2, 'lost', 1, 10, 40, true, false, 2],
        [3, 'kid', 2, 15, 30, false, false, 0],
        // A tie in start time goes by span id.
        [4, 'b', 5, 50, 70, false, false, 0],
        [5, 'ghost', 0, 50, 70, false, true, 0],
      ]);
      expect(rows[1]!.events.map((e) => [e.event_type, e.offset_ms])).toEqual([
        ['payment.started', 10],
        ['payment.captured', 40],
      ]);
    });
  });

  it('returns one node per span even when two organizations reuse a span id in one trace', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('root', { start: 0, end: 100 }),
        span('a', { parent: 'root', start: 10, end: 20 }),
        span('root', { start: 5, end: 50, org: ORG_B }),
      ]);
      const rows = await nodes(tx, 't1');
      expect(rows.map((n) => [n.num, n.span_id, n.parent_num])).toEqual([
        [1, 'root', 0],
        [2, 'root', 0],
        [3, 'a', 2],
      ]);
    });
  });

  it('finds nothing for a trace without spans or events', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      expect(await nodes(tx, 'nothing')).toEqual([]);
    });
  });
});
