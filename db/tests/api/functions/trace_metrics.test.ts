// api.red_metrics, api.service_map and api.compare_traces: what the spans of
// a window add up to, per tenant, with bad windows refused by name.
import { beforeAll, describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, at, ORG_A, ORG_B, recordSpans, span, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();
const FROM = at(0);
const TO = at(120_000);

// Three checkouts in the first minute (one failed, durations 100, 200, 400
// ms), one in the second (800 ms); each calls payments, which calls the
// bank; the failed one's payment fails. A second tenant's checkout in the
// first minute must not count for the first.
beforeAll(async () => {
  const checkout = (trace: string, start: number, duration: number, failed = false, org?: string) => [
    span('root', {
      trace,
      start,
      end: start + duration,
      name: 'POST /checkout',
      service: 'edge',
      status: failed ? 'error' : 'ok',
      extra: { kind: 'server' },
      org,
    }),
    span('pay', {
      trace,
      parent: 'root',
      start: start + 10,
      end: start + duration - 10,
      name: 'charge',
      service: 'payments',
      status: failed ? 'error' : 'ok',
      extra: { kind: 'server' },
      org,
    }),
    span('bank', {
      trace,
      parent: 'pay',
      start: start + 20,
      end: start + duration - 20,
      name: 'authorize',
      service: 'bank',
      extra: { kind: 'client' },
      org,
    }),
  ];
  await recordSpans(db.sql, [
    ...checkout('c1', 1_000, 100),
    ...checkout('c2', 2_000, 200, true),
    ...checkout('c3', 3_000, 400),
    ...checkout('c4', 61_000, 800),
    ...checkout('other', 4_000, 5_000, true, ORG_B),
  ]);
});

describe('red_metrics', () => {
  it('counts requests, errors and duration percentiles per bucket, service and operation', async () => {
    const rows = await db.sql`
      select bucket_start, requests::int, errors::int, error_rate, p50_ms, p99_ms
        from api.red_metrics(${FROM}, ${TO}, 60, 'edge') where operation = 'POST /checkout'
       order by bucket_start`;
    expect(rows.map((r) => [(r.bucket_start as Date).toISOString(), r.requests, r.errors])).toEqual([
      [FROM, 4, 2],
      [at(60_000), 1, 0],
    ]);
    expect(rows[0]!.error_rate).toBe(0.5);
    expect(rows[1]!.p50_ms).toBe(800);
    // The first minute: 100, 200, 400 and the other tenant's 5,000 (admin, the owner here, sees all).
    expect(rows[0]!.p50_ms).toBe(300);
  });

  it('counts only entry spans: server or consumer, or roots', async () => {
    const services = await db.sql`select distinct service from api.red_metrics(${FROM}, ${TO}, 120) order by 1`;
    expect(services.map((r) => r.service)).toEqual(['edge', 'payments']);
  });

  it("a reader counts its organization's requests only", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rows = await actAs(
        tx,
        'tracegres_reader',
        ORG_A,
        () => tx`select requests::int, errors::int from api.red_metrics(${FROM}, ${TO}, 60, 'edge') order by bucket_start`,
      );
      expect(rows.map((r) => [r.requests, r.errors])).toEqual([
        [3, 1],
        [1, 0],
      ]);
    });
  });
});

describe('service_map', () => {
  it('gives caller and callee services with call and error counts', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rows = await actAs(
        tx,
        'tracegres_reader',
        ORG_A,
        () => tx`select parent_service, child_service, call_count::int, error_count::int from api.service_map(${FROM}, ${TO})`,
      );
      expect(rows.map((r) => [r.parent_service, r.child_service, r.call_count, r.error_count])).toEqual([
        ['edge', 'payments', 4, 1],
        ['payments', 'bank', 4, 0],
      ]);
    });
  });
});

