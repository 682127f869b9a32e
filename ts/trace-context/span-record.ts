/**
 * The span record: one element of the JSON array tracing.record_spans takes
 * (see db/functions/050-record-spans.sql), which every writer of spans builds
 * (edge functions, Temporal workers, the OTLP ingest, the demo data), and
 * its conversion from a finished span.
 *
 * Web-standard only, so every runtime can import it.
 */
import { normalizeUuid } from './ids.ts';
import type { FinishedSpan } from './span.ts';

/** The attribute a handler sets to file its span under an organization. */
export const ORGANIZATION_ATTRIBUTE = 'organization.id';

export interface RecordSpanOptions {
  /** Overrides the `organization.id` attribute. */
  organizationId?: string | null;
}

/**
 * One element of the JSON array tracing.record_spans takes (see
 * db/functions/050-record-spans.sql); every writer of spans builds these.
 */
export interface SpanRecord {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  service: string;
  kind: string;
  start_time: string;
  end_time: string;
  /** Informational: the database derives the duration from start and end. */
  duration_ms?: number;
  status: string;
  status_message?: string | null;
  attributes: Record<string, unknown>;
  events?: Array<Record<string, unknown>> | null;
  links?: Array<Record<string, unknown>> | null;
  correlation_id: string | null;
  session_id: string | null;
  organization_id: string | null;
}

/** Attribute values that JSON cannot carry (bigint, functions, cycles) become strings or are dropped. */
function jsonSafeAttributes(attributes: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(
      JSON.stringify(attributes, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)),
    ) as Record<string, unknown>;
  } catch {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(attributes)) {
      if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) out[key] = value;
    }
    return out;
  }
}

export function spanRecord(span: FinishedSpan, options?: RecordSpanOptions): SpanRecord {
  const attributeOrg = span.attributes[ORGANIZATION_ATTRIBUTE];
  const organizationId =
    options?.organizationId !== undefined
      ? normalizeUuid(options.organizationId)
      : normalizeUuid(typeof attributeOrg === 'string' ? attributeOrg : null);
  return {
    trace_id: span.traceId,
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    // record_spans requires a name; a span is not lost for lack of one.
    name: span.name || 'unnamed',
    service: span.service,
    kind: span.kind,
    start_time: span.startTime.toISOString(),
    end_time: span.endTime.toISOString(),
    duration_ms: span.durationMs,
    status: span.status.code,
    status_message: span.status.message ?? null,
    attributes: jsonSafeAttributes(span.attributes),
    correlation_id: span.correlationId,
    session_id: span.sessionId,
    organization_id: organizationId,
  };
}
