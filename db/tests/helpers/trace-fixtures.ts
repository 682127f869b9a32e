// Builders for spans and events, so a test can write a trace as a short
// list: span('a', { parent: 'root', start: 0, end: 50 }) with times in
// milliseconds after a fixed instant.
import type postgres from 'postgres';
import { EVENT_COLUMNS } from './event-ledger.ts';

export const T0 = Date.parse('2025-03-01T12:00:00.000Z');

export const ORG_A = 'a0000000-0000-4000-8000-00000000000a';
export const ORG_B = 'b0000000-0000-4000-8000-00000000000b';

/** A W3C trace id (32 hex) made from a short label, e.g. traceId('t1'). */
export function traceId(label: string): string {
  return hexOf(label, 32);
}

/** A W3C span id (16 hex) made from a short label, e.g. spanId('root'). */
export function spanId(label: string): string {
  return hexOf(label, 16);
}

// Deterministic, readable in failures: the label's bytes as hex, padded.
function hexOf(label: string, length: number): string {
  const hex = Buffer.from(label, 'utf8').toString('hex');
  if (hex.length > length) throw new Error(`label ${label} is too long for ${length} hex characters`);
  return hex.padStart(length, '0');
}

export function at(ms: number): string {
  return new Date(T0 + ms).toISOString();
}

export interface SpanInput {
  trace_id: string;
  span_id: string;
  parent_span_id?: string | null;
  name: string;
  service?: string;
  kind?: string;
  start_time: string;
  end_time: string;
  status?: string;
  status_message?: string | null;
  attributes?: Record<string, unknown>;
  correlation_id?: string | null;
  session_id?: string | null;
  organization_id?: string | null;
  [other: string]: unknown;
}

export interface SpanOptions {
  trace?: string;
  parent?: string | null;
  start: number;
  end: number;
  name?: string;
  service?: string;
  status?: string;
  org?: string | null;
  session?: string | null;
  extra?: Record<string, unknown>;
}

/** A span of trace `options.trace` (default 't1') labelled `label`. */
export function span(label: string, options: SpanOptions): SpanInput {
  return {
    trace_id: traceId(options.trace ?? 't1'),
    span_id: spanId(label),
    parent_span_id: options.parent ? spanId(options.parent) : null,
    name: options.name ?? label,
    service: options.service ?? 'edge',
    start_time: at(options.start),
    end_time: at(options.end),
    ...(options.status ? { status: options.status } : {}),
    organization_id: options.org === undefined ? ORG_A : options.org,
    ...(options.session ? { session_id: options.session } : {}),
    ...options.extra,
  };
}

export async function recordSpans(sql: postgres.Sql | postgres.TransactionSql, spans: unknown[]): Promise<number> {
  const [row] = await sql`select recorded from tracing.record_spans(${sql.json(spans as never)}::jsonb)`;
  return row!.recorded as number;
}

export interface EventOptions {
  trace?: string | null;
  span?: string | null;
  parent?: string | null;
  at: number;
  type?: string;
  org?: string | null;
  session?: string | null;
  correlation?: string | null;
  error?: string | null;
  data?: Record<string, unknown>;
  /** The aggregate, [stream_type, stream_id]; default ['order', 'o-1']. */
  stream?: [string, string];
}

/** Inserts a domain event carrying trace context and returns its id. */
export async function insertEvent(sql: postgres.Sql | postgres.TransactionSql, options: EventOptions): Promise<string> {
  const metadata: Record<string, string> = {};
  if (options.trace !== null) metadata.trace_id = traceId(options.trace ?? 't1');
  if (options.span) metadata.span_id = spanId(options.span);
  if (options.parent) metadata.parent_span_id = spanId(options.parent);
  if (options.session) metadata.session_id = options.session;
  if (options.correlation) metadata.correlation_id = options.correlation;
  const [row] = await sql`
    insert into tracing.domain_events
      (stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at, processing_error)
    values (${options.stream?.[0] ?? 'order'}, ${options.stream?.[1] ?? 'o-1'}, ${options.type ?? 'order.step'}, ${sql.json((options.data ?? {}) as never)},
            ${sql.json(metadata)}, ${options.org === undefined ? ORG_A : options.org},
            ${at(options.at)}::timestamptz, ${options.error ?? null})
    returning id`;
  return row!.id as string;
}

/**
 * Moves an event to the archive as retention would (its month's partition
 * made first), inside the caller's transaction.
 */
export async function archiveEvent(sql: postgres.Sql | postgres.TransactionSql, id: string): Promise<void> {
  await sql`select tracing.ensure_archive_partition(created_at) from tracing.domain_events where id = ${id}`;
  await sql.unsafe(
    `with moved as (delete from tracing.domain_events where id = $1 returning ${EVENT_COLUMNS})
     insert into tracing.domain_events_archive (${EVENT_COLUMNS}) select ${EVENT_COLUMNS} from moved`,
    [id],
  );
}

/**
 * Runs `body` as `role` with the request settings the API server sets from a
 * token (organization, user), inside the caller's transaction.
 */
export async function actAs<T>(
  tx: postgres.TransactionSql,
  role: 'tracegres_anonymous' | 'tracegres_reader' | 'tracegres_admin' | 'tracegres_writer',
  organizationId: string | null,
  body: () => Promise<T>,
): Promise<T> {
  await tx.unsafe(`set local role ${role}`);
  await tx`select set_config('jwt.claims.organization_id', ${organizationId ?? ''}, true)`;
  // No reset on failure: the transaction is aborted then, and rolled back.
  const result = await body();
  await tx`reset role`;
  return result;
}

export interface FailedCheckoutOptions {
  /** The checkout's trace label (organization A). */
  trace: string;
  /** The label of organization B's one trace, GET /orders. */
  otherTrace: string;
  session: string;
  correlation: string;
}

/**
 * The failed checkout the API tests read: POST /checkout → RunWorkflow →
 * RunActivity:charge (error) in organization A, with checkout.started and a
 * failed payment.failed event of one session and correlation, and a trace
 * of organization B.
 */
export async function recordFailedCheckout(sql: postgres.Sql, options: FailedCheckoutOptions): Promise<void> {
  const { trace, session, correlation } = options;
  await recordSpans(sql, [
    span('root', { trace, start: 0, end: 120, name: 'POST /checkout', service: 'edge', session }),
    span('wf', { trace, parent: 'root', start: 10, end: 110, name: 'RunWorkflow:checkout', service: 'worker' }),
    span('pay', { trace, parent: 'wf', start: 20, end: 100, name: 'RunActivity:charge', service: 'worker', status: 'error' }),
    span('rootb', { trace: options.otherTrace, start: 0, end: 50, name: 'GET /orders', org: ORG_B }),
  ]);
  await insertEvent(sql, { trace, span: 'pay', at: 30, type: 'payment.failed', session, correlation, error: 'card declined' });
  await insertEvent(sql, { trace, span: 'root', at: 5, type: 'checkout.started', session, correlation });
}
