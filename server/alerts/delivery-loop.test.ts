// Alert delivery end to end with real receivers: a failed event's alert
// reaches a local HTTP receiver as a signed webhook and as a Slack message,
// and an in-process SMTP server as a mail with text and HTML parts; a
// receiver that is down and comes back loses nothing and gets nothing
// twice, across a restart of the loop; refusals become dead letters alone,
// and a target that is no URL or a send that throws costs only its own
// delivery; NOTIFY wakes the loop long before its poll.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEvent, ORG_A, recordSpans, span, traceId } from '../../db/tests/helpers/trace-fixtures.ts';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { readAlertConfig, type AlertConfig } from './config.ts';
import { createChannels, type Channels } from './channels.ts';
import { createAlertDelivery, type DeliveryResult } from './delivery-loop.ts';
import { DELIVERY_ID_HEADER, SIGNATURE_HEADER, signWebhook, verifyWebhookSignature } from './signature.ts';
import { startHttpReceiver, startSmtpReceiver, type HttpReceiver, type SmtpReceiver } from './test-receivers.ts';

const db = useTestDatabase();
const SECRET = 'a-webhook-secret-of-some-length';
let http: HttpReceiver;
let smtp: SmtpReceiver;
let config: AlertConfig;

beforeAll(async () => {
  http = await startHttpReceiver();
  smtp = await startSmtpReceiver();
  config = readAlertConfig({
    TRACEGRES_ALERTS_DASHBOARD_URL: 'https://tracegres.example.com/',
    TRACEGRES_SMTP_URL: smtp.url,
    TRACEGRES_ALERTS_EMAIL_FROM: 'alerts@example.com',
    TRACEGRES_ALERTS_TIMEOUT_MS: '2000',
    // The receivers listen on 127.0.0.1.
    TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS: 'true',
  });
  await db.sql`update tracing.alert_settings set backoff_initial = '100 milliseconds', backoff_max = '200 milliseconds'`;
  await recordSpans(db.sql, [
    span('root', { trace: 'ta', start: 0, end: 120, name: 'POST /checkout', service: 'edge' }),
    span('pay', { trace: 'ta', parent: 'root', start: 20, end: 100, name: 'charge', service: 'worker', status: 'error' }),
  ]);
});
afterAll(async () => {
  await http?.close();
  await smtp?.close();
});

async function rule(
  channel: 'slack' | 'webhook' | 'email',
  target: string,
  eventType: string,
  secret: string | null = null,
): Promise<string> {
  const [row] = await db.sql`
    insert into tracing.alert_rules (organization_id, name, kind, event_type_pattern, channel, target, secret)
    values (${ORG_A}, ${`${channel} alerts`}, 'event', ${eventType}, ${channel}, ${target}, ${secret}) returning id`;
  return String(row!.id);
}

const fail = (type: string, error: string) =>
  insertEvent(db.sql, {
    trace: 'ta',
    span: 'pay',
    at: 30,
    type,
    error,
    correlation: 'c0441000-0000-4000-8000-00000000000a',
    session: '5e551010-0000-4000-8000-00000000000a',
  });

