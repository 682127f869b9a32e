/**
 * Wraps an edge-function handler (the Deno.serve signature) in a server span.
 *
 * Per request: read the trace context, answer a CORS preflight, open a
 * server span, make the sampling decision (decideSampling, the rule the
 * database's tracing.run_sampling applies), run the handler, stamp the
 * response with `traceresponse`, `x-correlation-id` and CORS headers, then
 * end the span and record it without holding the response back (design
 * principle 4).
 */
import type { Sql } from 'postgres';
import { corsHeaders, errorResponse, handlePreflight, type CorsOptions } from './error-response.ts';
import { recordSpan } from '../store/record-span.ts';
import { databaseSampling, type SamplingSource } from './sampling-source.ts';
import {
  KEEP_EVERY_TRACE,
  SAMPLE_RATE_ATTRIBUTE,
  SAMPLING_PRIORITY_ATTRIBUTE,
  decideSampling,
  forceRequested,
  type SamplingConfig,
  type SamplingDecision,
  type SamplingInput,
} from './sampling.ts';
import { extractTracingContext, type ExtractOptions } from '../trace-context/extract.ts';
import { CORRELATION_ID_HEADER, TRACERESPONSE_HEADER } from '../trace-context/headers.ts';
import { createSpan, endSpan, type FinishedSpan, type Span, type SpanStatus, type TracingContext } from '../trace-context/span.ts';
import { formatTraceparent, TRACE_FLAG_SAMPLED } from '../trace-context/traceparent.ts';

export interface HandlerContext {
  /** The server span of this request; create children with createSpan(span, ...). */
  span: Span;
  context: TracingContext;
  /** The sampling decision for this request; span.traceFlags carries its `sampled` flag to children. */
  sampling: SamplingDecision;
}

export type TracedHandler = (request: Request, ctx: HandlerContext) => Response | Promise<Response>;

export interface WithTracingOptions {
  service: string;
  /** Where finished spans are recorded; without it spans are only handed to onSpanEnd. */
  sql?: Sql;
  /**
   * Span name. Defaults to "<METHOD> <path>"; pass a function when paths carry
   * ids, so names stay low-cardinality (OpenTelemetry HTTP span naming).
   */
  operationName?: (request: Request) => string;
  /**
   * Keeps the recording alive after the response: a worker's ctx.waitUntil,
   * or EdgeRuntime.waitUntil on Supabase. Without it the recording is
   * fire-and-forget, which a platform that freezes the isolate after the
   * response may cut short.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
  /**
   * Called with every finished span that is recorded (see `sampling`);
   * errors it throws are logged and ignored.
   */
  onSpanEnd?: (span: FinishedSpan) => void;
  /**
   * Where the sampling settings come from. Defaults to the database's
   * (databaseSampling(sql), cached for 30 s), so the edge decides as
   * tracing.run_sampling does; without `sql`, every trace is kept. A fixed
   * SamplingConfig is accepted for tests. A span of a trace that is neither
   * kept nor waiting for the database's tail decision is not recorded.
   */
  sampling?: SamplingSource | SamplingConfig;
  /**
   * Whether callers are our own services, whose sampled flag is the trace's
   * decision (parent-based sampling). Defaults to false: a browser's flag is
   * only a request to keep the trace, granted where `sampling` allows it.
   */
  trustParent?: boolean;
  cors?: CorsOptions;
  extract?: ExtractOptions;
}

function defaultOperationName(request: Request): string {
  try {
    return `${request.method} ${new URL(request.url).pathname}`;
  } catch {
    return request.method;
  }
}

function requestAttributes(request: Request): Record<string, unknown> {
  // OpenTelemetry HTTP server semantic conventions.
  const attributes: Record<string, unknown> = { 'http.request.method': request.method };
  try {
    const url = new URL(request.url);
    attributes['url.path'] = url.pathname;
    attributes['url.scheme'] = url.protocol.replace(/:$/, '');
    attributes['server.address'] = url.hostname;
  } catch {
    // A request URL that does not parse still gets a span.
  }
  const userAgent = request.headers.get('user-agent');
  if (userAgent !== null) attributes['user_agent.original'] = userAgent;
  return attributes;
}

/**
 * The decision for this request. The operation is the span's name only when
 * the span is the root of its trace: the database rates a trace by the name
 * of its root span (a span without a parent), so a server span under a
 * caller's span is rated as the database would rate it, by its event types
 * or the environment's rate.
 */
function samplingInput(request: Request, context: TracingContext, span: Span, trustParent: boolean): SamplingInput {
  return {
    traceId: span.traceId,
    operation: span.parentSpanId === null ? span.name : null,
    // A restarted trace has no parent: its flags are our own.
    parentSampled: context.restarted ? undefined : (context.traceFlags & TRACE_FLAG_SAMPLED) !== 0,
    trustParent,
    forceRequested: forceRequested(request.headers),
  };
}

