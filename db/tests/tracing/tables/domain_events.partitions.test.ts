// tracing.domain_events is partitioned by month of created_at (UTC): an
// event of any time is written (its month's partition, or the default one),
// time-bounded reads touch only the months they ask for, ids stay unique and
// continue from one sequence, and an idempotency key is unique per
// organization across all months.
import { describe, expect, it } from 'vitest';
import { nestedPlans } from '../../helpers/nested-plans.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();
type Tx = import('postgres').TransactionSql;

async function insertAt(
  tx: Tx,
  createdAt: string,
  metadata: Record<string, unknown> = {},
  organizationId: string | null = null,
  // The writer role may read id and created_at only, not the partition.
  asWriter = false,
) {
  const [row] = await tx.unsafe(
    // The writer role may not set created_at either: 'default' leaves it out.
    `insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, organization_id
                                        ${createdAt === 'default' ? '' : ', created_at'})
     values ('order', 'o-1', 'order.placed', $1::text::jsonb, $2::uuid ${createdAt === 'default' ? '' : `, ${createdAt}`})
     returning id, created_at${asWriter ? '' : ', tableoid::regclass::text as partition'}`,
    [JSON.stringify(metadata), organizationId],
  );
  return row as unknown as { id: string; created_at: Date; partition: string };
}

async function explain(tx: Tx, query: string): Promise<string> {
  return (await tx.unsafe(`explain ${query}`)).map((r) => r['QUERY PLAN']).join('\n');
}

