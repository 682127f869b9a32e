// Applies the db/functions files to the database graphile-migrate is
// working on (GM_DBURL), in the order .gmrc's afterAllMigrations lists them:
// what `graphile-migrate watch` runs after current.sql, so that list is the
// only one. Each file runs as one multi-statement query, as graphile-migrate
// runs its sql actions.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import JSON5 from 'json5';
import postgres from 'postgres';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const url = process.env.GM_DBURL;
if (!url) {
  console.error('apply-functions: GM_DBURL is not set (graphile-migrate sets it for command actions)');
  process.exit(1);
}
const settings = JSON5.parse(await readFile(path.join(root, '.gmrc'), 'utf8'));
const migrations = path.join(root, settings.migrationsFolder);
const sql = postgres(url, { max: 1, onnotice: () => {} });
try {
  for (const action of settings.afterAllMigrations) {
    const file = path.resolve(migrations, action.file);
    try {
      await sql.unsafe(await readFile(file, 'utf8'));
    } catch (error) {
      console.error(`apply-functions: ${path.relative(root, file)}: ${error.message}`);
      process.exitCode = 1;
      break;
    }
  }
} finally {
  await sql.end();
}
