// A real hot standby of the test server: `pg_basebackup -R` of its cluster,
// started as a streaming replica on a port of its own, so read-path tests
// run against what a read replica in production is.
//
// The base backup comes over the replication protocol like any remote
// replica's, so the primary needs what streaming replication always needs:
// wal_level replica (Postgres's default), max_wal_senders > 0 and a
// `replication` line in pg_hba.conf for the test role (initdb writes one for
// 127.0.0.1). pg_basebackup must be of the server's major version or newer;
// Debian's live in /usr/lib/postgresql/<major>/bin. The embedded package
// (the local default) ships no pg_basebackup: for its server, which runs on
// this machine, the same copy is made with pg_backup_start/pg_backup_stop
// and a physical slot. As root, the tools and the standby run as the OS
// user `postgres`, as Postgres requires.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { withDatabase } from '../../../server/database/connection-strings.ts';
import { embeddedPostgresBinaries, firstLine, freePort, serverFlags, tail } from '../../../server/database/embedded-postgres.ts';

const run = promisify(execFile);

/** Why no replica could be started (a tool or a primary setting is missing). */
export class ReplicaUnavailableError extends Error {}

export interface StreamingReplica {
  /** The standby's `postgres` database, as the primary URL's user. */
  url: string;
  /** The same database name on the standby as `primaryDatabaseUrl` names on the primary. */
  urlFor(primaryDatabaseUrl: string): string;
  /** Resolves once the standby has replayed everything the primary had written when called. */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Settings a hot standby must have at least as high as its primary's, or it
 * refuses to start (the primary's `-c` flags are not in the copied config).
 */
const AT_LEAST_PRIMARY = [
  'max_connections',
  'max_worker_processes',
  'max_wal_senders',
  'max_prepared_transactions',
  'max_locks_per_transaction',
];

export async function startStreamingReplica(primaryUrl: string, options: { timeoutMs?: number } = {}): Promise<StreamingReplica> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const primary = postgres(primaryUrl, { max: 1, onnotice: () => {} });
  let dir: string | undefined;
  let slot: string | undefined;
  try {
    const settings = await primarySettings(primary);
    if (!['replica', 'logical'].includes(settings.wal_level!)) {
      throw new ReplicaUnavailableError(`the primary has wal_level = ${settings.wal_level}; a streaming replica needs replica or logical`);
    }
    if (Number(settings.max_wal_senders) < 1) throw new ReplicaUnavailableError('the primary has max_wal_senders = 0');
    const major = Math.floor(Number(settings.server_version_num) / 10_000);
    const { binDir, basebackup } = await binariesFor(major);
    const runAs = process.getuid?.() === 0 ? postgresUser() : undefined;
    const tool = (name: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
      run(path.join(binDir, name), args, { ...runAs, env: { ...process.env, LC_MESSAGES: 'C', ...env }, timeout: timeoutMs });

    dir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-replica-'));
    await chmod(dir, 0o755);
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    const dataDir = path.join(dir, 'data');
    const logFile = path.join(dir, 'server.log');
    const source = new URL(primaryUrl);
    if (basebackup) {
      try {
        // -R writes standby.signal and primary_conninfo; -X stream carries
        // the WAL written during the copy; -c fast starts at once.
        await tool(
          'pg_basebackup',
          [
            '-h',
            source.hostname,
            '-p',
            source.port || '5432',
            '-U',
            decodeURIComponent(source.username),
            '-D',
            dataDir,
            '-R',
            '-X',
            'stream',
            '-c',
            'fast',
            '-w',
          ],
          source.password ? { PGPASSWORD: decodeURIComponent(source.password) } : {},
        );
      } catch (error) {
        throw new ReplicaUnavailableError(`pg_basebackup of ${source.hostname}:${source.port} failed: ${firstLine(error)}`);
      }
    } else {
      slot = await copyWithBackupFunctions(primary, primaryUrl, dataDir, runAs);
    }
    const port = await freePort();
    const flags: Record<string, string> = {
      port: String(port),
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      hot_standby: 'on',
      // Queries on the standby are not cancelled by the replay of a vacuum
      // on the primary while a test reads.
      max_standby_streaming_delay: '-1',
    };
    for (const name of AT_LEAST_PRIMARY) flags[name] = settings[name]!;
    try {
      await tool('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverFlags(flags)]);
    } catch (error) {
      throw new ReplicaUnavailableError(`the standby did not start: ${firstLine(error)}\n${tail(logFile)}`);
    }
    const url = new URL(primaryUrl);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    const standbyUrl = withDatabase(url.toString(), 'postgres');
    const standby = postgres(standbyUrl, { max: 1, onnotice: () => {} });
    const replicaDir = dir;
    let stopped: Promise<void> | undefined;
    const replica: StreamingReplica = {
      url: standbyUrl,
      urlFor: (primaryDatabaseUrl) => withDatabase(standbyUrl, new URL(primaryDatabaseUrl).pathname.slice(1)),
      async caughtUp() {
        // The insert position, not the write position: with
        // synchronous_commit off a commit may not be written yet.
        const [{ lsn }] = await primary<[{ lsn: string }]>`select pg_current_wal_insert_lsn()::text as lsn`;
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const [row] = await standby<[{ done: boolean }]>`select coalesce(pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn, false) as done`;
          if (row.done) return;
          if (Date.now() > deadline) throw new Error(`the standby had not replayed up to ${lsn} after ${timeoutMs} ms\n${tail(logFile)}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      },
      stop: () =>
        (stopped ??= (async () => {
          await standby.end();
          await primary.end();
          await tool('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']).catch(() => {});
          if (slot) await dropSlot(primaryUrl, slot);
          await rm(replicaDir, { recursive: true, force: true });
        })()),
    };
    const [{ recovering }] = await standby<[{ recovering: boolean }]>`select pg_is_in_recovery() as recovering`;
    if (!recovering) {
      await replica.stop();
      throw new Error('the server started from the base backup is not in recovery: it is no standby');
    }
    return replica;
  } catch (error) {
    await primary.end();
    if (slot) await dropSlot(primaryUrl, slot);
    if (dir) await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Debian's tools of that major version (pg_basebackup), else the embedded
 * package's when it is that version: they have no pg_basebackup, so the
 * copy is made with the backup functions instead.
 */
async function binariesFor(major: number): Promise<{ binDir: string; basebackup: boolean }> {
  const debian = `/usr/lib/postgresql/${major}/bin`;
  if (existsSync(path.join(debian, 'pg_basebackup'))) return { binDir: debian, basebackup: true };
  const embedded = await embeddedPostgresBinaries();
  if (embedded.major === major) return { binDir: embedded.binDir, basebackup: false };
  throw new ReplicaUnavailableError(`no pg_basebackup for Postgres ${major} in ${debian} (Debian: apt-get install postgresql-${major})`);
}

/**
 * What pg_basebackup -R does, for a primary on this machine: the data
 * folder copied between pg_backup_start and pg_backup_stop, the backup
 * label written into the copy, and a standby.signal with primary_conninfo.
 * A physical slot keeps the WAL from the backup's start until the standby
 * has streamed it; its name is returned for dropping.
 */
async function copyWithBackupFunctions(
  primary: postgres.Sql,
  primaryUrl: string,
  dataDir: string,
  runAs: UserIds | undefined,
): Promise<string> {
  const slot = `tracegres_test_replica_${process.pid}_${Date.now()}`;
  const session = await primary.reserve();
  try {
    await session`select pg_create_physical_replication_slot(${slot}, true)`;
    const [{ data_directory: source }] = await session<
      [{ data_directory: string }]
    >`select current_setting('data_directory') as data_directory`;
    await session`select pg_backup_start('tracegres test replica', true)`;
    let label: string;
    try {
      // Files that vanish during the copy (a database another test drops)
      // are fine: replaying the WAL removes them on the standby too.
      await run('cp', ['-a', source, dataDir], { ...runAs }).catch((error: { stderr?: string }) => {
        const complaints = (error.stderr ?? '').trim().split('\n');
        if (!complaints.every((line) => line.includes('No such file or directory'))) throw error;
      });
    } finally {
      [{ labelfile: label }] = await session<[{ labelfile: string }]>`select labelfile from pg_backup_stop(true)`;
    }
    // What a copy must not take: the running server's pid file, its WAL
    // (the standby streams what it needs) and its slots.
    await run(
      'sh',
      [
        '-c',
        'cd "$1" && rm -rf postmaster.pid postmaster.opts server.log pg_replslot/* && find pg_wal -maxdepth 1 -type f -delete',
        'sh',
        dataDir,
      ],
      { ...runAs },
    );
    const url = new URL(primaryUrl);
    const conninfo = `host=${url.hostname} port=${url.port || '5432'} user=${decodeURIComponent(url.username)} password=${decodeURIComponent(url.password)}`;
    const write = async (file: string, text: string, append = false) => {
      await (append ? appendFile : writeFile)(path.join(dataDir, file), text);
      if (runAs) await chown(path.join(dataDir, file), runAs.uid, runAs.gid);
    };
    await write('backup_label', label!);
    await write('standby.signal', '');
    await write('postgresql.auto.conf', `primary_conninfo = '${conninfo.replaceAll("'", "''")}'\nprimary_slot_name = '${slot}'\n`, true);
    return slot;
  } catch (error) {
    await session`select pg_drop_replication_slot(${slot})`.catch(() => {});
    throw new Error(`copying the primary's data folder with the backup functions failed: ${firstLine(error)}`);
  } finally {
    session.release();
  }
}

async function dropSlot(primaryUrl: string, slot: string): Promise<void> {
  const sql = postgres(primaryUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = ${slot}`;
  } finally {
    await sql.end();
  }
}

async function primarySettings(sql: postgres.Sql): Promise<Record<string, string>> {
  const names = ['server_version_num', 'wal_level', ...AT_LEAST_PRIMARY];
  const rows = await sql<Array<{ name: string; setting: string }>>`select name, setting from pg_settings where name = any(${names})`;
  return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
}

type UserIds = { uid: number; gid: number };

function postgresUser(): UserIds {
  const id = (flag: string) => spawnSync('id', [flag, 'postgres']);
  if (id('-u').status !== 0) throw new ReplicaUnavailableError('running as root, the standby needs an OS user "postgres"');
  return { uid: Number(id('-u').stdout.toString().trim()), gid: Number(id('-g').stdout.toString().trim()) };
}
