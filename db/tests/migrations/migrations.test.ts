// The schema a fresh database gets equals the one an upgraded database ends
// with, and re-applying db/functions changes nothing.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase, projectRoot, readMigrationSettings } from '../../../server/database/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

const execFileAsync = promisify(execFile);
const created: TestDatabase[] = [];
afterAll(async () => {
  for (const db of created) await db.drop();
});

async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  created.push(db);
  await db.sql.unsafe(`drop schema if exists tracing, api, graphile_migrate cascade`);
  return db;
}

// Everything a migration or a function file can create, as comparable text.
async function schemaSnapshot(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql`
    select 'column ' || c.table_schema || '.' || c.table_name || '.' || c.column_name || ' ' || c.data_type
           || ' ' || c.is_nullable || ' ' || coalesce(c.column_default, '') as item
      from information_schema.columns c where c.table_schema in ('tracing', 'api')
    union all
    select 'index ' || indexdef from pg_indexes where schemaname in ('tracing', 'api')
    union all
    select 'function ' || pg_get_functiondef(p.oid) || coalesce(array_to_string(p.proacl, ','), '')
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('tracing', 'api')
    union all
    select 'trigger ' || pg_get_triggerdef(t.oid) from pg_trigger t join pg_class c on c.oid = t.tgrelid
      join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('tracing', 'api') and not t.tgisinternal
    union all
    select 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd || ' '
           || array_to_string(roles, ',') || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '')
      from pg_policies where schemaname in ('tracing', 'api')
    union all
    select 'acl ' || c.oid::regclass || ' ' || coalesce(array_to_string(c.relacl, ','), '')
      from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('tracing', 'api')
    union all
    select 'comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '') || ' on ' || p.oid::regprocedure
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('tracing', 'api')
    order by 1`;
  return rows.map((r) => r.item as string);
}

describe('migrations', () => {
  it('lists every db/functions file in .gmrc once, in the order of their names', async () => {
    const settings = await readMigrationSettings();
    const files = (await readdir(path.join(projectRoot, 'db/functions'))).sort();
    const listed = (settings.afterAllMigrations as Array<{ file: string }>).map((a) => path.basename(a.file));
    expect(listed).toEqual(files);
    // watch applies the same list, read from afterAllMigrations.
    expect(settings.afterCurrent).toEqual([{ _: 'command', command: 'node db/apply-functions.mjs' }]);
  });

  it('applies the functions as watch does, through db/apply-functions.mjs', async () => {
    const db = await emptyDatabase();
    await migrateDatabase(db.url, { withoutFunctions: true });
    const [before] = await db.sql`select to_regprocedure('tracing.record_spans(jsonb)') as fn`;
    expect(before?.fn).toBeNull();
    const { stderr } = await execFileAsync(process.execPath, [path.join(projectRoot, 'db/apply-functions.mjs')], {
      env: { ...process.env, GM_DBURL: db.url },
    });
    expect(stderr).toBe('');
    const viaScript = await schemaSnapshot(db.sql);
    const reference = await emptyDatabase();
    await migrateDatabase(reference.url);
    expect(viaScript).toEqual(await schemaSnapshot(reference.sql));
  });

  it('re-applying the functions changes nothing', async () => {
    const db = await emptyDatabase();
    await migrateDatabase(db.url);
    const once = await schemaSnapshot(db.sql);
    await migrateDatabase(db.url);
    expect(await schemaSnapshot(db.sql)).toEqual(once);
  });

  it('an upgraded database ends with the same schema as a fresh one', async () => {
    const fresh = await emptyDatabase();
    await migrateDatabase(fresh.url);
    const expected = await schemaSnapshot(fresh.sql);

    const committed = (await readdir(path.join(projectRoot, 'db/migrations/committed'))).sort();
    // From every earlier release: the first k migrations (with that release
    // applied), then everything up to now.
    for (let k = 1; k < committed.length; k++) {
      const folder = await mkdtemp(path.join(os.tmpdir(), 'tracegres-migrations-'));
      try {
        await cp(path.join(projectRoot, 'db/migrations/committed'), path.join(folder, 'committed'), {
          recursive: true,
          filter: (src) => !committed.slice(k).includes(path.basename(src)),
        });
        const upgraded = await emptyDatabase();
        await migrateDatabase(upgraded.url, { migrationsFolder: folder, withoutFunctions: true });
        await migrateDatabase(upgraded.url);
        expect(await schemaSnapshot(upgraded.sql), `upgrade from migration ${k}`).toEqual(expected);
      } finally {
        await rm(folder, { recursive: true, force: true });
      }
    }
    expect(expected.length).toBeGreaterThan(20);
    // One full migration per earlier release: minutes on a busy machine.
  }, 600_000);
});
