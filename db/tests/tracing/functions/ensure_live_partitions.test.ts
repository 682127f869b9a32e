// tracing.ensure_live_partitions: the monthly UTC partitions of any table
// partitioned by range on a timestamptz column, created ahead of need,
// never over a month another partition covers or whose rows wait in the
// default partition. Each case works on a table of its own in a rolled-back
// transaction.
import { describe, expect, it } from 'vitest';
import { expectArgumentErrors } from '../../helpers/argument-errors.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();
type Tx = import('postgres').TransactionSql;

async function createParent(tx: Tx): Promise<void> {
  await tx.unsafe(`
    create table tracing.partitioned_probe (
      id bigint not null,
      at timestamptz not null,
      note text not null default 'probe' constraint partitioned_probe_note_not_blank check (note <> '')
    ) partition by range (at);
    create index partitioned_probe_id_idx on tracing.partitioned_probe (id);
    create table tracing.partitioned_probe_default partition of tracing.partitioned_probe default;`);
}

async function monthNames(tx: Tx, offsets: number[]): Promise<string[]> {
  const rows = await tx`
    select tracing.live_partition_name('tracing.partitioned_probe',
             tracing.archive_month_start(now()) + make_interval(months => k)) as name
      from unnest(${offsets}::int[]) with ordinality as o(k, n) order by n`;
  return rows.map((r) => r.name as string);
}

