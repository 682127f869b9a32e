// The live view in Chromium: with Live on, a failed event committed after
// the page loaded appears on top of the failed events without a reload,
// and one another tenant's viewer may not see never reaches that viewer.
import { describe, expect, it } from 'vitest';
import { DEMO_ORGANIZATION_ID, seedDemo } from '../../cli/demo.ts';
import { insertEvent, ORG_A, ORG_B, recordSpans, traceId } from '../../db/tests/helpers/trace-fixtures.ts';
import type { Page } from 'playwright-core';
import { haveChromium, saveScreenshot, useBrowser } from './browser-harness.ts';

describe.skipIf(!haveChromium('live view'))('the live view in Chromium', () => {
  const browser = useBrowser(async (db) => {
    await seedDemo(db.sql, { requests: 6 });
  });
  /**
   * "live" shows once the socket is acknowledged; the subscription starts a
   * moment later. This commits a failed event of `org` every 200 ms until
   * the page shows one, so what follows is sent to a running subscription.
   */
  const untilLive = async (page: Page, org: string) => {
    await page.waitForSelector('[data-live-state=live]');
    for (let round = 0; (await page.locator('table.events tbody tr', { hasText: 'live.probe' }).count()) === 0; round++) {
      if (round === 25) throw new Error('the live subscription did not start within 5 s');
      await insertEvent(browser.db.sql, { at: 0, type: 'live.probe', error: 'probe', org });
      await page.waitForTimeout(200);
    }
  };

  it('shows a failed event committed after the page loaded, without reloading', async () => {
    const page = await browser.signedIn('/?live=1');
    await untilLive(page, ORG_A);
    const rowsBefore = await page.locator('table.events tbody tr').count();
    await page.evaluate(() => ((window as unknown as { loadedMarker: boolean }).loadedMarker = true));

    await insertEvent(browser.db.sql, { at: 0, type: 'refund.issued', error: 'ledger locked', org: ORG_A });
    const top = page.locator('table.events tbody tr').first();
    await expect.poll(() => top.textContent(), { timeout: 5_000 }).toContain('refund.issued');
    expect(await top.textContent()).toContain('ledger locked');
    // The same page, not a reload; the page keeps its size.
    expect(await page.evaluate(() => (window as unknown as { loadedMarker?: boolean }).loadedMarker)).toBe(true);
    expect(await page.locator('table.events tbody tr').count()).toBe(Math.min(rowsBefore + 1, 20));
    await saveScreenshot(page, 'live-failed-events.png');

    // Live off: nothing more arrives.
    await page.uncheck('.live-toggle input');
    await page.waitForSelector('[data-live-state]', { state: 'detached' });
    await insertEvent(browser.db.sql, { at: 0, type: 'refund.retried', error: 'ledger locked', org: ORG_A });
    await page.waitForTimeout(500);
    expect(await page.locator('table.events tbody tr', { hasText: 'refund.retried' }).count()).toBe(0);
    await page.close();
  });

  it('adds a new trace matching the search to live results, without reloading', async () => {
    const search = new URLSearchParams({ service: 'live-probe', minutes: '60', to: new Date().toISOString(), live: '1' });
    const page = await browser.signedIn(`/traces?${search}`);
    await page.waitForSelector('[data-live-state=live]');
    await page.waitForSelector('p.empty');
    const now = Date.now();
    const probe = (label: string, service: string, name = 'GET /probe') => ({
      trace_id: traceId(label),
      span_id: '00000000000000a1',
      name,
      service,
      start_time: new Date(now - 50).toISOString(),
      end_time: new Date(now).toISOString(),
      organization_id: DEMO_ORGANIZATION_ID,
    });
    // Until the subscription runs (see untilLive): warm-up traces the search matches.
    let warmups = 0;
    while ((await page.locator('ol.found-traces li').count()) === 0) {
      if (warmups === 25) throw new Error('the live subscription did not start within 5 s');
      await recordSpans(browser.db.sql, [probe(`warmup-${warmups++}`, 'live-probe', 'GET /warmup')]);
      await page.waitForTimeout(200);
    }
    // One trace the search matches, one it does not.
    await recordSpans(browser.db.sql, [probe('live-1', 'live-probe'), probe('live-2', 'other-service')]);
    const found = page.locator('ol.found-traces li', { hasText: 'live-probe: GET /probe' });
    await expect.poll(() => found.count(), { timeout: 5_000 }).toBe(1);
    expect(await page.locator('ol.found-traces li').count()).toBe(warmups + 1);
    await page.close();
  });

  it("sends a tenant's viewer only its own tenant's failures", async () => {
    const token = await browser.token({ role: 'reader', organization_id: ORG_B, sub: 'tenant-b' });
    const page = await browser.signedIn('/?live=1', token);
    await untilLive(page, ORG_B);
    await insertEvent(browser.db.sql, { at: 0, type: 'tenant-a.secret', error: 'x', org: ORG_A });
    await insertEvent(browser.db.sql, { at: 0, type: 'tenant-b.visible', error: 'y', org: ORG_B });
    await expect.poll(() => page.locator('table.events tbody tr').first().textContent(), { timeout: 5_000 }).toContain('tenant-b.visible');
    expect(await page.locator('table.events tbody tr', { hasText: 'tenant-a.secret' }).count()).toBe(0);
    await page.close();
  });
});
