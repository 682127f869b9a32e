/**
 * Writes a finished span to the database through tracing.record_spans
 * (the record is built by ../trace-context/span-record.ts).
 *
 * Design principle 4: tracing never blocks business logic. recordSpan never
 * rejects and never throws, even synchronously; a failure becomes one
 * structured log line and the caller carries on.
 */
import type { Sql } from 'postgres';
import { toPostgresJson } from '../trace-context/postgres-json.ts';
import type { FinishedSpan } from '../trace-context/span.ts';
import { spanRecord, type RecordSpanOptions } from '../trace-context/span-record.ts';

/**
 * Records one finished span. Resolves true when written, false when the
 * write failed or the database refused the span (already logged). tracing.record_spans is idempotent on
 * (trace_id, span_id), so a retry by the caller is safe.
 */
export async function recordSpan(sql: Sql, span: FinishedSpan, options?: RecordSpanOptions): Promise<boolean> {
  try {
    const record = spanRecord(span, options);
    const [{ rejected }] = await sql<[{ rejected: Array<{ reason: string }> }]>`
      select rejected from tracing.record_spans(${toPostgresJson([record])}::text::jsonb)`;
    // The database names a span it refuses instead of raising.
    if (rejected.length === 0) return true;
    logRecordingFailure(span, new SpanRejectedError(rejected[0]!.reason));
    return false;
  } catch (error) {
    logRecordingFailure(span, error);
    return false;
  }
}

/** A span tracing.record_spans refused, with its reason (the field and the rule it broke). */
class SpanRejectedError extends Error {
  override name = 'SpanRejectedError';
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