async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('channels', () => {
  it('sends a signed webhook with every field of the alert, which a receiver verifies and refuses to replay', async () => {
    await rule('webhook', `${http.url}/hook`, 'webhook.*', SECRET);
    await fail('webhook.charge', 'card declined');
    const delivery = createAlertDelivery(db.sql, config, { log: () => {} });
    const results = await delivery.deliverBatch();
    expect(results).toEqual([{ delivery_id: expect.any(String), channel: 'webhook', outcome: 'sent', status: 'sent' }]);
    const request = http.requests.find((r) => r.path === '/hook')!;
    expect(request.headers[DELIVERY_ID_HEADER]).toBe(results[0]!.delivery_id);
    const signature = String(request.headers[SIGNATURE_HEADER]);
    expect(verifyWebhookSignature(SECRET, request.body, signature)).toEqual({ ok: true });
    expect(verifyWebhookSignature('another-secret-entirely!', request.body, signature)).toMatchObject({ ok: false });
    expect(verifyWebhookSignature(SECRET, request.body.replace('card', 'bank'), signature)).toMatchObject({ ok: false });
    // The same request ten minutes later is a replay.
    expect(verifyWebhookSignature(SECRET, request.body, signature, { nowSeconds: Math.floor(Date.now() / 1000) + 600 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/replay/),
    });
    const body = JSON.parse(request.body);
    expect(body).toMatchObject({
      delivery_id: results[0]!.delivery_id,
      kind: 'first',
      title: 'webhook alerts: webhook.charge failed',
      trace_url: `https://tracegres.example.com/trace/${traceId('ta')}`,
      alert: { rule: { name: 'webhook alerts' }, organization_id: ORG_A, repeat_count: 1 },
    });
    const fields = Object.fromEntries(body.fields.map((f: { label: string; value: string }) => [f.label, f.value]));
    expect(fields).toMatchObject({
      Organization: ORG_A,
      'Event type': 'webhook.charge',
      Error: 'card declined',
      'Correlation id': 'c0441000-0000-4000-8000-00000000000a',
      'Session id': '5e551010-0000-4000-8000-00000000000a',
      'Trace id': traceId('ta'),
      'Root operation': 'edge / POST /checkout (120 ms)',
      'Failed span': 'worker / charge (80 ms)',
      Repeats: '1',
    });
    expect(fields.Time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await db.sql`select status, attempts from tracing.alert_deliveries`).toEqual([{ status: 'sent', attempts: 1 }]);
  });

  it('sends Slack blocks with the fields and a button to the trace', async () => {
    await rule('slack', `${http.url}/slack`, 'slack.*');
    await fail('slack.charge', 'card declined');
    await createAlertDelivery(db.sql, config, { log: () => {} }).deliverBatch();
    const body = JSON.parse(http.requests.find((r) => r.path === '/slack')!.body);
    expect(body.text).toBe('slack alerts: slack.charge failed');
    expect(body.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'slack alerts: slack.charge failed' } });
    const fieldTexts = body.blocks.filter((b: any) => b.type === 'section').flatMap((b: any) => b.fields.map((f: any) => f.text));
    expect(fieldTexts).toEqual(
      expect.arrayContaining([
        '*Error*\ncard declined',
        '*Correlation id*\nc0441000-0000-4000-8000-00000000000a',
        `*Trace id*\n${traceId('ta')}`,
        '*Failed span*\nworker / charge (80 ms)',
        '*Repeats*\n1',
      ]),
    );
    expect(body.blocks.at(-1)).toMatchObject({
      type: 'actions',
      elements: [{ type: 'button', url: `https://tracegres.example.com/trace/${traceId('ta')}` }],
    });
  });

  it('sends mail over SMTP with a text and an HTML part', async () => {
    await rule('email', 'oncall@example.com, lead@example.com', 'mail.*');
    await fail('mail.charge', 'card <declined> & more');
    await createAlertDelivery(db.sql, config, { log: () => {} }).deliverBatch();
    const mail = await waitFor('the mail', () => smtp.mails[0]);
    expect(mail.subject).toBe('email alerts: mail.charge failed');
    expect(mail.from?.text).toBe('alerts@example.com');
    expect((Array.isArray(mail.to) ? mail.to : [mail.to]).flatMap((t) => t!.value.map((v) => v.address))).toEqual([
      'oncall@example.com',
      'lead@example.com',
    ]);
    expect(mail.text).toContain('Error: card <declined> & more');
    expect(mail.text).toContain(`Trace: https://tracegres.example.com/trace/${traceId('ta')}`);
    expect(mail.html).toContain('<td>card &lt;declined&gt; &amp; more</td>');
    expect(mail.html).toContain(`<a href="https://tracegres.example.com/trace/${traceId('ta')}">`);
  });
});

describe('failures', () => {
  it('loses nothing and sends nothing twice while the receiver is down and back, across a restart of the loop', async () => {
    await rule('webhook', `${http.url}/outage`, 'outage.*', SECRET);
    const before = http.requests.length;
    await http.down();
    const logs: string[] = [];
    let loop = createAlertDelivery(db.sql, { ...config, pollIntervalMs: 50 }, { log: (m) => logs.push(m) });
    await loop.start();
    for (const error of ['e1', 'e2', 'e3', 'e4', 'e5']) await fail('outage.charge', error);
    await waitFor('retries while the receiver is down', async () => {
      const [row] = await db.sql`select count(*)::int as n from tracing.alert_deliveries where status = 'queued' and attempts >= 2`;
      return row!.n === 5 || undefined;
    });
    expect(logs.some((line) => /will be retried: network error/.test(line))).toBe(true);
    // The loop stops while everything is still queued, and a new one carries on.
    await loop.stop();
    await http.up();
    loop = createAlertDelivery(db.sql, { ...config, pollIntervalMs: 50 }, { log: () => {} });
    await loop.start();
    await waitFor('all five delivered', async () => {
      const [row] = await db.sql`select count(*)::int as n from tracing.alert_deliveries d join tracing.alerts a on a.id = d.alert_id
                                  where a.details->>'event_type' = 'outage.charge' and d.status = 'sent'`;
      return row!.n === 5 || undefined;
    });
    // Another restart: nothing more is sent.
    await loop.stop();
    loop = createAlertDelivery(db.sql, { ...config, pollIntervalMs: 50 }, { log: () => {} });
    await loop.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await loop.stop();
    const received = http.requests.slice(before).filter((r) => r.path === '/outage');
    const ids = received.map((r) => String(r.headers[DELIVERY_ID_HEADER]));
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
    expect(received.map((r) => JSON.parse(r.body).alert.details.error).sort()).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
  });

  it('dead-letters a delivery the receiver refuses, alone, and retries one it asks to wait for', async () => {
    await rule('webhook', `${http.url}/refuses`, 'refused.*');
    await rule('webhook', `${http.url}/busy`, 'busy.*');
    await rule('webhook', `${http.url}/fine`, 'fine.*');
    await fail('refused.charge', 'x');
    await fail('busy.charge', 'x');
    await fail('fine.charge', 'x');
    const original = http.requests.length;
    // One delivery a batch, oldest first, so each scripted answer meets its own request.
    http.script(410, 503, 200);
    const delivery = createAlertDelivery(db.sql, { ...config, batchSize: 1 }, { log: () => {} });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(...(await delivery.deliverBatch()).map((r) => [r.outcome, r.status, r.reason]));
    expect(results).toEqual([
      ['rejected', 'dead_letter', 'HTTP 410: no (410)'],
      ['retry', 'queued', 'HTTP 503: no (503)'],
      ['sent', 'sent', undefined],
    ]);
    expect(http.requests.slice(original).map((r) => r.path)).toEqual(['/refuses', '/busy', '/fine']);
    const [status] = await db.sql`select dead_letters::int from tracing.alert_delivery_status`;
    expect(status!.dead_letters).toBe(1);
  });
});

