// Span retention: archive_events, purge_archive and restore_events move
// whole traces (spans, summary, sampling decision) with the events, in the
// same runs and run log.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import {
  createLedger,
  expectSpansAsWritten,
  first,
  resetRetentionState,
  seedEvents,
  seedSpans,
  spanStoreState,
} from '../../helpers/event-ledger.ts';

const db = useTestDatabase();
const ORG_A = '0a000000-0000-4000-8000-00000000000a';
const ORG_B = '0b000000-0000-4000-8000-00000000000b';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(() => resetRetentionState(db.sql));

async function lastRun(operation: string) {
  return first(await db.sql`select * from tracing.retention_runs where operation = ${operation} order by id desc limit 1`);
}

/** Where a trace of an organization is: 'live', 'archived', or both/none. */
async function sideOf(traceHex: string, organizationId: string | null): Promise<string> {
  const { side } = first(
    await db.sql`
    select concat_ws('+',
      case when exists (select from tracing.trace_summaries where trace_id = tracing.hex_to_trace_id(${traceHex})
                        and organization_id is not distinct from ${organizationId}::uuid) then 'live' end,
      case when exists (select from tracing.trace_summaries_archive where trace_id = tracing.hex_to_trace_id(${traceHex})
                        and organization_id is not distinct from ${organizationId}::uuid) then 'archived' end) as side`,
  );
  return side as string;
}

