// What partitioning tracing.spans by month costs a lookup by trace id (it
// probes each month's index) and what it saves a time-bounded read (one
// month instead of the whole table): the same spans in the partitioned
// table and in an unpartitioned copy with the same indexes, read in turns
// in the same run, so the machine's load falls on both alike.
import { summarize, timeInTurns, type BenchSuite } from './context.ts';

const MONTHS = 6;
const SPANS_PER_TRACE = 10;
const LOOKUPS = 2000;
const WINDOW_READS = 40;

export const run: BenchSuite = async (ctx) => {
  const db = await ctx.createDatabase();
  const { sql } = db;
  try {
    const spans = Math.max(ctx.events, 10_000);
    const traces = Math.floor(spans / SPANS_PER_TRACE);
    const [from] = await sql`select (date_trunc('month', now(), 'UTC') + interval '1 month') as at`;
    const start = from!.at as Date;
    // The months ahead, made the way the archive run makes them.
    await sql`select tracing.ensure_live_partitions('tracing.spans', ${start}::timestamptz + ${`${MONTHS - 1} months`}::interval)`;
    ctx.log(`span partitions: ${spans} spans over ${MONTHS} months`);
    // Traces spread evenly over the months.
    await sql`
      insert into tracing.spans (trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status,
                                 attributes, organization_id)
      select md5('t' || t)::uuid, s, nullif(1, s), 'op ' || s, 'svc' || (t % 7), 'server',
             ${start}::timestamptz + (t * ${`${(MONTHS * 28 * 86400) / traces} seconds`}::interval) + s * interval '1 ms',
             ${start}::timestamptz + (t * ${`${(MONTHS * 28 * 86400) / traces} seconds`}::interval) + (s + 5) * interval '1 ms',
             'ok', jsonb_build_object('n', t), 'a0000000-0000-4000-8000-00000000000a'
        from generate_series(1, ${traces}) t, generate_series(1, ${SPANS_PER_TRACE}) s`;
    await sql`create table bench_spans_flat (like tracing.spans including all)`;
    await sql`
      insert into bench_spans_flat (trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status,
                                    attributes, organization_id, recorded_at)
      select trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status,
             attributes, organization_id, recorded_at
        from tracing.spans`;
    await sql`vacuum analyze tracing.spans`;
    await sql`vacuum analyze bench_spans_flat`;
    const [partitions] = await sql`
      select count(*)::int as n from pg_inherits where inhparent = 'tracing.spans'::regclass`;

    const ids = Array.from({ length: LOOKUPS }, () => `t${1 + Math.floor(Math.random() * traces)}`);
    const byId = await timeInTurns(LOOKUPS, async (table, i) => {
      const trace = ids[i]!;
      const rows =
        table === 'partitioned'
          ? await sql`select * from tracing.spans where trace_id = md5(${trace})::uuid`
          : await sql`select * from bench_spans_flat where trace_id = md5(${trace})::uuid`;
      if (rows.length !== SPANS_PER_TRACE) throw new Error(`trace ${trace}: ${rows.length} spans in ${table}`);
    });

    // One day's spans, somewhere in the third month.
    const days = Array.from({ length: WINDOW_READS }, () => 60 + Math.floor(Math.random() * 25));
    const window = await timeInTurns(WINDOW_READS, async (table, i) => {
      const day = days[i]!;
      if (table === 'partitioned') {
        await sql`select count(*) from tracing.spans
                   where start_time >= ${start}::timestamptz + ${`${day} days`}::interval
                     and start_time < ${start}::timestamptz + ${`${day + 1} days`}::interval`;
      } else {
        await sql`select count(*) from bench_spans_flat
                   where start_time >= ${start}::timestamptz + ${`${day} days`}::interval
                     and start_time < ${start}::timestamptz + ${`${day + 1} days`}::interval`;
      }
    });

    const ratio = (a: number[], b: number[]) => Math.round((summarize(a).p50_ms / summarize(b).p50_ms) * 100) / 100;
    return {
      spans,
      partitions: partitions!.n,
      trace_by_id_sql: {
        partitioned: summarize(byId.partitioned),
        unpartitioned: summarize(byId.unpartitioned),
        p50_ratio_partitioned_to_unpartitioned: ratio(byId.partitioned, byId.unpartitioned),
      },
      one_day_count: {
        partitioned: summarize(window.partitioned),
        unpartitioned: summarize(window.unpartitioned),
        p50_ratio_partitioned_to_unpartitioned: ratio(window.partitioned, window.unpartitioned),
      },
    };
  } finally {
    await db.drop();
  }
};
