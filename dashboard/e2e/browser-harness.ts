// What a Chromium test of a dashboard page needs: the real server (GraphQL
// and the dashboard route) on this file's test database, Debian's Chromium
// driven by playwright-core, requests to anything but the server refused,
// page errors collected, a signed-in page, and where screenshots go.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { useTestDatabase, type TestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier, signToken } from '../../server/auth/jwt.ts';
import { createDashboardRoute, type DashboardRouteOptions } from '../../server/dashboard-route.ts';
import { startHttpServer, type HttpServer, type HttpServerOptions } from '../../server/http-server.ts';

export const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.resolve(import.meta.dirname, '../../docs/screenshots/e2e');
const DOC_SCREENSHOTS = path.resolve(import.meta.dirname, '../../docs/screenshots');
const SECRET = 'dashboard-e2e-secret-long-enough-for-hs256';

/** True when Chromium is there; otherwise says why the file is skipped (and fails in CI). */
export function haveChromium(what: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing; CI must install Debian's chromium for the ${what} tests`);
  console.warn(`${what} tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);
  return false;
}

/**
 * Saves a screenshot of `page` as docs/screenshots/e2e/<name>: every run
 * does (that folder is ignored by git, so a test run leaves the checkout
 * clean). A picture the docs show (`shownInDocs`) also replaces
 * docs/screenshots/<name> when UPDATE_SCREENSHOTS is set.
 */
export async function saveScreenshot(
  page: Page,
  name: string,
  { fullPage = true, shownInDocs = false }: { fullPage?: boolean; shownInDocs?: boolean } = {},
): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage });
  if (shownInDocs && process.env.UPDATE_SCREENSHOTS) await copyFile(path.join(SCREENSHOTS, name), path.join(DOC_SCREENSHOTS, name));
}

export interface Browser {
  db: TestDatabase;
  readonly url: string;
  token(claims: { role: 'reader' | 'admin'; organization_id?: string; sub?: string }): Promise<string>;
  /** A new page whose errors fail the file. */
  newPage(): Promise<Page>;
  /** A page signed in with `token` (an admin's by default), opened at `at`. */
  signedIn(at?: string, token?: string): Promise<Page>;
}

export interface BrowserOptions {
  /** The dashboard route's options (the development routes, say). */
  dashboard?: (db: TestDatabase) => DashboardRouteOptions;
  /** Browser permissions, e.g. clipboard-read. */
  permissions?: string[];
  serverOptions?: Partial<HttpServerOptions>;
}

/** Registers the hooks; call inside a describe. `seed` fills the database first. */
export function useBrowser(seed: (db: TestDatabase) => Promise<void>, options: BrowserOptions = {}): Browser {
  const db = useTestDatabase();
  let http: HttpServer;
  let context: BrowserContext;
  let userDataDir: string;
  const foreignRequests: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    await seed(db);
    const dashboard = createDashboardRoute(options.dashboard?.(db));
    await dashboard.ready();
    http = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor: createTokenVerifier({ secret: SECRET }),
      routes: [dashboard],
      ...options.serverOptions,
    });
    userDataDir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-chromium-'));
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
        '--disable-quic',
      ],
      viewport: { width: 1280, height: 900 },
      permissions: options.permissions ?? [],
    });
    // The page must talk to nothing but its own server.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(http.url + '/') || url.startsWith('data:')) return route.continue();
      foreignRequests.push(url);
      return route.abort();
    });
    await mkdir(SCREENSHOTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await http?.close();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    expect(foreignRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  const token: Browser['token'] = (claims) => signToken(SECRET, claims);
  const newPage = async () => {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    return page;
  };
  return {
    db,
    get url() {
      return http.url;
    },
    token,
    newPage,
    async signedIn(at = '/', given?: string) {
      const page = await newPage();
      await page.goto(http.url + at);
      await page.fill('#token', given ?? (await token({ role: 'admin', sub: 'e2e' })));
      await page.click('button[type=submit]:has-text("Sign in")');
      await page.waitForSelector('header.top');
      return page;
    },
  };
}
