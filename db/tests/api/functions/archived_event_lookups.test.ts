// The event lookups that include the archive: live and archived events in
// one keyset-paged list, under row-level security, errors naming arguments.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { createLedger, seedEvents } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();
const sessionId = randomUUID();
const traceId = '0af7651916cd43dd8448eb211c80319c';
const org = randomUUID();

beforeAll(async () => {
  await createLedger(db.sql);
  await seedEvents(db.sql, { count: 4, ageDays: 120, sessionId, tag: 'archived' });
  await seedEvents(db.sql, { count: 3, ageDays: 1, sessionId, tag: 'live' });
  await seedEvents(db.sql, { count: 2, ageDays: 150, traceId, tag: 'trace-archived' });
  await seedEvents(db.sql, { count: 2, ageDays: 2, traceId, tag: 'trace-live' });
  await db.sql`update tracing.domain_events set organization_id = ${org}`;
  await db.sql`call tracing.archive_events()`;
});

describe('api.get_events_by_session_including_archive', () => {
  it('returns live and archived events, newest first, where the live lookup has only live ones', async () => {
    const live = await db.sql`select event_data->>'tag' as tag from api.get_events_by_session(${sessionId})`;
    expect(live.map((r) => r.tag)).toEqual(['live', 'live', 'live']);
    const all = await db.sql`select event_data->>'tag' as tag, created_at from api.get_events_by_session_including_archive(${sessionId})`;
    expect(all.map((r) => r.tag)).toEqual(['live', 'live', 'live', 'archived', 'archived', 'archived', 'archived']);
    const times = all.map((r) => (r.created_at as Date).getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('pages with the keyset cursor across the live/archive boundary, nothing skipped or repeated', async () => {
    const seen: string[] = [];
    let cursor: { created_at: Date; id: string } | undefined;
    for (;;) {
      const page = await db.sql`
        select id, created_at from api.get_events_by_session_including_archive(${sessionId}, 2, ${cursor?.created_at ?? null}, ${cursor?.id ?? null})`;
      if (page.length === 0) break;
      seen.push(...page.map((r) => String(r.id)));
      cursor = page.at(-1) as unknown as { created_at: Date; id: string };
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
  });

  it('shows a tenant only its organization, archived rows included', async () => {
    const count = (role: string, organization: string) =>
      inRolledBackTransaction(db.sql, async (tx) => {
        await tx`select set_config('jwt.claims.organization_id', ${organization}, true)`;
        await tx.unsafe(`set local role ${role}`);
        return (await tx`select count(*)::int as n from api.get_events_by_session_including_archive(${sessionId})`)[0]!.n;
      });
    expect(await count('tracegres_reader', org)).toBe(7);
    expect(await count('tracegres_reader', randomUUID())).toBe(0);
    expect(await count('tracegres_anonymous', org)).toBe(0);
  });

  it('names a bad argument', async () => {
    await expect(db.sql`select * from api.get_events_by_session_including_archive(${sessionId}, 0)`).rejects.toThrow(/p_first/);
    await expect(db.sql`select * from api.get_events_by_session_including_archive(null)`).rejects.toThrow(/p_session_id/);
  });
});

describe('api.get_events_by_trace_including_archive and _by_correlation_including_archive', () => {
  it('return the archived events of a trace, oldest first', async () => {
    const rows = await db.sql`select event_data->>'tag' as tag, trace_id from api.get_events_by_trace_including_archive(${traceId})`;
    expect(rows.map((r) => r.tag)).toEqual(['trace-archived', 'trace-archived', 'trace-live', 'trace-live']);
    expect(rows.every((r) => r.trace_id === traceId)).toBe(true);
    await expect(db.sql`select * from api.get_events_by_trace_including_archive('nope')`).rejects.toThrow(/p_trace_id/);
  });

  it('find an archived correlation', async () => {
    const [archived] = await db.sql`select correlation_id from tracing.domain_events_archive limit 1`;
    const rows = await db.sql`select id from api.get_events_by_correlation_including_archive(${archived!.correlation_id})`;
    expect(rows).toHaveLength(1);
    expect(await db.sql`select id from api.get_events_by_correlation(${archived!.correlation_id})`).toHaveLength(0);
  });
});
