// pg_cron lives in one database per server (cron.database_name) and must be
// preloaded. CI loads it and sets TRACEGRES_REQUIRE_PG_CRON=1, so a missing
// pg_cron fails there; elsewhere (the embedded default has no pg_cron) the
// tests that need it are skipped with this reason printed.
import postgres from 'postgres';
import { inject } from 'vitest';
import { withDatabase } from '../../../server/database/connection-strings.ts';

export const PG_CRON_REQUIRED = process.env.TRACEGRES_REQUIRE_PG_CRON === '1';

/** The database that hosts pg_cron, or the reason it is unavailable. */
export async function pgCronDatabase(): Promise<{ url: string } | { reason: string }> {
  const serverUrl = inject('testServerUrl');
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`
      select current_setting('shared_preload_libraries') as preload,
             current_setting('cron.database_name', true) as database`;
    if (!String(row!.preload).includes('pg_cron')) {
      return {
        reason:
          'pg_cron is not in shared_preload_libraries of the test server (install postgresql-15-cron and preload it, or set TEST_DATABASE_URL to such a server)',
      };
    }
    const url = withDatabase(serverUrl, row!.database || 'postgres');
    const cron = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await cron`create extension if not exists pg_cron`;
    } finally {
      await cron.end();
    }
    return { url };
  } finally {
    await sql.end();
  }
}
