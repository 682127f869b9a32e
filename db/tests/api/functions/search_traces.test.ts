// api.search_traces: trace summaries filtered by time, service, operation,
// status, whole-trace duration and event type, newest first, in keyset pages.
import { beforeAll, describe, expect, it } from 'vitest';
import { nestedPlans } from '../../helpers/nested-plans.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { at, insertEvent, ORG_A, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

// quick: GET /a at 0 (100 ms, edge + db), with an event and a span known
//        only from its events;
// slow:  POST /orders at 1000; the root answers in 100 ms but the workflow
//        it started runs to 4000: the trace takes 3 s;
// broke: GET /pay at 2000, its `charge` span in `payments` failed.
async function seed(tx: Tx) {
  await recordSpans(tx, [
    span('root', { trace: 'quick', start: 0, end: 100, name: 'GET /a', service: 'edge' }),
    span('q', { trace: 'quick', parent: 'root', start: 10, end: 90, name: 'select', service: 'db' }),
    span('root', { trace: 'slow', start: 1000, end: 1100, name: 'POST /orders', service: 'edge' }),
    span('wf', { trace: 'slow', parent: 'root', start: 1050, end: 4000, name: 'workflow', service: 'temporal' }),
    span('root', { trace: 'broke', start: 2000, end: 2050, name: 'GET /pay', service: 'edge' }),
    span('ch', { trace: 'broke', parent: 'root', start: 2010, end: 2040, name: 'charge', service: 'payments', status: 'error' }),
  ]);
  await insertEvent(tx, { trace: 'quick', span: 'root', at: 5, type: 'order.viewed' });
  await insertEvent(tx, { trace: 'quick', span: 'lost', parent: 'root', at: 50, type: 'cache.filled' });
  await insertEvent(tx, { trace: 'broke', span: 'ch', at: 2040, type: 'payment.failed' });
}

type Filters = Partial<{
  from: string;
  to: string;
  service: string;
  operation: string;
  status: string;
  min: number;
  max: number;
  eventType: string;
  first: number;
  afterStart: Date;
  afterTrace: string;
}>;

function search(tx: Tx | typeof db.sql, f: Filters = {}) {
  return tx.unsafe(
    `select * from api.search_traces(
       p_from => $1, p_to => $2, p_service => $3, p_operation => $4, p_status => $5,
       p_min_duration_ms => $6, p_max_duration_ms => $7, p_event_type => $8, p_first => $9,
       p_after_start_time => $10, p_after_trace_id => $11)`,
    [
      f.from ?? null,
      f.to ?? null,
      f.service ?? null,
      f.operation ?? null,
      f.status ?? null,
      f.min ?? null,
      f.max ?? null,
      f.eventType ?? null,
      f.first ?? null,
      f.afterStart ?? null,
      f.afterTrace ?? null,
    ] as never[],
  );
}

const names = (rows: Array<Record<string, unknown>>) =>
  rows.map(
    (r) => ({ [traceId('quick')]: 'quick', [traceId('slow')]: 'slow', [traceId('broke')]: 'broke' })[r.trace_id as string] ?? r.trace_id,
  );

