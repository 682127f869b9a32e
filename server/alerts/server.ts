// Alerts in `npm start`: the delivery loop, and the rate rules' schedule
// (registered with pg_cron when this database has it, otherwise run here).
import postgres from 'postgres';
import { readAlertConfig } from './config.ts';
import { createAlertDelivery, type AlertDelivery } from './delivery-loop.ts';
import { startRateScheduler, type RateScheduler } from './rate-scheduler.ts';

export interface AlertParts {
  delivery: AlertDelivery;
  stop(): Promise<void>;
}

export async function startAlerts(options: {
  databaseUrl: string;
  /** The dashboard's own URL, for trace links when TRACEGRES_ALERTS_DASHBOARD_URL is unset. */
  dashboardUrl: string;
  log: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}): Promise<AlertParts> {
  const config = readAlertConfig(options.env ?? process.env, options.dashboardUrl);
  const log = (message: string) => options.log(`alerts: ${message}`);
  // The loop holds one connection for a batch and one for LISTEN.
  const sql = postgres(options.databaseUrl, { max: 3, onnotice: () => {} });
  const delivery = createAlertDelivery(sql, config, { log });
  let rates: RateScheduler | undefined;
  try {
    const [scheduled] = await sql`select tracing.schedule_alert_rates() as how, tracing.alert_rates_scheduler() as scheduler`;
    log(`rate rules: ${scheduled!.how}`);
    if (scheduled!.scheduler === 'in_process') rates = startRateScheduler(sql, { log });
    if (!config.smtpUrl) log('email: off (TRACEGRES_SMTP_URL sets the SMTP server)');
    await delivery.start();
  } catch (error) {
    await rates?.stop();
    await sql.end();
    throw error;
  }
  return {
    delivery,
    async stop() {
      await rates?.stop();
      await delivery.stop();
      await sql.end();
    },
  };
}
