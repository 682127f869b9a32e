/**
 * Writes a finished span to the database through tracing.record_spans.
 *
 * Design principle 4: tracing never blocks business logic. recordSpan never
 * rejects and never throws, even synchronously; a failure becomes one
 * structured log line and the caller carries on.
 */
import type { Sql } from 'postgres';
import { toPostgresJson } from '../trace-context/postgres-json.ts';
import { normalizeUuid, type FinishedSpan } from './tracing-context.ts';

/** The attribute a handler sets to file its span under an organization. */
export const ORGANIZATION_ATTRIBUTE = 'organization.id';

export interface RecordSpanOptions {
  /** Overrides the `organization.id` attribute. */
  organizationId?: string | null;
}

/**
 * One element of the JSON array tracing.record_spans takes (see
 * db/functions/spans_record.sql); every writer of spans builds these.
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

/**
 * Records one finished span. Resolves true when written, false when the
 * write failed (already logged). tracing.record_spans is idempotent on
 * (trace_id, span_id), so a retry by the caller is safe.
 */
export async function recordSpan(sql: Sql, span: FinishedSpan, options?: RecordSpanOptions): Promise<boolean> {
  try {
    const record = spanRecord(span, options);
    await sql`select tracing.record_spans(${toPostgresJson([record])}::text::jsonb)`;
    return true;
  } catch (error) {
    logRecordingFailure(span, error);
    return false;
  }
}

/**
 * One JSON line naming the span and the error. Only the error's name, SQLSTATE
 * and a clipped message are logged: never the span's attributes or the
 * connection details, which may hold secrets.
 */
function logRecordingFailure(span: FinishedSpan, error: unknown): void {
  try {
    const err = error instanceof Error ? error : new Error(String(error));
    const code = (err as { code?: unknown }).code;
    console.error(
      JSON.stringify({
        level: 'error',
        message: 'span recording failed',
        trace_id: span.traceId,
        span_id: span.spanId,
        span_name: span.name,
        service: span.service,
        error_name: err.name,
        error_code: typeof code === 'string' ? code : undefined,
        error_message: err.message.slice(0, 300),
      }),
    );
  } catch {
    // Logging must not throw either.
  }
}