describe('tracing.ensure_live_partitions', () => {
  it('creates the current month through the month of p_through, once, each a UTC month with RLS, the parent indexes and checks', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await createParent(tx);
      // A zone far from UTC: bounds are still UTC months.
      await tx`set local timezone = 'Pacific/Chatham'`;
      const created = await tx`select * from tracing.ensure_live_partitions('tracing.partitioned_probe', now() + interval '2 months')`;
      expect(created.map((r) => r.ensure_live_partitions)).toEqual(await monthNames(tx, [0, 1, 2]));
      expect(await tx`select * from tracing.ensure_live_partitions('tracing.partitioned_probe', now() + interval '2 months')`).toEqual([]);

      const parts = await tx`
        select b.partition::text, b.from_at, b.to_at, c.relrowsecurity as rls,
               (select count(*)::int from pg_index x where x.indrelid = b.partition) as indexes,
               (select count(*)::int from pg_constraint k where k.conrelid = b.partition and k.contype = 'c') as checks
          from tracing.partition_bounds('tracing.partitioned_probe') b join pg_class c on c.oid = b.partition
         where not b.is_default order by b.from_at`;
      expect(parts).toHaveLength(3);
      for (const p of parts) {
        const from = p.from_at as Date;
        expect(from.getUTCDate(), p.partition).toBe(1);
        expect(from.getUTCHours(), p.partition).toBe(0);
        expect((p.to_at as Date).getUTCDate(), p.partition).toBe(1);
        expect(p, p.partition).toMatchObject({ rls: true, indexes: 1, checks: 1 });
      }
      // A row of each month lands in its month's partition, not the default.
      const [placed] = await tx`
        with ins as (
          insert into tracing.partitioned_probe (id, at)
          select k, tracing.archive_month_start(now()) + make_interval(months => k) + interval '1 day'
            from generate_series(0, 2) k
          returning tableoid::regclass::text as t)
        select count(*) filter (where t like '%default')::int as in_default from ins`;
      expect(placed!.in_default).toBe(0);
    });
  });

  it('moves the rows of a month waiting in the default partition into its new partition, exactly once', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await createParent(tx);
      await tx`insert into tracing.partitioned_probe (id, at)
               select k, tracing.archive_month_start(now()) + interval '2 months' + k * interval '1 hour'
                 from generate_series(1, 50) k
               union all select 0, now() + interval '3 years'`;
      await tx`select * from tracing.ensure_live_partitions('tracing.partitioned_probe', now() + interval '2 months')`;
      const [second] = await monthNames(tx, [2]);
      const placed = await tx`
        select tableoid::regclass::text as t, count(*)::int as n, count(distinct id)::int as ids
          from tracing.partitioned_probe group by 1 order by 1`;
      expect(placed).toEqual([
        { t: `tracing.${second}`, n: 50, ids: 50 },
        { t: 'tracing.partitioned_probe_default', n: 1, ids: 1 },
      ]);
      expect((await tx`select current_setting('tracegres.moving_partition_rows', true) as s`)[0]!.s).toBe('off');
    });
  });

  it('skips a month another partition covers', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await createParent(tx);
      // As a table partitioned in place: one partition of everything before a
      // time, here the middle of next month.
      const [mid] = await tx`select tracing.archive_month_start(now()) + interval '1 month' + interval '14 days' as at`;
      await tx.unsafe(`create table tracing.partitioned_probe_before partition of tracing.partitioned_probe
                         for values from (minvalue) to ('${(mid!.at as Date).toISOString()}')`);
      const created = await tx`select * from tracing.ensure_live_partitions('tracing.partitioned_probe', now() + interval '3 months')`;
      expect(created.map((r) => r.ensure_live_partitions)).toEqual(await monthNames(tx, [2, 3]));
    });
  });

  it("names a new partition's copies of the parent's indexes after them", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await createParent(tx);
      await tx`select * from tracing.ensure_live_partitions('tracing.partitioned_probe', now())`;
      const [month] = await monthNames(tx, [0]);
      const indexes = await tx`select indexname from pg_indexes where tablename = ${month!}`;
      expect(indexes.map((r) => r.indexname)).toEqual([`partitioned_probe_id_idx_${month!.slice('partitioned_probe_'.length)}`]);
      // Postgres' own names, as an index added to the parent later gets them, are renamed on request.
      await tx`create index partitioned_probe_note_idx on tracing.partitioned_probe (note)`;
      const renamed = await tx`select * from tracing.name_partition_indexes('tracing.partitioned_probe')`;
      expect(renamed.map((r) => r.name_partition_indexes).sort()).toEqual(
        [
          `partitioned_probe_note_idx_${month!.slice('partitioned_probe_'.length)}`,
          'partitioned_probe_note_idx_default',
          // The default partition was made with Postgres' names too.
          'partitioned_probe_id_idx_default',
        ].sort(),
      );
    });
  });

  it('keeps domain_events and spans retention_settings.months_ahead months ahead, each event partition with its unique id index', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`update tracing.retention_settings set months_ahead = 5`;
      const tables = await tx`select t::text as t from tracing.live_partitioned_tables() t`;
      expect(tables.map((r) => r.t)).toEqual(['tracing.domain_events', 'tracing.spans']);
      for (const parent of ['tracing.domain_events', 'tracing.spans']) {
        await tx`select * from tracing.ensure_live_partitions_ahead(${parent}::regclass)`;
        const [last] = await tx`
          select max(b.to_at) = ((tracing.archive_month_start(now()) at time zone 'UTC') + interval '6 months') at time zone 'UTC' as ok
            from tracing.partition_bounds(${parent}::regclass) b where not b.is_default`;
        expect(last!.ok, parent).toBe(true);
      }
      const [unindexed] = await tx`
        select count(*)::int as n from tracing.partition_bounds('tracing.domain_events') b
         where not exists (select from pg_indexes i where i.tablename = (select relname from pg_class where oid = b.partition)
                              and i.indexdef like 'CREATE UNIQUE INDEX % (id)')`;
      expect(unindexed!.n).toBe(0);
    });
  });

  it('rejects bad arguments by name', async () => {
    await expectArgumentErrors(
      (q) => inRolledBackTransaction(db.sql, (tx) => tx.unsafe(q)),
      [
        ['select tracing.ensure_live_partitions(null, now())', /p_parent/],
        ["select tracing.ensure_live_partitions('tracing.retention_runs', now())", /p_parent must name a table partitioned by range/],
        ["select tracing.ensure_live_partitions('tracing.domain_events_archive', null)", /p_through/],
        [
          "select tracing.ensure_live_partitions('tracing.domain_events_archive', now() + interval '6 years')",
          /p_through must be at most five years ahead/,
        ],
      ],
    );
  });
});
