// The trace view's flame graph in Chromium: toggled from the timeline, the
// root on top and children below within their parent's width, failed spans
// red, self time on each bar, a click zooming into a subtree and back out.
import { describe, expect, it } from 'vitest';
import { seedDemo, type DemoSummary } from '../../cli/demo.ts';
import { haveChromium, saveScreenshot, useBrowser } from './browser-harness.ts';

describe.skipIf(!haveChromium('flame graph'))('the flame graph in Chromium', () => {
  let demo: DemoSummary;
  const browser = useBrowser(async (db) => {
    demo = await seedDemo(db.sql, { requests: 12 });
  });

  it('draws the span tree by duration, failed spans red, and zooms into a subtree on click', async () => {
    const page = await browser.signedIn(`/trace/${demo.failedRequest.traceId}`);
    await page.waitForSelector('.timeline-rows .span-row');
    await page.click('.drawing-toggle button:has-text("Flame graph")');
    await page.waitForSelector('.flame-canvas .flame-rect');
    const rects = page.locator('.flame-rect');
    // browser, edge function, workflow, three activities, one database call.
    expect(await rects.count()).toBe(7);
    const box = async (text: string) => (await page.locator('.flame-rect', { hasText: text }).first().boundingBox())!;
    const [root, charge, insert] = [await box('POST /checkout'), await box('chargePayment'), await box('INSERT payments')];
    // The root spans the whole width on top; a child sits below, inside its parent.
    const canvas = (await page.locator('.flame-canvas').boundingBox())!;
    expect(root.width).toBeGreaterThan(canvas.width * 0.98);
    expect(root.y).toBeLessThan(charge.y);
    expect(charge.y).toBeLessThan(insert.y);
    expect(insert.x).toBeGreaterThanOrEqual(charge.x - 1);
    expect(insert.x + insert.width).toBeLessThanOrEqual(charge.x + charge.width + 1);
    // Failed spans are red; self time is on the bar.
    const chargeRect = page.locator('.flame-rect', { hasText: 'chargePayment' });
    expect(await chargeRect.getAttribute('data-status')).toBe('error');
    expect(await chargeRect.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(211, 47, 47)');
    expect(
      await page.locator('.flame-rect', { hasText: 'reserveInventory' }).evaluate((el) => getComputedStyle(el).backgroundColor),
    ).not.toBe('rgb(211, 47, 47)');
    expect(await chargeRect.textContent()).toMatch(/self \d/);
    await saveScreenshot(page, 'flame-graph.png', { shownInDocs: true });

    // A click zooms: the charge fills the width, only its subtree is drawn.
    await chargeRect.click();
    await page.waitForSelector('.flame-zoom');
    expect(await rects.count()).toBe(2);
    const zoomed = (await box('chargePayment'))!;
    expect(zoomed.width).toBeGreaterThan(canvas.width * 0.98);
    expect(await page.locator('.flame-rect', { hasText: 'POST /checkout' }).count()).toBe(0);
    // A second click opens the span; "Whole trace" zooms back out.
    await page.locator('.flame-rect', { hasText: 'chargePayment' }).click();
    expect(await page.locator('.span-details').textContent()).toContain('payment.failed');
    await page.click('.flame-zoom button:has-text("Whole trace")');
    await expect.poll(() => rects.count()).toBe(7);
    await page.close();
  });

  it("draws an operation's call paths summed over its traces, from the Services page", async () => {
    const page = await browser.signedIn('/services');
    const row = page.locator('tr[data-operation="shop-web POST /checkout"]');
    await row.locator('a.flame-link').click();
    await page.waitForURL('**/flame?*');
    await page.waitForSelector('.flame-canvas .flame-rect');
    const root = page.locator('.flame-rect').first();
    const checkouts = demo.requests.length;
    expect(await root.getAttribute('aria-label')).toContain(`${checkouts} calls in ${checkouts} traces`);
    // Failed payments make their path red, with the count of failures.
    const charge = page.locator('.flame-rect', { hasText: 'chargePayment' });
    expect(await charge.getAttribute('data-status')).toBe('error');
    expect(await charge.getAttribute('aria-label')).toMatch(/\d+ failed/);
    // Children sit below and inside their parent.
    const [rootBox, chargeBox] = [(await root.boundingBox())!, (await charge.boundingBox())!];
    expect(chargeBox.y).toBeGreaterThan(rootBox.y);
    expect(chargeBox.x + chargeBox.width).toBeLessThanOrEqual(rootBox.x + rootBox.width + 1);
    await saveScreenshot(page, 'operation-flame-graph.png', { shownInDocs: true });
    await page.close();
  });
});
