// tracing.purge_archive: whole archive months past the purge horizon are
// dropped (never deleted row by row); off unless configured.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import { clientWithNotices, createLedger, first, resetRetentionState, seedEvents } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(async () => {
  await resetRetentionState(db.sql);
  await db.sql`update tracing.retention_settings set purge_after = null, archive_after = '90 days'`;
  await seedEvents(db.sql, { count: 300, ageDays: 500, tag: 'ancient' });
  await seedEvents(db.sql, { count: 200, ageDays: 200, tag: 'old' });
  await seedEvents(db.sql, { count: 100, ageDays: 10, tag: 'live' });
  await db.sql`call tracing.archive_events()`;
});

const runHorizon = async (runId: unknown) =>
  (await db.sql`select horizon from tracing.retention_runs where id = ${runId as string}`)[0]!.horizon as Date;

const archivedTags = async () =>
  (await db.sql`select event_data->>'tag' as tag, count(*)::int as n from tracing.domain_events_archive group by 1 order by 1`).map(
    (r) => `${r.tag}:${r.n}`,
  );

describe('purge_archive', () => {
  it('is off by default and says so', async () => {
    const { sql, notices } = clientWithNotices(db.url);
    try {
      await sql`call tracing.purge_archive()`;
    } finally {
      await sql.end();
    }
    expect(notices.join('\n')).toMatch(/purge is off/);
    expect(await archivedTags()).toEqual(['ancient:300', 'old:200']);
  });

  it('drops the months entirely past the horizon, with a dry run first', async () => {
    const [dry] = await db.sql`call tracing.purge_archive(p_older_than => '300 days', p_dry_run => true)`;
    expect(Number(dry!.events_dropped)).toBe(300);
    expect(await archivedTags()).toEqual(['ancient:300', 'old:200']);
    const [dryRun] = await db.sql`select * from tracing.retention_runs where id = ${dry!.run_id}`;
    expect(dryRun!.details.partitions_to_drop.map((p: { events: number }) => p.events).reduce((a: number, b: number) => a + b)).toBe(300);

    const partitionsBefore = await db.sql`select partition, to_at from tracing.archive_partitions`;
    const [result] = await db.sql`call tracing.purge_archive(p_older_than => '300 days')`;
    expect(Number(result!.events_dropped)).toBe(300);
    expect(await archivedTags()).toEqual(['old:200']);

    const [run] = await db.sql`select * from tracing.retention_runs where id = ${result!.run_id}`;
    expect(run).toMatchObject({ operation: 'purge', status: 'succeeded', dry_run: false });
    const dropped = partitionsBefore.filter((p) => (p.to_at as Date) <= run!.horizon).map((p) => p.partition);
    expect([...run!.partitions_dropped].sort()).toEqual(dropped.sort());
    for (const name of dropped) {
      const { exists } = first(await db.sql`select to_regclass(${'tracing.' + name}) is not null as exists`);
      expect(exists).toBe(false);
    }
  });

  it('keeps a month that still holds events newer than the horizon, whole', async () => {
    // A horizon one second after the newest ancient event: every ancient
    // event is older than it, but their month reaches past it.
    const { olderThan } = first(
      await db.sql`
      select (now() - (max(created_at) + interval '1 second'))::text as "olderThan"
        from tracing.domain_events_archive where event_data->>'tag' = 'ancient'`,
    );
    const [result] = await db.sql`call tracing.purge_archive(p_older_than => ${olderThan}::interval)`;
    const { left, olderLeft } = first(
      await db.sql`
      select count(*)::int as left, count(*) filter (where created_at < ${await runHorizon(result!.run_id)})::int as "olderLeft"
        from tracing.domain_events_archive where event_data->>'tag' = 'ancient'`,
    );
    // No row-by-row deletes: what is left of the month is all of it.
    expect(left).toBeGreaterThan(0);
    expect(olderLeft).toBe(left);
  });

  it('runs as part of run_retention once purge_after is set', async () => {
    await db.sql`update tracing.retention_settings set purge_after = '300 days'`;
    await db.sql`call tracing.run_retention()`;
    expect(await archivedTags()).toEqual(['old:200']);
    const ops = await db.sql`select operation, status from tracing.retention_runs order by id`;
    expect(ops.map((r) => `${r.operation}:${r.status}`)).toEqual(['archive:succeeded', 'archive:succeeded', 'purge:succeeded']);
  });

  it('refuses a purge horizon inside the archive horizon', async () => {
    await expect(db.sql`update tracing.retention_settings set purge_after = '30 days'`).rejects.toThrow(
      /retention_settings_purge_after_beyond_archive/,
    );
  });
});
