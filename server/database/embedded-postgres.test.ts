// The embedded Postgres: what a crashed start leaves behind, its generated
// password, folders the `postgres` OS user cannot enter, and exit codes.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres } from './embedded-postgres.ts';

const moduleUrl = new URL('./embedded-postgres.ts', import.meta.url).href;
const root = await mkdtemp(path.join(os.tmpdir(), 'tracegres-embedded-'));
await chmod(root, 0o755);
afterAll(() => rm(root, { recursive: true, force: true }));

const lines: string[] = [];
const log = (line: string) => lines.push(line);

/** Starts a cluster from another Node process, which prints `up` once it runs. */
async function startInChild(dataDir: string, port: number): Promise<ChildProcess> {
  const script = `const { startEmbeddedPostgres } = await import(${JSON.stringify(moduleUrl)});
    await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: ${port}, persistent: true, passwordFile: ${JSON.stringify(`${dataDir}.password`)} });
    console.log('up'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      output += d;
      if (output.includes('up')) resolve();
    });
    child.stderr!.on('data', (d) => (output += d));
    child.once('exit', (code) => reject(new Error(`child exited with ${code}: ${output}`)));
  });
  return child;
}

async function canQuery(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end();
  }
}

describe('embedded Postgres', () => {
  it('stops the server a killed start left running, instead of failing on postmaster.pid', async () => {
    const dataDir = path.join(root, 'crashed', 'postgres');
    const port = await freePort();
    const crashed = await startInChild(dataDir, port);
    crashed.kill('SIGKILL'); // No shutdown: its Postgres is now an orphan.
    await new Promise((resolve) => crashed.once('exit', resolve));

    lines.length = 0;
    const again = await startEmbeddedPostgres({ dataDir, port, persistent: true, passwordFile: `${dataDir}.password`, log });
    try {
      expect(lines.join('\n')).toContain('stopping the server an earlier start left running');
      expect(await canQuery(again.url)).toBe(true);
    } finally {
      await again.stop();
    }
  }, 120_000);

  it('refuses, with one clear line, a data folder whose Postgres a live process still runs', async () => {
    const dataDir = path.join(root, 'busy', 'postgres');
    const owner = await startInChild(dataDir, await freePort());
    try {
      await expect(
        startEmbeddedPostgres({ dataDir, port: await freePort(), persistent: true, passwordFile: `${dataDir}.password` }),
      ).rejects.toThrow(`another tracegres (pid ${owner.pid}) is running the Postgres of`);
    } finally {
      owner.kill('SIGTERM');
      await new Promise((resolve) => owner.once('exit', resolve));
      // Its server is an orphan now; the next start cleans it up.
      const cleanup = await startEmbeddedPostgres({
        dataDir,
        port: await freePort(),
        persistent: true,
        passwordFile: `${dataDir}.password`,
      });
      await cleanup.stop();
    }
  }, 120_000);

  it('generates the superuser password, keeps it 0600, and refuses the old fixed one', async () => {
    const dataDir = path.join(root, 'password', 'postgres');
    const passwordFile = path.join(root, 'password', 'postgres-password');
    const port = await freePort();
    const first = await startEmbeddedPostgres({ dataDir, port, persistent: true, passwordFile });
    const password = await readFile(passwordFile, 'utf8');
    try {
      expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect((await stat(passwordFile)).mode & 0o777).toBe(0o600);
      expect(first.url).toContain(encodeURIComponent(password));
      expect(await canQuery(first.url)).toBe(true);
      expect(await canQuery(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`)).toBe(false);
      // A cluster made before passwords were generated has the fixed one.
      const sql = postgres(first.url, { max: 1, onnotice: () => {} });
      await sql`alter role postgres password 'postgres'`;
      await sql.end();
    } finally {
      await first.stop();
    }
    await rm(passwordFile);

    lines.length = 0;
    const upgraded = await startEmbeddedPostgres({ dataDir, port, persistent: true, passwordFile, log });
    try {
      const generated = await readFile(passwordFile, 'utf8');
      expect(generated).not.toBe(password);
      expect(lines.join('\n')).toContain('the fixed superuser password was replaced by a generated one');
      expect(await canQuery(upgraded.url)).toBe(true);
      expect(await canQuery(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`)).toBe(false);
    } finally {
      await upgraded.stop();
    }
  }, 120_000);

  it.runIf(process.getuid?.() === 0)(
    'runs, as root, from a folder the postgres OS user cannot enter',
    async () => {
      const privateDir = await mkdtemp(path.join(root, 'private-')); // 0700, owned by root
      expect((await stat(privateDir)).mode & 0o777).toBe(0o700);
      const server = await startEmbeddedPostgres({ dataDir: path.join(privateDir, 'data'), persistent: false });
      try {
        expect(await canQuery(server.url)).toBe(true);
      } finally {
        await server.stop();
      }
    },
    120_000,
  );

  it('leaves a failing exit code alone (a library exit hook once turned failing test runs into exit 0)', async () => {
    const script = `await import(${JSON.stringify(moduleUrl)}); process.exitCode = 3;`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: path.dirname(fileURLToPath(import.meta.url)),
      stdio: 'ignore',
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(3);
  });
});
