// tracing.archive_events on a live table partitioned by month: a whole
// month older than the horizon moves to the archive as a partition (the same
// table, renamed, its indexes kept), and falls back to the row batches when
// a restore pins one of its events, its archive month already has rows or
// its lock is not granted within a second.
// Either way live + archive hold exactly the events written.
import postgres from 'postgres';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import { partitionEventsByMonth } from '../../helpers/monthly-partitions.ts';
import { createLedger, first, ledgerState, resetRetentionState, seedEvents, storeState } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();

beforeAll(async () => {
  await createLedger(db.sql);
});

// As a table partitioned months ago: the partition an in-place upgrade made
// of everything before it (empty here) gives way to one partition a month,
// from eight months back to the months ahead.
beforeEach(async () => {
  await resetRetentionState(db.sql);
  await partitionEventsByMonth(db.sql, 8, 2);
});

async function monthOf(ageDays: number) {
  return first(
    await db.sql`
      select tracing.live_partition_name('tracing.domain_events', tracing.archive_month_start(now() - make_interval(days => ${ageDays}))) as live,
             tracing.archive_partition_name(tracing.archive_month_start(now() - make_interval(days => ${ageDays}))) as archive`,
  ) as { live: string; archive: string };
}

async function lastRun() {
  return first(await db.sql`select * from tracing.retention_runs where operation = 'archive' order by id desc limit 1`);
}

async function expectExactlyTheLedger() {
  const ledger = await ledgerState(db.sql);
  const state = await storeState(db.sql);
  expect(state.live + state.archived).toBe(ledger.count);
  expect(state.distinctIds).toBe(ledger.count);
  expect(state.checksum).toBe(ledger.checksum);
  return state;
}

