// The migration that partitions tracing.domain_events by month, run on a
// database whose domain_events is still a plain table holding a million
// events: every event is still there exactly once, unchanged, in the
// partition the old table became; ids continue from where they were; the
// idempotency keys of the old events still refuse a duplicate; what was
// bound to the old table (a view) reads the new one.
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../../server/database/migrate.ts';
import { migrateToBefore } from '../helpers/earlier-schema.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

const EVENTS = 1_000_000;
const created: TestDatabase[] = [];
afterAll(async () => {
  for (const db of created) await db.drop();
});

async function snapshot(db: TestDatabase) {
  const [row] = await db.sql`
    select count(*)::int as count, count(distinct id)::int as ids, max(id)::text as max_id,
           sum(hashtextextended(e::text, 0)::numeric)::text as checksum,
           count(*) filter (where event_metadata ? 'idempotency_key')::int as keyed
      from tracing.domain_events e`;
  return row!;
}

describe('partitioning domain_events in place', () => {
  it(`keeps ${EVENTS.toLocaleString('en')} events exactly once and unchanged, and goes on from them`, async () => {
    const db = await createTestDatabase();
    created.push(db);
    await migrateToBefore(db, '-domain-events-partitioned-by-month-');

    // A year and more of events, every 50th with an idempotency key, a third
    // of them an organization's, and a few written three months ahead (a
    // client's clock).
    await db.sql.unsafe(`
      insert into tracing.domain_events
        (stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at, correlation_id, processing_error)
      select 'order', 'o-' || g, 'order.placed', jsonb_build_object('n', g),
             case when g % 50 = 0 then jsonb_build_object('idempotency_key', 'k-' || (g / 50)) else '{}' end,
             case when g % 3 = 0 then '0a000000-0000-4000-8000-00000000000a'::uuid end,
             case when g % 250000 = 0 then now() + interval '3 months'
                  else now() - (g % 400) * interval '1 day' - (g % 86400) * interval '1 second' end,
             md5('c' || (g / 5))::uuid,
             case when g % 100 = 0 then 'declined' end
        from generate_series(1, ${EVENTS}) as g`);
    await db.sql`create view public.order_events as select id, created_at from tracing.domain_events where stream_type = 'order'`;
    const before = await snapshot(db);
    expect(before).toMatchObject({ count: EVENTS, ids: EVENTS, keyed: EVENTS / 50 });

    const started = performance.now();
    await migrateDatabase(db.url);
    const seconds = (performance.now() - started) / 1000;
    console.log(`partitioning ${EVENTS} events in place, with the functions applied after it: ${seconds.toFixed(1)} s`);

    const [kind] = await db.sql`select relkind from pg_class where oid = 'tracing.domain_events'::regclass`;
    expect(kind!.relkind).toBe('p');
    expect(await snapshot(db)).toEqual(before);

    // All in the old table, now the partition of everything before the month
    // after the latest event.
    const placed = await db.sql`select tableoid::regclass::text as partition, count(*)::int as n from tracing.domain_events group by 1`;
    expect(placed).toHaveLength(1);
    expect(placed[0]!.partition).toMatch(/^tracing\.domain_events_before_\d{4}m\d{2}$/);
    const [bound] = await db.sql`
      select b.to_at = (date_trunc('month', (now() + interval '3 months') at time zone 'UTC') + interval '1 month') at time zone 'UTC' as ok
        from tracing.partition_bounds('tracing.domain_events') b where b.from_at is null and not b.is_default`;
    expect(bound!.ok).toBe(true);

    // The view follows the table; ids go on; old keys still hold.
    expect(await db.sql`select count(*)::int as n from public.order_events`).toEqual([{ n: EVENTS }]);
    const [next] = await db.sql`
      insert into tracing.domain_events (stream_type, stream_id, event_type) values ('order', 'o-new', 'order.placed') returning id`;
    expect(BigInt(next!.id)).toBeGreaterThan(BigInt(before.max_id));
    await expect(
      db.sql`insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata)
             values ('order', 'o-again', 'order.placed', '{"idempotency_key": "k-7"}')`,
    ).rejects.toMatchObject({ code: '23505', constraint_name: 'domain_events_idempotency_key_idx' });
    const [found] =
      await db.sql`select e.stream_id from tracing.domain_event_by_idempotency_key('k-7') k join tracing.domain_events e using (id)`;
    expect(found!.stream_id).toBe('o-350');
    // The promotion trigger runs on the partitioned table.
    const [promoted] = await db.sql`
      insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata)
      values ('order', 'o-traced', 'order.placed', '{"correlation_id": "6f1c3a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b"}')
      returning correlation_id::text`;
    expect(promoted!.correlation_id).toBe('6f1c3a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b');
  }, 600_000);
});
