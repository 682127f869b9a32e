// The dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core, against the real server (GraphQL + the dashboard route)
// on a test database holding the demo traces.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { Sql } from 'postgres';
import { DEMO_ORGANIZATION_ID, seedDemo, type DemoSummary } from '../../cli/demo.ts';
import { signToken } from '../../server/auth/jwt.ts';
import { haveChromium, saveScreenshot, useBrowser } from './browser-harness.ts';
import { CUT_TRACE_SPANS, recordCutTrace } from './cut-trace.ts';

const PAGE_SIZE = 20;

// A chain one level deeper than the timeline's depth limit (1,000): its last
// span starts a tree of its own, flagged cut_at_depth_limit.
const DEEP_CHAIN_TRACE_ID = 'dee9c4a1'.padEnd(32, '0');
const DEEP_CHAIN_SPANS = 1001;

async function recordDeepChain(sql: Sql) {
  await sql`
    select tracing.record_spans(jsonb_agg(jsonb_build_object(
      'trace_id', ${DEEP_CHAIN_TRACE_ID}::text, 'span_id', lpad(to_hex(i), 16, '0'),
      'parent_span_id', case when i > 1 then lpad(to_hex(i - 1), 16, '0') end,
      'organization_id', ${DEMO_ORGANIZATION_ID}::uuid, 'service', 'deep-recursion', 'name', 'level ' || i,
      'start_time', to_char((timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'end_time', to_char((timestamptz '2025-03-01 12:00:00+00' + (5000 - i) * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
    from generate_series(1, ${DEEP_CHAIN_SPANS}) i`;
}

// One span more than the timeline reads (dashboard/e2e/cut-trace.ts).
const CUT_TRACE_ID = 'c0771a11'.padEnd(32, '0');

