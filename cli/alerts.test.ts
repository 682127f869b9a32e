// `tracegres alerts test RULE` sends a sample to the rule's channel (a real
// local receiver here) and says so; an unknown rule or a receiver that is
// down is reported with a non-zero exit; `status` shows the queue and rules.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';
import { startHttpReceiver, type HttpReceiver } from '../server/alerts/test-receivers.ts';
import { alertsCommand } from './alerts.ts';

const db = useTestDatabase();
let http: HttpReceiver;

beforeAll(async () => {
  http = await startHttpReceiver();
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await http?.close();
});

it('sends a sample alert to the rule named, reports failures, and shows the status', async () => {
  const [rule] = await db.sql`
    insert into tracing.alert_rules (name, kind, event_type_pattern, channel, target)
    values ('on-call', 'event', 'payment.*', 'slack', ${`${http.url}/slack/secret-path`}) returning id`;
  const lines: string[] = [];
  const out = { line: (text: string) => void lines.push(text), progress: () => {} };
  const errors: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((line) => void errors.push(String(line)));

  // A receiver on a loopback address is refused unless the operator allows it.
  vi.stubEnv('TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS', '');
  expect(await alertsCommand(['test', 'on-call'], () => db.url, out)).toBe(1);
  expect(lines.at(-1)).toMatch(/was not delivered: 127\.0\.0\.1 is a loopback address: alert deliveries reach public addresses only/);
  expect(http.requests).toHaveLength(0);
  vi.stubEnv('TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS', 'true');

  expect(await alertsCommand(['test', 'on-call'], () => db.url, out)).toBe(0);
  expect(lines.at(-1)).toBe(`sent a test alert of rule #${rule!.id} "on-call" to slack ${http.url}/…`);
  const body = JSON.parse(http.requests.at(-1)!.body);
  expect(body.text).toBe('Test alert from rule "on-call"');

  expect(await alertsCommand(['test', 'nobody'], () => db.url, out)).toBe(2);
  expect(errors.at(-1)).toBe('no alert rule has the id or name "nobody"');

  http.script(500);
  expect(await alertsCommand(['test', String(rule!.id)], () => db.url, out)).toBe(1);
  expect(lines.at(-1)).toMatch(/was not delivered: HTTP 500.*stays queued/);

  lines.length = 0;
  expect(await alertsCommand(['status'], () => db.url, out)).toBe(0);
  expect(lines.join('\n')).toMatch(/sent\s+1/);
  expect(lines.join('\n')).toMatch(/queued\s+1/);
  expect(lines.join('\n')).toContain(`#${rule!.id} on-call (event, slack)`);
});
