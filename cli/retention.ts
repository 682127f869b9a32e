// `tracegres retention run|status|schedule`: thin TypeScript around the SQL
// entry points of db/functions/retention*.sql. The work happens in the
// database; this file calls it, watches the run log from a second
// connection to show progress, and prints what happened.
import postgres from 'postgres';
import { withDatabase } from '../server/database/connection-strings.ts';
import { archiveProgressLine, bytes, count, duration, table } from './format.ts';

export interface Output {
  /** A line of the report. */
  line(text: string): void;
  /** A progress line; replaces the previous one on a terminal. */
  progress(text: string): void;
}

export function connect(url: string, applicationName: string): postgres.Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: applicationName },
    // Retention may hold its connection for a long time; no idle timeout.
    idle_timeout: 0,
  });
}

interface RunRow {
  id: string;
  operation: string;
  dry_run: boolean;
  status: string;
  started_at: Date;
  finished_at: Date | null;
  events_moved: string;
  events_dropped: string;
  spans_moved: string;
  spans_dropped: string;
  batches: number;
  blocks_done: string | null;
  blocks_total: string | null;
  partitions_created: string[];
  partitions_indexed: string[];
  partitions_dropped: string[];
  error: string | null;
  details: Record<string, unknown> | null;
}

export interface RunOptions {
  dryRun?: boolean;
  /** Postgres interval text, e.g. '30 days'; default: the settings. */
  olderThan?: string;
  batchSize?: number;
  /** How often to read progress, in ms. */
  pollMs?: number;
  /** Resolves when the caller wants the run stopped (Ctrl-C). */
  cancel?: Promise<unknown>;
}

export interface RunResult {
  ok: boolean;
  runs: RunRow[];
  error?: string;
}

/** `retention run`: one retention pass (what the schedule runs), with progress. */
export async function runRetention(url: string, out: Output, options: RunOptions = {}): Promise<RunResult> {
  const runner = connect(url, 'tracegres retention run');
  const watcher = connect(url, 'tracegres retention run (progress)');
  try {
    const [{ pid, since }] = (await runner`select pg_backend_pid() as pid, clock_timestamp() as since`) as unknown as [
      { pid: number; since: Date },
    ];
    let settled = false;
    let failure: { message: string; hint?: string } | undefined;
    const call = runner
      .unsafe('call tracing.run_retention($1, $2::interval, $3)', [
        options.dryRun ?? false,
        options.olderThan ?? null,
        options.batchSize ?? null,
      ])
      .catch((error: postgres.PostgresError | Error) => {
        failure = { message: error.message, hint: 'hint' in error ? error.hint : undefined };
      })
      .finally(() => (settled = true));
    options.cancel?.then(async () => {
      if (!settled) await watcher`select pg_cancel_backend(${pid})`.catch(() => {});
    });

    const runsSoFar = () =>
      watcher<RunRow[]>`
        select * from tracing.retention_run_status
         where backend_pid = ${pid} and started_at >= ${since} order by id`;
    while (!settled) {
      await Promise.race([call, new Promise((r) => setTimeout(r, options.pollMs ?? 500))]);
      if (settled) break;
      const current = (await runsSoFar()).filter((r) => r.status === 'running').at(-1);
      if (current?.operation === 'archive' && !current.dry_run && current.blocks_total !== null) {
        out.progress(
          archiveProgressLine({
            eventsMoved: Number(current.events_moved),
            blocksDone: Number(current.blocks_done ?? 0),
            blocksTotal: Number(current.blocks_total),
            elapsedMs: Date.now() - current.started_at.getTime(),
          }),
        );
      } else if (current) {
        out.progress(`${current.operation}${current.dry_run ? ' (dry run)' : ''}: running…`);
      }
    }
    await call;
    const runs = await runsSoFar();
    for (const line of summarize(runs)) out.line(line);
    if (failure) {
      out.line(`error: ${failure.message}`);
      if (failure.hint) out.line(`hint: ${failure.hint}`);
    }
    const ok = !failure && runs.every((r) => r.status === 'succeeded' || r.status === 'skipped');
    return { ok, runs, error: failure?.message };
  } finally {
    await Promise.all([runner.end({ timeout: 5 }), watcher.end({ timeout: 5 })]);
  }
}

