// Ruru, the GraphQL explorer at /graphiql, in Debian's Chromium: its
// introspection query fits the budget, so the docs pane lists the api.
import { describe, expect, it } from 'vitest';
import { haveChromium, useBrowser } from './browser-harness.ts';

describe.skipIf(!haveChromium('Ruru'))('Ruru in Chromium', () => {
  const browser = useBrowser(async () => {});

  it('introspects the schema: the docs pane lists getTraceTimeline', async () => {
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on('response', async (response) => {
      if (response.url().endsWith('/graphql') && response.status() >= 400) refused.push(`${response.status()} ${await response.text()}`);
    });
    await page.goto(`${browser.url}/graphiql`);
    // The docs explorer opens from the sidebar button GraphiQL labels so.
    await page.getByRole('button', { name: /documentation explorer/i }).click();
    await page.getByText('Query', { exact: true }).first().click();
    const field = page.getByText('getTraceTimeline', { exact: true }).first();
    await field.waitFor({ state: 'visible', timeout: 20_000 });
    expect(await field.isVisible()).toBe(true);
    expect(refused).toEqual([]);
    await page.close();
  }, 60_000);
});