describe('api.search_traces', () => {
  it('summarizes each trace: root, services, whole-trace duration and counts, newest first', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await search(tx);
      expect(names(rows)).toEqual(['broke', 'slow', 'quick']);
      expect(rows[1]).toMatchObject({
        trace_id: traceId('slow'),
        organization_id: ORG_A,
        root_span_id: spanId('root'),
        root_name: 'POST /orders',
        root_service: 'edge',
        services: ['edge', 'temporal'],
        duration_ms: 3000,
        span_count: 2,
        error_count: 0,
        event_count: 0,
        inferred_span_count: 0,
        status: 'ok',
      });
      expect(rows[1]!.start_time).toEqual(new Date(at(1000)));
      expect(rows[2]).toMatchObject({ event_count: 2, inferred_span_count: 1, services: ['db', 'edge'] });
      expect(rows[0]).toMatchObject({ error_count: 1, status: 'error', event_count: 1 });
    });
  });

  it('measures duration over the whole trace, not the root span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      // The slow trace's root span took 100 ms; the trace took 3 s.
      expect(names(await search(tx, { min: 2000 }))).toEqual(['slow']);
      expect(names(await search(tx, { max: 100 }))).toEqual(['broke', 'quick']);
      expect(names(await search(tx, { min: 50, max: 100 }))).toEqual(['broke', 'quick']);
    });
  });

  it('filters by service, operation (one span matching both when both are given), status and event type', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      expect(names(await search(tx, { service: 'temporal' }))).toEqual(['slow']);
      expect(names(await search(tx, { service: 'edge' }))).toEqual(['broke', 'slow', 'quick']);
      expect(names(await search(tx, { operation: 'charge' }))).toEqual(['broke']);
      expect(names(await search(tx, { service: 'payments', operation: 'charge' }))).toEqual(['broke']);
      expect(names(await search(tx, { service: 'edge', operation: 'charge' }))).toEqual([]);
      expect(names(await search(tx, { status: 'error' }))).toEqual(['broke']);
      expect(names(await search(tx, { status: 'OK' }))).toEqual(['slow', 'quick']);
      expect(names(await search(tx, { eventType: 'payment.failed' }))).toEqual(['broke']);
      expect(names(await search(tx, { eventType: 'cache.filled', service: 'db' }))).toEqual(['quick']);
      // Blank text filters mean "no filter".
      expect(names(await search(tx, { service: ' ', operation: '' }))).toEqual(['broke', 'slow', 'quick']);
    });
  });

  it('filters by start in [p_from, p_to)', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      expect(names(await search(tx, { from: at(1000), to: at(2000) }))).toEqual(['slow']);
      expect(names(await search(tx, { from: at(1) }))).toEqual(['broke', 'slow']);
      expect(names(await search(tx, { to: at(1000) }))).toEqual(['quick']);
    });
  });

  it('pages with a (start_time, trace_id) cursor, also across traces that start at the same instant', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      for (const label of ['same1', 'same2', 'same3']) {
        await recordSpans(tx, [span('root', { trace: label, start: 1000, end: 1001 })]);
      }
      const all = await search(tx);
      const seen: string[] = [];
      let page = await search(tx, { first: 2 });
      while (page.length > 0) {
        seen.push(...page.map((r) => r.trace_id as string));
        const last = page[page.length - 1]!;
        page = await search(tx, { first: 2, afterStart: last.start_time as Date, afterTrace: last.trace_id as string });
      }
      expect(seen).toEqual(all.map((r) => r.trace_id));
      expect(seen).toHaveLength(6);
    });
  });

  it.each([
    [{ status: 'failed' }, /^p_status must be ok or error/],
    [{ min: -1 }, /^p_min_duration_ms must be a number >= 0/],
    [{ max: -0.5 }, /^p_max_duration_ms must be a number >= 0/],
    [{ min: 10, max: 5 }, /^p_min_duration_ms must not exceed p_max_duration_ms/],
    [{ from: at(10), to: at(0) }, /^p_from must be before p_to/],
    [{ first: 0 }, /^p_first must be between 1 and 500/],
    [{ first: 501 }, /^p_first must be between 1 and 500/],
    [{ afterStart: new Date() }, /^p_after_trace_id is required when p_after_start_time is given/],
    [{ afterTrace: traceId('x') }, /^p_after_start_time is required when p_after_trace_id is given/],
    [{ afterStart: new Date(), afterTrace: 'XYZ' }, /^p_after_trace_id must be 32 lowercase hex characters/],
  ] as Array<[Filters, RegExp]>)('refuses %j, naming the argument', async (filters, message) => {
    const error = await search(db.sql, filters).catch((e) => e);
    expect(error.message).toMatch(message);
    expect(error.code).toBe('22023');
  });

  describe('index use', () => {
    beforeAll(async () => {
      // 5,000 traces over ~14 hours, a few with errors, two tenants.
      await db.sql`
        select tracing.record_spans(jsonb_agg(jsonb_build_object(
          'trace_id', md5('bg' || i), 'span_id', '00000000000000aa', 'name', 'op' || (i % 7), 'service', 'svc' || (i % 3),
          'status', case when i % 97 = 0 then 'error' else 'ok' end,
          'organization_id', case when i % 2 = 0 then ${ORG_A}::text else 'b0000000-0000-4000-8000-00000000000b' end,
          'start_time', to_char((timestamptz '2025-03-01 00:00:00+00' + i * interval '10 s') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
          'end_time', to_char((timestamptz '2025-03-01 00:00:00+00' + i * interval '10 s' + (i % 40) * interval '100 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
        from generate_series(1, 5000) i`;
      await db.sql`analyze tracing.trace_summaries`;
    });

    const plansOf = async (query: string, setup: string[] = []) => (await nestedPlans(db.url, query, [], setup)).join('\n');

    it('walks the start-time index for a time range, newest first', async () => {
      const plans = await plansOf(
        `select * from api.search_traces(p_from => '2025-03-01T05:00:00Z', p_to => '2025-03-01T06:00:00Z', p_min_duration_ms => 1000)`,
      );
      expect(plans).toContain('trace_summaries_start_time_idx');
      expect(plans).not.toMatch(/Seq Scan on trace_summaries/);
    });

    it('uses the partial index of failed traces for p_status error', async () => {
      const plans = await plansOf(`select * from api.search_traces(p_status => 'error')`);
      expect(plans).toContain('trace_summaries_failed_start_time_idx');
      expect(plans).not.toMatch(/Seq Scan on trace_summaries/);
    });

    it('counts each result trace events through the trace index', async () => {
      const plans = await plansOf(`select * from api.search_traces(p_first => 20)`);
      expect(plans).toContain('domain_events_trace_id_idx');
      expect(plans).not.toMatch(/Seq Scan on (trace_summaries|domain_events)/);
    });

    it('serves a tenant through its organization index', async () => {
      const plans = await plansOf(`select * from api.search_traces(p_first => 20)`, [
        `set local role tracegres_reader`,
        `select set_config('jwt.claims.organization_id', '${ORG_A}', true)`,
      ]);
      expect(plans).toMatch(/trace_summaries_(organization_)?start_time_idx/);
      expect(plans).not.toMatch(/Seq Scan on trace_summaries/);
    });
  });
});