describe('archiving spans', () => {
  it('moves whole traces that ended before the horizon with their summary and decision, and records the run', async () => {
    await seedSpans(db.sql, { traces: 40, spansPerTrace: 5, ageDays: 120, tag: 'old' });
    await seedSpans(db.sql, { traces: 10, spansPerTrace: 5, ageDays: 10, tag: 'new' });
    await db.sql`
      insert into tracing.trace_sampling (trace_id, organization_id, sampled_by, sample_rate, environment)
      select trace_id, organization_id, 'head', 0.25, 'production' from tracing.trace_summaries`;

    await db.sql`call tracing.archive_events(p_batch_size => 60)`;

    await expectSpansAsWritten(db.sql);
    expect(await spanStoreState(db.sql)).toMatchObject({ live: 50, archived: 200 });
    const run = await lastRun('archive');
    expect(run).toMatchObject({ status: 'succeeded', error: null });
    expect(Number(run.spans_moved)).toBe(200);
    expect(run.details.traces_moved).toBe(40);
    // About 60 spans a batch: 12 traces of 5, so 4 batches for 40 traces.
    expect(run.batches).toBeGreaterThanOrEqual(4);

    const archived =
      await db.sql`select sampled_by, sample_rate::text as rate, count(*)::int as n from tracing.trace_summaries_archive group by 1, 2`;
    expect(archived).toEqual([{ sampled_by: 'head', rate: '0.25', n: 40 }]);
    const { liveDecisions } = first(await db.sql`select count(*)::int as "liveDecisions" from tracing.trace_sampling`);
    expect(liveDecisions).toBe(10);
    const { oldLive } = first(
      await db.sql`select count(*)::int as "oldLive" from tracing.trace_summaries where end_time < now() - interval '90 days'`,
    );
    expect(oldLive).toBe(0);
  });

  it('counts in a dry run and moves nothing', async () => {
    await seedSpans(db.sql, { traces: 6, spansPerTrace: 4, ageDays: 200 });
    await db.sql`call tracing.archive_events(p_dry_run => true)`;
    const run = await lastRun('archive');
    expect(run).toMatchObject({ dry_run: true, status: 'succeeded' });
    expect(Number(run.spans_moved)).toBe(24);
    expect(run.details.traces_to_move).toBe(6);
    expect(await spanStoreState(db.sql)).toMatchObject({ live: 24, archived: 0 });
  });

  it('moves a trace larger than a batch whole, in one batch', async () => {
    await seedSpans(db.sql, { traces: 1, spansPerTrace: 500, ageDays: 100, traceId: TRACE });
    await db.sql`call tracing.archive_events(p_batch_size => 100)`;
    expect(await sideOf(TRACE, null)).toBe('archived');
    expect(await spanStoreState(db.sql)).toMatchObject({ live: 0, archived: 500 });
  });

  it('keeps a trace live while it has live events newer than the horizon, per organization', async () => {
    // One trace id used by two tenants; only A's trace has a recent event.
    await seedSpans(db.sql, { traces: 1, ageDays: 100, traceId: TRACE, organizationId: ORG_A });
    await seedSpans(db.sql, { traces: 1, ageDays: 100, traceId: TRACE, organizationId: ORG_B });
    await seedEvents(db.sql, { count: 1, ageDays: 1, traceId: TRACE });
    await db.sql`update tracing.domain_events set organization_id = ${ORG_A}`;

    await db.sql`call tracing.archive_events()`;
    expect(await sideOf(TRACE, ORG_A)).toBe('live');
    expect(await sideOf(TRACE, ORG_B)).toBe('archived');
    await expectSpansAsWritten(db.sql);
  });

  it('drops the export queue rows of the spans it archives', async () => {
    await seedSpans(db.sql, { traces: 2, spansPerTrace: 3, ageDays: 100, tag: 'old' });
    await seedSpans(db.sql, { traces: 1, spansPerTrace: 3, ageDays: 1, tag: 'new' });
    await db.sql`insert into tracing.otlp_outbox (trace_id, span_id, organization_id) select trace_id, span_id, organization_id from tracing.spans`;

    await db.sql`call tracing.archive_events()`;
    const { queued } = first(await db.sql`select count(*)::int as queued from tracing.otlp_outbox`);
    expect(queued).toBe(3);
    expect((await lastRun('archive')).details.outbox_rows_dropped).toBe(6);
  });

  it('merges spans that arrive after their trace was archived into the archived trace on the next run', async () => {
    await seedSpans(db.sql, { traces: 1, spansPerTrace: 3, ageDays: 100, traceId: TRACE });
    await db.sql`call tracing.archive_events()`;
    // Spans of the same trace that arrive late (a slow exporter).
    await seedSpans(db.sql, { traces: 1, spansPerTrace: 2, ageDays: 100, traceId: TRACE, spanIdOffset: 5000 });
    expect(await sideOf(TRACE, null)).toBe('live+archived');

    await db.sql`call tracing.archive_events()`;
    expect(await sideOf(TRACE, null)).toBe('archived');
    const summary = first(await db.sql`select span_count, services from tracing.trace_summaries_archive`);
    expect(summary.span_count).toBe(5);
    await expectSpansAsWritten(db.sql);
  });

  it('forgets sampling decisions of dropped traces once they are past the horizon', async () => {
    await db.sql`
      insert into tracing.trace_sampling (trace_id, organization_id, sampled_by, sample_rate, environment, decided_at)
      values (tracing.hex_to_trace_id(${TRACE}), null, 'dropped', 0.1, 'production', now() - interval '100 days'),
             (gen_random_uuid(), null, 'dropped', 0.1, 'production', now() - interval '1 day')`;
    await db.sql`call tracing.archive_events()`;
    const rows = await db.sql`select sampled_by from tracing.trace_sampling where decided_at > now() - interval '2 days'`;
    expect(rows).toHaveLength(1);
    const { n } = first(await db.sql`select count(*)::int as n from tracing.trace_sampling`);
    expect(n).toBe(1);
  });
});

