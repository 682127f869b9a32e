// Serves the dashboard (dashboard/, a React app built with Vite) at `/`,
// with the SPA fallback: any other page path gets index.html and the app's
// router decides what to show.
//
// The build happens here, on the first request, when dashboard/dist is
// missing or older than the sources, so `npm install && npm start` needs no
// separate build step and a pulled change shows up on the next start.
//
// In the embedded default (a local secret that npm start generated) two
// development routes exist as well: GET /dev-token hands the page the local
// admin token npm start prints, and POST /dev/demo-data loads the demo data.
// They are never mounted when the operator configured a secret or key, nor
// on a bind other than loopback, and answer only requests whose Host (and
// Origin) name this server on a loopback name.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dashboard');
const DIST_DIR = path.join(DASHBOARD_DIR, 'dist');

export interface DashboardDevOptions {
  /** Signs the local development token offered to the page. */
  devToken(): Promise<string>;
  /** Loads the demo data; returns what the page shows afterwards. */
  loadDemo?(): Promise<unknown>;
}

export interface DashboardRouteOptions {
  /** Development routes, for the embedded default only. */
  dev?: DashboardDevOptions;
  /**
   * The address the server listens on. The development routes hand out an
   * admin token, so they exist only on a loopback bind.
   */
  bindHost?: string;
  /** Serve the build's source maps (development only). */
  sourceMaps?: boolean;
  log?(message: string): void;
}

export type Route = ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) & {
  /** Resolves once the built files are there (building them if needed). */
  ready(): Promise<void>;
};

// Paths the rest of the server answers; never the SPA's.
const SERVER_PATHS = /^\/(graphql|graphiql|health|ruru-static)(\/|$)/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

// Security headers for the page: it only ever talks to this server, so the
// policy can say exactly that.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

function isLoopbackAddress(address: string | undefined): boolean {
  return address === 'localhost' || address === '::1' || address === '::ffff:127.0.0.1' || /^127\.\d+\.\d+\.\d+$/.test(address ?? '');
}