function summarize(runs: RunRow[]): string[] {
  const lines: string[] = [];
  if (runs.length === 0) lines.push('nothing ran');
  for (const r of runs) {
    const took = duration((r.finished_at ?? new Date()).getTime() - r.started_at.getTime());
    const head = `${r.operation}${r.dry_run ? ' (dry run)' : ''} #${r.id}: ${r.status}`;
    if (r.status === 'skipped') {
      lines.push(`${head}: ${r.error}`);
      continue;
    }
    if (r.operation === 'archive' && r.dry_run) {
      const byMonth = (r.details?.events_by_month ?? {}) as Record<string, number>;
      lines.push(
        `${head}: ${count(r.events_moved)} events and ${count(r.spans_moved)} spans (${count(Number(r.details?.traces_to_move ?? 0))} traces) would move to the archive`,
      );
      for (const [partition, n] of Object.entries(byMonth).sort()) lines.push(`  ${partition}: ${count(n)}`);
      const toCreate = (r.details?.partitions_to_create ?? []) as string[];
      if (toCreate.length) lines.push(`  partitions to create: ${toCreate.sort().join(', ')}`);
    } else if (r.operation === 'archive') {
      const seconds = ((r.finished_at ?? new Date()).getTime() - r.started_at.getTime()) / 1000;
      lines.push(
        `${head}: ${count(r.events_moved)} events and ${count(r.spans_moved)} spans moved in ${took} (${count(Math.round(Number(r.events_moved) / Math.max(seconds, 0.001)))} events/s, ${r.batches} batches)`,
      );
      if (r.partitions_created.length) lines.push(`  partitions created: ${r.partitions_created.join(', ')}`);
      if (r.partitions_indexed.length) lines.push(`  partitions indexed: ${r.partitions_indexed.join(', ')}`);
    } else if (r.operation === 'purge' && r.dry_run) {
      const planned = (r.details?.partitions_to_drop ?? []) as Array<{ partition: string; events: number }>;
      lines.push(
        `${head}: ${planned.length} partitions (${count(r.events_dropped)} events) and ${count(r.spans_dropped)} archived spans would be dropped`,
      );
      for (const p of planned) lines.push(`  ${p.partition}: ${count(p.events)}`);
    } else if (r.operation === 'purge') {
      lines.push(
        `${head}: ${r.partitions_dropped.length} partitions dropped (${count(r.events_dropped)} events) and ${count(r.spans_dropped)} archived spans in ${took}`,
      );
      if (r.partitions_dropped.length) lines.push(`  dropped: ${r.partitions_dropped.join(', ')}`);
    } else {
      lines.push(`${head}: ${count(r.events_moved)} events and ${count(r.spans_moved)} spans in ${took}`);
    }
    if (r.error) lines.push(`  error: ${r.error}`);
  }
  return lines;
}

