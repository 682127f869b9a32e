// Comparing two traces picked from the Find traces results, and the Services
// page's duration-over-time chart (p50/p95/p99 per service and operation),
// in Chromium against the demo traces.
import { describe, expect, it } from 'vitest';
import { seedDemo, type DemoSummary } from '../../cli/demo.ts';
import { formatDuration } from '../../dashboard/src/format.ts';
import { haveChromium, saveScreenshot, useBrowser } from './browser-harness.ts';
import { recordCutTrace } from './cut-trace.ts';

// Larger than the timeline reads, its spans named after 5 operations.
const CUT_TRACE_ID = 'c0a1c071'.padEnd(32, '0');

describe.skipIf(!haveChromium('compare and RED charts'))('comparing traces and duration charts in Chromium', () => {
  let demo: DemoSummary;
  const browser = useBrowser(async (db) => {
    demo = await seedDemo(db.sql, { requests: 12 });
    await recordCutTrace(db.sql, CUT_TRACE_ID, 5);
  });

  /** The duration in ms of one operation's span in a trace, from the table. */
  const chargeMs = async (traceId: string) => {
    const [row] = await browser.db.sql<Array<{ ms: number }>>`
      select duration_ms as ms from tracing.spans where trace_id = ${traceId}::uuid and name = 'chargePayment'`;
    return Number(row!.ms);
  };

  it('picks a slow checkout and a normal one from the results and compares them operation by operation', async () => {
    const page = await browser.signedIn('/traces');
    await page.locator('select[name=service] option', { hasText: 'order-worker' }).waitFor({ state: 'attached' });
    await page.selectOption('select[name=service]', 'order-worker');
    await page.selectOption('select[name=operation]', 'chargePayment');
    await page.click('button[type=submit]:has-text("Find traces")');
    await page.waitForSelector('ol.found-traces li');
    // Request 1's payment was declined after retries (slow); request 0 is a normal checkout.
    const [normal, slow] = [demo.requests[0]!, demo.requests[1]!];
    expect(slow.failed && !normal.failed).toBe(true);
    // The slow one first: the quicker one still becomes the baseline.
    await page.check(`input[aria-label="Compare ${slow.traceId}"]`);
    expect(await page.locator('.compare-picked button').count()).toBe(0);
    await page.check(`input[aria-label="Compare ${normal.traceId}"]`);
    await page.click('.compare-picked button');
    await page.waitForURL(new RegExp(`/compare\\?a=${normal.traceId}&b=${slow.traceId}$`));
    await page.waitForSelector('table.compare tbody tr');

    // The largest difference comes first: the declined charge's self time
    // (its only child, the 11 ms insert, is the same in both).
    const first = page.locator('table.compare tbody tr').first();
    expect(await first.getAttribute('data-operation')).toBe('order-worker chargePayment');
    const cells = first.locator('td');
    expect(await cells.nth(2).textContent()).toBe('1');
    expect(await cells.nth(3).textContent()).toBe('1');
    const difference = (await chargeMs(slow.traceId)) - (await chargeMs(normal.traceId));
    expect(difference).toBeGreaterThan(400);
    expect(await cells.nth(8).locator('.difference').textContent()).toBe(`+${formatDuration(difference)}`);
    expect(await cells.nth(8).getAttribute('class')).toBe('slower');
    // Its bar is the widest and lies right of the middle.
    const bar = (await cells.nth(8).locator('.difference-bar .slower').boundingBox())!;
    const track = (await cells.nth(8).locator('.difference-bar').boundingBox())!;
    expect(bar.x).toBeGreaterThanOrEqual(track.x + track.width / 2 - 1);
    expect(bar.width).toBeGreaterThan(track.width / 2 - 2);
    // Every recorded span of both traces is in some row.
    const rows = await page.locator('table.compare tbody tr').count();
    expect(rows).toBe(7);
    expect(await page.locator('table.compare tfoot td').first().textContent()).toBe('7');
    await saveScreenshot(page, 'compare-traces.png', { shownInDocs: true });

    // Each side links to its trace.
    await page.click(`.compare-traces a[data-id="${slow.traceId}"]`);
    await page.waitForURL(new RegExp(`/trace/${slow.traceId}$`));
    await page.close();
  });

  it('says which trace was larger than the timeline reads and compared only in part', async () => {
    const normal = demo.requests[0]!.traceId;
    const page = await browser.signedIn(`/compare?a=${normal}&b=${CUT_TRACE_ID}`);
    await page.waitForSelector('table.compare tbody tr');
    expect(await page.locator('.trace-cut').textContent()).toMatch(
      /^Trace B is larger than the timeline reads: only the earliest 10,000 spans/,
    );
    // The 10,000 spans compared: the root and 9,999 of its 10,000 children.
    expect(await page.locator('table.compare tfoot td').nth(1).textContent()).toBe('10000');
    await saveScreenshot(page, 'compare-trace-cut.png', { fullPage: false, shownInDocs: true });
    await page.close();
    const whole = await browser.signedIn(`/compare?a=${normal}&b=${demo.requests[1]!.traceId}`);
    await whole.waitForSelector('table.compare tbody tr');
    expect(await whole.locator('.trace-cut').count()).toBe(0);
    await whole.close();
    const both = await browser.signedIn(`/compare?a=${CUT_TRACE_ID}&b=${CUT_TRACE_ID}`);
    await both.waitForSelector('table.compare tbody tr');
    expect(await both.locator('.trace-cut').textContent()).toMatch(/^Traces A and B are larger than the timeline reads/);
    await both.close();
  });

  it('names a bad trace id in the comparison instead of showing an empty table', async () => {
    const page = await browser.signedIn(`/compare?a=not-a-trace&b=${demo.requests[0]!.traceId}`);
    await expect.poll(() => page.locator('main').textContent()).toMatch(/p_trace_a/);
    expect(await page.locator('table.compare').count()).toBe(0);
    await page.close();
  });

  it('draws p50, p95 and p99 over time for each service and operation, p99 never below p50', async () => {
    const page = await browser.signedIn('/services');
    const chart = page.locator('table.red tr[data-operation="shop-web POST /checkout"] svg.duration-chart');
    await chart.waitFor();
    // The demo's 12 checkouts are about 75 s apart, the 6-hour range cut in 6-minute buckets.
    const points = async (p: string) =>
      ((await chart.locator(`polyline[data-percentile="${p}"]`).getAttribute('points')) ?? '')
        .split(' ')
        .map((xy) => xy.split(',').map(Number) as [number, number]);
    const [p50, p95, p99] = [await points('p50'), await points('p95'), await points('p99')];
    expect(p50.length).toBeGreaterThanOrEqual(2);
    expect(p99.map(([x]) => x)).toEqual(p50.map(([x]) => x));
    // Points sit by time: the buckets are in order, inside the chart.
    p50.forEach(([x], i) => i > 0 && expect(x).toBeGreaterThan(p50[i - 1]![0]));
    expect(Math.max(...p50.map(([x]) => x))).toBeLessThanOrEqual(160);
    // SVG y grows downwards: p99 at or above p95, at or above p50.
    p99.forEach(([, y], i) => {
      expect(y).toBeLessThanOrEqual(p95[i]![1]);
      expect(p95[i]![1]).toBeLessThanOrEqual(p50[i]![1]);
    });
    // The largest p99 touches the top, and the label names it.
    expect(Math.min(...p99.map(([, y]) => y))).toBeLessThan(3);
    expect(await chart.getAttribute('aria-label')).toMatch(/up to \d[\d.]* (ms|s)$/);
    await page.close();
  });
});