/**
 * decideSampling, never throwing ("tracing never blocks business logic", docs/design-principles.md): a configuration it
 * cannot read (a rate that is not a decimal in 0..1) is logged, and the
 * trace is kept, leaving the decision to the database.
 */
function decide(config: SamplingConfig, input: SamplingInput, span: Span): SamplingDecision {
  try {
    return decideSampling(config, input);
  } catch (error) {
    logError('sampling decision failed', span, error);
    return decideSampling(KEEP_EVERY_TRACE, input);
  }
}

/** Sets the decision's flag and attributes on the span, replacing an earlier decision's. */
function applySampling(span: Span, decision: SamplingDecision): void {
  span.traceFlags = decision.sampled ? span.traceFlags | TRACE_FLAG_SAMPLED : span.traceFlags & ~TRACE_FLAG_SAMPLED;
  delete span.attributes[SAMPLE_RATE_ATTRIBUTE];
  delete span.attributes[SAMPLING_PRIORITY_ATTRIBUTE];
  Object.assign(span.attributes, decision.attributes);
}

function logError(message: string, span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  console.error(
    JSON.stringify({
      level: 'error',
      message,
      trace_id: span.traceId,
      span_id: span.spanId,
      correlation_id: span.correlationId,
      service: span.service,
      error_name: err.name,
      error_message: err.message,
      // The stack goes to the server log only, never into a response.
      error_stack: err.stack,
    }),
  );
}

/**
 * Adds headers to a response. Responses from fetch() or Response.redirect()
 * have immutable headers; those are copied into a new Response, which keeps
 * the body stream without reading it.
 */
function withHeaders(response: Response, extra: Record<string, string>): Response {
  try {
    for (const [name, value] of Object.entries(extra)) response.headers.set(name, value);
    return response;
  } catch {
    const headers = new Headers(response.headers);
    for (const [name, value] of Object.entries(extra)) headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

export function withTracing(handler: TracedHandler, options: WithTracingOptions): (request: Request) => Promise<Response> {
  const operationName = options.operationName ?? defaultOperationName;
  const sampling = options.sampling ?? (options.sql ? databaseSampling(options.sql) : KEEP_EVERY_TRACE);
  const samplingSource: SamplingSource = typeof sampling === 'function' ? sampling : async () => sampling;

  return async (request: Request): Promise<Response> => {
    // Preflights carry no traceparent worth a span; answer them straight away.
    const preflight = handlePreflight(request, options.cors);
    if (preflight !== null) return preflight;

    const context = extractTracingContext(request, options.extract);
    let name: string;
    try {
      name = operationName(request);
    } catch {
      name = defaultOperationName(request);
    }
    const span = createSpan(context, name, {
      kind: 'server',
      service: options.service,
      attributes: requestAttributes(request),
    });
    if (context.restarted && context.restartReason !== undefined) {
      span.attributes['tracegres.trace_restart_reason'] = context.restartReason;
    }
    const input = samplingInput(request, context, span, options.trustParent ?? false);
    const samplingConfig = await samplingSource().catch((error: unknown) => {
      logError('sampling settings failed', span, error);
      return KEEP_EVERY_TRACE;
    });
    let decision = decide(samplingConfig, input, span);
    applySampling(span, decision);

    let response: Response;
    let status: SpanStatus;
    try {
      response = await handler(request, { span, context, sampling: decision });
      // OpenTelemetry HTTP server spans: 5xx is an error, 4xx is the client's
      // problem and leaves the status unset.
      status = response.status >= 500 ? { code: 'error', message: `HTTP ${response.status}` } : { code: 'unset' };
    } catch (error) {
      logError('handler failed', span, error);
      const err = error instanceof Error ? error : new Error(String(error));
      span.attributes['exception.type'] = err.name;
      span.attributes['exception.message'] = err.message;
      status = { code: 'error', message: err.message };
      response = errorResponse(span, 500, 'Internal server error', undefined, { cors: options.cors });
    }
    span.attributes['http.response.status_code'] = response.status;
    // Errors are always kept, here as in the database.
    if (status.code === 'error') {
      decision = decide(samplingConfig, { ...input, hasError: true }, span);
      applySampling(span, decision);
    }

    response = withHeaders(response, {
      ...corsHeaders(options.cors),
      // Trace Context Level 2 traceresponse: the trace and this server span.
      [TRACERESPONSE_HEADER]: formatTraceparent(span.traceId, span.spanId, span.traceFlags),
      [CORRELATION_ID_HEADER]: span.correlationId,
    });

    const finished = endSpan(span, status);
    if (!decision.recordSpans) return response;
    if (options.onSpanEnd) {
      try {
        options.onSpanEnd(finished);
      } catch (error) {
        logError('onSpanEnd failed', span, error);
      }
    }
    if (options.sql) {
      // recordSpan never rejects; the response does not wait for it.
      const recording = recordSpan(options.sql, finished);
      if (options.waitUntil) {
        try {
          options.waitUntil(recording);
        } catch (error) {
          logError('waitUntil failed', span, error);
        }
      }
    }
    return response;
  };
}