describe('archive_events over monthly partitions', () => {
  it('moves whole months older than the horizon as partitions, without rewriting them, and the rest row by row', async () => {
    // 200 and 160 days ago: months that ended before the 90-day horizon.
    await seedEvents(db.sql, { count: 3000, ageDays: 200, tag: 'month-a' });
    await seedEvents(db.sql, { count: 2000, ageDays: 160, tag: 'month-b' });
    await seedEvents(db.sql, { count: 500, ageDays: 10, tag: 'new' });
    await db.sql`update tracing.domain_events set event_metadata = event_metadata || jsonb_build_object('idempotency_key', 'k-' || id)
                  where event_data->>'tag' = 'month-a' and (event_data->>'n')::int <= 10`;
    await db.sql`update public.event_ledger l set event_metadata = e.event_metadata from tracing.domain_events e where e.id = l.id`;
    const a = await monthOf(200);
    const b = await monthOf(160);
    const [before] = await db.sql`
      select (select oid from pg_class where relname = ${a.live}) as a, (select oid from pg_class where relname = ${b.live}) as b`;

    const [result] = await db.sql`call tracing.archive_events(p_batch_size => 500)`;
    const state = await expectExactlyTheLedger();
    expect(state.live).toBe(500);
    expect(Number(result!.events_moved)).toBe(5000);

    const run = await lastRun();
    expect(run.status).toBe('succeeded');
    expect(run.details.partitions_moved).toEqual(expect.arrayContaining([a.archive, b.archive]));
    // The same tables, now archive partitions, indexed under the archive's names.
    const [after] = await db.sql`
      select (select oid from pg_class where relname = ${a.archive}) as a, (select oid from pg_class where relname = ${b.archive}) as b`;
    expect(after).toEqual(before);
    const moved = await db.sql`select partition, indexed from tracing.archive_partitions where partition in (${a.archive}, ${b.archive})`;
    expect(moved).toEqual(
      expect.arrayContaining([
        { partition: a.archive, indexed: true },
        { partition: b.archive, indexed: true },
      ]),
    );
    const { live } = first(
      await db.sql`select count(*)::int as live from tracing.partition_bounds('tracing.domain_events') b
                    join pg_class c on c.oid = b.partition where c.relname in (${a.live}, ${b.live})`,
    );
    expect(live).toBe(0);
    // Their idempotency keys left with them.
    expect(await db.sql`select * from tracing.domain_event_by_idempotency_key('k-1')`).toEqual([]);
    const { keys } = first(await db.sql`select count(*)::int as keys from tracing.domain_event_idempotency_keys`);
    expect(keys).toBe(0);
    // Archived rows carry when they were archived.
    const { stamped } = first(
      await db.sql`select bool_and(archived_at is not null) as stamped from tracing.domain_events_archive where event_data->>'tag' = 'month-a'`,
    );
    expect(stamped).toBe(true);
  });

  it('loses and doubles nothing while writers insert into the months it moves', async () => {
    await seedEvents(db.sql, { count: 5000, ageDays: 200, tag: 'old' });
    await seedEvents(db.sql, { count: 5000, ageDays: 160, tag: 'old' });
    // Writers keep writing new events and events of those very months.
    let writing = true;
    let written = 0;
    const clients = [0, 1, 2].map(() => postgres(db.url, { max: 1, onnotice: () => {} }));
    const writers = clients.map(async (sql, w) => {
      for (let i = 0; writing; i++) {
        await seedEvents(sql, { count: 1 + (i % 3), ageDays: i % 2 === 0 ? 200 - (i % 40) : 0, tag: `writer-${w}` });
        written++;
      }
    });
    try {
      await new Promise((r) => setTimeout(r, 100));
      await db.sql`call tracing.archive_events(p_batch_size => 500)`;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      writing = false;
      await Promise.all(writers);
      await Promise.all(clients.map((c) => c.end()));
    }
    expect(written).toBeGreaterThan(10);
    await expectExactlyTheLedger();
    const run = await lastRun();
    expect(run.status).toBe('succeeded');
    expect(run.details.partitions_moved.length).toBeGreaterThanOrEqual(1);
    // What was written into a moved month meanwhile went to the default
    // partition, and the next run takes it.
    await db.sql`call tracing.archive_events()`;
    await expectExactlyTheLedger();
    const { oldLive } = first(
      await db.sql`select count(*)::int as "oldLive" from tracing.domain_events where created_at < now() - interval '90 days'`,
    );
    expect(oldLive).toBe(0);
  });

  it('says in a dry run which months would move whole', async () => {
    await seedEvents(db.sql, { count: 100, ageDays: 200 });
    const [result] = await db.sql`call tracing.archive_events(p_dry_run => true)`;
    expect(Number(result!.events_moved)).toBe(100);
    const run = await lastRun();
    expect(run.details.partitions_to_move_whole).toContain(`tracing.${(await monthOf(200)).live}`);
    expect((await storeState(db.sql)).archived).toBe(0);
  });

  it('leaves the month the horizon falls in to move whole later, unless archive_whole_months is off', async () => {
    // The 10th and the 20th of last month; a horizon on the 14th.
    const { early, late } = first(
      await db.sql`
        select extract(day from now() - (tracing.archive_month_start(now()) - interval '1 month' + interval '9 days'))::int as early,
               extract(day from now() - (tracing.archive_month_start(now()) - interval '1 month' + interval '19 days'))::int as late`,
    ) as { early: number; late: number };
    await seedEvents(db.sql, { count: 200, ageDays: early });
    await seedEvents(db.sql, { count: 100, ageDays: late });
    const olderThan = `${early - 4} days`;
    await db.sql`call tracing.archive_events(p_older_than => ${olderThan}::interval)`;
    expect(await expectExactlyTheLedger()).toMatchObject({ live: 300, archived: 0 });
    await db.sql`update tracing.retention_settings set archive_whole_months = false`;
    try {
      await db.sql`call tracing.archive_events(p_older_than => ${olderThan}::interval)`;
    } finally {
      await db.sql`update tracing.retention_settings set archive_whole_months = true`;
    }
    expect(await expectExactlyTheLedger()).toMatchObject({ live: 100, archived: 200 });
  });

  it('moves a month holding an event a restore pins row by row, and keeps that event live', async () => {
    await seedEvents(db.sql, { count: 1000, ageDays: 200, tag: 'pinned-month' });
    const { id } = first(await db.sql`select min(id) as id from tracing.domain_events`);
    await db.sql`insert into tracing.restored_events (event_id, keep_until) values (${id}, now() + interval '1 day')`;
    const a = await monthOf(200);

    await db.sql`call tracing.archive_events(p_batch_size => 300)`;
    const state = await expectExactlyTheLedger();
    expect(state).toMatchObject({ live: 1, archived: 999 });
    const run = await lastRun();
    expect(run.details.partitions_moved ?? []).not.toContain(a.archive);
    expect(JSON.stringify(run.details.partitions_not_moved)).toMatch(/restore keeps live/);
    const [pinned] = await db.sql`select tableoid::regclass::text as partition from tracing.domain_events where id = ${id}`;
    expect(pinned!.partition).toBe(`tracing.${a.live}`);
  });

  it("releases a month's idempotency keys in the transaction that moves it, and keeps them when the move rolls back", async () => {
    await seedEvents(db.sql, { count: 20, ageDays: 200, tag: 'keyed' });
    await db.sql`update tracing.domain_events set event_metadata = event_metadata || jsonb_build_object('idempotency_key', 'k-' || id)`;
    const a = await monthOf(200);
    const countKeys = 'select count(*)::int as n from tracing.domain_event_idempotency_keys';
    expect(first(await db.sql.unsafe(countKeys)).n).toBe(20);
    const rolledBack = new Error('roll back');
    await expect(
      db.sql.begin(async (tx) => {
        const { partition, from, to } = first(
          await tx`
            select b.partition::text as partition, b.from_at::text as "from", b.to_at::text as "to"
              from tracing.partition_bounds('tracing.domain_events') b
              join pg_class c on c.oid = b.partition where c.relname = ${a.live}`,
        );
        await tx.unsafe(`alter table ${partition} add constraint month_bounds check (created_at >= '${from}' and created_at < '${to}')`);
        const { name } = first(
          await tx`select tracing.move_event_month_to_archive(${partition}::regclass, ${from}::timestamptz, ${to}::timestamptz, 'month_bounds') as name`,
        );
        expect(name).toBe(a.archive);
        // Gone when the move commits: no later step a cancel could skip.
        expect(first(await tx.unsafe(countKeys)).n).toBe(0);
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);
    expect(first(await db.sql.unsafe(countKeys)).n).toBe(20);
    expect((await storeState(db.sql)).live).toBe(20);
  });

  it('moves a month row by row when its lock is not granted within a second, and says so', async () => {
    await seedEvents(db.sql, { count: 300, ageDays: 200, tag: 'locked' });
    const a = await monthOf(200);
    // A reader's open transaction on the month: adding its bounds check waits
    // for the lock, gives up after a second, and the run goes on.
    const reader = await db.sql.reserve();
    try {
      await reader`begin`;
      await reader.unsafe(`lock table tracing.${a.live} in access share mode`);
      await db.sql`call tracing.archive_events(p_batch_size => 100)`;
    } finally {
      await reader`rollback`;
      reader.release();
    }
    expect(await expectExactlyTheLedger()).toMatchObject({ live: 0, archived: 300 });
    const run = await lastRun();
    expect(run.status).toBe('succeeded');
    expect(run.details.partitions_not_moved.map((m: { partition: string }) => m.partition)).toEqual([`tracing.${a.live}`]);
    expect(run.details.partitions_moved ?? []).not.toContain(a.archive);
    expect(Number(run.events_moved)).toBe(300);
  });

  it('moves a month row by row when its archive month already holds events', async () => {
    // Events on the 10th and the 20th of the month of 200 days ago; a first
    // run whose horizon falls on the 14th archives the first ones, row by row.
    const { early, late } = first(
      await db.sql`
        select extract(day from now() - (tracing.archive_month_start(now() - interval '200 days') + interval '9 days'))::int as early,
               extract(day from now() - (tracing.archive_month_start(now() - interval '200 days') + interval '19 days'))::int as late`,
    ) as { early: number; late: number };
    await seedEvents(db.sql, { count: 400, ageDays: early, tag: 'early' });
    await seedEvents(db.sql, { count: 300, ageDays: late, tag: 'late' });
    // Row by row inside a month: archive_whole_months off.
    await db.sql`update tracing.retention_settings set archive_whole_months = false`;
    try {
      await db.sql`call tracing.archive_events(p_older_than => ${`${early - 4} days`}::interval)`;
    } finally {
      await db.sql`update tracing.retention_settings set archive_whole_months = true`;
    }
    expect(await expectExactlyTheLedger()).toMatchObject({ live: 300, archived: 400 });

    await db.sql`call tracing.archive_events(p_batch_size => 100)`;
    expect(await expectExactlyTheLedger()).toMatchObject({ live: 0, archived: 700 });
    const run = await lastRun();
    expect(JSON.stringify(run.details.partitions_not_moved)).toMatch(/already holds events/);
    expect(Number(run.events_moved)).toBe(300);
  });
});
