// Alerts as `npm start` runs them: the delivery loop delivers a failed
// event's alert, the rate rules are scheduled in process (no pg_cron in the
// test database), and the evaluation they run raises a rate alert that is
// delivered too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEvent, ORG_A, recordSpans, span } from '../../db/tests/helpers/trace-fixtures.ts';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { startAlerts, type AlertParts } from './server.ts';
import { startHttpReceiver, type HttpReceiver } from './test-receivers.ts';

const db = useTestDatabase();
let http: HttpReceiver;
let alerts: AlertParts | undefined;
const logs: string[] = [];

beforeAll(async () => {
  http = await startHttpReceiver();
});
afterAll(async () => {
  await alerts?.stop();
  await http?.close();
});

async function waitFor<T>(what: string, check: () => T | undefined): Promise<T> {
  const until = Date.now() + 10_000;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; log: ${logs.join(' | ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('alerts in the server', () => {
  it('deliver event alerts and schedule the rate rules here when the database has no pg_cron', async () => {
    await db.sql`
      insert into tracing.alert_rules (organization_id, name, kind, event_type_pattern, channel, target)
      values (${ORG_A}, 'payments', 'event', 'payment.*', 'webhook', ${`${http.url}/events`})`;
    await db.sql`
      insert into tracing.alert_rules (organization_id, name, kind, service, metric, threshold, window_seconds, channel, target)
      values (${ORG_A}, 'errors', 'rate', 'edge', 'error_rate', 0.4, 86400, 'slack', ${`${http.url}/rates`})`;
    alerts = await startAlerts({
      databaseUrl: db.url,
      dashboardUrl: 'http://127.0.0.1:5678',
      log: (m) => logs.push(m),
      // The receiver listens on 127.0.0.1.
      env: { TRACEGRES_ALERTS_POLL_MS: '100', TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS: 'true' },
    });
    expect(logs).toContain('alerts: rate rules: no pg_cron in this database: the tracegres server evaluates the rate rules every minute');
    await insertEvent(db.sql, { at: 0, type: 'payment.declined', error: 'card declined' });
    const event = await waitFor('the event alert', () => http.requests.find((r) => r.path === '/events'));
    expect(JSON.parse(event.body).alert.details.error).toBe('card declined');

    // A failing operation in the last day, evaluated by the scheduler's tick.
    const now = Date.now();
    const minutesAgo = (m: number) => new Date(now - m * 60_000).toISOString();
    await recordSpans(db.sql, [
      {
        ...span('r1', { trace: 'rate1', start: 0, end: 10, name: 'POST /pay', status: 'error' }),
        start_time: minutesAgo(5),
        end_time: minutesAgo(4),
      },
      { ...span('r2', { trace: 'rate2', start: 0, end: 10, name: 'POST /pay' }), start_time: minutesAgo(3), end_time: minutesAgo(2) },
    ]);
    await db.sql`update tracing.alert_settings set rate_rules_claimed_minute = null`;
    const { startRateScheduler } = await import('./rate-scheduler.ts');
    const scheduler = startRateScheduler(db.sql, { log: (m) => logs.push(m), intervalMs: 60_000 });
    try {
      expect(await scheduler.tick()).toBe(1);
      expect(await scheduler.tick()).toBeUndefined();
    } finally {
      await scheduler.stop();
    }
    const rate = await waitFor('the rate alert', () => http.requests.find((r) => r.path === '/rates'));
    expect(JSON.parse(rate.body).text).toBe('errors: error_rate of edge / POST /pay is 0.500');
  });
});
