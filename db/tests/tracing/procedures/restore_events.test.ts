// tracing.restore_events: a DBA brings back the archived events of one
// trace, correlation or session, unchanged, and they stay live for a while.
import { randomUUID } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import {
  createLedger,
  EVENT_COLUMNS,
  first,
  ledgerState,
  resetRetentionState,
  seedEvents,
  storeState,
} from '../../helpers/event-ledger.ts';

const db = useTestDatabase();
const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const sessionId = randomUUID();

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(async () => {
  await resetRetentionState(db.sql);
  await seedEvents(db.sql, { count: 500, ageDays: 120, tag: 'other' });
  await seedEvents(db.sql, { count: 7, ageDays: 130, tag: 'the-trace', traceId });
  await seedEvents(db.sql, { count: 4, ageDays: 140, tag: 'the-session', sessionId });
  await db.sql`call tracing.archive_events()`;
});

const liveTags = async () =>
  (await db.sql`select event_data->>'tag' as tag, count(*)::int as n from tracing.domain_events group by 1 order by 1`).map(
    (r) => `${r.tag}:${r.n}`,
  );

describe('restore_events', () => {
  it('brings back the events of one trace unchanged and records the run', async () => {
    const [result] = await db.sql`call tracing.restore_events(p_trace_id => ${traceId})`;
    expect(Number(result!.events_restored)).toBe(7);
    expect(await liveTags()).toEqual(['the-trace:7']);
    // Same rows, same ids, same content as written; nothing twice.
    const state = await storeState(db.sql);
    expect(state).toMatchObject({ live: 7, archived: 504, distinctIds: 511 });
    expect(state.checksum).toBe((await ledgerState(db.sql)).checksum);

    const [run] = await db.sql`select * from tracing.retention_runs where id = ${result!.run_id}`;
    expect(run).toMatchObject({ operation: 'restore', status: 'succeeded', dry_run: false });
    expect(Number(run!.events_moved)).toBe(7);
    expect(run!.details).toMatchObject({ trace_id: traceId });
  });

  it('restores by session and by correlation', async () => {
    await db.sql`call tracing.restore_events(p_session_id => ${sessionId})`;
    expect(await liveTags()).toEqual(['the-session:4']);
    const { correlationId } = first(
      await db.sql`
      select correlation_id as "correlationId" from tracing.domain_events_archive where event_data->>'tag' = 'other' limit 1`,
    );
    const [result] = await db.sql`call tracing.restore_events(p_correlation_id => ${correlationId})`;
    expect(Number(result!.events_restored)).toBe(1);
  });

  it('keeps restored events live until their keep period ends, then the archive takes them back', async () => {
    await db.sql`call tracing.restore_events(p_trace_id => ${traceId}, p_keep_for => '2 days')`;
    await db.sql`call tracing.run_retention()`;
    expect(await liveTags()).toEqual(['the-trace:7']);

    await db.sql`update tracing.restored_events set keep_until = now() - interval '1 second'`;
    await db.sql`call tracing.run_retention()`;
    expect(await liveTags()).toEqual([]);
    const { pins } = first(await db.sql`select count(*)::int as pins from tracing.restored_events`);
    expect(pins).toBe(0);
    expect((await storeState(db.sql)).checksum).toBe((await ledgerState(db.sql)).checksum);
  });

  it('keeps the trace field errors recorded when the event was first written', async () => {
    // The column and the metadata disagreed at insert: the column won and
    // the refused value was recorded. Restoring must not forget that.
    const [written] = await db.sql.unsafe(
      `with w as (
         insert into tracing.domain_events (stream_type, stream_id, event_type, created_at, trace_id, event_metadata)
         values ('order', 'o-x', 'order.placed', now() - interval '100 days', $1::uuid, '{"trace_id": "0af7651916cd43dd8448eb211c80319c"}')
         returning ${EVENT_COLUMNS})
       insert into public.event_ledger select * from w returning trace_field_errors`,
      [tracingUuid(traceId)],
    );
    expect(written!.trace_field_errors).toHaveProperty('trace_id');
    await db.sql`call tracing.archive_events()`;
    await db.sql`call tracing.restore_events(p_trace_id => ${traceId})`;
    const [restored] = await db.sql`select trace_field_errors from tracing.domain_events where stream_id = 'o-x'`;
    expect(restored!.trace_field_errors).toEqual(written!.trace_field_errors);
    expect((await storeState(db.sql)).checksum).toBe((await ledgerState(db.sql)).checksum);
  });

  it('tells other triggers that a row is being restored', async () => {
    await db.sql.unsafe(`
      create table public.seen_restoring (value text);
      create function public.tg_note_restoring() returns trigger language plpgsql as $$
      begin insert into public.seen_restoring values (current_setting('tracegres.restoring', true)); return new; end $$;
      create trigger _900_note_restoring after insert on tracing.domain_events for each row execute function public.tg_note_restoring();`);
    try {
      await db.sql`call tracing.restore_events(p_session_id => ${sessionId})`;
      await seedEvents(db.sql, { count: 1, ageDays: 0 });
      const seen = await db.sql`select value from public.seen_restoring`;
      expect(seen.map((r) => r.value === 'on')).toEqual([true, true, true, true, false]);
    } finally {
      await db.sql.unsafe(
        `drop trigger _900_note_restoring on tracing.domain_events; drop function public.tg_note_restoring(); drop table public.seen_restoring;`,
      );
    }
  });

  it('dry run counts without moving', async () => {
    const [result] = await db.sql`call tracing.restore_events(p_trace_id => ${traceId}, p_dry_run => true)`;
    expect(Number(result!.events_restored)).toBe(7);
    expect(await liveTags()).toEqual([]);
  });

  it('rejects bad arguments by name', async () => {
    await expect(db.sql`call tracing.restore_events()`).rejects.toThrow(/exactly one of p_trace_id, p_correlation_id, p_session_id/);
    await expect(db.sql`call tracing.restore_events(p_trace_id => ${traceId}, p_session_id => ${sessionId})`).rejects.toThrow(
      /exactly one of/,
    );
    await expect(db.sql`call tracing.restore_events(p_trace_id => 'ABC')`).rejects.toThrow(/p_trace_id must be a W3C trace id/);
    await expect(db.sql`call tracing.restore_events(p_trace_id => ${'0'.repeat(32)})`).rejects.toThrow(/p_trace_id/);
    await expect(db.sql`call tracing.restore_events(p_session_id => ${sessionId}, p_keep_for => '0 days')`).rejects.toThrow(
      /p_keep_for must be a positive interval/,
    );
  });

  it('restores nothing, successfully, when nothing matches', async () => {
    const [result] = await db.sql`call tracing.restore_events(p_trace_id => ${'1'.repeat(32)})`;
    expect(Number(result!.events_restored)).toBe(0);
  });
});

function tracingUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
