// A test database at the schema as it was before a committed migration: for
// tests of what that migration does to a database that holds data.
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { migrateDatabase, projectRoot } from '../../../server/database/migrate.ts';
import type { TestDatabase } from './test-database.ts';

/**
 * Migrates `db` (emptied first) through the committed migrations before the
 * one whose file name contains `migration`, without the function files.
 */
export async function migrateToBefore(db: TestDatabase, migration: string): Promise<void> {
  const committed = (await readdir(path.join(projectRoot, 'db/migrations/committed'))).sort();
  const first = committed.findIndex((name) => name.includes(migration));
  if (first <= 0) throw new Error(`no committed migration after the first is named like ${migration}`);
  await db.sql.unsafe(`drop schema if exists tracing, api, graphile_migrate cascade`);
  const folder = await mkdtemp(path.join(os.tmpdir(), 'tracegres-migrations-'));
  try {
    await cp(path.join(projectRoot, 'db/migrations/committed'), path.join(folder, 'committed'), {
      recursive: true,
      filter: (src) => !committed.slice(first).includes(path.basename(src)),
    });
    await migrateDatabase(db.url, { migrationsFolder: folder, withoutFunctions: true });
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
