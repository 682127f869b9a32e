// tracing.all_events: live and archived events in one relation, for query
// functions asked to include the archive, under the caller's RLS.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { createLedger, first, seedEvents } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();
const orgA = randomUUID();
const orgB = randomUUID();
const sessionId = randomUUID();

beforeAll(async () => {
  await createLedger(db.sql);
  await seedEvents(db.sql, { count: 3, ageDays: 120, sessionId, tag: 'archived' });
  await seedEvents(db.sql, { count: 2, ageDays: 1, sessionId, tag: 'live' });
  await seedEvents(db.sql, { count: 3000, ageDays: 120 });
  await seedEvents(db.sql, { count: 3000, ageDays: 2 });
  await db.sql`update tracing.domain_events set organization_id = case when event_data->>'tag' = 'archived' then ${orgB}::uuid else ${orgA}::uuid end`;
  await db.sql`call tracing.archive_events()`;
  await db.sql`analyze tracing.domain_events; analyze tracing.domain_events_archive`.simple();
});

describe('tracing.all_events', () => {
  it('holds live and archived events, saying which', async () => {
    const rows =
      await db.sql`select event_data->>'tag' as tag, archived, archived_at is not null as stamped from tracing.all_events where session_id = ${sessionId} order by created_at`;
    expect(rows).toEqual([
      ...Array(3).fill({ tag: 'archived', archived: true, stamped: true }),
      ...Array(2).fill({ tag: 'live', archived: false, stamped: false }),
    ]);
  });

  it('looks up by session through the index of each side', async () => {
    const plan = (await db.sql`explain select * from tracing.all_events where session_id = ${sessionId} order by created_at desc limit 10`)
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    // The live side is partitioned by month: each partition's copy of
    // domain_events_session_id_idx carries the partition's name.
    expect(plan).toMatch(/domain_events_(?!archive_)\w*session_id\w*_idx/);
    expect(plan).toMatch(/domain_events_archive_\d{4}m\d{2}_session_id_idx/);
  });

  it('applies row-level security to archived rows too', async () => {
    const seen = await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`select set_config('jwt.claims.organization_id', ${orgA}, true)`;
      await tx`set local role tracegres_reader`;
      return first(
        await tx`select count(*) filter (where archived)::int as archived, count(*)::int as total from tracing.all_events where session_id = ${sessionId}`,
      );
    });
    expect(seen).toEqual({ archived: 0, total: 2 });
    const anonymous = await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_anonymous`;
      return first(await tx`select count(*)::int as n from tracing.all_events`).n;
    });
    expect(anonymous).toBe(0);
    const admin = await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_admin`;
      return first(await tx`select count(*)::int as n from tracing.all_events where session_id = ${sessionId}`).n;
    });
    expect(admin).toBe(5);
  });
});
