// Retention for servers without pg_cron (the embedded Postgres of
// `npm start`): once a minute, ask the database whether retention is due
// (tracing.claim_retention_tick parses the stored cron schedule and returns
// true once per minute across all app instances, and never while a pg_cron
// job runs it), and if so run exactly what pg_cron would:
// `call tracing.run_retention()`.
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
  /** The pass in flight, if any (tests await it). */
  readonly running: Promise<void> | undefined;
}

const untilNextMinute = (now: Date) => 60_000 - (now.getTime() % 60_000) + 250;

export function startRetentionScheduler(sql: postgres.Sql, options: RetentionSchedulerOptions): RetentionScheduler {
  const { log } = options;
  const now = options.now ?? (() => new Date());
  const nextCheckInMs = options.nextCheckInMs ?? untilNextMinute;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let runningPid: number | undefined;
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

  const runPass = async () => {
    const connection = await sql.reserve();
    try {
      const [{ pid }] = (await connection`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      runningPid = pid;
      const started = Date.now();
      // A reserved connection: the procedure COMMITs between batches and
      // holds a session-level lock, so it needs one session to itself.
      try {
        await connection`call tracing.run_retention()`;
      } catch (error) {
        // The connection goes back to the pool: make sure it does not keep
        // the retention lock, whatever point the run failed at.
        await connection`select tracing.release_retention_lock()`.catch(() => {});
        throw error;
      }
      const runs = await connection`
        select operation, status, events_moved, events_dropped, partitions_dropped from tracing.retention_runs
         where backend_pid = ${pid} and started_at >= ${new Date(started - 1000)} order by id`;
      log(
        `retention: ${runs
          .map((r) =>
            r.operation === 'purge'
              ? `purge ${r.status}, ${r.partitions_dropped.length} partitions dropped (${r.events_dropped} events)`
              : `${r.operation} ${r.status}, ${r.events_moved} events moved`,
          )
          .join('; ') || 'nothing ran'} in ${Date.now() - started} ms`,
      );
    } finally {
      runningPid = undefined;
      connection.release();
    }
  };

  const tick = async () => {
    timer = undefined;
    if (stopped) return;
    try {
      await describe();
      if (!running) {
        const [claim] = await sql`select tracing.claim_retention_tick(${now()}) as due`;
        if (claim?.due) {
          running = runPass()
            .catch((error: Error & { hint?: string }) => log(`retention: run failed: ${error.message}${error.hint ? ` (${error.hint})` : ''}`))
            .finally(() => (running = undefined));
        }
      }
    } catch (error) {
      log(`retention: scheduler check failed: ${(error as Error).message}`);
    }
    if (!stopped) {
      timer = setTimeout(() => void tick(), nextCheckInMs(now()));
      // The scheduler alone never keeps the process alive.
      timer.unref();
    }
  };

  void tick();

  return {
    get running() {
      return running;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (running && runningPid !== undefined) {
        // Cancelling rolls back only the batch in flight; the next run
        // carries on from there.
        await sql`select pg_cancel_backend(${runningPid})`.catch(() => {});
      }
      await running;
    },
  };
}
