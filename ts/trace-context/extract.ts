/**
 * Reading the trace context of an incoming request from its headers
 * (W3C Trace Context Level 2, "Processing Model"), with the correlation and
 * session ids that travel beside it.
 *
 * Web-standard APIs only (Headers, crypto), so every runtime can import it.
 */
import { CORRELATION_ID_HEADER, SESSION_ID_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER } from './headers.ts';
import { generateTraceId, normalizeUuid } from './ids.ts';
import type { TracingContext } from './span.ts';
import { parseTraceparent, TRACE_FLAG_RANDOM_TRACE_ID, TRACE_FLAG_SAMPLED } from './traceparent.ts';
import { parseTracestate } from './tracestate.ts';

export interface ExtractOptions {
  /**
   * Sampled flag for a trace started here. Defaults to true: every span is
   * recorded and the database samples afterwards, so the component that
   * starts the trace has made a definitive recording decision ("Sampled flag":
   * such a decision SHOULD be reflected in the flag).
   */
  sampled?: boolean;
}

function restartedContext(
  reason: string,
  correlationId: string,
  sessionId: string | null,
  options: ExtractOptions | undefined,
): TracingContext {
  // "Processing model for starting or restarting a trace": all of trace-id,
  // parent-id and trace-flags are generated, and tracestate starts empty.
  // Our ids are uniformly random, so the Level 2 random-trace-id flag is set.
  const sampled = options?.sampled ?? true;
  return {
    traceId: generateTraceId(),
    parentSpanId: null,
    traceFlags: TRACE_FLAG_RANDOM_TRACE_ID | (sampled ? TRACE_FLAG_SAMPLED : 0),
    tracestate: null,
    correlationId,
    sessionId,
    restarted: true,
    restartReason: reason,
  };
}

/**
 * Reads the trace context of an incoming request. Never throws: a missing or
 * invalid traceparent restarts the trace ("never lose an event over its trace fields", docs/design-principles.md), and its
 * tracestate is then not parsed ("tracestate Header": if the vendor failed to
 * parse traceparent, it MUST NOT attempt to parse tracestate).
 */
export function extractTracingContext(request: Request | { headers: Headers }, options?: ExtractOptions): TracingContext {
  const headers = request.headers;
  // Header names are case-insensitive in Headers ("Header Name": vendors MUST
  // expect the name in any case).
  const correlationId = normalizeUuid(headers.get(CORRELATION_ID_HEADER)) ?? crypto.randomUUID();
  const sessionId = normalizeUuid(headers.get(SESSION_ID_HEADER));

  const parsed = parseTraceparent(headers.get(TRACEPARENT_HEADER));
  if (!parsed.ok) return restartedContext(parsed.reason, correlationId, sessionId, options);

  // A bad tracestate does not affect the traceparent; it is dropped whole.
  const state = parseTracestate(headers.get(TRACESTATE_HEADER));
  return {
    traceId: parsed.traceparent.traceId,
    parentSpanId: parsed.traceparent.parentId,
    traceFlags: parsed.traceparent.traceFlags,
    tracestate: state.ok ? state.header : null,
    correlationId,
    sessionId,
    restarted: false,
  };
}
