// Retention for servers without pg_cron (the embedded Postgres of
// `npm start`): once a minute, ask the database whether retention is due
// (tracing.claim_retention_tick parses the stored cron schedule and returns
// true once per minute across all app instances, and never while a pg_cron
// job runs it), and if so run exactly what pg_cron would:
// `call tracing.run_retention()`; likewise the sampling decisions every
// minute (`call tracing.run_sampling()`, claimed by claim_sampling_tick).
//
// Failures are logged, never thrown: retention must not take the server down.
import type postgres from 'postgres';

export interface RetentionSchedulerOptions {
  log: (message: string) => void;
  /** The clock; tests pass a fake one to step through minutes. */
  now?: () => Date;
  /** Delay until the next check, in ms; default: the next minute boundary. */
  nextCheckInMs?: (now: Date) => number;
}

export interface RetentionScheduler {
  /** Resolves when the run in flight, if any, has stopped (it is cancelled). */
  stop(): Promise<void>;
  /** The passes in flight, if any (tests await them). */
  readonly running: Promise<void> | undefined;
}

const untilNextMinute = (now: Date) => 60_000 - (now.getTime() % 60_000) + 250;

export function startRetentionScheduler(sql: postgres.Sql, options: RetentionSchedulerOptions): RetentionScheduler {
  const { log } = options;
  const now = options.now ?? (() => new Date());
  const nextCheckInMs = options.nextCheckInMs ?? untilNextMinute;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let lastScheduler: string | undefined;

  const describe = async () => {
    const [row] = await sql`
      select tracing.retention_scheduler() as scheduler, s.schedule, s.pg_cron_job, c.loaded,
             case when s.schedule is not null then tracing.cron_next_run(s.schedule, ${now()}) end as next_run
        from tracing.retention_settings s, tracing.pg_cron_status() c`;
    if (!row || row.scheduler === lastScheduler) return;
    lastScheduler = row.scheduler;
    if (row.scheduler === 'pg_cron') {
      log(`retention: run by pg_cron (job ${row.pg_cron_job})`);
    } else if (row.scheduler === 'in_process') {
      log(
        `retention: runs here on "${row.schedule}" (UTC), next at ${(row.next_run as Date | null)?.toISOString() ?? 'never'}` +
          (row.loaded ? '; pg_cron is available: `npx tracegres retention schedule` hands it over' : ''),
      );
    } else {
      log('retention: not scheduled (`npx tracegres retention schedule` or run it by hand)');
    }
  };

  // The two jobs pg_cron would run (tracing.retention_cron_jobs), each
  // claimed per minute in the database and never overlapping itself here.
  const jobs = [
    {
      name: 'retention',
      claim: 'claim_retention_tick',
      call: 'call tracing.run_retention()',
      running: undefined as Promise<void> | undefined,
      pid: undefined as number | undefined,
    },
    {
      name: 'sampling',
      claim: 'claim_sampling_tick',
      call: 'call tracing.run_sampling()',
      running: undefined as Promise<void> | undefined,
      pid: undefined as number | undefined,
    },
  ];

  const runPass = async (job: (typeof jobs)[number]) => {
    const connection = await sql.reserve();
    try {
      const [{ pid }] = (await connection`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      job.pid = pid;
      const started = Date.now();
      // A reserved connection: the procedure COMMITs between batches and
      // holds a session-level lock, so it needs one session to itself.
      try {
        await connection.unsafe(job.call);
      } catch (error) {
        // The connection goes back to the pool: make sure it does not keep
        // a retention lock, whatever point the run failed at.
        await connection`select tracing.abandon_retention_runs(), pg_advisory_unlock_all()`.catch(() => {});
        throw error;
      }
      const runs = await connection`
        select operation, status, events_moved, events_dropped, spans_moved, spans_dropped, partitions_dropped, details from tracing.retention_runs
         where backend_pid = ${pid} and started_at >= ${new Date(started - 1000)} order by id`;
      // Sampling runs every minute; only say something when it did something.
      const quiet =
        job.name === 'sampling' && runs.every((r) => r.status === 'succeeded' && !r.details?.traces_kept && !r.details?.traces_dropped);
      if (!quiet) {
        log(
          `${job.name}: ${
            runs
              .map((r) =>
                r.operation === 'purge'
                  ? `purge ${r.status}, ${r.partitions_dropped.length} partitions dropped (${r.events_dropped} events), ${r.spans_dropped} archived spans dropped`
                  : r.operation === 'tail_sampling'
                    ? `sampling ${r.status}, ${r.details?.traces_kept ?? 0} traces kept, ${r.details?.traces_dropped ?? 0} dropped (${r.details?.spans_dropped ?? 0} spans), ${r.details?.traces_waiting ?? 0} waiting`
                    : `${r.operation} ${r.status}, ${r.events_moved} events and ${r.spans_moved} spans moved`,
              )
              .join('; ') || 'nothing ran'
          } in ${Date.now() - started} ms`,
        );
      }
    } finally {
      job.pid = undefined;
      connection.release();
    }
  };

  const tick = async () => {
    timer = undefined;
    if (stopped) return;
    try {
      await describe();
      for (const job of jobs) {
        if (job.running || stopped) continue;
        const [claim] = await sql.unsafe(`select tracing.${job.claim}($1) as due`, [now()]);
        // stop() may have come while the claim was on its way: a claimed
        // minute left unrun is run by the next instance's check.
        if (claim?.due && !stopped) {
          job.running = runPass(job)
            .catch((error: Error & { hint?: string }) =>
              log(`${job.name}: run failed: ${error.message}${error.hint ? ` (${error.hint})` : ''}`),
            )
            .finally(() => (job.running = undefined));
        }
      }
    } catch (error) {
      log(`retention: scheduler check failed: ${(error as Error).message}`);
    }
    if (!stopped) {
      timer = setTimeout(() => void (checking = tick()), nextCheckInMs(now()));
      // The scheduler alone never keeps the process alive.
      timer.unref();
    }
  };

  // The check in progress, so stop() can wait for it to finish deciding.
  let checking: Promise<void> | undefined = tick();

  return {
    get running() {
      const inFlight = jobs.map((j) => j.running).filter((p): p is Promise<void> => p !== undefined);
      return inFlight.length ? Promise.all(inFlight).then(() => undefined) : undefined;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await checking;
      for (const job of jobs) {
        if (job.running && job.pid !== undefined) {
          // Cancelling rolls back only the batch in flight; the next run
          // carries on from there.
          await sql`select pg_cancel_backend(${job.pid})`.catch(() => {});
        }
      }
      await Promise.all(jobs.map((j) => j.running));
    },
  };
}
