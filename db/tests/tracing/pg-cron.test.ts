// pg_cron runs SQL jobs against a tracegres database: the scheduling path
// retention relies on.
import postgres from 'postgres';
import { beforeAll, describe, expect, it } from 'vitest';
import { PG_CRON_REQUIRED, pgCronDatabase } from '../helpers/pg-cron.ts';
import { useTestDatabase } from '../helpers/test-database.ts';

const db = useTestDatabase();
let cron: { url: string } | { reason: string };

beforeAll(async () => {
  cron = await pgCronDatabase();
  if ('reason' in cron) {
    if (PG_CRON_REQUIRED) throw new Error(`pg_cron required (TRACEGRES_REQUIRE_PG_CRON=1): ${cron.reason}`);
    console.warn(`skipping pg_cron tests: ${cron.reason}`);
  }
});

describe('pg_cron', () => {
  it('runs a scheduled job in a tracegres database', { timeout: 90_000 }, async (context) => {
    if ('reason' in cron) return context.skip(cron.reason);
    const sql = postgres(cron.url, { max: 1, onnotice: () => {} });
    const job = `tracegres_test_${db.name}`;
    try {
      await sql`select cron.schedule_in_database(${job}, '* * * * *',
        $$insert into tracing.domain_events (stream_type, stream_id, event_type) values ('cron', 'probe', 'cron.ran')$$,
        ${db.name})`;
      // Debian's pg_cron 1.4 schedules by the minute (no seconds syntax).
      const deadline = Date.now() + 75_000;
      let ran = 0;
      while (Date.now() < deadline && ran === 0) {
        await new Promise((r) => setTimeout(r, 250));
        [{ ran }] = (await db.sql`select count(*)::int as ran from tracing.domain_events where event_type = 'cron.ran'`) as unknown as [{ ran: number }];
      }
      expect(ran).toBeGreaterThan(0);
    } finally {
      await sql`select cron.unschedule(${job}) where exists (select from cron.job where jobname = ${job})`;
      await sql.end();
    }
  });
});