describe.skipIf(!haveChromium('dashboard e2e'))('the dashboard in Chromium', () => {
  let demo: DemoSummary;
  let adminToken: string;
  const browser = useBrowser(
    async (db) => {
      demo = await seedDemo(db.sql, { requests: 60, largeTraceSpans: 10_000 });
      await recordDeepChain(db.sql);
      await recordCutTrace(db.sql, CUT_TRACE_ID);
      adminToken = await browser.token({ role: 'admin', sub: 'e2e' });
    },
    {
      dashboard: (db) => ({
        dev: {
          devToken: () => browser.token({ role: 'admin', sub: 'local-developer' }),
          loadDemo: () => seedDemo(db.sql, { requests: 6 }),
        },
      }),
      permissions: ['clipboard-read', 'clipboard-write'],
    },
  );
  const http = {
    get url() {
      return browser.url;
    },
  };
  const newPage = () => browser.newPage();

  /** A page signed in with the admin token, as a user pasting it would. */
  const signedIn = (at = '/') => browser.signedIn(at, adminToken);

  async function search(page: Page, id: string) {
    await page.fill('#search-any', id);
    await page.press('#search-any', 'Enter');
  }

  const rows = (page: Page) => page.locator('.timeline-rows .span-row');

  it('denies a wrong token and lets a valid one in', async () => {
    const page = await newPage();
    await page.goto(http.url + '/');
    const forged = await signToken('some-other-secret-some-other-secret-xx', { role: 'admin' });
    await page.fill('#token', forged);
    await page.click('button[type=submit]:has-text("Sign in")');
    await expect.poll(() => page.locator('.denied').textContent()).toMatch(/Access denied/);
    expect(await page.locator('header.top').count()).toBe(0);

    await page.fill('#token', adminToken);
    await page.click('button[type=submit]:has-text("Sign in")');
    await page.waitForSelector('table.events tbody tr');
    expect(await page.evaluate(() => sessionStorage.getItem('tracegres.token'))).toBe(adminToken);
    await page.close();
  });

  it('offers the local development token where the server has one', async () => {
    const page = await newPage();
    await page.goto(http.url + '/');
    await page.click('button:has-text("Use the local development token")');
    await page.waitForSelector('table.events tbody tr');
    await page.close();
  });

  it('lists failed events newest first and pages through all of them', async () => {
    const page = await signedIn();
    await page.waitForSelector('table.events tbody tr');
    await saveScreenshot(page, 'failed-events.png', { fullPage: false });
    const seen: string[] = [];
    const times: string[] = [];
    for (let pageNumber = 1; ; pageNumber++) {
      await expect.poll(() => page.locator('.page-number').textContent()).toBe(`Page ${pageNumber}`);
      const ids = await page.locator('table.events tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.eventId!));
      expect(ids.length).toBeLessThanOrEqual(PAGE_SIZE);
      // Each row shows the ids a support engineer looks for.
      expect(await page.locator('table.events tbody tr').first().locator('a[data-id]').count()).toBe(3);
      seen.push(...ids);
      times.push(...(await page.locator('table.events tbody tr td:first-child').allTextContents()));
      const older = page.locator('.pager button:has-text("Older")');
      if (await older.isDisabled()) break;
      const firstBefore = ids[0];
      await older.click();
      await expect.poll(async () => page.locator('table.events tbody tr').first().getAttribute('data-event-id')).not.toBe(firstBefore);
    }
    expect(seen.length).toBe(demo.failedEvents);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...times].sort().reverse()).toEqual(times);
    // More than one page, and back again.
    const pages = Math.ceil(demo.failedEvents / PAGE_SIZE);
    expect(pages).toBeGreaterThan(1);
    await page.click('.pager button:has-text("Newer")');
    await expect.poll(() => page.locator('.page-number').textContent()).toBe(`Page ${pages - 1}`);
    await page.close();
  });

  it('filters failed events by event type and time range', async () => {
    const page = await signedIn();
    await page.fill('input[name=type]', 'email.failed');
    await page.click('.filters button[type=submit]');
    await page.waitForURL(/type=email.failed/);
    await expect
      .poll(async () => new Set(await page.locator('table.events tbody tr td:nth-child(2)').allTextContents()))
      .toEqual(new Set(['email.failed']));
    // A range in the future holds nothing.
    await page.goto(`${http.url}/?from=2999-01-01T00:00`);
    await page.waitForSelector('.empty');
    expect(await page.locator('.empty').textContent()).toMatch(/No failed events match/);
    await page.close();
  });

  it('finds a failed request from its correlation id, with its whole trace', async () => {
    const page = await signedIn();
    await search(page, demo.failedRequest.correlationId);
    await page.waitForURL(`**/correlation/${demo.failedRequest.correlationId}`);
    await page.waitForSelector('.timeline-rows .span-row');
    // browser, edge function, workflow, three activities, one database call.
    expect(await rows(page).count()).toBe(7);
    const charge = page.locator('.span-row[data-span-id]', { hasText: 'chargePayment' });
    expect(await charge.getAttribute('data-status')).toBe('error');
    // Failed spans are red.
    expect(await charge.locator('.span-bar').evaluate((bar) => getComputedStyle(bar).backgroundColor)).toBe('rgb(211, 47, 47)');
    const reserve = page.locator('.span-row', { hasText: 'reserveInventory' });
    expect(await reserve.locator('.span-bar').evaluate((bar) => getComputedStyle(bar).backgroundColor)).not.toBe('rgb(211, 47, 47)');
    // The critical path is marked, and runs through the slow failed charge.
    expect(await charge.getAttribute('data-critical')).toBe('true');
    expect(await page.locator('.span-row[data-critical=true]').count()).toBeGreaterThan(1);
    // Bars indented by depth and placed by offset: the database call sits inside the charge.
    const box = async (text: string) => (await page.locator('.span-row', { hasText: text }).locator('.span-bar').boundingBox())!;
    const [chargeBar, dbBar, rootBar] = [await box('chargePayment'), await box('INSERT payments'), await box('POST /checkout')];
    expect(dbBar.x).toBeGreaterThanOrEqual(chargeBar.x);
    expect(dbBar.x + dbBar.width).toBeLessThanOrEqual(chargeBar.x + chargeBar.width + 1);
    expect(rootBar.width).toBeGreaterThan(chargeBar.width);
    const indent = async (text: string) =>
      page
        .locator('.span-row', { hasText: text })
        .locator('.span-label')
        .evaluate((el) => parseFloat(getComputedStyle(el).paddingLeft));
    expect(await indent('INSERT payments')).toBeGreaterThan(await indent('chargePayment'));
    expect(await indent('chargePayment')).toBeGreaterThan(await indent('POST /checkout'));

    // Span details on click: status message, attributes, events.
    await charge.click();
    const details = page.locator('.span-details');
    await details.waitFor();
    expect(await details.textContent()).toMatch(/card declined|provider timeout/);
    expect(await details.textContent()).toContain('temporal.activity.type');
    expect(await details.textContent()).toContain('payment.failed');
    // A time axis over the bars: round steps from the trace start.
    const ticks = await page.locator('.timeline-axis .axis-tick').allTextContents();
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    expect(ticks[0]).toBe('0');
    await saveScreenshot(page, 'trace-timeline.png', { shownInDocs: true });

    // One click copies an id.
    await details.locator('button[aria-label="Copy trace id"]').click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(demo.failedRequest.traceId);
    expect(await details.locator('button[aria-label="Copy trace id"]').textContent()).toBe('Copied');
    await page.close();
  });

  it('finds a trace from its trace id, also inside a pasted traceparent', async () => {
    const page = await signedIn();
    const request = demo.requests[10]!;
    await search(page, `00-${request.traceId}-00f067aa0ba902b7-01`);
    await page.waitForURL(`**/trace/${request.traceId}`);
    await page.waitForSelector('.timeline-rows .span-row');
    expect(await rows(page).count()).toBe(7);
    expect(await page.locator('.facts--inline').textContent()).toContain(request.correlationId);
    await page.close();
  });

  it('shows a session: every trace of it in time order', async () => {
    const page = await signedIn();
    const sessionId = demo.failedRequest.sessionId;
    await search(page, sessionId.toUpperCase());
    await page.waitForURL(`**/session/${sessionId}`);
    await page.waitForSelector('.session-traces li');
    const expected = demo.requests.filter((r) => r.sessionId === sessionId).map((r) => r.traceId);
    const shown = await page.locator('.session-traces li').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.traceId!));
    expect(shown.filter((id) => expected.includes(id))).toEqual(expected);
    expect(await page.locator('.session-traces li.failed').count()).toBeGreaterThan(0);
    // Opening one shows its timeline.
    await page.locator(`.session-traces li[data-trace-id="${expected[0]}"] a`).click();
    await page.waitForURL(`**/trace/${expected[0]}`);
    await page.waitForSelector('.timeline-rows .span-row');
    await page.close();
  });

  it('searches by each field separately', async () => {
    const page = await signedIn();
    const request = demo.requests[1]!;
    await page.click('.search-fields summary');
    for (const [field, id, url] of [
      ['session', request.sessionId, `/session/${request.sessionId}`],
      ['trace', request.traceId, `/trace/${request.traceId}`],
      ['correlation', request.correlationId, `/correlation/${request.correlationId}`],
    ] as const) {
      await page.fill(`input[data-field=${field}]`, id);
      await page.press(`input[data-field=${field}]`, 'Enter');
      await page.waitForURL(`**${url}`);
    }
    // A trace id where a session id belongs is refused with a reason.
    await page.fill('input[data-field=session]', request.traceId);
    await page.press('input[data-field=session]', 'Enter');
    expect(await page.locator('.search-message').textContent()).toMatch(/uuid/);
    await page.close();
  });

  it('opens an event: its data, metadata and trace timeline', async () => {
    const page = await signedIn();
    await page.locator('table.events tbody tr').first().locator('button.link-button').click();
    const details = page.locator('.event-details');
    await details.locator('.timeline-rows .span-row').first().waitFor();
    expect(await details.locator('pre.json').first().textContent()).toContain('orderId');
    expect(await details.locator('pre.json').nth(1).textContent()).toContain('"trace_id"');
    expect(await details.textContent()).toContain('Processing error');
    await page.close();
  });

  it('shows spans that were never recorded: placeholders and spans inferred from events', async () => {
    const page = await signedIn(`/trace/${demo.requests[4]!.traceId}`);
    await page.waitForSelector('.timeline-rows .span-row');
    const placeholder = page.locator('.span-row--placeholder');
    expect(await placeholder.count()).toBe(1);
    expect(await placeholder.textContent()).toContain('missing parent span');
    await page.goto(`${http.url}/trace/${demo.requests[7]!.traceId}`);
    await page.waitForSelector('.span-row--inferred');
    expect(await page.locator('.span-row--inferred').textContent()).toContain('inferred');
    await page.close();
  });

  it('says where a chain deeper than the depth limit starts a tree of its own', async () => {
    const page = await signedIn(`/trace/${DEEP_CHAIN_TRACE_ID}`);
    await page.waitForSelector('.timeline-rows .span-row');
    expect(await page.locator('.timeline-rows').getAttribute('data-span-count')).toBe(String(DEEP_CHAIN_SPANS));
    const details = page.locator('.span-details');
    // The root is an ordinary span.
    await page.locator('.span-row[data-index="0"]').click();
    expect(await details.textContent()).not.toContain('depth limit');
    // The 1,001st level is cut off its parent and flagged; its recorded parent is still shown.
    await page.locator('.span-row[data-index="0"]').press('End');
    const cut = page.locator(`.span-row[data-index="${DEEP_CHAIN_SPANS - 1}"]`);
    await cut.click();
    expect(await details.locator('.note').textContent()).toContain('depth limit of 1,000 levels');
    expect(await details.textContent()).toContain((DEEP_CHAIN_SPANS - 1).toString(16).padStart(16, '0'));
    await page.close();
  });

  it('says when a trace is larger than the timeline reads, and draws its earliest spans', async () => {
    const page = await signedIn(`/trace/${CUT_TRACE_ID}`);
    await page.waitForSelector('.timeline-rows .span-row', { timeout: 30_000 });
    expect(await page.locator('.timeline-rows').getAttribute('data-span-count')).toBe(String(CUT_TRACE_SPANS - 1));
    expect(await page.locator('.trace-cut').textContent()).toContain('earliest 10,000 spans');
    await saveScreenshot(page, 'trace-cut-at-limit.png', { fullPage: false, shownInDocs: true });
    await page.close();
    // A whole trace carries no such note.
    const whole = await signedIn(`/trace/${DEEP_CHAIN_TRACE_ID}`);
    await whole.waitForSelector('.timeline-rows .span-row');
    expect(await whole.locator('.trace-cut').count()).toBe(0);
    await whole.close();
  });

  it('shows a failed query with the reference id to quote (ErrorWithCorrelation)', async () => {
    const page = await signedIn('/trace/not-a-trace-id');
    const alert = page.locator('.error-with-correlation');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/p_trace_id/);
    expect(await alert.locator('.error-with-correlation__id').textContent()).toMatch(/^[0-9a-f-]{36}$/);
    await page.close();
  });

  it('keeps a 10,000-span timeline responsive by rendering only the visible rows', async () => {
    const page = await signedIn(`/trace/${demo.largeTraceId}`);
    await page.waitForSelector('.timeline-rows .span-row', { timeout: 30_000 });
    expect(await page.locator('.timeline-rows').getAttribute('data-span-count')).toBe('10000');
    expect(await rows(page).count()).toBeLessThan(100);
    // Scroll to the end: the last span is rendered, and within a frame or two.
    const elapsed = await page.evaluate(async () => {
      const scroller = document.querySelector<HTMLElement>('.timeline-rows')!;
      const started = performance.now();
      scroller.scrollTop = scroller.scrollHeight;
      for (let i = 0; i < 20 && !document.querySelector('.span-row[data-index="9999"]'); i++) {
        await new Promise((resolve) => requestAnimationFrame(resolve));
      }
      return document.querySelector('.span-row[data-index="9999"]') ? performance.now() - started : Infinity;
    });
    expect(elapsed).toBeLessThan(500);
    expect(await rows(page).count()).toBeLessThan(100);
    await page.close();
  });

  it('finds traces by service, operation and status, lists them and plots them, and a point opens its trace', async () => {
    const page = await signedIn('/traces');
    // The pickers fill from the data.
    await page.locator('select[name=service] option', { hasText: 'order-worker' }).waitFor({ state: 'attached' });
    await page.selectOption('select[name=service]', 'order-worker');
    await page.selectOption('select[name=operation]', 'chargePayment');
    await page.selectOption('select[name=status]', 'error');
    await page.click('button:has-text("Add attribute")');
    await page.fill('input[aria-label="Attribute key"]', 'payment.provider');
    await page.fill('input[aria-label="Attribute value"]', 'stripe');
    await page.click('button[type=submit]:has-text("Find traces")');
    await page.waitForSelector('ol.found-traces li');
    const failed = demo.requests.filter((r) => r.failed).map((r) => r.traceId);
    const found = await page
      .locator('ol.found-traces li a')
      .evaluateAll((links) => links.map((a) => a.getAttribute('href')!.split('/').pop()));
    expect(found.sort()).toEqual([...failed].sort());
    expect(await page.locator('.scatter circle.point.failed').count()).toBe(failed.length);
    expect(await page.locator('ol.found-traces .matched').first().textContent()).toMatch(/order-worker chargePayment \(error\)/);
    // The search is in the URL: reloading shows the same results.
    expect(page.url()).toMatch(/service=order-worker.*status=error/);
    await saveScreenshot(page, 'trace-search.png', { shownInDocs: true });

    const point = page.locator(`.scatter circle[data-trace-id="${demo.failedRequest.traceId}"]`);
    await point.click();
    await page.waitForURL(new RegExp(`/trace/${demo.failedRequest.traceId}$`));
    await page.waitForSelector('.timeline-rows .span-row');
    await page.close();
  });

  it('runs a TraceQL query, and names what is outside the subset', async () => {
    const page = await signedIn('/traces');
    await page.fill('input[name=traceql]', '{ resource.service.name = "edge-checkout" } >> { name = "chargePayment" && status = error }');
    await page.click('button[type=submit]:has-text("Find traces")');
    await page.waitForSelector('ol.found-traces li');
    // Structure walks the recorded spans: the request whose workflow span was
    // never recorded (the demo's fifth) has no chain from the edge to its charge.
    const found = await page
      .locator('ol.found-traces li a')
      .evaluateAll((links) => links.map((a) => a.getAttribute('href')!.split('/').pop()));
    const expected = demo.requests.filter((r, i) => r.failed && i !== 4).map((r) => r.traceId);
    expect(found.sort()).toEqual(expected.sort());

    await page.fill('input[name=traceql]', '{ status = error } | count() > 2');
    await page.click('button[type=submit]:has-text("Find traces")');
    await expect.poll(() => page.locator('main').textContent()).toMatch(/unsupported construct "\|"/);
    await page.close();
  });

  it('draws the service map and the RED metrics of each operation', async () => {
    const page = await signedIn('/services');
    await page.waitForSelector('.service-graph .service-node');
    const failed = demo.requests.filter((r) => r.failed).length;
    const edge = page.locator('.service-graph [data-edge="shop-web>edge-checkout"] text');
    expect(await edge.textContent()).toBe(`${demo.requests.length} calls, ${failed} failed`);
    const row = page.locator('table.red tr[data-operation="shop-web POST /checkout"] td');
    expect(await row.nth(2).textContent()).toBe(String(demo.requests.length));
    expect(await row.nth(3).textContent()).toBe(`${((failed / demo.requests.length) * 100).toFixed(1)} %`);
    await saveScreenshot(page, 'services.png', { shownInDocs: true });
    await page.close();
  });

  it('is keyboard reachable: arrows move through spans, Enter opens one', async () => {
    const page = await signedIn(`/trace/${demo.failedRequest.traceId}`);
    await page.waitForSelector('.timeline-rows .span-row');
    await page.locator('.span-row[data-index="0"]').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.index)).toBe('2');
    await page.keyboard.press('Enter');
    await page.locator('.span-details').waitFor();
    // The search box is reachable with Tab from the top of the page.
    await page.goto(`${http.url}/`);
    await page.waitForSelector('table.events tbody tr');
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'search-any');
    }
    expect(reached).toBe(true);
    await page.close();
  });

  // Last: it adds data the counts above rely on.
  it('loads demo data with one button and opens a failed request', async () => {
    const page = await signedIn();
    await page.click('button:has-text("Load demo data")');
    await page.waitForURL(/\/correlation\/[0-9a-f-]{36}$/);
    await page.waitForSelector('.timeline-rows .span-row--error');
    expect(await page.locator('.banner').textContent()).toMatch(/Loaded 6 requests/);
    await page.close();
  });

  it('reads in a narrow window without sideways scrolling of the page', async () => {
    const page = await signedIn(`/trace/${demo.failedRequest.traceId}`);
    await page.setViewportSize({ width: 380, height: 800 });
    await page.waitForSelector('.timeline-rows .span-row');
    const overflow = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('body *')]
        .filter((el) => el.getBoundingClientRect().right > innerWidth + 1 && !el.closest('.timeline-rows, .table-wrap, pre'))
        .map((el) => `${el.tagName}.${el.className}`)
        .slice(0, 5),
    );
    expect(overflow).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(381);
    await saveScreenshot(page, 'trace-timeline-narrow.png', { fullPage: false });
    await page.close();
  });
});
