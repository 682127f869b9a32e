/**
 * Emits a domain event into tracing.domain_events, stamped with the trace
 * context of the span that emits it.
 *
 * Which ids an event carries: the event belongs to the span that emitted it,
 * so its (trace_id, span_id) is (span.traceId, span.spanId) and its
 * parent_span_id is span.parentSpanId. That is the link the timeline
 * functions join on (events hang off their span). Each emission also gets
 * an id of its own, `emission_id` (16 hex, same shape as a span id) in
 * event_metadata, so two events from one span stay distinguishable in logs
 * and across retries before the database has numbered them.
 *
 * The trace fields are written both as columns and in event_metadata
 * ("columns for queries, JSONB for the record", docs/design-principles.md); the promotion trigger checks that they agree.
 *
 * Unlike span recording, a failed emission throws: the event is the
 * business record, and the caller must know it was not stored.
 */
import type { Sql, TransactionSql } from 'postgres';
import { toPostgresJson, toPostgresText } from '../trace-context/postgres-json.ts';
import { generateSpanId, normalizeUuid } from '../trace-context/ids.ts';
import type { Span } from '../trace-context/span.ts';

export interface DomainEventInput {
  streamType: string;
  streamId: string;
  eventType: string;
  data: unknown;
  organizationId?: string | null;
  /** Extra metadata; the trace keys below always win over same-named keys here. */
  metadata?: Record<string, unknown>;
}

export interface EmittedEvent {
  /** tracing.domain_events.id (bigint, as text so no precision is lost). */
  id: string;
  createdAt: Date;
  traceId: string;
  spanId: string;
  emissionId: string;
}

/** The trace keys of event_metadata, as the promotion trigger reads them. */
export interface EventTraceMetadata {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  correlation_id: string;
  session_id: string | null;
  /** Two lowercase hex digits, as in traceparent. */
  trace_flags: string;
  tracestate?: string;
  service: string;
  emission_id: string;
}

export function eventTraceMetadata(span: Span, emissionId: string): EventTraceMetadata {
  const metadata: EventTraceMetadata = {
    trace_id: span.traceId,
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    correlation_id: span.correlationId,
    session_id: span.sessionId,
    trace_flags: (span.traceFlags & 0xff).toString(16).padStart(2, '0'),
    service: span.service,
    emission_id: emissionId,
  };
  if (span.tracestate !== null) metadata.tracestate = span.tracestate;
  return metadata;
}

function requireText(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(`emitEvent: ${name} must be a non-empty string`);
  }
  // Postgres text cannot hold NUL or a lone surrogate; the event is kept.
  return toPostgresText(value);
}

export async function emitEvent(sql: Sql | TransactionSql, event: DomainEventInput, span: Span): Promise<EmittedEvent> {
  const streamType = requireText('streamType', event.streamType);
  const streamId = requireText('streamId', event.streamId);
  const eventType = requireText('eventType', event.eventType);
  let organizationId: string | null = null;
  if (event.organizationId !== undefined && event.organizationId !== null) {
    organizationId = normalizeUuid(event.organizationId);
    if (organizationId === null) throw new TypeError('emitEvent: organizationId must be a uuid');
  }
  // event_data is not null, and the driver sends a JS null as SQL NULL, so
  // an event without data (undefined or null) stores {}.
  const data = event.data === undefined || event.data === null ? {} : event.data;
  const emissionId = generateSpanId();
  const metadata = { ...event.metadata, ...eventTraceMetadata(span, emissionId) };

  const rows = await sql<{ id: string; created_at: Date }[]>`
    insert into tracing.domain_events
      (stream_type, stream_id, event_type, event_data, event_metadata, organization_id,
       correlation_id, session_id, trace_id, span_id, parent_span_id)
    values (
      ${streamType}, ${streamId}, ${eventType},
      ${toPostgresJson(data)}::text::jsonb, ${toPostgresJson(metadata)}::text::jsonb,
      ${organizationId}::uuid,
      ${span.correlationId}::uuid, ${span.sessionId}::uuid,
      tracing.hex_to_trace_id(${span.traceId}),
      tracing.hex_to_span_id(${span.spanId}),
      tracing.hex_to_span_id(${span.parentSpanId})
    )
    returning id, created_at`;
  const row = rows[0];
  if (row === undefined) throw new Error('emitEvent: insert returned no row');
  return { id: String(row.id), createdAt: row.created_at, traceId: span.traceId, spanId: span.spanId, emissionId };
}
