/**
 * Spans: the trace position of an incoming request (TracingContext), open
 * and finished spans, and the headers an outgoing request made inside a span
 * carries.
 *
 * Web-standard APIs only (Headers, crypto, performance), so the same module
 * runs in Deno, Node and workers.
 */
import { CORRELATION_ID_HEADER, SESSION_ID_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER } from './headers.ts';
import { generateSpanId } from './ids.ts';
import { formatTraceparent } from './traceparent.ts';
import { upsertTracestate } from './tracestate.ts';

export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
export type SpanStatusCode = 'unset' | 'ok' | 'error';

export interface SpanStatus {
  code: SpanStatusCode;
  message?: string;
}

/** The trace position of an incoming request, as read from its headers. */
export interface TracingContext {
  /** 32 lowercase hex. */
  traceId: string;
  /** 16 lowercase hex of the caller's span; null when the trace was started here. */
  parentSpanId: string | null;
  traceFlags: number;
  /** Normalised tracestate list (members joined by ","), or null when there is none. */
  tracestate: string | null;
  /** Lowercase uuid. */
  correlationId: string;
  sessionId: string | null;
  /** True when no valid traceparent arrived and a new trace was started. */
  restarted: boolean;
  /** Why the trace was (re)started, when `restarted`. */
  restartReason?: string;
}

/** An open span. A Span is itself a valid parent for `createSpan`. */
export interface Span {
  traceId: string;
  /** 16 lowercase hex, new for this span. */
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: SpanKind;
  service: string;
  /** Mutable on purpose: handlers add attributes while the span is open. */
  attributes: Record<string, unknown>;
  traceFlags: number;
  tracestate: string | null;
  correlationId: string;
  sessionId: string | null;
  /** Wall clock at start. */
  startTime: Date;
  /** performance.now() at start; durations come from this, never from the wall clock. */
  startMonotonic: number;
}

export interface FinishedSpan extends Span {
  endTime: Date;
  durationMs: number;
  status: SpanStatus;
}

export interface CreateSpanOptions {
  kind?: SpanKind;
  attributes?: Record<string, unknown>;
  /** Defaults to the parent span's service, else OpenTelemetry's "unknown_service". */
  service?: string;
}

export interface InjectOptions {
  /** This system's tracestate key; with vendorValue, written as the left-most entry. */
  vendorKey?: string;
  vendorValue?: string;
}

function isSpan(parent: TracingContext | Span): parent is Span {
  return typeof (parent as Partial<Span>).spanId === 'string';
}

/**
 * Opens a span. Given a TracingContext (an incoming request) the span's parent
 * is the caller's span; given a Span it is a child of that span.
 */
export function createSpan(parent: TracingContext | Span, name: string, options?: CreateSpanOptions): Span {
  const childOfSpan = isSpan(parent);
  return {
    traceId: parent.traceId,
    spanId: generateSpanId(),
    parentSpanId: childOfSpan ? parent.spanId : parent.parentSpanId,
    name,
    kind: options?.kind ?? 'internal',
    service: options?.service ?? (childOfSpan ? parent.service : 'unknown_service'),
    attributes: { ...options?.attributes },
    traceFlags: parent.traceFlags,
    tracestate: parent.tracestate,
    correlationId: parent.correlationId,
    sessionId: parent.sessionId,
    startTime: new Date(),
    startMonotonic: performance.now(),
  };
}

/**
 * Closes a span. The duration comes from the monotonic clock, so a wall-clock
 * step during the request cannot make it negative or wrong; endTime is
 * derived from it so that endTime - startTime equals the duration.
 */
export function endSpan(span: Span, status?: SpanStatus): FinishedSpan {
  const durationMs = Math.max(0, performance.now() - span.startMonotonic);
  return {
    ...span,
    attributes: { ...span.attributes },
    endTime: new Date(span.startTime.getTime() + durationMs),
    durationMs,
    status: status ? { ...status } : { code: 'unset' },
  };
}

/**
 * Headers for an outgoing request made inside `span`: traceparent with the
 * span as parent-id ("Mutating the traceparent Field": update parent-id), the
 * tracestate carried on (with this system's entry moved or added to the left
 * when configured), and the correlation and session ids.
 */
export function injectTracingHeaders(span: Span, headers?: HeadersInit, options?: InjectOptions): Headers {
  const out = new Headers(headers);
  out.set(TRACEPARENT_HEADER, formatTraceparent(span.traceId, span.spanId, span.traceFlags));
  const tracestate =
    options?.vendorKey !== undefined && options.vendorValue !== undefined
      ? upsertTracestate(span.tracestate, options.vendorKey, options.vendorValue)
      : span.tracestate;
  // A tracestate the caller left in `headers` belongs to some other traceparent.
  if (tracestate === null) out.delete(TRACESTATE_HEADER);
  else out.set(TRACESTATE_HEADER, tracestate);
  out.set(CORRELATION_ID_HEADER, span.correlationId);
  if (span.sessionId !== null) out.set(SESSION_ID_HEADER, span.sessionId);
  return out;
}
