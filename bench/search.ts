// Search (issue: find any trace by what you know): p50/p99 in SQL of
// api.find_traces and the metrics over a 1-hour window of a day of traffic,
// as a reader of one tenant would run them (row-level security on).
//
// The spans: ctx.events / 10 traces of 10 spans over the last 24 hours, one
// in 50 failed, each with an order id and an HTTP status; each trace also
// has two events of its order aggregate, whose orderId is a declared search
// key. Then what the search indexes cost ingest (search-ingest-cost.ts),
// and their sizes on this data.
import type postgres from 'postgres';
import { summarize, type BenchContext } from './context.ts';
import { DECLARED_KEY, measureIngestCost, SEARCH_INDEXES } from './search-ingest-cost.ts';

export const ORG = '0a000000-0000-4000-8000-000000000002';
export const SPANS_PER_TRACE = 10;
const SERVICES = ['edge', 'checkout', 'payments', 'stock', 'mail'];

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const db = await ctx.createDatabase();
  const { sql } = db;
  const figures: Record<string, unknown> = {};
  try {
    const traces = Math.max(1000, Math.floor(ctx.events / SPANS_PER_TRACE));
    ctx.log(`seeding ${traces} traces of ${SPANS_PER_TRACE} spans over 24 hours`);
    await seedTraces(sql, traces);
    await sql.unsafe(`
      insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at)
      select 'order', 'ord-' || t, e, jsonb_build_object('orderId', 'ord-' || t),
             jsonb_build_object('trace_id', md5('t' || t), 'span_id', left(md5('s' || t || '-0'), 16)), '${ORG}',
             now() - interval '24 hours' + (t::double precision / ${traces}) * interval '24 hours'
        from generate_series(0, ${traces - 1}) t, unnest(array['order.placed', 'order.paid']) e`);
    const [{ declared_index }] = (await sql`select tracing.add_search_key(${DECLARED_KEY}) as declared_index`) as unknown as [
      { declared_index: string },
    ];
    await sql.unsafe('vacuum analyze tracing.spans, tracing.trace_summaries, tracing.domain_events');

    // A window one hour long, half a day back.
    const [{ from, to }] = (await sql`select now() - interval '12 hours' as from, now() - interval '11 hours' as to`) as unknown as [
      { from: Date; to: Date },
    ];
    const window = { from: from.toISOString(), to: to.toISOString() };
    const target = Math.floor(traces / 2);

    const time = (label: string, query: (tx: postgres.TransactionSql) => Promise<unknown>, samples = 30) =>
      measure(ctx, sql, label, query, samples);
    const find = (traces: unknown) => (tx: postgres.TransactionSql) =>
      tx`select count(*) from api.find_traces(${tx.json({ ...window, traces } as never)}::jsonb, 20)`;

    Object.assign(figures, {
      spans: traces * SPANS_PER_TRACE,
      events: traces * 2,
      // What any query costs here: the transaction, the reader's settings
      // and a round trip, on the same connections (the floor under the
      // business-key figures).
      round_trip_floor: await time('round trip floor', (tx) => tx`select 1`),
      one_attribute: {
        ...(await time('one attribute', find({ spans: { attribute: 'http.status_code', op: '=', value: 502 } }))),
        target_p99_ms: 50,
      },
      two_attributes_and_duration: {
        ...(await time(
          'two attributes and a duration',
          find({
            spans: {
              and: [
                { attribute: 'http.status_code', op: '=', value: 502 },
                { attribute: 'order.id', op: '=~', value: '^ord-' },
                { field: 'duration_ms', op: '>', value: 100 },
              ],
            },
          }),
        )),
        target_p99_ms: 100,
      },
      structural: {
        ...(await time(
          'structural',
          find({
            relation: 'descendant',
            left: { field: 'name', op: '=', value: 'POST /checkout' },
            right: { field: 'status', op: '=', value: 'error' },
          }),
        )),
        target_p99_ms: 200,
      },
      business_key: {
        ...(await time(
          'business key',
          (tx) =>
            tx`select count(*) from api.find_traces(${tx.json({ from: new Date(Date.now() - 86_400_000 * 2).toISOString(), to: new Date().toISOString(), traces: { events: { stream_type: 'order', stream_id: `ord-${target}` } } } as never)}::jsonb, 20)`,
        )),
        target_p99_ms: 5,
      },
      business_key_declared_data: {
        ...(await time(
          'business key by a declared event_data key',
          (tx) =>
            tx`select count(*) from api.find_traces(${tx.json({ from: new Date(Date.now() - 86_400_000 * 2).toISOString(), to: new Date().toISOString(), traces: { events: { data: { key: DECLARED_KEY, value: `ord-${target}` } } } } as never)}::jsonb, 20)`,
        )),
        target_p99_ms: 5,
      },
      red_metrics_one_service: {
        ...(await time('RED metrics', (tx) => tx`select count(*) from api.red_metrics(${from}, ${to}, 60, 'edge')`, 10)),
        target_ms: 200,
      },
      service_map: {
        ...(await time('service map', (tx) => tx`select count(*) from api.service_map(${from}, ${to})`, 10)),
        target_ms: 500,
      },
    });
    const sizes = await sql<Array<{ index: string; bytes: string }>>`
      select c.relname as index, pg_relation_size(c.oid)::text as bytes
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'tracing' and c.relname = any(${[...SEARCH_INDEXES, declared_index]})
       order by 1`;
    const [table] = await sql<Array<{ bytes: string }>>`select pg_table_size('tracing.domain_events')::text as bytes`;
    figures.search_index_sizes = {
      ...Object.fromEntries(sizes.map((r) => [r.index, { mb: mb(r.bytes) }])),
      domain_events_table_mb: mb(table!.bytes),
    };
  } finally {
    await db.drop();
  }
  ctx.log('search: what the search indexes cost ingest');
  figures.ingest_cost = await measureIngestCost(ctx);
  return figures;
}

