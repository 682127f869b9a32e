// Shared pieces of the retention tests: seeding events of a chosen age, a
// ledger of what was written, and a checksum of live + archive.
import postgres from 'postgres';
import { expect } from 'vitest';

/** The columns of domain_events, in order: what live and archive share. */
export const EVENT_COLUMNS = `id, stream_type, stream_id, event_type, event_data, event_metadata, organization_id,
  created_at, processed_at, processing_error, correlation_id, session_id, trace_id, span_id, parent_span_id,
  trace_field_errors`;

/**
 * A table with the columns of domain_events that records every event a
 * test wrote, in the same statement as the write: the truth to compare
 * live + archive against.
 */
/** Empties the live tables, the ledgers, the archives and the run log between tests. */
export async function resetRetentionState(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`
    truncate tracing.domain_events, public.event_ledger, tracing.restored_events,
             tracing.spans, tracing.trace_summaries, tracing.trace_sampling, tracing.otlp_outbox,
             tracing.spans_archive, tracing.trace_summaries_archive, tracing.restored_traces, public.span_ledger;
    delete from tracing.retention_runs;
    do $$ declare p text; begin
      for p in select partition from tracing.archive_partitions loop execute format('drop table tracing.%I', p); end loop;
    end $$;`);
}

export async function createLedger(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`create table if not exists public.event_ledger as select ${EVENT_COLUMNS} from tracing.domain_events with no data`);
  await sql.unsafe(`create table if not exists public.span_ledger as select ${SPAN_COLUMNS} from tracing.spans with no data`);
}

/** What names a span and what it says: the columns the span checksum covers. */
export const SPAN_COLUMNS = 'trace_id, span_id, organization_id, parent_span_id, name, service, status, start_time, end_time, attributes';

/**
 * Records `traces` traces of `spansPerTrace` spans each that ended `ageDays`
 * ago, through tracing.record_spans (summaries included), and the same
 * spans in the span ledger, in one transaction. Trace ids are random unless
 * `traceId` (W3C hex) is given.
 */
export async function seedSpans(
  sql: postgres.Sql,
  options: {
    traces: number;
    spansPerTrace?: number;
    ageDays: number;
    tag?: string;
    traceId?: string;
    organizationId?: string | null;
    sessionId?: string;
    /** Added to every span id, so a second call for the same trace id writes other spans. */
    spanIdOffset?: number;
  },
): Promise<void> {
  const { traces, spansPerTrace = 3, ageDays, tag = 'seed' } = options;
  await sql.begin(async (tx) => {
    const [row] = await tx.unsafe(
      `with spans as (
         select jsonb_build_object(
                  'trace_id', coalesce($4, t.trace_hex),
                  'span_id', lpad(to_hex($8 + t.n * 1000 + s.n), 16, '0'),
                  'parent_span_id', case when s.n = 1 then null else lpad(to_hex($8 + t.n * 1000 + 1), 16, '0') end,
                  'name', case when s.n = 1 then 'GET /' || $1 else 'step ' || s.n end,
                  'service', 'svc-' || $1,
                  'status', case when s.n = 2 and t.n % 7 = 0 then 'error' else 'ok' end,
                  'start_time', now() - make_interval(days => $2) + s.n * interval '1 millisecond',
                  'end_time', now() - make_interval(days => $2) + (s.n + 1) * interval '1 millisecond',
                  'attributes', jsonb_build_object('tag', $1::text, 'n', s.n),
                  'organization_id', $5::uuid,
                  'session_id', $6::uuid) as span
           from (select g as n, replace(gen_random_uuid()::text, '-', '') as trace_hex from generate_series(1, $3::int) g) t
           cross join generate_series(1, $7::int) as s(n)
       ),
       batch as (select jsonb_agg(span) as spans from spans)
       select r.recorded, b.spans from batch b, tracing.record_spans(b.spans) as r`,
      [
        tag,
        ageDays,
        traces,
        options.traceId ?? null,
        options.organizationId ?? null,
        options.sessionId ?? null,
        spansPerTrace,
        options.spanIdOffset ?? 0,
      ],
    );
    await tx.unsafe(
      `insert into public.span_ledger (${SPAN_COLUMNS})
       select tracing.hex_to_trace_id(e->>'trace_id'), tracing.hex_to_span_id(e->>'span_id'), (e->>'organization_id')::uuid,
              tracing.hex_to_span_id(e->>'parent_span_id'), e->>'name', e->>'service', e->>'status',
              (e->>'start_time')::timestamptz, (e->>'end_time')::timestamptz, e->'attributes'
         from jsonb_array_elements($1::jsonb) e`,
      [row!.spans],
    );
  });
}

export interface SpanStoreState {
  live: number;
  archived: number;
  distinctSpans: number;
  checksum: string;
  /** Traces whose summary is missing, doubled, or counts other spans than its side holds. */
  badSummaries: number;
}