export function createDashboardRoute(options: DashboardRouteOptions = {}): Route {
  let dev = options.dev;
  if (dev && !isLoopbackAddress(options.bindHost ?? '127.0.0.1')) {
    options.log?.(`development routes (/dev-token, /dev/demo-data) are off: HOST=${options.bindHost} is not a loopback address`);
    dev = undefined;
  }
  let building: Promise<void> | undefined;
  const ready = () => {
    building ??= ensureBuilt(options.log).catch((error) => {
      // A failed build is retried on the next request rather than cached.
      building = undefined;
      throw error;
    });
    return building;
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const pathname = url.pathname;
    if (SERVER_PATHS.test(pathname)) return false;

    if (dev && pathname === '/dev-token') {
      if (req.method !== 'GET') return methodNotAllowed(res, 'GET');
      // A page of another site cannot read this answer, but one that
      // rebinds its DNS name to 127.0.0.1 could: it sends its own Host.
      const origin = req.headers.origin;
      if (!loopbackOrigin(req) || (origin !== undefined && !ownOrigins(req).includes(origin))) {
        sendJson(res, 403, { error: 'forbidden' });
        return true;
      }
      sendJson(res, 200, { token: await dev.devToken(), role: 'admin' });
      return true;
    }
    if (dev?.loadDemo && pathname === '/dev/demo-data') {
      if (req.method !== 'POST') return methodNotAllowed(res, 'POST');
      // Only the page itself may trigger it: a cross-site form post carries
      // another Origin (or a simple content type, which JSON requests never use).
      if (
        !loopbackOrigin(req) ||
        !ownOrigins(req).includes(String(req.headers.origin)) ||
        !String(req.headers['content-type'] ?? '').startsWith('application/json')
      ) {
        sendJson(res, 403, { error: 'forbidden' });
        return true;
      }
      sendJson(res, 200, await dev.loadDemo());
      return true;
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    await ready();

    // A built file (hashed assets, favicon)?
    if (pathname !== '/' && !pathname.endsWith('/')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(pathname);
      } catch {
        // A malformed escape (`/%E0%A4%A`) is the client's mistake.
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('malformed URL');
        return true;
      }
      if (!options.sourceMaps && decoded.endsWith('.map')) return false;
      const file = path.join(DIST_DIR, path.normalize(decoded).replace(/^([/\\])+/, ''));
      if (file.startsWith(DIST_DIR + path.sep)) {
        const info = await stat(file).catch(() => undefined);
        if (info?.isFile()) {
          const immutable = file.startsWith(path.join(DIST_DIR, 'assets') + path.sep);
          sendFile(req, res, file, info.size, {
            'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
            ...PAGE_HEADERS,
          });
          return true;
        }
      }
      // A missing asset is a 404, not the page: a script tag must not get HTML.
      if (path.extname(pathname) !== '') return false;
    }

    // SPA fallback: page paths get index.html, only for browsers asking for HTML.
    const accept = String(req.headers.accept ?? '');
    if (pathname !== '/' && !accept.includes('text/html')) return false;
    const index = path.join(DIST_DIR, 'index.html');
    const info = await stat(index);
    sendFile(req, res, index, info.size, { 'cache-control': 'no-cache', ...PAGE_HEADERS });
    return true;
  };
  return Object.assign(route, { ready });
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: string, size: number, headers: Record<string, string>): void {
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': String(size),
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(file).pipe(res);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

function methodNotAllowed(res: ServerResponse, allow: string): true {
  res.writeHead(405, { allow }).end();
  return true;
}

/** The origins this server itself has, on the port the request came in on. */
function ownOrigins(req: IncomingMessage): string[] {
  return LOOPBACK_HOSTS.map((host) => `http://${host}:${req.socket.localPort}`);
}

/**
 * The request reached a loopback address and names one of the loopback
 * host names with this server's port, so no other site's name (DNS
 * rebinding) is behind it.
 */
function loopbackOrigin(req: IncomingMessage): boolean {
  return (
    isLoopbackAddress(req.socket.localAddress) && LOOPBACK_HOSTS.some((host) => req.headers.host === `${host}:${req.socket.localPort}`)
  );
}

/** Newest modification time of the files under `dir` (0 when it is missing). */
async function newestChange(dir: string, skip: (name: string) => boolean = () => false): Promise<number> {
  let newest = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (skip(entry.name)) continue;
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? await newestChange(full, skip) : (await stat(full)).mtimeMs);
  }
  return newest;
}

/**
 * Builds dashboard/dist unless it is newer than every source of the app.
 * Processes of one checkout (npm start, parallel test files) take turns
 * through a lock file, so two builds never empty each other's output.
 */
export async function ensureBuilt(log: (message: string) => void = () => {}): Promise<void> {
  const lock = path.join(
    os.tmpdir(),
    `tracegres-dashboard-build-${createHash('sha256').update(DASHBOARD_DIR).digest('hex').slice(0, 12)}.lock`,
  );
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock whose process is gone was left by a crash; one that outlives
      // the deadline is taken over rather than waited for forever.
      // (An empty lock is one being written this instant.)
      const holder = await readFile(lock, 'utf8').catch(() => '');
      if ((holder !== '' && !isRunning(Number(holder))) || Date.now() > deadline) await rm(lock, { force: true });
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    await buildIfStale(log);
  } finally {
    await rm(lock, { force: true });
  }
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function buildIfStale(log: (message: string) => void): Promise<void> {
  const built = await stat(path.join(DIST_DIR, 'index.html')).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (built > 0) {
    const sources = Math.max(
      await newestChange(
        DASHBOARD_DIR,
        (name) => name === 'dist' || name === 'e2e' || name === 'node_modules' || name.endsWith('.test.ts'),
      ),
      // The app imports the browser toolkit (ErrorWithCorrelation, tracedFetch).
      await newestChange(path.resolve(DASHBOARD_DIR, '../ts/client'), (name) => name.endsWith('.test.ts')),
    );
    if (built >= sources) return;
  }
  log('building the dashboard (dashboard/ -> dashboard/dist)...');
  const started = Date.now();
  // Vite is loaded only when a build is needed: it is large, and a server
  // with a current build never needs it.
  const { build } = await import('vite');
  await build({ configFile: path.join(DASHBOARD_DIR, 'vite.config.ts'), root: DASHBOARD_DIR, logLevel: 'warn' });
  log(`dashboard built in ${Date.now() - started} ms`);
}
