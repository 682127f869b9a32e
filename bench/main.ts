// `npm run bench [-- --events N] [--only suite,suite]`: runs the benchmark
// suites against a real Postgres and prints their figures as JSON on stdout
// (progress goes to stderr). The server is BENCH_DATABASE_URL, else
// TEST_DATABASE_URL, else an embedded Postgres in a temporary folder.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { withDatabase } from '../server/database/connection-strings.ts';
import { startEmbeddedPostgres } from '../server/database/embedded-postgres.ts';
import { migrateDatabase } from '../server/database/migrate.ts';
import type { BenchContext, BenchDatabase, BenchSuite } from './context.ts';

const suites: Record<string, () => Promise<BenchSuite>> = {
  event_store: async () => (await import('./event-store.ts')).run,
  retention: async () => (await import('./retention.ts')).run,
  query_api: async () => (await import('./query-api.ts')).run,
  otlp: async () => (await import('./otlp.ts')).run,
  search: async () => (await import('./search.ts')).run,
  tempo: async () => (await import('./tempo.ts')).run,
  alerts: async () => (await import('./alerts.ts')).run,
  flame_and_live: async () => (await import('./flame-and-live.ts')).run,
  interop: async () => (await import('./interop.ts')).run,
  peers: async () => (await import('./peers.ts')).run,
  replica: async () => (await import('./replica.ts')).run,
  span_partitions: async () => (await import('./span-partitions.ts')).run,
  event_partitions: async () => (await import('./event-partitions.ts')).run,
};

const { values } = parseArgs({
  options: { events: { type: 'string', default: '1000000' }, only: { type: 'string' } },
});
const events = Number(values.events);
if (!Number.isInteger(events) || events < 1000) throw new Error('--events must be an integer >= 1000');
const selected = values.only ? values.only.split(',') : Object.keys(suites);
for (const name of selected) if (!suites[name]) throw new Error(`unknown suite ${name}; known: ${Object.keys(suites).join(', ')}`);

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

async function startServer(): Promise<{ url: string; stop(): Promise<void>; kind: string }> {
  const external = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (external) return { url: external, stop: async () => {}, kind: 'external' };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-bench-'));
  // As root, Postgres runs as the `postgres` user, which must enter this folder.
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'data'),
    persistent: false,
    settings: { shared_buffers: '1GB', max_wal_size: '4GB', checkpoint_timeout: '30min' },
  });
  return {
    url: server.url,
    kind: 'embedded',
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const server = await startServer();
let counter = 0;
const ctx: BenchContext = {
  serverUrl: server.url,
  events,
  log,
  async createDatabase(): Promise<BenchDatabase> {
    const name = `tracegres_bench_${process.pid}_${counter++}`;
    const admin = postgres(server.url, { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
    await admin.end();
    const url = withDatabase(server.url, name);
    await migrateDatabase(url);
    const sql = postgres(url, { max: 4, onnotice: () => {} });
    return {
      url,
      sql,
      async drop() {
        await sql.end();
        const dropper = postgres(server.url, { max: 1, onnotice: () => {} });
        await dropper.unsafe(`drop database if exists ${name} with (force)`);
        await dropper.end();
      },
    };
  },
};

const results: Record<string, unknown> = {};
try {
  const [version] = await postgres(server.url, {
    max: 1,
  })`select current_setting('server_version') as v, current_setting('shared_buffers') as sb`;
  for (const name of selected) {
    log(`suite ${name} (${events} events)`);
    results[name] = await (await suites[name]!())(ctx);
  }
  process.stdout.write(
    JSON.stringify(
      { events, postgres: { version: version!.v, shared_buffers: version!.sb, server: server.kind }, cpus: os.cpus().length, ...results },
      null,
      2,
    ) + '\n',
  );
} finally {
  await server.stop();
}
process.exit(0);