describe('purging spans', () => {
  it('deletes archived traces that ended before the purge horizon, spans included, and counts them in a dry run first', async () => {
    await seedSpans(db.sql, { traces: 5, spansPerTrace: 4, ageDays: 400, tag: 'ancient' });
    await seedSpans(db.sql, { traces: 3, spansPerTrace: 4, ageDays: 120, tag: 'old' });
    await db.sql`call tracing.archive_events()`;

    await db.sql`call tracing.purge_archive(p_older_than => interval '365 days', p_dry_run => true)`;
    const dry = await lastRun('purge');
    expect(Number(dry.spans_dropped)).toBe(20);
    expect(dry.details.traces_to_drop).toBe(5);
    expect(await spanStoreState(db.sql)).toMatchObject({ archived: 32 });

    await db.sql`update tracing.retention_settings set batch_size = 100`;
    await db.sql`call tracing.purge_archive(p_older_than => interval '365 days')`;
    const run = await lastRun('purge');
    expect(run).toMatchObject({ status: 'succeeded', dry_run: false });
    expect(Number(run.spans_dropped)).toBe(20);
    expect(await spanStoreState(db.sql)).toMatchObject({ live: 0, archived: 12, badSummaries: 0 });
  });
});

describe('restoring spans', () => {
  it('brings a trace back by trace id with its summary and decision, pins it, and archives it again after the pin', async () => {
    await seedSpans(db.sql, { traces: 1, spansPerTrace: 4, ageDays: 120, traceId: TRACE });
    await db.sql`
      insert into tracing.trace_sampling (trace_id, organization_id, sampled_by, sample_rate, environment)
      values (tracing.hex_to_trace_id(${TRACE}), null, 'error', 1, 'production')`;
    await db.sql`call tracing.archive_events()`;
    await db.sql`update tracing.otlp_export_settings set enabled = true`;

    await db.sql`call tracing.restore_events(p_trace_id => ${TRACE}, p_dry_run => true)`;
    expect(Number((await lastRun('restore')).spans_moved)).toBe(4);
    expect(await sideOf(TRACE, null)).toBe('archived');

    await db.sql`call tracing.restore_events(p_trace_id => ${TRACE})`;
    expect(await sideOf(TRACE, null)).toBe('live');
    expect(Number((await lastRun('restore')).spans_moved)).toBe(4);
    const decision = first(await db.sql`select sampled_by from tracing.trace_sampling where trace_id = tracing.hex_to_trace_id(${TRACE})`);
    expect(decision.sampled_by).toBe('error');
    // Restored spans are not exported a second time.
    const { queued } = first(await db.sql`select count(*)::int as queued from tracing.otlp_outbox`);
    expect(queued).toBe(0);
    await expectSpansAsWritten(db.sql);

    // Pinned: the next archive run leaves it.
    await db.sql`call tracing.archive_events()`;
    expect(await sideOf(TRACE, null)).toBe('live');
    // The pin ends: run_retention forgets it and archives the trace again.
    await db.sql`update tracing.restored_traces set keep_until = now() - interval '1 second'`;
    await db.sql`call tracing.run_retention()`;
    await db.sql`call tracing.archive_events()`;
    expect(await sideOf(TRACE, null)).toBe('archived');
    await expectSpansAsWritten(db.sql);
  });

  it('brings back the traces of a session with its events', async () => {
    const session = '5e550000-0000-4000-8000-000000000001';
    await seedEvents(db.sql, { count: 2, ageDays: 120, traceId: TRACE, sessionId: session });
    await seedSpans(db.sql, { traces: 1, spansPerTrace: 3, ageDays: 120, traceId: TRACE });
    // A trace known only by its spans' session id.
    const other = 'aaaabbbbccccdddd0000111122223333';
    await seedSpans(db.sql, { traces: 1, spansPerTrace: 2, ageDays: 120, traceId: other, sessionId: session });
    await seedSpans(db.sql, { traces: 3, ageDays: 120, tag: 'unrelated' });
    await db.sql`call tracing.archive_events()`;

    await db.sql`call tracing.restore_events(p_session_id => ${session})`;
    const run = await lastRun('restore');
    expect(Number(run.events_moved)).toBe(2);
    expect(Number(run.spans_moved)).toBe(5);
    expect(await sideOf(TRACE, null)).toBe('live');
    expect(await sideOf(other, null)).toBe('live');
    expect(await spanStoreState(db.sql)).toMatchObject({ live: 5, archived: 9, badSummaries: 0 });
  });
});
