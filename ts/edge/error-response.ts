/**
 * CORS and error responses for edge functions.
 *
 * Browsers only send and read the tracing headers across origins when CORS
 * says so: a preflight must allow `traceparent`, `tracestate` and the id
 * headers, and the response must expose `x-correlation-id` and
 * `traceresponse` or the client cannot show the user the id support will
 * ask for.
 */
import {
  CORRELATION_ID_HEADER,
  SESSION_ID_HEADER,
  TRACEPARENT_HEADER,
  TRACERESPONSE_HEADER,
  TRACESTATE_HEADER,
} from '../trace-context/headers.ts';
import type { Span, TracingContext } from '../trace-context/span.ts';

export const CORS_ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  CORRELATION_ID_HEADER,
  SESSION_ID_HEADER,
] as const;

export const CORS_EXPOSED_HEADERS = [CORRELATION_ID_HEADER, TRACERESPONSE_HEADER] as const;

export interface CorsOptions {
  /** Allowed origin; defaults to "*". A specific origin adds `Vary: Origin`. */
  origin?: string;
  /** Allowed methods; defaults to the usual verbs. */
  methods?: readonly string[];
  /** Extra request headers to allow on top of CORS_ALLOWED_HEADERS. */
  allowHeaders?: readonly string[];
  /** Preflight cache lifetime in seconds; defaults to one day. */
  maxAge?: number;
}

const DEFAULT_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** CORS response headers as a plain object, so they can be spread into any HeadersInit. */
export function corsHeaders(options?: CorsOptions): Record<string, string> {
  const origin = options?.origin ?? '*';
  const allow = new Set<string>([...CORS_ALLOWED_HEADERS, ...(options?.allowHeaders ?? []).map((h) => h.toLowerCase())]);
  const headers: Record<string, string> = {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': (options?.methods ?? DEFAULT_METHODS).join(', '),
    'access-control-allow-headers': [...allow].join(', '),
    'access-control-expose-headers': CORS_EXPOSED_HEADERS.join(', '),
    'access-control-max-age': String(options?.maxAge ?? 86_400),
  };
  // A response that names one origin differs per requesting origin; caches
  // must know (Fetch standard, CORS protocol and HTTP caches).
  if (origin !== '*') headers.vary = 'Origin';
  return headers;
}

/** Answers a CORS preflight (OPTIONS) with 204; returns null for every other method. */
export function handlePreflight(request: Request, options?: CorsOptions): Response | null {
  if (request.method !== 'OPTIONS') return null;
  return new Response(null, { status: 204, headers: corsHeaders(options) });
}

export interface ErrorBody {
  error: {
    message: string;
    correlationId: string;
    traceId: string;
    details?: unknown;
  };
}

/**
 * Serialises `details` for a client: Error objects become their name only and
 * `stack` properties are dropped at any depth, so a handler that passes a
 * caught error by mistake still leaks no stack trace or internal message.
 */
function safeDetails(details: unknown): unknown {
  if (details === undefined) return undefined;
  const text = JSON.stringify(details, (key, value: unknown) => {
    if (key === 'stack') return undefined;
    if (value instanceof Error) return { name: value.name };
    return value;
  });
  return text === undefined ? undefined : (JSON.parse(text) as unknown);
}

/**
 * A JSON error response that carries the correlation id (body and
 * `x-correlation-id` header) and the trace id, with CORS headers so a browser
 * can read it.
 */
export function errorResponse(
  context: Pick<TracingContext | Span, 'correlationId' | 'traceId'>,
  status: number,
  message: string,
  details?: unknown,
  options?: { cors?: CorsOptions; headers?: HeadersInit },
): Response {
  const body: ErrorBody = { error: { message, correlationId: context.correlationId, traceId: context.traceId } };
  const safe = safeDetails(details);
  if (safe !== undefined) body.error.details = safe;
  const headers = new Headers(options?.headers);
  for (const [name, value] of Object.entries(corsHeaders(options?.cors))) headers.set(name, value);
  headers.set('content-type', 'application/json; charset=utf-8');
  headers.set(CORRELATION_ID_HEADER, context.correlationId);
  return new Response(JSON.stringify(body), { status, headers });
}
