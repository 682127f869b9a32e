// What partitioning tracing.domain_events by month costs a lookup by
// correlation, session or trace id (it probes each month's index) and what
// it saves a time-bounded read (a count over one day reads one month): the same events in the partitioned table, laid out a partition a
// month, and in an unpartitioned copy with the same indexes, read in turns
// in the same run, so the machine's load falls on both alike.
import { partitionEventsByMonth } from '../db/tests/helpers/monthly-partitions.ts';
import { summarize, timeInTurns, type BenchSuite } from './context.ts';

const MONTHS_BACK = 6;
const EVENTS_PER_REQUEST = 5;
const LOOKUPS = 2000;
const WINDOW_READS = 40;

export const run: BenchSuite = async (ctx) => {
  const db = await ctx.createDatabase();
  const { sql } = db;
  try {
    const events = Math.max(ctx.events, 10_000);
    const requests = Math.floor(events / EVENTS_PER_REQUEST);
    await partitionEventsByMonth(sql, MONTHS_BACK, 2);
    ctx.log(`event partitions: ${events} events over ${MONTHS_BACK} months`);
    // Requests of 5 events spread evenly over the months, 8 requests a
    // session, a hundredth failed.
    await sql`
      insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at,
                                         correlation_id, session_id, trace_id, processing_error)
      select 'order', (i / ${EVENTS_PER_REQUEST})::text, 'order.placed', '{}',
             now() - ${`${MONTHS_BACK * 30} days`}::interval + (i / ${EVENTS_PER_REQUEST}) * ${`${(MONTHS_BACK * 30 * 86400) / requests} seconds`}::interval,
             md5('c' || (i / ${EVENTS_PER_REQUEST}))::uuid, md5('s' || (i / ${EVENTS_PER_REQUEST * 8}))::uuid,
             md5('t' || (i / ${EVENTS_PER_REQUEST}))::uuid, case when i % 100 = 0 then 'declined' end
        from generate_series(0, ${events - 1}) as i`;
    await sql`create table bench_events_flat (like tracing.domain_events including all)`;
    await sql`insert into bench_events_flat select * from tracing.domain_events`;
    await sql`vacuum analyze tracing.domain_events`;
    await sql`vacuum analyze bench_events_flat`;
    const [partitions] = await sql`select count(*)::int as n from pg_inherits where inhparent = 'tracing.domain_events'::regclass`;

    const figures: Record<string, unknown> = {};
    for (const [lookup, key, per] of [
      ['correlation_id', 'c', EVENTS_PER_REQUEST],
      ['session_id', 's', EVENTS_PER_REQUEST * 8],
      ['trace_id', 't', EVENTS_PER_REQUEST],
    ] as const) {
      const ids = Array.from({ length: LOOKUPS }, () => `${key}${Math.floor((Math.random() * events) / per)}`);
      const times = await timeInTurns(LOOKUPS, async (table, i) => {
        const relation = table === 'partitioned' ? 'tracing.domain_events' : 'bench_events_flat';
        const rows = await sql.unsafe(
          `select id, created_at from ${relation} where ${lookup} = md5($1)::uuid order by created_at desc limit 50`,
          [ids[i]!],
        );
        if (rows.length === 0) throw new Error(`${lookup} ${ids[i]}: nothing in ${table}`);
      });
      figures[`by_${lookup}`] = lookupFigures(times);
    }

    // The events of one day, somewhere in the third month back.
    const window = await timeInTurns(WINDOW_READS, (table, i) =>
      sql.unsafe(
        `select count(*), count(distinct correlation_id) from ${table === 'partitioned' ? 'tracing.domain_events' : 'bench_events_flat'}
          where created_at >= now() - make_interval(days => $1) and created_at < now() - make_interval(days => $1 - 1)`,
        [60 + (i % 20)],
      ),
    );
    figures.one_day_count = lookupFigures(window);
    return { events, partitions: partitions!.n, lookups: LOOKUPS, ...figures };
  } finally {
    await db.drop();
  }
};

function lookupFigures(times: { partitioned: number[]; unpartitioned: number[] }) {
  const partitioned = summarize(times.partitioned);
  const unpartitioned = summarize(times.unpartitioned);
  return {
    partitioned,
    unpartitioned,
    p50_ratio: Math.round((partitioned.p50_ms / unpartitioned.p50_ms) * 100) / 100,
    p99_ratio: Math.round((partitioned.p99_ms / unpartitioned.p99_ms) * 100) / 100,
  };
}