describe('list_operations', () => {
  it('lists the services and operations of the window, for the tenant', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rows = await actAs(
        tx,
        'tracegres_reader',
        ORG_A,
        () => tx`select service, operation, span_count::int from api.list_operations(${FROM}, ${TO})`,
      );
      expect(rows.map((r) => [r.service, r.operation, r.span_count])).toEqual([
        ['bank', 'authorize', 4],
        ['edge', 'POST /checkout', 4],
        ['payments', 'charge', 4],
      ]);
    });
  });
});

describe('compare_traces', () => {
  it('puts two traces side by side per service and operation, largest self-time difference first', async () => {
    const rows = await db.sql`select * from api.compare_traces(${traceId('c1')}, ${traceId('c4')})`;
    expect(
      rows.map((r) => [r.service, r.operation, Number(r.count_a), Number(r.count_b), r.self_ms_a, r.self_ms_b, r.self_ms_difference]),
    ).toEqual([
      // bank: 60 → 760 ms; edge and payments keep their 20 ms of self time each.
      ['bank', 'authorize', 1, 1, 60, 760, 700],
      ['edge', 'POST /checkout', 1, 1, 20, 20, 0],
      ['payments', 'charge', 1, 1, 20, 20, 0],
    ]);
    expect(rows.every((r) => r.cut_at_limit_a === false && r.cut_at_limit_b === false)).toBe(true);
  });

  it('says which side was larger than the timeline reads (10,000 spans) and so compared only in part', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // 10,001 spans: a root and 10,000 children, one past the timeline's limit.
      await tx`
        select tracing.record_spans(jsonb_agg(jsonb_build_object(
          'trace_id', ${traceId('large')}::text, 'span_id', lpad(to_hex(i), 16, '0'),
          'parent_span_id', case when i > 1 then lpad(to_hex(1), 16, '0') end,
          'name', case when i = 1 then 'batch' else 'item' end, 'service', 'worker',
          'start_time', to_char((timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          'end_time', to_char((timestamptz '2025-03-01 12:00:00+00' + (i + 1) * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
        from generate_series(1, 10001) i`;
      const compared = async (a: string, b: string) =>
        (await tx`select * from api.compare_traces(${traceId(a)}, ${traceId(b)})`).map((r) => [
          r.service,
          r.operation,
          Number(r.count_a),
          Number(r.count_b),
          r.cut_at_limit_a,
          r.cut_at_limit_b,
        ]);
      // Only the first 9,999 items were compared, and every row says so
      // (the batch's 1 ms is nearly all covered by its first item).
      expect(await compared('c1', 'large')).toEqual([
        ['worker', 'item', 0, 9_999, false, true],
        ['bank', 'authorize', 1, 0, false, true],
        ['edge', 'POST /checkout', 1, 0, false, true],
        ['payments', 'charge', 1, 0, false, true],
        ['worker', 'batch', 0, 1, false, true],
      ]);
      expect((await compared('large', 'c1')).every(([, , , , a, b]) => a === true && b === false)).toBe(true);
      expect((await compared('large', 'large')).every(([, , , , a, b]) => a === true && b === true)).toBe(true);
    });
  });
});

describe('bad input', () => {
  it.each([
    ['a missing window', `select * from api.red_metrics(null, now())`, /p_from is required/],
    ['an empty window', `select * from api.service_map(now(), now() - interval '1 hour')`, /p_from must be before p_to/],
    ['a window over 7 days', `select * from api.service_map(now() - interval '8 days', now())`, /p_to must be at most 7 days after p_from/],
    ['too many buckets', `select * from api.red_metrics(now() - interval '1 day', now(), 1)`, /p_bucket_seconds must be at least 1/],
    ['a bad trace id', `select * from api.compare_traces('abc', 'def')`, /p_trace_a must be 32 lowercase hex/],
  ])('refuses %s with SQLSTATE 22023 naming the argument', async (_case, query, message) => {
    const error = await db.sql.unsafe(query).catch((e: { message: string; code: string }) => e);
    expect((error as { message: string }).message).toMatch(message);
    expect((error as { code: string }).code).toBe('22023');
  });
});