describe('one delivery at fault', () => {
  it('is refused or retried alone: the batch beside it is recorded sent, and nothing is sent twice', async () => {
    // The rule's check lets this target through; it is no URL (port past 65535).
    const noUrl = 'http://127.0.0.1:99999/hook';
    await rule('webhook', noUrl, 'nourl.*');
    await rule('webhook', `${http.url}/throws`, 'throws.*');
    await rule('webhook', `${http.url}/beside`, 'beside.*');
    await fail('nourl.charge', 'x');
    await fail('throws.charge', 'x');
    await fail('beside.charge', 'x');
    const original = http.requests.length;
    // The real channels, but a send that throws for one target, as a fault
    // of ours in building a message would; the deliveries of this test's
    // rules are told apart from earlier tests' retries by their targets.
    const real = createChannels(config);
    const targets = new Map<string, string>();
    const channels: Channels = {
      send: async (delivery) => {
        targets.set(delivery.delivery_id, delivery.target.replace(http.url, ''));
        if (delivery.target.endsWith('/throws')) throw new Error('no message for this alert');
        return real.send(delivery);
      },
      close: () => real.close(),
    };
    try {
      const delivery = createAlertDelivery(db.sql, config, { log: () => {}, channels });
      const mine = (results: DeliveryResult[]) =>
        results
          .map((r) => [targets.get(r.delivery_id), r.outcome, r.status, r.reason])
          .filter(([target]) => target === noUrl || target === '/throws' || target === '/beside')
          .sort();
      expect(mine(await delivery.deliverBatch())).toEqual([
        ['/beside', 'sent', 'sent', undefined],
        ['/throws', 'retry', 'queued', 'could not be sent: no message for this alert'],
        [noUrl, 'rejected', 'dead_letter', 'the target "http://127.0.0.1:99999/hook" is not a valid URL'],
      ]);
      // Once its backoff has passed, only the delivery that threw is tried
      // again: the sent one is not sent twice, the dead letter not at all.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(mine(await delivery.deliverBatch())).toEqual([['/throws', 'retry', 'queued', 'could not be sent: no message for this alert']]);
      expect(http.requests.slice(original).filter((r) => r.path === '/beside')).toHaveLength(1);
    } finally {
      real.close();
    }
  });
});

describe('wake-up', () => {
  it("is woken by the failed event's commit, long before its poll", async () => {
    await rule('webhook', `${http.url}/fast`, 'fast.*');
    const loop = createAlertDelivery(db.sql, { ...config, pollIntervalMs: 60_000 }, { log: () => {} });
    await loop.start();
    try {
      // The loop's first look at the queue happens at start; then it sleeps a minute.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await fail('fast.charge', 'x');
      await waitFor('the webhook', () => http.requests.find((r) => r.path === '/fast'), 5000);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await loop.stop();
    }
  });
});

describe('signatures', () => {
  it('sign the timestamp with the body', () => {
    const header = signWebhook('k'.repeat(20), '{"a":1}', 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature('k'.repeat(20), '{"a":1}', header, { nowSeconds: 1_700_000_100 })).toEqual({ ok: true });
    expect(
      verifyWebhookSignature('k'.repeat(20), '{"a":1}', header.replace('t=1700000000', 't=1700000001'), { nowSeconds: 1_700_000_100 }),
    ).toMatchObject({
      ok: false,
    });
    expect(verifyWebhookSignature('k'.repeat(20), '{"a":1}', null)).toMatchObject({ ok: false });
  });
});
