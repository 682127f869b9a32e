// Rate rules without pg_cron: once a minute, ask the database whether this
// minute's evaluation is ours (tracing.claim_alert_rate_tick: once per
// minute across all servers, never while a pg_cron job does it) and if so
// run exactly what pg_cron would, `select tracing.evaluate_rate_rules()`.
// Failures are logged, never thrown: alerts must not take the server down.
import type postgres from 'postgres';

export interface RateScheduler {
  /** One check: claims the minute and evaluates if due; returns the crossings found, or undefined when not due. */
  tick(): Promise<number | undefined>;
  stop(): Promise<void>;
}

export function startRateScheduler(
  sql: postgres.Sql,
  options: { log: (message: string) => void; intervalMs?: number; now?: () => Date },
): RateScheduler {
  const now = options.now ?? (() => new Date());
  let stopped = false;
  let checking: Promise<unknown> | undefined;

  async function tick(): Promise<number | undefined> {
    const [claim] = await sql`select tracing.claim_alert_rate_tick(${now()}) as due`;
    if (!claim?.due) return undefined;
    const [row] = await sql`select tracing.evaluate_rate_rules(${now()}) as crossings`;
    const crossings = Number(row!.crossings);
    if (crossings > 0) options.log(`rate rules: ${crossings} operations above their thresholds`);
    return crossings;
  }

  const timer = setInterval(() => {
    if (stopped || checking) return;
    checking = tick()
      .catch((error: Error) => options.log(`rate rules: evaluation failed: ${error.message}`))
      .finally(() => (checking = undefined));
  }, options.intervalMs ?? 15_000);
  // The scheduler alone never keeps the process alive.
  timer.unref();

  return {
    tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await checking;
    },
  };
}
