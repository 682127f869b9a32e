// api.get_trace_summary: one trace at a glance, the same numbers search
// shows for it; traces known only from events are summarized from them.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { at, insertEvent, ORG_A, ORG_B, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

const summary = async (tx: Tx | typeof db.sql, trace: string | null) => {
  const [row] = await tx`select (api.get_trace_summary(${trace})).*`;
  return row!;
};

describe('api.get_trace_summary', () => {
  it('agrees with search_traces for the same trace', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [
        span('root', { start: 0, end: 100, name: 'GET /', service: 'edge' }),
        span('a', { parent: 'root', start: 50, end: 400, service: 'worker', status: 'error' }),
      ]);
      await insertEvent(tx, { span: 'a', at: 60 });
      await insertEvent(tx, { span: 'gone', parent: 'a', at: 70 });
      const one = await summary(tx, traceId('t1'));
      const [searched] = await tx`select * from api.search_traces()`;
      expect(one).toEqual(searched);
      expect(one).toMatchObject({
        root_span_id: spanId('root'),
        root_name: 'GET /',
        services: ['edge', 'worker'],
        duration_ms: 400,
        span_count: 2,
        inferred_span_count: 1,
        error_count: 1,
        event_count: 2,
        status: 'error',
        organization_id: ORG_A,
      });
    });
  });

  it('summarizes a trace that has only events from its events', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const session = '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b';
      await insertEvent(tx, { span: 'a', at: 10, session });
      await insertEvent(tx, { span: 'b', at: 35 });
      await insertEvent(tx, { span: null, at: 40 });
      expect(await summary(tx, traceId('t1'))).toMatchObject({
        root_span_id: null,
        root_name: null,
        services: [],
        span_count: 0,
        inferred_span_count: 2,
        event_count: 3,
        duration_ms: 30,
        status: 'ok',
        session_id: session,
        organization_id: ORG_A,
        start_time: new Date(at(10)),
        end_time: new Date(at(40)),
      });
    });
  });

  it('merges the two summaries of a trace id two tenants used, for whoever sees both', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [span('a', { start: 0, end: 10, org: ORG_A }), span('b', { start: 5, end: 50, org: ORG_B })]);
      expect(await summary(tx, traceId('t1'))).toMatchObject({ organization_id: null, span_count: 2, duration_ms: 50 });
    });
  });

  it('is null for a trace that does not exist, and refuses a malformed id naming p_trace_id', async () => {
    expect(await summary(db.sql, traceId('none'))).toMatchObject({ trace_id: null, span_count: null });
    const error = await summary(db.sql, 'not-a-trace').catch((e) => e);
    expect(error.message).toMatch(/^p_trace_id must be 32 lowercase hex characters/);
    expect((await summary(db.sql, null).catch((e) => e)).message).toMatch(/^p_trace_id is required/);
  });
});
