/**
 * fetch with trace context: every request carries a fresh `traceparent` and
 * the user action's correlation id, and every failure comes back as one error
 * type that holds the ids a user can quote to support.
 */
import { CORRELATION_ID_HEADER, TRACERESPONSE_HEADER } from '../trace-context/headers.ts';
import { buildTracingHeaders, generateCorrelationId, generateTraceparent, traceIdOf } from './tracing.ts';

export interface TracedFetchOptions {
  /**
   * The correlation id of the user action this request belongs to. Pass the
   * same id to every request one click or submit makes; a new id is made
   * when absent (the request is then an action of its own).
   */
  correlationId?: string;
  /**
   * The Supabase access token, used only to read the session id. When
   * absent, a `Authorization: Bearer` header on the request is read instead.
   */
  accessToken?: string | null;
  /** The W3C sampled flag of the new traceparent; defaults to true. */
  sampled?: boolean;
  /** The fetch to wrap; defaults to the global one. */
  fetch?: typeof fetch;
}

export interface TracedRequestErrorInit {
  /** HTTP status, or null when no response arrived (network failure, timeout). */
  status: number | null;
  correlationId: string;
  traceId: string | null;
  url: string;
  /** The server's `error.details`, e.g. which input fields it refused. */
  details?: unknown;
  cause?: unknown;
}

/**
 * A failed traced request. `correlationId` is what a user reads out to
 * support; `traceId` finds the server's trace; both come from the server's
 * answer when it gave them, else from what the browser sent.
 */
export class TracedRequestError extends Error {
  override readonly name = 'TracedRequestError';
  readonly status: number | null;
  readonly correlationId: string;
  readonly traceId: string | null;
  readonly url: string;
  readonly details: unknown;

  constructor(message: string, init: TracedRequestErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.correlationId = init.correlationId;
    this.traceId = init.traceId;
    this.url = init.url;
    this.details = init.details;
  }
}

export function isTracedRequestError(value: unknown): value is TracedRequestError {
  return value instanceof TracedRequestError;
}

interface ErrorBodyFields {
  message?: string;
  correlationId?: string;
  traceId?: string;
  details?: unknown;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/**
 * Reads the edge functions' error shape `{ error: { message, correlationId,
 * traceId, details? } }`, tolerating `{ error: "text" }`, `{ message }` and non-JSON
 * bodies (a proxy's HTML error page), which yield nothing.
 */
async function readErrorBody(response: Response): Promise<ErrorBodyFields> {
  let body: unknown;
  try {
    body = JSON.parse(await response.text());
  } catch {
    return {};
  }
  if (typeof body !== 'object' || body === null) return {};
  const record = body as Record<string, unknown>;
  const error = record['error'];
  if (typeof error === 'object' && error !== null) {
    const fields = error as Record<string, unknown>;
    return {
      message: nonEmptyString(fields['message']),
      correlationId: nonEmptyString(fields['correlationId']),
      traceId: nonEmptyString(fields['traceId']),
      details: fields['details'],
    };
  }
  return { message: nonEmptyString(error) ?? nonEmptyString(record['message']) };
}

function urlOf(input: RequestInfo | URL): string {
  if (typeof input === 'string') return input;
  return input instanceof URL ? input.href : input.url;
}

function bearerToken(headers: Headers): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(headers.get('authorization') ?? '');
  return match?.[1] ?? null;
}

function isAbort(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

interface SentIds {
  correlationId: string;
  traceId: string | null;
  url: string;
}

/** The ids a failure reports: the server's when its answer carries them, else the ones sent. */
function answeredIds(response: Response, body: ErrorBodyFields, sent: SentIds): { correlationId: string; traceId: string | null } {
  return {
    // The server's ids win: it may have replaced ours (e.g. restarted an invalid trace).
    correlationId: nonEmptyString(response.headers.get(CORRELATION_ID_HEADER)) ?? body.correlationId ?? sent.correlationId,
    traceId: body.traceId ?? traceIdOf(response.headers.get(TRACERESPONSE_HEADER)) ?? sent.traceId,
  };
}

async function send(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  options: TracedFetchOptions,
): Promise<{ response: Response; sent: SentIds }> {
  // Kept in a local and called bare: browsers throw "Illegal invocation" when
  // fetch runs with `this` set to anything but the global object, as it would
  // via `options.fetch(...)`.
  const fetchImpl = options.fetch ?? globalThis.fetch;
  // Same precedence as fetch itself: init.headers replaces a Request's headers.
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  const tracing = buildTracingHeaders({
    accessToken: options.accessToken ?? bearerToken(headers),
    correlationId: options.correlationId,
    traceparent: generateTraceparent({ sampled: options.sampled }),
  });
  for (const [name, value] of Object.entries(tracing)) headers.set(name, value);
  const sent: SentIds = {
    correlationId: tracing[CORRELATION_ID_HEADER],
    traceId: traceIdOf(tracing.traceparent),
    url: urlOf(input),
  };

  let response: Response;
  try {
    response = await fetchImpl(input, { ...init, headers });
  } catch (error) {
    if (isAbort(error)) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new TracedRequestError(`Network request failed: ${reason}`, { status: null, ...sent, cause: error });
  }
  if (response.ok) return { response, sent };

  const body = await readErrorBody(response);
  const statusText = response.statusText ? ` ${response.statusText}` : '';
  throw new TracedRequestError(body.message ?? `Request failed with status ${response.status}${statusText}`, {
    status: response.status,
    url: sent.url,
    ...answeredIds(response, body, sent),
    details: body.details,
  });
}

/**
 * `fetch` plus tracing headers. Resolves with the response when it is 2xx;
 * otherwise rejects with a TracedRequestError, as it does when no response
 * arrives. A caller's own abort is passed through unchanged: cancelling is
 * not a failure to report.
 */
export async function tracedFetch(input: RequestInfo | URL, init?: RequestInit, options: TracedFetchOptions = {}): Promise<Response> {
  return (await send(input, init, options)).response;
}

/**
 * tracedFetch for JSON APIs: resolves with the parsed body. A 2xx whose body
 * is not JSON is a failure too, reported with the same ids, since for the
 * user the action did not work.
 */
export async function tracedFetchJson<T>(input: RequestInfo | URL, init?: RequestInit, options: TracedFetchOptions = {}): Promise<T> {
  const { response, sent } = await send(input, init, options);
  try {
    return (await response.json()) as T;
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new TracedRequestError(`Unreadable response body (status ${response.status})`, {
      status: response.status,
      url: sent.url,
      ...answeredIds(response, {}, sent),
      cause: error,
    });
  }
}

export interface UserAction {
  readonly correlationId: string;
  /** tracedFetch bound to this action's correlation id. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

/**
 * One user action: a correlation id shared by every request the action makes,
 * each request still getting its own traceparent.
 */
export function startUserAction(options: Omit<TracedFetchOptions, 'correlationId'> = {}): UserAction {
  const correlationId = generateCorrelationId();
  return {
    correlationId,
    fetch: (input, init) => tracedFetch(input, init, { ...options, correlationId }),
  };
}
