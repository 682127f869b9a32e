// Retention's costs (issue: retention, archive and sampling):
//
//   archive throughput: tracing.archive_events moving ctx.events old events
//     to the monthly archive, against a naive mover (DELETE ... RETURNING
//     into INSERT, 50k rows a batch, into the same archive with its indexes
//     in place) on an identical copy of the database, as a ratio; and the
//     same batch mover into partitions that are already indexed (the
//     steady state, where indexes are maintained row by row), to show what
//     each half of the design buys;
//   inserts while archiving: p50/p99 of single-event inserts (one row per
//     transaction, 2 writers, as edge functions write) while a mover works,
//     against the same inserts with nothing moving just before, and the
//     mover's events/s meanwhile: the naive mover, and archive_events with
//     no pacing (retention_settings.batch_pause_ratio 0), the default pacing
//     and more, in rounds; archive_under_load sums up the default pacing
//     (the issue's target: p99 <= 2x idle at >= 2x the naive mover's
//     events/s under the same writers);
//   whole months: the same old events in a live table partitioned by month
//     as it is some months after the upgrade (one partition a month), where
//     tracing.archive_events moves each month older than the horizon to the
//     archive as a partition instead of moving its rows: events/s against
//     the naive mover, and the inserts' p99 while it works against idle.
import postgres from 'postgres';
import { withDatabase } from '../server/database/connection-strings.ts';
import { partitionEventsByMonth } from '../db/tests/helpers/monthly-partitions.ts';
import { summarize, type BenchContext } from './context.ts';

const NAIVE_BATCH = 50_000;
const WRITERS = 2;
const IDLE_SECONDS = 5;
// A pacing above the default, to show what more pause buys and costs.
const PAUSE_HIGH = 0.5;
// The inserts are measured in rounds, each taking every pacing in turn, so
// a change in the shared machine's load falls on all of them alike.
const ROUNDS = 3;

