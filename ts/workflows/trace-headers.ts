/**
 * How trace context travels in Temporal headers.
 *
 * Temporal headers are a map from name to payload that the server stores
 * with each workflow start and activity schedule and hands to the receiving
 * worker, untouched by the workflow's own arguments. The names follow the
 * HTTP ones on purpose, so a reader maps an edge request's headers to a
 * workflow's one to one:
 *
 * | header                       | value                                                     |
 * |------------------------------|-----------------------------------------------------------|
 * | `traceparent`                | W3C traceparent; parent-id is the *sender's* span         |
 * | `tracestate`                 | W3C tracestate, carried unchanged                         |
 * | `x-correlation-id`           | the request's correlation id (uuid)                       |
 * | `x-session-id`               | the user's session id (uuid), absent when there is none   |
 * | `tracegres-activity-span-id` | on activities only: the span id the workflow assigned     |
 *
 * traceparent keeps its W3C meaning (the caller's span), so the activity's
 * own id, fixed by the workflow for replay's sake, needs a header of its own.
 *
 * Values are encoded with the default payload converter (JSON strings), not
 * the worker's configured one: headers are read by interceptors that must
 * not depend on a codec the application may swap.
 *
 * This module is imported by workflow code, so it must stay free of I/O and
 * of anything nondeterministic.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  ACTIVITY_SPAN_ID_HEADER,
  CORRELATION_ID_HEADER,
  SESSION_ID_HEADER,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from '../trace-context/headers.ts';
import { isValidSpanId, isValidTraceId, normalizeUuid } from '../trace-context/ids.ts';
import { formatTraceparent, parseTraceparent, TRACE_FLAG_RANDOM_TRACE_ID, TRACE_FLAG_SAMPLED } from '../trace-context/traceparent.ts';
import { parseTracestate } from '../trace-context/tracestate.ts';

/** Temporal's header map (the same shape in client, workflow and worker packages). */
export type TemporalHeaders = Readonly<Record<string, Payload>>;

/** The trace position one Temporal hop hands to the next. */
export interface TraceCarrier {
  /** 32 lowercase hex. */
  traceId: string;
  /** The sender's span (16 lowercase hex): the parent of what the receiver opens. */
  parentSpanId: string;
  traceFlags: number;
  tracestate: string | null;
  correlationId: string | null;
  sessionId: string | null;
}

/**
 * The trace fields a workflow's first argument may carry, for callers that
 * pass the context explicitly instead of (or without) the client interceptor.
 */
export interface ExplicitTraceParams {
  traceId?: string | null;
  parentSpanId?: string | null;
  correlationId?: string | null;
  sessionId?: string | null;
  /** trace-flags as a number; the trace counts as sampled when absent. */
  traceFlags?: number | null;
  tracestate?: string | null;
}

/** A span that work can be started inside: a ts/edge Span, or anything shaped like one. */
export interface SpanLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
  tracestate: string | null;
  correlationId: string | null;
  sessionId: string | null;
}

/** The carrier for work started inside `span`: the span becomes the parent. */
export function carrierFromSpan(span: SpanLike): TraceCarrier {
  return {
    traceId: span.traceId,
    parentSpanId: span.spanId,
    traceFlags: span.traceFlags,
    tracestate: span.tracestate,
    correlationId: span.correlationId,
    sessionId: span.sessionId,
  };
}

/**
 * Reads explicit trace params from a workflow argument. Needs a valid trace
 * id and parent span id; ids that are not W3C-valid are ignored rather than
 * failing the workflow ("never lose an event over its trace fields", docs/design-principles.md). Without flags the trace counts
 * as sampled, as a trace started by ts/edge does; unknown flag bits are
 * cleared and a tracestate that does not parse is dropped, as over HTTP.
 */
export function carrierFromParams(value: unknown): TraceCarrier | null {
  if (value === null || typeof value !== 'object') return null;
  const params = value as ExplicitTraceParams;
  if (!isValidTraceId(params.traceId) || !isValidSpanId(params.parentSpanId)) return null;
  const flags = params.traceFlags;
  const traceFlags =
    typeof flags === 'number' && Number.isInteger(flags) && flags >= 0 && flags <= 0xff
      ? flags & (TRACE_FLAG_SAMPLED | TRACE_FLAG_RANDOM_TRACE_ID)
      : TRACE_FLAG_SAMPLED;
  const state = typeof params.tracestate === 'string' ? parseTracestate(params.tracestate) : null;
  return {
    traceId: params.traceId,
    parentSpanId: params.parentSpanId,
    traceFlags,
    tracestate: state?.ok ? state.header : null,
    correlationId: normalizeUuid(params.correlationId ?? null),
    sessionId: normalizeUuid(params.sessionId ?? null),
  };
}

function encode(value: string): Payload {
  return defaultPayloadConverter.toPayload(value);
}

function decode(headers: TemporalHeaders, name: string): string | null {
  const payload = headers[name];
  if (payload === undefined) return null;
  try {
    const value: unknown = defaultPayloadConverter.fromPayload(payload);
    return typeof value === 'string' ? value : null;
  } catch {
    // A header some other component wrote in another encoding is not ours.
    return null;
  }
}

/** Header payloads for `carrier`; `activitySpanId` only when scheduling an activity. */
export function traceHeaders(carrier: TraceCarrier, activitySpanId?: string): Record<string, Payload> {
  const headers: Record<string, Payload> = {
    [TRACEPARENT_HEADER]: encode(formatTraceparent(carrier.traceId, carrier.parentSpanId, carrier.traceFlags)),
  };
  if (carrier.tracestate !== null) headers[TRACESTATE_HEADER] = encode(carrier.tracestate);
  if (carrier.correlationId !== null) headers[CORRELATION_ID_HEADER] = encode(carrier.correlationId);
  if (carrier.sessionId !== null) headers[SESSION_ID_HEADER] = encode(carrier.sessionId);
  if (activitySpanId !== undefined) headers[ACTIVITY_SPAN_ID_HEADER] = encode(activitySpanId);
  return headers;
}

/**
 * Reads the carrier from headers; null when there is no valid traceparent
 * (the receiver then starts a trace of its own). As over HTTP, a tracestate
 * is only read next to a valid traceparent and is dropped whole when it does
 * not parse.
 */
export function extractTraceCarrier(headers: TemporalHeaders | undefined): TraceCarrier | null {
  if (headers === undefined) return null;
  const parsed = parseTraceparent(decode(headers, TRACEPARENT_HEADER));
  if (!parsed.ok) return null;
  const state = parseTracestate(decode(headers, TRACESTATE_HEADER));
  return {
    traceId: parsed.traceparent.traceId,
    parentSpanId: parsed.traceparent.parentId,
    traceFlags: parsed.traceparent.traceFlags,
    tracestate: state.ok ? state.header : null,
    correlationId: normalizeUuid(decode(headers, CORRELATION_ID_HEADER)),
    sessionId: normalizeUuid(decode(headers, SESSION_ID_HEADER)),
  };
}

/** The activity span id the workflow assigned, or null when absent or invalid. */
export function extractActivitySpanId(headers: TemporalHeaders | undefined): string | null {
  if (headers === undefined) return null;
  const value = decode(headers, ACTIVITY_SPAN_ID_HEADER);
  return isValidSpanId(value) ? value : null;
}
