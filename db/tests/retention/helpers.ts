// Shared pieces of the retention tests: seeding events of a chosen age, a
// ledger of what was written, and a checksum of live + archive.
import postgres from 'postgres';

/** The columns of domain_events, in order: what live and archive share. */
export const EVENT_COLUMNS = `id, stream_type, stream_id, event_type, event_data, event_metadata, organization_id,
  created_at, processed_at, processing_error, correlation_id, session_id, trace_id, span_id, parent_span_id,
  trace_field_errors`;

/**
 * A table with the columns of domain_events that records every event a
 * test wrote, in the same statement as the write: the truth to compare
 * live + archive against.
 */
/** Empties the live table, the ledger, the archive and the run log between tests. */
export async function resetRetentionState(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`
    truncate tracing.domain_events, public.event_ledger, tracing.restored_events;
    delete from tracing.retention_runs;
    do $$ declare p text; begin
      for p in select partition from tracing.archive_partitions loop execute format('drop table tracing.%I', p); end loop;
    end $$;`);
}

export async function createLedger(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`create table if not exists public.event_ledger as select ${EVENT_COLUMNS} from tracing.domain_events with no data`);
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