describe('tracing.domain_events partitions', () => {
  it('has a partition for this month, the months ahead, and a default one, each with RLS and a unique id index', async () => {
    const parts = await db.sql`
      select b.partition::text as name, b.is_default, c.relrowsecurity as rls,
             exists (select from pg_index x where x.indrelid = b.partition and x.indisunique and x.indnatts = 1
                      and x.indkey[0] = (select attnum from pg_attribute where attrelid = b.partition and attname = 'id')) as unique_id
        from tracing.partition_bounds('tracing.domain_events') b join pg_class c on c.oid = b.partition`;
    expect(parts.filter((p) => p.is_default)).toHaveLength(1);
    expect(parts.length).toBeGreaterThanOrEqual(4);
    for (const p of parts) expect(p, p.name).toMatchObject({ rls: true, unique_id: true });
    // Reached only through tracing.domain_events, the old table included.
    const [direct] = await db.sql`
      select count(*)::int as n from tracing.partition_bounds('tracing.domain_events') b, unnest(array['tracegres_anonymous', 'tracegres_writer']) r
       where has_table_privilege(r, b.partition, 'select') or has_any_column_privilege(r, b.partition, 'select, insert, update')`;
    expect(direct!.n).toBe(0);
    const [ahead] = await db.sql`
      select max(b.to_at) > tracing.archive_month_start(now()) + interval '2 months' as ok
        from tracing.partition_bounds('tracing.domain_events') b where not b.is_default`;
    expect(ahead!.ok).toBe(true);
  });

  it('writes an event of any time: past months, this month, months ahead, and years ahead into the default partition', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rows = [
        await insertAt(tx, `now() - interval '3 years'`),
        await insertAt(tx, 'now()'),
        await insertAt(tx, `tracing.archive_month_start(now()) + interval '1 month' + interval '2 days'`),
        await insertAt(tx, `now() + interval '4 years'`),
      ];
      expect(rows[3]!.partition).toBe('tracing.domain_events_default');
      const [next] = await tx`
        select tracing.live_partition_name('tracing.domain_events', tracing.archive_month_start(now()) + interval '1 month') as name`;
      expect(rows[2]!.partition).toBe(`tracing.${next!.name}`);
      // One sequence for all: ids increase in write order.
      const ids = rows.map((r) => BigInt(r.id));
      expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
      const [distinct] = await tx`
        select count(distinct id)::int as n from tracing.domain_events where id = any(${rows.map((r) => r.id)}::bigint[])`;
      expect(distinct!.n).toBe(4);
    });
  });

  it('lets the writer role write through the id sequence but never choose an id', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_writer`;
      const row = await insertAt(tx, 'default', {}, null, true);
      expect(Number(row.id)).toBeGreaterThan(0);
      await expect(
        tx`insert into tracing.domain_events (id, stream_type, stream_id, event_type) values (1, 'order', 'o', 'order.placed')`,
      ).rejects.toMatchObject({ code: '42501' });
    });
  });

  it('refuses a second event with an idempotency key its organization holds, in any month, and frees the key when the event leaves', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const first = await insertAt(tx, `now() - interval '2 years'`, { idempotency_key: 'wf/1/charge' });
      for (const at of ['now()', `now() + interval '40 days'`, `now() + interval '5 years'`]) {
        await tx`savepoint dup`;
        await expect(insertAt(tx, at, { idempotency_key: 'wf/1/charge' })).rejects.toMatchObject({
          code: '23505',
          constraint_name: 'domain_events_idempotency_key_idx',
        });
        await tx`rollback to savepoint dup`;
      }
      // The writer, who may not read event_metadata, meets the same refusal.
      await tx`set local role tracegres_writer`;
      await tx`savepoint dup`;
      await expect(insertAt(tx, 'default', { idempotency_key: 'wf/1/charge' }, null, true)).rejects.toMatchObject({
        code: '23505',
        constraint_name: 'domain_events_idempotency_key_idx',
      });
      await tx`rollback to savepoint dup`;
      const [found] = await tx`select id from tracing.domain_event_by_idempotency_key('wf/1/charge')`;
      expect(found!.id).toBe(first.id);
      // Another organization's key is its own.
      await tx`reset role`;
      await insertAt(tx, `now() + interval '40 days'`, { idempotency_key: 'wf/1/charge' }, '0a000000-0000-4000-8000-00000000000a');
      await tx`delete from tracing.domain_events where id = ${first.id}`;
      expect(await tx`select id from tracing.domain_event_by_idempotency_key('wf/1/charge')`).toEqual([]);
      await insertAt(tx, `now() + interval '40 days'`, { idempotency_key: 'wf/1/charge' });
    });
  });

  it('moves a key with an update of the key, and keeps it when an update moves the event to another month', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const event = await insertAt(tx, 'now()', { idempotency_key: 'a' });
      await tx`update tracing.domain_events set event_metadata = '{"idempotency_key": "b"}' where id = ${event.id}`;
      expect(await tx`select id from tracing.domain_event_by_idempotency_key('a')`).toEqual([]);
      expect(await tx`select id from tracing.domain_event_by_idempotency_key('b')`).toEqual([{ id: event.id }]);
      await tx`update tracing.domain_events set created_at = now() + interval '40 days' where id = ${event.id}`;
      expect(await tx`select id from tracing.domain_event_by_idempotency_key('b')`).toEqual([{ id: event.id }]);
      await tx`truncate tracing.domain_events`;
      expect(await tx`select count(*)::int as n from tracing.domain_event_idempotency_keys`).toEqual([{ n: 0 }]);
    });
  });

  // A whole month moves to the archive with the keys whose created_at is in
  // that month (tracing.move_event_month_to_archive): the key's created_at
  // must be its event's after any update of created_at.
  it("keeps a key's created_at its event's through updates within a partition and across partitions", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const event = await insertAt(tx, `tracing.archive_month_start(now()) + interval '1 day'`, { idempotency_key: 'a' });
      const keyAndEvent = async () => {
        const [row] = await tx`
          select k.created_at as key_created_at, e.created_at, e.tableoid::regclass::text as partition, l.created_at as found_created_at
            from tracing.domain_events e
            join tracing.domain_event_idempotency_keys k on k.event_id = e.id
            cross join tracing.domain_event_by_idempotency_key(k.idempotency_key) l
           where e.id = ${event.id}`;
        expect(row!.key_created_at).toEqual(row!.created_at);
        expect(row!.found_created_at).toEqual(row!.created_at);
        return row!;
      };
      const updates = [
        // The same month, then another month, then years ahead (the default
        // partition), within the default partition, and with a new key.
        ["created_at + interval '2 days'", event.partition],
        ["created_at + interval '40 days'", null],
        ["now() + interval '5 years'", 'tracing.domain_events_default'],
        ["now() + interval '6 years'", 'tracing.domain_events_default'],
      ] as const;
      let previous = event.created_at;
      for (const [to, partition] of updates) {
        await tx.unsafe(`update tracing.domain_events set created_at = ${to} where id = $1`, [event.id]);
        const row = await keyAndEvent();
        expect(row.created_at).not.toEqual(previous);
        if (partition) expect(row.partition).toBe(partition);
        else expect(row.partition).not.toBe(event.partition);
        previous = row.created_at;
      }
      await tx`update tracing.domain_events set created_at = created_at + interval '1 day', event_metadata = '{"idempotency_key": "b"}'
                where id = ${event.id}`;
      const moved = await keyAndEvent();
      expect(moved.created_at).not.toEqual(previous);
      expect(await tx`select event_id from tracing.domain_event_idempotency_keys`).toEqual([{ event_id: event.id }]);
    });
  });

  it('reads only the months a time-bounded query asks for', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const [next] = await tx`
        select tracing.live_partition_name('tracing.domain_events', tracing.archive_month_start(now()) + interval '1 month') as name,
               tracing.archive_month_start(now()) + interval '1 month' as from_at`;
      const from = (next!.from_at as Date).toISOString();
      const plan = await explain(
        tx,
        `select * from tracing.domain_events where created_at >= '${from}' and created_at < '${from}'::timestamptz + interval '10 days'`,
      );
      expect(plan).toContain(next!.name as string);
      expect(plan).not.toMatch(/domain_events_default|domain_events_before_/);
      expect(plan.match(/on domain_events_\w+/g)).toHaveLength(1);
    });
  });

  it("prunes inside the API: failed events of a time range read only that range's months", async () => {
    const [next] = await db.sql`
      select tracing.live_partition_name('tracing.domain_events', tracing.archive_month_start(now()) + interval '1 month') as name,
             tracing.archive_month_start(now()) + interval '1 month' as from_at`;
    const from = (next!.from_at as Date).toISOString();
    const plans = (
      await nestedPlans(db.url, `select * from api.get_failed_events($1::timestamptz, $1::timestamptz + interval '7 days', null, 20)`, [
        from,
      ])
    ).join('\n');
    expect(plans).toContain(next!.name as string);
    expect(plans).not.toMatch(/domain_events_before_|domain_events_default/);
  });
});