/** Spans live and archived, and whether every trace's summary matches the spans on its side. */
export async function spanStoreState(sql: postgres.Sql): Promise<SpanStoreState> {
  const [row] = await sql.unsafe(`
    with every_span as (
      select ${SPAN_COLUMNS}, false as archived from tracing.spans
      union all
      select ${SPAN_COLUMNS}, true from tracing.spans_archive
    ),
    sides as (
      select trace_id, organization_id, archived, count(*) as spans from every_span group by 1, 2, 3
    ),
    summaries as (
      select trace_id, organization_id, false as archived, span_count from tracing.trace_summaries
      union all
      select trace_id, organization_id, true, span_count from tracing.trace_summaries_archive
    )
    select count(*) filter (where not archived)::int as live,
           count(*) filter (where archived)::int as archived,
           (select count(*)::int from (select distinct trace_id, span_id, organization_id from every_span) d) as "distinctSpans",
           coalesce(md5(string_agg(md5((${SPAN_COLUMNS})::text), '' order by trace_id, span_id, organization_id)), '') as checksum,
           (select count(*)::int from sides full join summaries m
              on m.trace_id = sides.trace_id and m.organization_id is not distinct from sides.organization_id and m.archived = sides.archived
             where m.span_count is distinct from sides.spans) as "badSummaries"
      from every_span`);
  return row as unknown as SpanStoreState;
}

/** The same counts and checksum over the span ledger: what was written. */
export async function spanLedgerState(sql: postgres.Sql): Promise<{ count: number; checksum: string }> {
  const [row] = await sql.unsafe(`
    select count(*)::int as count,
           coalesce(md5(string_agg(md5((${SPAN_COLUMNS})::text), '' order by trace_id, span_id, organization_id)), '') as checksum
      from public.span_ledger`);
  return row as unknown as { count: number; checksum: string };
}

/**
 * Inserts `count` events created `ageDays` ago (spread over a day), through
 * the real insert path (trigger included), recording them in the ledger.
 */
export async function seedEvents(
  sql: postgres.Sql,
  options: { count: number; ageDays: number; tag?: string; traceId?: string; sessionId?: string },
): Promise<void> {
  const { count, ageDays, tag = 'seed' } = options;
  await sql.unsafe(
    `with written as (
       insert into tracing.domain_events
         (stream_type, stream_id, event_type, event_data, event_metadata, created_at, correlation_id, session_id, trace_id, span_id)
       select 'order', 'o-' || g, 'order.placed', jsonb_build_object('tag', $1::text, 'n', g),
              jsonb_build_object('source', 'test'),
              now() - make_interval(days => $2) + (g % 86400) * interval '1 second',
              gen_random_uuid(), coalesce($4::uuid, gen_random_uuid()),
              coalesce(tracing.hex_to_trace_id($3), gen_random_uuid()), (random() * 1e15)::bigint + 1
         from generate_series(1, $5::int) as g
       returning ${EVENT_COLUMNS}
     )
     insert into public.event_ledger select * from written`,
    [tag, ageDays, options.traceId ?? null, options.sessionId ?? null, count],
  );
}

export interface StoreState {
  live: number;
  archived: number;
  distinctIds: number;
  checksum: string;
}

/** Counts and an order-independent checksum of every event, live or archived. */
export async function storeState(sql: postgres.Sql): Promise<StoreState> {
  const [row] = await sql.unsafe(`
    with every_event as (
      select ${EVENT_COLUMNS}, false as archived from tracing.domain_events
      union all
      select ${EVENT_COLUMNS}, true from tracing.domain_events_archive
    )
    select count(*) filter (where not archived)::int as live,
           count(*) filter (where archived)::int as archived,
           count(distinct id)::int as "distinctIds",
           coalesce(md5(string_agg(md5((${EVENT_COLUMNS.replace(/\s+/g, ' ')})::text), '' order by id)), '') as checksum
      from every_event`);
  return row as unknown as StoreState;
}

/** The same counts and checksum over the ledger: what was written. */
export async function ledgerState(sql: postgres.Sql): Promise<{ count: number; checksum: string }> {
  const [row] = await sql.unsafe(`
    select count(*)::int as count,
           coalesce(md5(string_agg(md5((${EVENT_COLUMNS.replace(/\s+/g, ' ')})::text), '' order by id)), '') as checksum
      from public.event_ledger`);
  return row as unknown as { count: number; checksum: string };
}

/** Notices a procedure raised, collected from a client made for the purpose. */
export function clientWithNotices(url: string): { sql: postgres.Sql; notices: string[] } {
  const notices: string[] = [];
  const sql = postgres(url, { max: 1, onnotice: (n) => notices.push(String(n.message)) });
  return { sql, notices };
}

/** The single row a query must return. */
export function first<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error('the query returned no row');
  return row;
}

/**
 * Live and archived spans together are exactly the spans the ledger says
 * were written (count and checksum, none twice), and every trace's summary
 * sits on the side of its spans and counts them.
 */
export async function expectSpansAsWritten(sql: postgres.Sql): Promise<void> {
  const ledger = await spanLedgerState(sql);
  const state = await spanStoreState(sql);
  expect(state.live + state.archived).toBe(ledger.count);
  expect(state.distinctSpans).toBe(ledger.count);
  expect(state.checksum).toBe(ledger.checksum);
  expect(state.badSummaries).toBe(0);
}
