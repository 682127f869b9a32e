// A fresh, fully migrated database per test file, cloned from the template
// that global-setup.ts migrated once.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, inject } from 'vitest';
import { withDatabase } from '../../../server/database/connection-strings.ts';

export interface TestDatabase {
  /** Connection string of this database, as its owner (a superuser). */
  url: string;
  name: string;
  /** A postgres.js client connected as the owner. */
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject('testServerUrl');
  const template = inject('testTemplateDatabase');
  const name = `tracegres_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name} template ${template}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, name);
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  return {
    url,
    name,
    sql,
    async drop() {
      await sql.end();
      const dropper = postgres(serverUrl, { max: 1, onnotice: () => {} });
      try {
        await dropper.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

/**
 * Registers beforeAll/afterAll hooks that create and drop this file's
 * database; read `.sql` / `.url` inside tests.
 */
export function useTestDatabase(): TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  const current = () => {
    if (!db) throw new Error('the test database exists only inside tests (beforeAll has not run)');
    return db;
  };
  return {
    get url() {
      return current().url;
    },
    get name() {
      return current().name;
    },
    get sql() {
      return current().sql;
    },
    drop: () => current().drop(),
  };
}

/**
 * Runs `body` in a transaction that is always rolled back, so tests in one
 * file cannot see each other's rows (Supabase-style SQL tests).
 */
export async function inRolledBackTransaction<T>(sql: postgres.Sql, body: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  let result: T | undefined;
  const rollback = new Error('rollback');
  try {
    await sql.begin(async (tx) => {
      result = await body(tx);
      throw rollback;
    });
  } catch (error) {
    if (error !== rollback) throw error;
  }
  return result as T;
}
