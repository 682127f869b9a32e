// The Replay view in Chromium, end to end with the demo's order processor:
// from a failed request's correlation, the dry run lists what would be
// replayed; an admin starts a run with a reason; the run page follows it
// live until the failed payment, replayed after the "fix", ends processed,
// shown beside its original failure. The run's trace and the replayed
// trace link to each other above their timelines.
import { afterAll, describe, expect, it } from 'vitest';
import { seedDemo, type DemoSummary } from '../../cli/demo.ts';
import { startDemoOrderProcessor } from '../../cli/demo-order-processor.ts';
import type { ReplayProcessor } from '../../ts/store/replay-processor.ts';
import { haveChromium, saveScreenshot, useBrowser } from './browser-harness.ts';

describe.skipIf(!haveChromium('replay'))('the Replay view in Chromium', () => {
  let demo: DemoSummary;
  let processor: ReplayProcessor | undefined;
  const browser = useBrowser(async (db) => {
    demo = await seedDemo(db.sql, { requests: 6 });
  });
  afterAll(() => processor?.stop());

  it('shows the dry run, starts a run and follows it to the replayed outcome', async () => {
    const correlation = demo.failedRequest.correlationId;
    const page = await browser.signedIn(`/correlation/${correlation}`);
    await page.click('a.replay-link');
    await page.waitForURL(`**/replay?correlation=${correlation}`);
    await page.waitForSelector('table.replay-set tbody tr');
    const caption = await page.locator('table.replay-set caption').textContent();
    const [, queued, total] = /(\d+) of (\d+) events would be replayed/.exec(caption ?? '')!;
    // The demo records no successful processing, so every event is failed
    // or never processed, and all are queued.
    expect(Number(queued)).toBe(Number(total));
    expect(await page.locator('table.replay-set [data-state=never_processed]').count()).toBeGreaterThan(0);
    const payment = page.locator('table.replay-set tbody tr', { hasText: 'payment.failed' });
    expect(await payment.getAttribute('data-will-replay')).toBe('true');
    expect(await payment.textContent()).toContain('failed');
    expect(await payment.textContent()).toContain('chargePayment');

    await page.fill('.replay-start input[name=reason]', 'card bug fixed in 4.2.1');
    await page.click(`.replay-start button:has-text("Replay ${queued} events")`);
    await page.waitForURL('**/replay/run/*');
    await page.waitForSelector('[data-run-status=running]');
    expect(await page.locator('.replay-facts').textContent()).toContain('card bug fixed in 4.2.1');
    expect(await page.locator('table.replay-items tbody tr').count()).toBe(Number(queued));

    // The processor runs after the fix; the page follows without a reload.
    processor = await startDemoOrderProcessor(browser.db.sql, { fixed: true, pollMs: 500 });
    await page.waitForSelector('[data-run-status=completed]', { timeout: 10_000 });
    const row = page.locator('table.replay-items tbody tr', { hasText: 'payment.failed' });
    expect(await row.locator('.replay-original [data-state]').getAttribute('data-state')).toBe('failed');
    expect(await row.locator('.replay-outcome [data-state]').getAttribute('data-state')).toBe('processed');
    expect(await page.locator('.replay-progress').textContent()).toContain(`${queued} processed, 0 failed`);
    await saveScreenshot(page, 'replay-run.png', { shownInDocs: true });

    // The run's own trace opens from the run.
    await page.click('.replay-facts a[href^="/trace/"]');
    await page.waitForSelector('.timeline-rows .span-row');
    expect(await page.locator('.span-row', { hasText: 'replay run' }).count()).toBe(1);
    await page.goto(browser.url + '/replay');
    await page.waitForSelector('table.replay-runs tbody tr');
    expect(await page.locator('table.replay-runs tbody tr').first().textContent()).toContain('card bug fixed in 4.2.1');
    await page.close();
  });

  it("links a run's trace and the trace it replayed both ways in the timeline", async () => {
    const original = demo.failedRequest.traceId;
    const [run] = await browser.db
      .sql`select id, trace_id from api.start_replay('timeline links', p_trace_id => ${original}, p_include_processed => true)`;
    const runTrace = run!.trace_id as string;

    // On the run's own trace: "replay of" the original, which it opens.
    const page = await browser.signedIn(`/trace/${runTrace}`);
    await page.waitForSelector('.timeline-rows .span-row');
    await page.waitForSelector('.trace-replays [data-relation=replay_of]');
    const replayOf = page.locator('.trace-replays [data-relation=replay_of]');
    expect(await replayOf.count()).toBe(1);
    expect(await replayOf.textContent()).toContain(`Replay of trace ${original}`);
    expect(await replayOf.textContent()).toContain('timeline links');
    await saveScreenshot(page, 'replay-trace-of.png', { shownInDocs: true });
    await replayOf.locator(`a[data-trace-id="${original}"]`).click();
    await page.waitForURL(`**/trace/${original}`);

    // On the original: every run that replayed it, this one among them, each
    // leading to its run and its trace.
    await page.waitForSelector('.trace-replays [data-relation=replayed_by]');
    await page.waitForSelector('.timeline-rows .span-row');
    const replayedBy = page.locator('.trace-replays [data-relation=replayed_by]', { hasText: 'timeline links' });
    expect(await replayedBy.count()).toBe(1);
    expect(await replayedBy.locator(`a[href="/replay/run/${run!.id}"]`).count()).toBe(1);
    expect(await page.locator('.trace-replays [data-relation=replay_of]').count()).toBe(0);
    await saveScreenshot(page, 'replay-trace-links.png', { shownInDocs: true });
    await replayedBy.locator(`a[data-trace-id="${runTrace}"]`).click();
    await page.waitForURL(`**/trace/${runTrace}`);
    await page.waitForSelector('.trace-replays [data-relation=replay_of]');
    await page.close();
  });

  it("shows another organization's reader none of the tenant's events and nothing to start", async () => {
    const token = await browser.token({ role: 'reader', organization_id: '00000000-0000-4000-8000-000000000000', sub: 'reader' });
    const page = await browser.signedIn(`/replay?correlation=${demo.failedRequest.correlationId}`, token);
    // Another organization's reader sees no events of the demo tenant at all.
    await page.waitForSelector('p.empty');
    expect(await page.locator('.replay-start').count()).toBe(0);
    await page.close();
  });
});
