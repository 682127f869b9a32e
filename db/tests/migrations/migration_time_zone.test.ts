// Migrations run in UTC whatever the server's or the database's TimeZone
// (.gmrc's pgSettings): migration 000020 counts the old spans table's bound
// and the months after it with timestamptz arithmetic, which follows the
// session's zone. Upgraded in a New York session in December, the old table
// ended on December 31st, not January 1st, and the months after it were
// hours or days off their UTC months (which months go wrong depends on the
// month of the upgrade: in New York, March, May, July, October, November and
// December).
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase, readMigrationSettings } from '../../../server/database/migrate.ts';
import { migrateToBefore } from '../helpers/earlier-schema.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

let db: TestDatabase | undefined;
afterAll(async () => {
  await db?.drop();
});

describe('migrations and the time zone', () => {
  it('are run in UTC, so a database in another zone gets partitions on UTC months', async () => {
    expect((await readMigrationSettings()).pgSettings).toMatchObject({ timezone: 'UTC' });

    // The schema as it was before the spans were partitioned (000020).
    db = await createTestDatabase();
    await migrateToBefore(db, '-spans-partitioned-by-month-of-start-time-');
    // Every new session of this database starts in New York's zone.
    const [{ name }] = (await db.sql`select current_database() as name`) as unknown as [{ name: string }];
    await db.sql.unsafe(`alter database "${name}" set timezone to 'America/New_York'`);

    await migrateDatabase(db.url);

    const misaligned = await db.sql`
      select b.partition::text, b.from_at, b.to_at
        from unnest(array['tracing.spans', 'tracing.domain_events']::regclass[]) as t(parent)
        cross join lateral tracing.partition_bounds(t.parent) b
       where b.from_at is distinct from tracing.archive_month_start(b.from_at)
          or b.to_at is distinct from tracing.archive_month_start(b.to_at)`;
    expect(misaligned).toEqual([]);
    // The upkeep makes the months after the migration's own, none skipped
    // as overlapped by a partition off its month.
    await db.sql`select tracing.ensure_live_partitions_ahead('tracing.spans')`;
    const [ahead] = await db.sql`
      select max(b.to_at) = ((tracing.archive_month_start(now()) at time zone 'UTC') + make_interval(months => s.months_ahead + 1)) at time zone 'UTC' as ok
        from tracing.partition_bounds('tracing.spans') b, tracing.retention_settings s
       where not b.is_default group by s.months_ahead`;
    expect(ahead!.ok).toBe(true);
  }, 300_000);
});
