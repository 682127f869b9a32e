// Ruru, the GraphQL explorer at /graphiql, in Debian's Chromium: its
// introspection query fits the budget, so the docs pane lists the api.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier } from '../../server/auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../../server/http-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing; CI must install Debian's chromium for the browser tests`);

describe.skipIf(!haveChromium)('Ruru in Chromium', () => {
  const db = useTestDatabase();
  let http: HttpServer;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    http = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor: createTokenVerifier({ secret: 'ruru-e2e-secret-long-enough-for-hs256' }),
    });
    userDataDir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-ruru-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 120_000);
  afterAll(async () => {
    await context?.close();
    await http?.close();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  });

  it('introspects the schema: the docs pane lists getTraceTimeline', async () => {
    const page = await context.newPage();
    const refused: string[] = [];
    page.on('response', async (response) => {
      if (response.url().endsWith('/graphql') && response.status() >= 400) refused.push(`${response.status()} ${await response.text()}`);
    });
    await page.goto(`${http.url}/graphiql`);
    // The docs explorer opens from the sidebar button GraphiQL labels so.
    await page.getByRole('button', { name: /documentation explorer/i }).click();
    await page.getByText('Query', { exact: true }).first().click();
    const field = page.getByText('getTraceTimeline', { exact: true }).first();
    await field.waitFor({ state: 'visible', timeout: 20_000 });
    expect(await field.isVisible()).toBe(true);
    expect(refused).toEqual([]);
  }, 60_000);
});