/** `retention status`: settings, schedule, runs in progress and recent, the archive. */
export async function retentionStatus(url: string, out: Output): Promise<void> {
  const sql = connect(url, 'tracegres retention status');
  try {
    const [s] = await sql`
      select s.*, tracing.retention_scheduler() as scheduler, c.loaded, c.cron_database, c.installed_here,
             case when s.schedule is not null then tracing.cron_next_run(s.schedule, now()) end as next_run,
             current_database() as database, now() - s.archive_after as horizon
        from tracing.retention_settings s, tracing.pg_cron_status() c`;
    if (!s) throw new Error('tracing.retention_settings is empty; run the migrations');
    out.line(`database ${s.database}`);
    out.line(
      `archive events older than ${s.archive_after} (now: created before ${iso(s.horizon)}), in batches of ${count(s.batch_size)}; partitions ${s.months_ahead} months ahead`,
    );
    out.line(s.purge_after ? `purge archive months older than ${s.purge_after}` : 'purge off (retention_settings.purge_after is null)');
    const scheduler =
      s.scheduler === 'pg_cron'
        ? `pg_cron job ${s.pg_cron_job} (database ${s.cron_database ?? s.database})`
        : s.scheduler === 'in_process'
          ? `the tracegres server (npm start), since ${s.loaded ? 'no pg_cron job is registered' : 'pg_cron is not installed'}`
          : 'nobody: retention is not scheduled';
    out.line(`schedule ${s.schedule ? `"${s.schedule}" (UTC), next ${iso(s.next_run)}` : 'none'}; run by ${scheduler}`);

    // domain_events is partitioned by month: its rows and bytes are its partitions'.
    const [live] = await sql`
      select coalesce(sum(coalesce(t.n_live_tup, greatest(c.reltuples, 0))), 0)::bigint as estimated,
             coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint as bytes
        from pg_partition_tree('tracing.domain_events') p
        join pg_class c on c.oid = p.relid
        left join pg_stat_user_tables t on t.relid = c.oid
       where p.isleaf`;
    const [pins] = await sql`select count(*) as n, min(keep_until) as first_expiry from tracing.restored_events where keep_until > now()`;
    out.line(`live table ~${count(live!.estimated)} events, ${bytes(live!.bytes)}; ${count(pins!.n)} restored events kept live`);

    const [sampling] = await sql`
      select e.environment, e.rate::text as rate, e.honor_forced, e.tail_window, e.tail_latency_ms,
             (select count(*) from tracing.sampling_overrides o where o.environment = e.environment) as overrides,
             (select max(started_at) from tracing.retention_runs where operation = 'tail_sampling') as last_run
        from tracing.sampling_settings s join tracing.sampling_environments e using (environment)`;
    if (sampling) {
      out.line(
        `sampling: environment ${sampling.environment}, ${Math.round(Number(sampling.rate) * 1e6) / 1e4}% of traces kept up front` +
          ` (${count(sampling.overrides)} overrides), forcing ${sampling.honor_forced ? 'allowed' : 'ignored'},` +
          ` tail window ${sampling.tail_window ?? 'none'}${sampling.tail_latency_ms ? `, traces slower than ${sampling.tail_latency_ms} ms kept` : ''};` +
          ` last decided ${iso(sampling.last_run)}`,
      );
    }

    // Sampling runs every minute; its runs would crowd out the rest here.
    const runs = await sql<
      RunRow[]
    >`select * from tracing.retention_run_status where operation <> 'tail_sampling' order by id desc limit 10`;
    out.line('');
    out.line(runs.length ? 'recent runs (newest first):' : 'no runs yet');
    if (runs.length) {
      out.line(
        table([
          ['id', 'operation', 'status', 'started', 'took', 'events', 'spans', 'partitions', 'error'],
          ...runs.map((r) => [
            String(r.id),
            r.operation + (r.dry_run ? ' (dry)' : ''),
            r.status,
            iso(r.started_at),
            r.finished_at ? duration(r.finished_at.getTime() - r.started_at.getTime()) : r.status === 'running' ? 'running' : '-',
            count(r.operation === 'purge' ? r.events_dropped : r.events_moved),
            count(r.operation === 'purge' ? r.spans_dropped : r.spans_moved),
            `+${r.partitions_created.length} -${r.partitions_dropped.length}`,
            r.error ?? '',
          ]),
        ]).join('\n'),
      );
      for (const r of runs.filter((x) => x.status === 'running' && x.operation === 'archive' && x.blocks_total !== null)) {
        out.line(
          `run #${r.id} in progress: ` +
            archiveProgressLine({
              eventsMoved: Number(r.events_moved),
              blocksDone: Number(r.blocks_done ?? 0),
              blocksTotal: Number(r.blocks_total),
              elapsedMs: Date.now() - r.started_at.getTime(),
            }),
        );
      }
    }

    const partitions = await sql`select * from tracing.archive_partitions order by from_at`;
    out.line('');
    out.line(partitions.length ? 'archive partitions:' : 'the archive has no partitions yet');
    if (partitions.length) {
      out.line(
        table([
          ['partition', 'from', 'to', '~events', 'size', 'indexed'],
          ...partitions.map((p) => [
            p.partition,
            iso(p.from_at).slice(0, 10),
            iso(p.to_at).slice(0, 10),
            count(p.estimated_events),
            bytes(p.total_bytes),
            p.indexed ? 'yes' : Number(p.total_bytes) > 8192 ? 'no (next run indexes it)' : 'empty',
          ]),
        ]).join('\n'),
      );
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export interface ScheduleOptions {
  /** Cron expression (UTC); default: the one stored, else '17 3 * * *'. */
  cron?: string;
  /** Remove the schedule (and the pg_cron job). */
  off?: boolean;
  /** Without pg_cron, let `npm start` run retention on this schedule. */
  inProcess?: boolean;
  dryRun?: boolean;
}

export interface ScheduleResult {
  scheduler: 'pg_cron' | 'in_process' | 'off';
  jobName?: string;
  cronDatabase?: string;
  cron?: string;
}

/**
 * `retention schedule`: registers `call tracing.run_retention()` with pg_cron.
 * When pg_cron keeps its jobs in another database of the server (its
 * cron.database_name), the SQL function cannot reach it, so this connects
 * there and uses cron.schedule_in_database to run the job in this database.
 */
export async function scheduleRetention(url: string, out: Output, options: ScheduleOptions): Promise<ScheduleResult> {
  const app = connect(url, 'tracegres retention schedule');
  let cronSql: postgres.Sql | undefined;
  try {
    const [info] = await app`
      select c.loaded, c.cron_database, c.installed_here, s.schedule, s.pg_cron_job,
             tracing.retention_job_name() as job, tracing.retention_job_command() as command, current_database() as database
        from tracing.pg_cron_status() c, tracing.retention_settings s`;
    if (!info) throw new Error('tracing.retention_settings is empty; run the migrations');
    const elsewhere = info.loaded && !info.installed_here;
    const openCronDatabase = async () => {
      cronSql = connect(withDatabase(url, info.cron_database), 'tracegres retention schedule');
      const [ext] = await cronSql`select to_regprocedure('cron.schedule_in_database(text,text,text,text,text,boolean)') is not null as ok`;
      if (!ext?.ok) {
        throw new Error(
          `pg_cron is loaded but its extension is not created in database "${info.cron_database}" (or is older than 1.4): run \`create extension pg_cron;\` there`,
        );
      }
      return cronSql;
    };
    // Says what it would do on a dry run, does it and says it did otherwise.
    const act = async (verb: 'register' | 'remove' | 'let', what: string, action: () => Promise<unknown>) => {
      if (options.dryRun) {
        out.line(`dry run: would ${verb} ${what}`);
      } else {
        await action();
        out.line(`${{ register: 'registered', remove: 'removed', let: 'now letting' }[verb]} ${what}`);
      }
    };

    if (options.off) {
      if (info.pg_cron_job && elsewhere) {
        const cron = await openCronDatabase();
        const names = (await app`select job_name from tracing.retention_cron_jobs(null)`).map((j) => j.job_name as string);
        await act('remove', `pg_cron jobs ${names.join(', ')} from database ${info.cron_database}`, async () => {
          await cron`select cron.unschedule(jobid) from cron.job where jobname in ${cron(names)}`;
          await app`select tracing.note_retention_schedule(null, null)`;
        });
      } else {
        await act('remove', 'the retention schedule', () => app`select tracing.unschedule_retention()`);
      }
      return { scheduler: 'off' };
    }

    const [checked] = await app`select tracing.check_cron_expression(${options.cron ?? info.schedule ?? '17 3 * * *'}) as cron`;
    const cron = checked!.cron as string;
    const [{ next }] = (await app`select tracing.cron_next_run(${cron}, now()) as next`) as unknown as [{ next: Date | null }];
    const when = `"${cron}" (UTC, next ${iso(next)})`;

    const jobs = (await app`select * from tracing.retention_cron_jobs(${cron})`) as unknown as Array<{
      job_name: string;
      schedule: string;
      command: string;
    }>;
    const describeJobs = (where: string) =>
      jobs.map((j) => `${j.job_name}${where}: ${j.command} at ${j.schedule === cron ? when : `"${j.schedule}"`}`).join('; ');
    if (info.installed_here) {
      await act('register', `pg_cron jobs ${describeJobs('')}`, () => app`select tracing.schedule_retention(${cron})`);
      return { scheduler: 'pg_cron', jobName: info.job, cronDatabase: info.database, cron };
    }
    if (elsewhere && !options.inProcess) {
      const cronDb = await openCronDatabase();
      await act('register', `pg_cron jobs in database ${info.cron_database} ${describeJobs(` (in ${info.database})`)}`, async () => {
        for (const j of jobs) {
          // Upserted by name: scheduling again replaces the jobs.
          await cronDb`select cron.schedule_in_database(${j.job_name}, ${j.schedule}, ${j.command}, ${info.database})`;
        }
        await app`select tracing.note_retention_schedule(${cron}, ${info.job})`;
      });
      return { scheduler: 'pg_cron', jobName: info.job, cronDatabase: info.cron_database, cron };
    }
    if (options.inProcess) {
      await act(
        'let',
        `the tracegres server (npm start) run ${info.command} at ${when}, and sampling every minute`,
        () => app`select tracing.schedule_retention(${cron}, p_in_process => true)`,
      );
      return { scheduler: 'in_process', cron };
    }
    // No pg_cron: the SQL function raises the explanation (with how to
    // install it, and the --in-process alternative).
    if (options.dryRun) {
      out.line('dry run: pg_cron is not installed on this server; would fail (use --in-process to let npm start run it)');
      return { scheduler: 'off', cron };
    }
    await app`select tracing.schedule_retention(${cron})`;
    return { scheduler: 'pg_cron', cron };
  } finally {
    await app.end({ timeout: 5 });
    await cronSql?.end({ timeout: 5 });
  }
}

function iso(value: unknown): string {
  if (!(value instanceof Date)) return value === null || value === undefined ? '-' : String(value);
  return value
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}
