// tracing.archive_events: old events leave domain_events for the monthly
// archive, exactly once, in short batches, with every run recorded.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import {
  clientWithNotices,
  createLedger,
  first,
  ledgerState,
  resetRetentionState,
  seedEvents,
  storeState,
} from '../../helpers/event-ledger.ts';

const db = useTestDatabase();

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(() => resetRetentionState(db.sql));

async function lastRun(operation = 'archive') {
  const [run] = await db.sql`select * from tracing.retention_run_status where operation = ${operation} order by id desc limit 1`;
  return run!;
}

describe('archive_events', () => {
  it('moves events older than the horizon, keeps newer ones, and records the run', async () => {
    await seedEvents(db.sql, { count: 3000, ageDays: 120, tag: 'old' });
    await seedEvents(db.sql, { count: 1000, ageDays: 10, tag: 'new' });
    const before = await ledgerState(db.sql);

    const [result] = await db.sql`call tracing.archive_events(p_batch_size => 500)`;
    expect(Number(result!.events_moved)).toBe(3000);

    const state = await storeState(db.sql);
    expect(state).toEqual({ live: 1000, archived: 3000, distinctIds: 4000, checksum: before.checksum });
    const { oldLive } = first(
      await db.sql`select count(*)::int as "oldLive" from tracing.domain_events where created_at < now() - interval '90 days'`,
    );
    expect(oldLive).toBe(0);

    const run = await lastRun();
    expect(run).toMatchObject({ status: 'succeeded', dry_run: false, error: null });
    expect(Number(run.events_moved)).toBe(3000);
    expect(run.batches).toBeGreaterThan(1);
    expect(Number(run.blocks_done)).toBe(Number(run.blocks_total));
    expect(run.finished_at).not.toBeNull();
  });

  it('creates the partitions it needs, and the months ahead of the horizon, and indexes the filled ones', async () => {
    await seedEvents(db.sql, { count: 500, ageDays: 400 });
    await seedEvents(db.sql, { count: 500, ageDays: 100 });
    await db.sql`call tracing.archive_events()`;

    const partitions = await db.sql`select partition, from_at, to_at, indexed from tracing.archive_partitions order by from_at`;
    const { horizonMonth, aheadMonth, oldMonth } = first(
      await db.sql`
      select tracing.archive_month_start(now() - interval '90 days') as "horizonMonth",
             tracing.archive_month_start((now() - interval '90 days') + interval '3 months') as "aheadMonth",
             tracing.archive_month_start(now() - interval '400 days' + interval '12 hours') as "oldMonth"`,
    );
    const starts = partitions.map((p) => (p.from_at as Date).toISOString());
    expect(starts).toContain((horizonMonth as Date).toISOString());
    expect(starts).toContain((aheadMonth as Date).toISOString());
    expect(starts).toContain((oldMonth as Date).toISOString());
    // Every partition holding rows got its lookup indexes; empty ones wait.
    const { unindexedWithRows } = first(
      await db.sql`
      select count(*)::int as "unindexedWithRows" from tracing.archive_partitions p
       where not p.indexed and exists (select from tracing.domain_events_archive a where a.created_at >= p.from_at and a.created_at < p.to_at)`,
    );
    expect(unindexedWithRows).toBe(0);
    // Each row sits in the partition of its UTC month.
    const { misplaced } = first(
      await db.sql`
      select count(*)::int as misplaced from tracing.domain_events_archive a
       where a.tableoid::regclass::text <> 'tracing.' || tracing.archive_partition_name(tracing.archive_month_start(a.created_at))`,
    );
    expect(misplaced).toBe(0);
    const run = await lastRun();
    expect(run.partitions_created.length).toBeGreaterThanOrEqual(5);
    expect(run.partitions_indexed.length).toBeGreaterThanOrEqual(2);
  });

  it('uses the archive indexes for lookups by trace, correlation and session', async () => {
    await seedEvents(db.sql, { count: 2000, ageDays: 120 });
    await db.sql`call tracing.archive_events()`;
    await db.sql`analyze tracing.domain_events_archive`;
    for (const column of ['trace_id', 'correlation_id', 'session_id']) {
      const plan = await db.sql.unsafe(
        `explain select * from tracing.domain_events_archive where ${column} = '6f9619ff-8b86-d011-b42d-00c04fc964ff' order by created_at desc`,
      );
      expect(plan.map((r) => r['QUERY PLAN']).join('\n'), column).toMatch(new RegExp(`_${column}_idx`));
    }
  });

  it('dry run reports what would move and changes nothing', async () => {
    await seedEvents(db.sql, { count: 700, ageDays: 100 });
    await seedEvents(db.sql, { count: 300, ageDays: 5 });
    const { sql, notices } = clientWithNotices(db.url);
    try {
      const [result] = await sql`call tracing.archive_events(p_dry_run => true)`;
      expect(Number(result!.events_moved)).toBe(700);
    } finally {
      await sql.end();
    }
    expect(notices.join('\n')).toMatch(/dry run .*700 events/);
    expect(await storeState(db.sql)).toMatchObject({ live: 1000, archived: 0 });
    const run = await lastRun();
    expect(run).toMatchObject({ dry_run: true, status: 'succeeded' });
    expect(Object.values(run.details.events_by_month as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(700);
    expect(run.details.partitions_to_create.length).toBeGreaterThan(0);
  });

  it('takes p_older_than over the configured horizon, and reads the configured one otherwise', async () => {
    await seedEvents(db.sql, { count: 100, ageDays: 40 });
    await db.sql`call tracing.archive_events()`;
    expect((await storeState(db.sql)).archived).toBe(0);
    await db.sql`call tracing.archive_events(p_older_than => '30 days')`;
    expect((await storeState(db.sql)).archived).toBe(100);

    await seedEvents(db.sql, { count: 50, ageDays: 20 });
    await db.sql`update tracing.retention_settings set archive_after = '15 days'`;
    try {
      await db.sql`call tracing.archive_events()`;
      expect((await storeState(db.sql)).archived).toBe(150);
    } finally {
      await db.sql`update tracing.retention_settings set archive_after = '90 days'`;
    }
  });

  it('rejects bad arguments by name', async () => {
    await expect(db.sql`call tracing.archive_events(p_older_than => '-1 day')`).rejects.toThrow(/p_older_than must be a positive interval/);
    await expect(db.sql`call tracing.archive_events(p_batch_size => 0)`).rejects.toThrow(/p_batch_size must be at least 1/);
  });

  it('refuses to run inside a transaction block, before taking any lock', async () => {
    // 2D000 invalid_transaction_termination: by SQLSTATE, which lc_messages does not translate.
    await expect(db.sql.begin((tx) => tx`call tracing.archive_events()`)).rejects.toMatchObject({ code: '2D000' });
    const { held } = first(
      await db.sql`select count(*)::int as held from pg_locks
       where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())`,
    );
    expect(held).toBe(0);
  });

  it('skips, and records that it skipped, while another session holds the retention lock', async () => {
    await seedEvents(db.sql, { count: 100, ageDays: 100 });
    const holder = await db.sql.reserve();
    try {
      await holder`select pg_advisory_lock(tracing.retention_lock_key())`;
      const [result] = await db.sql`call tracing.archive_events()`;
      expect(Number(result!.events_moved)).toBe(0);
      expect(await lastRun()).toMatchObject({ status: 'skipped' });
      expect((await storeState(db.sql)).archived).toBe(0);
    } finally {
      await holder`select tracing.release_retention_lock()`;
      holder.release();
    }
  });

  it('fails loudly, moving nothing, when the archive lacks a column of domain_events', async () => {
    await seedEvents(db.sql, { count: 100, ageDays: 100 });
    await db.sql`alter table tracing.domain_events add column tenant_note text`;
    try {
      await expect(db.sql`call tracing.archive_events()`).rejects.toThrow(/lacks columns of tracing.domain_events.*tenant_note/);
      expect(await lastRun()).toMatchObject({ status: 'failed' });
      expect((await storeState(db.sql)).archived).toBe(0);
      // The failed run released the lock: the next one can work.
      const { held } = first(
        await db.sql`select count(*)::int as held from pg_locks
       where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())`,
      );
      expect(held).toBe(0);
    } finally {
      await db.sql`alter table tracing.domain_events drop column tenant_note`;
    }
  });

  it('leaves events written with an old created_at after the run started for the next run', async () => {
    // A backdated event is archived by a run, like any other old event.
    await seedEvents(db.sql, { count: 10, ageDays: 5 });
    await seedEvents(db.sql, { count: 10, ageDays: 3000, tag: 'backdated' });
    await db.sql`call tracing.archive_events()`;
    const state = await storeState(db.sql);
    expect(state).toMatchObject({ live: 10, archived: 10, distinctIds: 20 });
    expect(state.checksum).toBe((await ledgerState(db.sql)).checksum);
  });
});