const mb = (bytes: string) => Math.round((Number(bytes) / 1024 / 1024) * 10) / 10;

/**
 * Records `traces` traces of 10 spans of organization ORG over the last 24
 * hours, one in 50 failed, each with an order id and an HTTP status (the
 * search suite's data, which the tempo suite reads too).
 */
export async function seedTraces(sql: postgres.Sql, traces: number): Promise<void> {
  for (let from = 0; from < traces; from += 1000) {
    await sql.unsafe(
      `select tracing.record_spans(jsonb_agg(jsonb_build_object(
         'trace_id', md5('t' || t), 'span_id', left(md5('s' || t || '-' || s), 16),
         'parent_span_id', case when s = 0 then null else left(md5('s' || t || '-' || ((s - 1) / 3)), 16) end,
         'name', case when s = 0 then 'POST /checkout' else 'op-' || s end,
         'service', (array['${SERVICES.join("','")}'])[1 + s % 5],
         'kind', case when s % 5 = 0 then 'server' else 'internal' end,
         'status', case when s = 4 and t % 50 = 0 then 'error' else 'ok' end,
         'start_time', now() - interval '24 hours' + (t::double precision / $1) * interval '24 hours' + s * interval '3 ms',
         'end_time', now() - interval '24 hours' + (t::double precision / $1) * interval '24 hours' + (s * 3 + 40 + t % 400) * interval '1 ms',
         'attributes', jsonb_build_object('order.id', 'ord-' || t, 'http.status_code', case when t % 50 = 0 then 502 else 200 end),
         'organization_id', '${ORG}')))
       from generate_series($2::int, $3::int) t, generate_series(0, ${SPANS_PER_TRACE - 1}) s`,
      [traces, from, Math.min(traces, from + 1000) - 1],
    );
  }
}

/** Runs `query` as a reader of ORG, `samples` times after 3 warm-ups; durations as the client sees them. */
async function measure(
  ctx: BenchContext,
  sql: postgres.Sql,
  label: string,
  query: (tx: postgres.TransactionSql) => Promise<unknown>,
  samples: number,
) {
  ctx.log(`search: ${label}`);
  const durations: number[] = [];
  for (let i = 0; i < samples + 3; i++) {
    const started = performance.now();
    await sql.begin(async (tx) => {
      await tx`select set_config('role', 'tracegres_reader', true), set_config('jwt.claims.organization_id', ${ORG}, true)`;
      await query(tx);
    });
    if (i >= 3) durations.push(performance.now() - started);
  }
  return summarize(durations);
}