const COLUMNS = `id, stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at,
  processed_at, processing_error, correlation_id, session_id, trace_id, span_id, parent_span_id, trace_field_errors`;

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const seeded = await ctx.createDatabase();
  const seededName = new URL(seeded.url).pathname.slice(1);
  const copies: string[] = [];
  const admin = postgres(ctx.serverUrl, { max: 1, onnotice: () => {} });

  // A copy of the seeded database, so every mover starts from the same rows.
  const copy = async (label: string) => {
    const name = `${seededName}_${label}`;
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name} template ${seededName}`);
    copies.push(name);
    const url = withDatabase(ctx.serverUrl, name);
    return { url, sql: postgres(url, { max: 4, onnotice: () => {} }), name };
  };
  const drop = async (db: { sql: postgres.Sql; name: string }) => {
    await db.sql.end();
    await admin.unsafe(`drop database if exists ${db.name} with (force)`);
  };

  try {
    ctx.log(`retention: seeding ${ctx.events} events older than the 90-day horizon, and ${Math.ceil(ctx.events / 20)} recent ones`);
    await seed(seeded.sql, ctx.events);
    await seeded.sql.end();

    // 1. The naive mover, into an archive whose partitions (and indexes) exist.
    let db = await copy('naive');
    // retention_settings.batch_pause_ratio as migrated.
    const [pacing] = await db.sql<{ ratio: number }[]>`
      select (select column_default from information_schema.columns
               where table_schema = 'tracing' and table_name = 'retention_settings'
                 and column_name = 'batch_pause_ratio')::real as ratio`;
    await indexArchiveAhead(db.sql);
    await db.sql`checkpoint`;
    ctx.log('retention: naive DELETE ... RETURNING -> INSERT mover, 50k rows a batch');
    const naive = await naiveMover(db.sql);
    await drop(db);

    // 2. tracing.archive_events from scratch: new months loaded, then indexed.
    db = await copy('archive');
    await db.sql`checkpoint`;
    ctx.log('retention: tracing.archive_events');
    const archive = await archiveRun(db.sql);
    await drop(db);

    // 3. The same mover into partitions already indexed (the steady state).
    db = await copy('indexed');
    await indexArchiveAhead(db.sql);
    await db.sql`checkpoint`;
    ctx.log('retention: tracing.archive_events into indexed partitions');
    const indexed = await archiveRun(db.sql);
    await drop(db);

    // 3b. Whole months: the same events seeded into monthly live partitions.
    const monthly = await ctx.createDatabase();
    const monthlyName = new URL(monthly.url).pathname.slice(1);
    await partitionEventsByMonth(monthly.sql, 7, 2);
    await seed(monthly.sql, ctx.events);
    await monthly.sql.end();
    let wholeMonths: Record<string, unknown>;
    try {
      const months = async () => {
        const name = `${monthlyName}_months`;
        await admin.unsafe(`drop database if exists ${name} with (force)`);
        await admin.unsafe(`create database ${name} template ${monthlyName}`);
        copies.push(name);
        const url = withDatabase(ctx.serverUrl, name);
        return { url, sql: postgres(url, { max: 4, onnotice: () => {} }), name };
      };
      db = await months();
      await db.sql`checkpoint`;
      ctx.log('retention: tracing.archive_events over monthly live partitions (whole months moved)');
      const moved = await archiveRun(db.sql);
      const [details] = await db.sql`select details from tracing.retention_runs where operation = 'archive' order by id desc limit 1`;
      await drop(db);
      db = await months();
      const monthsDb = db;
      const underLoad = await insertsWhile(ctx, admin, db, 'archive_events (whole months)', () => archiveRun(monthsDb.sql));
      await drop(db);
      wholeMonths = {
        ...moved,
        partitions_moved: details!.details.partitions_moved ?? [],
        throughput_ratio: ratio(moved.events_per_s, naive.events_per_s),
        inserts: { p99_ratio: underLoad.p99_ratio, idle: underLoad.idle, while_working: underLoad.while_working },
      };
    } finally {
      await monthly.drop().catch(() => {});
    }

    // 4. Inserts idle, then while a mover works: the naive mover, and
    // archive_events unpaced (as before pacing), at the default pacing and
    // paced more; each on its own copy, its idle figures measured just
    // before, ROUNDS times in turn. Events/s are compared with the naive
    // mover's of the same round, under the same writers.
    type Figures = Awaited<ReturnType<typeof insertsWhile>>;
    const pauses = [0, pacing!.ratio, PAUSE_HIGH];
    const naiveRounds: Figures[] = [];
    const pacedRounds = new Map(pauses.map((pause) => [pause, [] as (Figures & { throughput_ratio: number })[]]));
    for (let round = 0; round < ROUNDS; round++) {
      db = await copy('inserts');
      await indexArchiveAhead(db.sql);
      const naiveDb = db;
      const naiveFigures = await insertsWhile(ctx, admin, db, 'the naive mover', () => naiveMover(naiveDb.sql));
      naiveRounds.push(naiveFigures);
      await drop(db);
      for (const pause of pauses) {
        db = await copy('inserts');
        await db.sql`update tracing.retention_settings set batch_pause_ratio = ${pause}`;
        const archiveDb = db;
        const figures = await insertsWhile(ctx, admin, db, `archive_events, batch_pause_ratio ${pause}`, () => archiveRun(archiveDb.sql));
        pacedRounds.get(pause)!.push({ ...figures, throughput_ratio: ratio(figures.mover.events_per_s, naiveFigures.mover.events_per_s) });
        await drop(db);
      }
    }
    const inserts: Record<string, unknown> = {
      writers: WRITERS,
      rounds: ROUNDS,
      naive_mover: { p99_ratio: spread(naiveRounds.map((r) => r.p99_ratio)), rounds: naiveRounds },
    };
    for (const [pause, results] of pacedRounds) {
      inserts[`batch_pause_ratio_${pause}`] = {
        p99_ratio: spread(results.map((r) => r.p99_ratio)),
        throughput_ratio: spread(results.map((r) => r.throughput_ratio)),
        rounds: results,
      };
    }
    const paced = pacedRounds.get(pacing!.ratio)!;

    return {
      old_events: archive.moved,
      archive_events: archive,
      naive_mover: naive,
      throughput_ratio: ratio(archive.events_per_s, naive.events_per_s),
      archive_events_into_indexed_partitions: { ...indexed, throughput_ratio: ratio(indexed.events_per_s, naive.events_per_s) },
      archive_events_whole_months: wholeMonths,
      // The target: insert p99 while archiving <= 2x idle, at >= 2x the naive mover's events/s.
      archive_under_load: {
        batch_pause_ratio: pacing!.ratio,
        insert_p99_ratio: spread(paced.map((r) => r.p99_ratio)),
        throughput_ratio: spread(paced.map((r) => r.throughput_ratio)),
      },
      inserts,
    };
  } finally {
    for (const name of copies) await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
    await admin.end();
    await seeded.drop().catch(() => {});
  }
}

// The event store's realistic shape (bench/event-store.ts): 5 events a
// request sharing a correlation and trace id, 8 requests a session, trace
// fields in the columns and the metadata. Old events span 100-160 days ago
// (three monthly partitions or so); a twentieth more are recent and stay.
async function seed(sql: postgres.Sql, events: number): Promise<void> {
  const recent = Math.ceil(events / 20);
  await sql.unsafe(`
    insert into tracing.domain_events
      (stream_type, stream_id, event_type, event_data, event_metadata, created_at,
       correlation_id, session_id, trace_id, span_id, parent_span_id)
    select 'order', (i / 5)::text,
           (array['order.placed', 'payment.captured', 'stock.reserved', 'email.queued', 'order.confirmed'])[1 + i % 5],
           jsonb_build_object('amount', i % 1000, 'currency', 'EUR'),
           jsonb_build_object('correlation_id', r.correlation_id, 'session_id', r.session_id,
             'trace_id', tracing.trace_id_to_hex(r.trace_id), 'span_id', tracing.span_id_to_hex(r.span_id),
             'parent_span_id', tracing.span_id_to_hex(r.parent_span_id), 'service', 'checkout'),
           case when i < ${events}
             then now() - interval '160 days' + (interval '60 days' / ${events}) * i
             else now() - interval '10 days' + (interval '9 days' / ${recent}) * (i - ${events}) end,
           r.correlation_id, r.session_id, r.trace_id, r.span_id, r.parent_span_id
      from generate_series(0, ${events + recent - 1}) as i
     cross join lateral (select
       md5('c' || (i / 5))::uuid as correlation_id,
       md5('s' || (i / 40))::uuid as session_id,
       md5('t' || (i / 5))::uuid as trace_id,
       ('x' || left(md5('p' || i), 16))::bit(64)::bigint as span_id,
       ('x' || left(md5('r' || (i / 5)), 16))::bit(64)::bigint as parent_span_id) as r`);
  await sql`vacuum analyze tracing.domain_events`;
}

/**
 * Single-event inserts idle for IDLE_SECONDS, then while `work` (a mover)
 * runs; the busy latencies also split by whether an archive index build was
 * in progress (pg_stat_progress_create_index, polled every 20 ms) when the
 * insert started.
 */
async function insertsWhile(
  ctx: BenchContext,
  admin: postgres.Sql,
  db: { url: string; sql: postgres.Sql; name: string },
  label: string,
  work: () => Promise<{ events_per_s: number; seconds: number; moved: number }>,
) {
  await db.sql`checkpoint`;
  ctx.log(`retention: single-event inserts, ${WRITERS} writers, idle for ${IDLE_SECONDS}s`);
  const idle = await insertLatencies(db.url, async () => {
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  });
  ctx.log(`retention: the same inserts while ${label} works`);
  let mover: Awaited<ReturnType<typeof work>> | undefined;
  const indexing: number[] = [];
  let polling = true;
  const poller = (async () => {
    for (; polling; await new Promise((r) => setTimeout(r, 20))) {
      const [row] = await admin`select count(*)::int as n from pg_stat_progress_create_index where datname = ${db.name}`;
      if (row!.n > 0) indexing.push(performance.now());
    }
  })();
  const busy = await insertLatencies(db.url, async () => {
    mover = await work();
  });
  polling = false;
  await poller;
  const building = (i: number) =>
    indexing.length > 0 && busy.startedAt[i]! >= indexing[0]! - 20 && busy.startedAt[i]! <= indexing.at(-1)! + 20;
  return {
    idle: summarize(idle),
    while_working: summarize(busy),
    while_moving_rows: summarize(busy.filter((_, i) => !building(i))),
    while_indexing: {
      ...summarize(busy.filter((_, i) => building(i))),
      seconds: round(((indexing.at(-1) ?? 0) - (indexing[0] ?? 0)) / 1000),
    },
    p99_ratio: ratio(summarize(busy).p99_ms, summarize(idle).p99_ms),
    mover: mover!,
  };
}

/** The archive's month partitions, created and indexed ahead (the naive mover's target, the steady state). */
async function indexArchiveAhead(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`
    select tracing.ensure_archive_partition(m), tracing.index_archive_partition(tracing.archive_partition_name(m))
      from (select distinct tracing.archive_month_start(created_at) as m from tracing.domain_events) as months`);
}

async function naiveMover(sql: postgres.Sql) {
  const started = performance.now();
  let moved = 0;
  let batches = 0;
  for (;;) {
    const result = await sql.unsafe(`
      with moved as (
        delete from tracing.domain_events
         where id in (select id from tracing.domain_events where created_at < now() - interval '90 days' limit ${NAIVE_BATCH})
        returning ${COLUMNS}
      )
      insert into tracing.domain_events_archive (${COLUMNS}) select ${COLUMNS} from moved`);
    if (result.count === 0) break;
    moved += result.count;
    batches++;
  }
  const seconds = (performance.now() - started) / 1000;
  return { moved, batches, batch_size: NAIVE_BATCH, seconds: round(seconds), events_per_s: Math.round(moved / seconds) };
}

async function archiveRun(sql: postgres.Sql) {
  const started = performance.now();
  const [result] = await sql`call tracing.archive_events()`;
  const seconds = (performance.now() - started) / 1000;
  const [runRow] =
    await sql`select batches, partitions_created, partitions_indexed from tracing.retention_runs where id = ${result!.run_id}`;
  const moved = Number(result!.events_moved);
  return {
    moved,
    batches: runRow!.batches as number,
    batch_size: 50_000,
    partitions_indexed_at_end: (runRow!.partitions_indexed as string[]).length,
    seconds: round(seconds),
    events_per_s: Math.round(moved / seconds),
  };
}

/** Latencies (ms) of single-event inserts by WRITERS writers for as long as `during` runs, and when each started. */
async function insertLatencies(url: string, during: () => Promise<void>): Promise<number[] & { startedAt: number[] }> {
  const startedAt: number[] = [];
  const latencies = Object.assign([] as number[], { startedAt });
  let going = true;
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      for (let i = 0; going; i++) {
        const started = performance.now();
        await sql`
          insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, event_metadata, correlation_id, session_id, trace_id, span_id)
          values ('order', ${`w${w}-${i}`}, 'order.placed', '{"amount": 1}', ${sql.json({ service: 'checkout' })},
                  gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), ${(i % 1_000_000) + 1 + w * 1_000_000})`;
        latencies.push(performance.now() - started);
        startedAt.push(started);
      }
    } finally {
      await sql.end();
    }
  });
  await new Promise((r) => setTimeout(r, 300)); // writers connected and warm
  latencies.length = 0;
  startedAt.length = 0;
  await during();
  going = false;
  await Promise.all(writers);
  return latencies;
}

/** The median and range of a figure over the rounds. */
function spread(values: number[]): { median: number; min: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted.at(-1)! };
}

function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
