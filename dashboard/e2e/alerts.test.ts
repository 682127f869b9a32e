// The Alerts page in Chromium: the rules with what they watch and where
// they send, the recent firings with their repeat counts and trace links,
// mute and unmute, a new rule from the form, and a reader refused when it
// tries to change a rule.
import { describe, expect, it } from 'vitest';
import { seedDemo, type DemoSummary } from '../../cli/demo.ts';
import { haveChromium, saveScreenshot, useBrowser } from './browser-harness.ts';

const READER_ORG = '00000000-0000-4000-8000-000000000001';

describe.skipIf(!haveChromium('alerts page'))('the Alerts page in Chromium', () => {
  let demo: DemoSummary;
  const browser = useBrowser(async (db) => {
    // Rules first, so the demo's declined payments raise alerts as they are stored.
    await db.sql`
      insert into tracing.alert_rules (name, kind, event_type_pattern, channel, target, secret)
      values ('Declined payments', 'event', 'payment.*', 'webhook', 'https://hooks.example.com/tracegres', 'a-secret-of-enough-length')`;
    await db.sql`
      insert into tracing.alert_rules (name, kind, service, metric, threshold, window_seconds, channel, target, group_seconds)
      values ('Slow checkout', 'rate', 'edge-checkout', 'p95_ms', 800, 3600, 'email', 'oncall@example.com', 900)`;
    await db.sql`
      insert into tracing.alert_rules (organization_id, name, kind, event_type_pattern, channel, target)
      values (${READER_ORG}, 'Support queue', 'event', '*', 'slack', 'https://hooks.slack.com/services/T0/B0/x')`;
    demo = await seedDemo(db.sql, { requests: 12 });
    await db.sql`select tracing.evaluate_rate_rules()`;
    // The deliveries went out (the receiver is not part of this test).
    await db.sql`update tracing.alert_deliveries set status = 'sent', attempts = 1, sent_at = now() where kind = 'first'`;
  });

  it('lists rules and firings with their trace links, mutes and unmutes, and creates a rule', async () => {
    const page = await browser.signedIn('/alerts');
    await page.waitForSelector('table.alert-rules tbody tr');
    const rules = page.locator('table.alert-rules tbody tr');
    expect(await rules.count()).toBe(3);
    const declined = page.locator('tr[data-rule="Declined payments"]');
    expect(await declined.textContent()).toContain('failed payment.* events');
    expect(await declined.textContent()).toContain('webhook (signed)');
    expect(await page.locator('tr[data-rule="Slow checkout"]').textContent()).toContain('p95_ms of edge-checkout > 800 over 3600 s');

    // One alert per distinct error of the failed payments, its repeats counted.
    const [failed] = await browser.db.sql`
      select count(*)::int as events, count(distinct processing_error)::int as errors
        from tracing.domain_events where processing_error is not null and event_type like 'payment.%'`;
    expect(failed!.errors).toBeGreaterThan(1);
    const firings = page.locator('table.alert-firings tbody tr:has-text("Declined payments")');
    expect(await firings.count()).toBe(failed!.errors);
    const repeats = (await firings.locator('td.count').allTextContents()).map(Number);
    expect(repeats.reduce((a, b) => a + b, 0)).toBe(failed!.events);
    // A summary waiting for the end of its window does not hide that the alert was sent.
    expect(await firings.locator('td.delivery').allTextContents()).toEqual(Array(failed!.errors).fill('sent'));
    // The slow checkouts crossed the p95 threshold: a rate alert with its example trace.
    expect(await page.locator('table.alert-firings tbody tr:has-text("Slow checkout")').textContent()).toMatch(
      /p95_ms \d+\.\d{3} on edge-checkout/,
    );
    const traceLink = firings.first().locator('a[data-id]');
    const traceId = await traceLink.getAttribute('data-id');
    expect(demo.requests.some((r) => r.traceId === traceId)).toBe(true);
    expect(await traceLink.getAttribute('href')).toBe(`/trace/${traceId}`);
    await saveScreenshot(page, 'alerts.png', { shownInDocs: true });

    // Mute for an hour, then unmute.
    await declined.locator('button:has-text("Mute 1 h")').click();
    await expect.poll(() => declined.locator('td.rule-state').textContent()).toMatch(/^muted until/);
    const [muted] = await browser.db
      .sql`select muted_until > now() + interval '55 minutes' as muted from tracing.alert_rules where name = 'Declined payments'`;
    expect(muted).toEqual({ muted: true });
    await declined.locator('button:has-text("Unmute")').click();
    await expect.poll(() => declined.locator('td.rule-state').textContent()).toBe('active');

    // A new rule from the form.
    await page.click('details.new-rule summary');
    await page.fill('form[aria-label="New alert rule"] input[name=name]', 'Inventory failures');
    await page.fill('form[aria-label="New alert rule"] input[name=eventType]', 'inventory.*');
    await page.selectOption('form[aria-label="New alert rule"] select[name=channel]', 'email');
    await page.fill('form[aria-label="New alert rule"] input[name=target]', 'stock@example.com');
    await page.click('form[aria-label="New alert rule"] button[type=submit]');
    await page.waitForSelector('tr[data-rule="Inventory failures"]');
    expect(await page.locator('tr[data-rule="Inventory failures"]').textContent()).toContain('stock@example.com');
    await page.close();
  });

  it("shows a reader its organization's rules only, and the server's refusal when it tries to mute one", async () => {
    const reader = await browser.token({ role: 'reader', organization_id: READER_ORG, sub: 'support' });
    const page = await browser.signedIn('/alerts', reader);
    await page.waitForSelector('table.alert-rules tbody tr');
    expect(await page.locator('table.alert-rules tbody tr').count()).toBe(1);
    // The demo's organization is not this reader's: none of its alerts.
    expect(await page.locator('text=No alerts have fired.').count()).toBe(1);
    await page.locator('tr[data-rule="Support queue"] button:has-text("Mute 1 h")').click();
    await page.waitForSelector('.query-error');
    const [rule] = await browser.db.sql`select muted_until from tracing.alert_rules where name = 'Support queue'`;
    expect(rule).toEqual({ muted_until: null });
    await page.close();
  });
});
