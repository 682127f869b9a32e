// The dashboard route without a browser: what it serves, what it leaves to
// the rest of the server, and the development routes' guards.
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardRoute } from './dashboard-route.ts';

async function serve(route: ReturnType<typeof createDashboardRoute>): Promise<{ server: Server; url: string }> {
  const server = createServer(async (req, res) => {
    if (!(await route(req, res))) res.writeHead(404, { 'content-type': 'text/plain' }).end('not the dashboard');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

/** A request with headers fetch() will not let a caller set (Host). */
function rawGet(base: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = request({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

const html = { accept: 'text/html,application/xhtml+xml' };

describe('the dashboard route', () => {
  let plain: { server: Server; url: string };
  let dev: { server: Server; url: string };
  let demoLoads = 0;

  beforeAll(async () => {
    const route = createDashboardRoute();
    await route.ready();
    plain = await serve(route);
    dev = await serve(
      createDashboardRoute({
        sourceMaps: true,
        dev: {
          devToken: async () => 'local-token',
          loadDemo: async () => ({ loaded: ++demoLoads }),
        },
      }),
    );
  }, 120_000);
  afterAll(async () => {
    for (const s of [plain, dev]) await new Promise((resolve) => s?.server.close(resolve));
  });

  it('serves the page at / with a policy that allows only this server', async () => {
    const response = await fetch(`${plain.url}/`, { headers: html });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    const body = await response.text();
    expect(body).toContain('<div id="root">');
    // Every script and stylesheet is a local file.
    const assets = [...body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((a) => !a.startsWith('data:'));
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect(asset.startsWith('/')).toBe(true);
      const file = await fetch(plain.url + asset);
      expect(file.status).toBe(200);
      expect(file.headers.get('cache-control')).toContain('immutable');
    }
  });

  it('answers page paths with index.html (SPA fallback), but not API paths or missing files', async () => {
    const trace = await fetch(`${plain.url}/trace/4bf92f3577b34da6a3ce929d0e0e4736`, { headers: html });
    expect(trace.status).toBe(200);
    expect(await trace.text()).toContain('<div id="root">');
    for (const path of ['/graphql', '/graphiql', '/health', '/assets/missing-file.js', '/trace/x?json']) {
      const response = await fetch(plain.url + path, { headers: path.includes('json') ? { accept: 'application/json' } : html });
      expect(await response.text(), path).toBe('not the dashboard');
    }
  });

  it('never serves files outside the build', async () => {
    for (const path of ['/..%2fpackage.json', '/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fvite.config.ts']) {
      const response = await fetch(plain.url + path, { headers: { accept: '*/*' } });
      expect(await response.text(), path).toBe('not the dashboard');
    }
  });

  it('has no development routes unless the server runs the embedded default', async () => {
    expect(await (await fetch(`${plain.url}/dev-token`, { headers: { accept: 'application/json' } })).text()).toBe('not the dashboard');
    expect(
      await (
        await fetch(`${plain.url}/dev/demo-data`, { method: 'POST', headers: { 'content-type': 'application/json', origin: plain.url } })
      ).text(),
    ).toBe('not the dashboard');
    expect(await (await fetch(`${dev.url}/dev-token`)).json()).toEqual({ token: 'local-token', role: 'admin' });
  });

  it('answers a malformed URL with 400, not 500', async () => {
    const response = await fetch(`${plain.url}/%E0%A4%A`, { headers: html });
    expect(response.status).toBe(400);
  });

  it('serves built files with the page policy, and no source maps unless asked to', async () => {
    const page = await (await fetch(`${plain.url}/`, { headers: html })).text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(page)![1]!;
    const file = await fetch(plain.url + script);
    expect(file.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(file.headers.get('x-content-type-options')).toBe('nosniff');
    const { readdir } = await import('node:fs/promises');
    // The build writes maps (dashboard/vite.config.ts); production does not serve them.
    const map = (await readdir(new URL('../dashboard/dist/assets/', import.meta.url))).find((name) => name.endsWith('.map'));
    expect(map).toBeDefined();
    expect(await (await fetch(`${plain.url}/assets/${map}`)).text()).toBe('not the dashboard');
    expect((await fetch(`${dev.url}/assets/${map}`)).status).toBe(200);
  });

  it('hands out the development token only to a loopback Host naming this port, and never cross-origin', async () => {
    const port = new URL(dev.url).port;
    const get = (headers: Record<string, string>) => rawGet(dev.url, '/dev-token', headers);
    expect((await get({ host: 'evil.com' })).status).toBe(403);
    expect((await get({ host: `evil.com:${port}` })).status).toBe(403);
    expect((await get({ host: 'localhost:1' })).status).toBe(403);
    expect((await get({ host: `localhost:${port}`, origin: 'http://evil.com' })).status).toBe(403);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) expect((await get({ host })).status, host).toBe(200);
    expect((await get({ host: `localhost:${port}`, origin: `http://localhost:${port}` })).status).toBe(200);
  });

  it('refuses the development routes on a bind other than loopback, and says so', async () => {
    const logged: string[] = [];
    const route = createDashboardRoute({ bindHost: '0.0.0.0', log: (m) => logged.push(m), dev: { devToken: async () => 'local-token' } });
    const open = await serve(route);
    try {
      expect(await (await fetch(`${open.url}/dev-token`)).text()).toBe('not the dashboard');
      expect(logged.join('\n')).toMatch(/development routes .* are off: HOST=0\.0\.0\.0 is not a loopback address/);
    } finally {
      await new Promise((resolve) => open.server.close(resolve));
    }
  });

  it('loads demo data only for a same-origin JSON post', async () => {
    const post = (headers: Record<string, string>) => fetch(`${dev.url}/dev/demo-data`, { method: 'POST', headers, body: '{}' });
    expect((await post({ 'content-type': 'application/json', origin: 'http://evil.example' })).status).toBe(403);
    expect((await post({ 'content-type': 'text/plain', origin: dev.url })).status).toBe(403);
    expect((await post({ 'content-type': 'application/json' })).status).toBe(403);
    // Origin and Host agreeing is not enough: both come from the caller.
    const port = new URL(dev.url).port;
    const rebound = await rawGet(
      dev.url,
      '/dev/demo-data',
      { host: `evil.com:${port}`, origin: `http://evil.com:${port}`, 'content-type': 'application/json' },
      'POST',
    );
    expect(rebound.status).toBe(403);
    expect(demoLoads).toBe(0);
    const ok = await post({ 'content-type': 'application/json', origin: dev.url });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ loaded: 1 });
    expect((await fetch(`${dev.url}/dev/demo-data`)).status).toBe(405);
  });
});
