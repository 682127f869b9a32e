// The dashboard's only way to the server: POST /graphql with the signed-in
// token, through the browser toolkit's tracedFetch, so the dashboard's own
// requests carry a traceparent and a correlation id like any traced client,
// and a failure comes back with the ids a user can quote.
import { isTracedRequestError, startUserAction } from '../../ts/client/traced-fetch.ts';
import type { CorrelatedError } from '../../ts/client/error-with-correlation.tsx';

const TOKEN_KEY = 'tracegres.token';
export const TOKEN_REJECTED_EVENT = 'tracegres:token-rejected';

// sessionStorage: the token lives as long as the tab, not on the disk.
export const tokenStore = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** The server refused the token (401): sign in again. */
export class TokenRejectedError extends Error {
  override name = 'TokenRejectedError';
}

export class QueryError extends Error implements CorrelatedError {
  override name = 'QueryError';
  constructor(
    message: string,
    readonly correlationId: string | null,
    readonly traceId: string | null,
    readonly status: number | null,
  ) {
    super(message);
  }
}

interface GraphQLResponse<T> {
  data?: T;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

export async function graphql<T>(
  query: string,
  variables: Record<string, unknown> = {},
  token = tokenStore.get(),
  signal?: AbortSignal,
): Promise<T> {
  const action = startUserAction({ accessToken: token });
  let response: Response;
  try {
    response = await action.fetch('/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
      signal,
    });
  } catch (error) {
    if (isTracedRequestError(error)) {
      if (error.status === 401) {
        const rejected = new TokenRejectedError('The server did not accept this token (invalid or expired).');
        // The stored token stopped working (expired, secret rotated): the app
        // signs out and says why. A token being tried at sign-in is not stored.
        if (token !== null && token === tokenStore.get())
          dispatchEvent(new CustomEvent(TOKEN_REJECTED_EVENT, { detail: rejected.message }));
        throw rejected;
      }
      throw new QueryError(error.message, error.correlationId, error.traceId, error.status);
    }
    throw error;
  }
  const body = (await response.json()) as GraphQLResponse<T>;
  if (body.errors?.length) {
    // GraphQL reports bad input (a malformed id, a bad date) with status 200.
    throw new QueryError(body.errors.map((e) => e.message).join('; '), action.correlationId, null, response.status);
  }
  return body.data as T;
}

export interface ApiEvent {
  rowId: string;
  streamType: string;
  streamId: string;
  eventType: string;
  eventData: unknown;
  eventMetadata: unknown;
  organizationId: string | null;
  createdAt: string;
  processedAt: string | null;
  processingError: string | null;
  correlationId: string | null;
  sessionId: string | null;
  traceId: string | null;
  spanId: string | null;
  parentSpanId: string | null;
  traceFieldErrors: unknown;
}

export const EVENT_FIELDS = `rowId streamType streamId eventType eventData eventMetadata organizationId createdAt processedAt
  processingError correlationId sessionId traceId spanId parentSpanId traceFieldErrors`;

export interface SpanEvent {
  id: number;
  event_type: string;
  stream_type: string;
  stream_id: string;
  created_at: string;
  offset_ms: number;
  processing_error: string | null;
  event_data: unknown;
}

export interface TimelineSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  recordedParentSpanId: string | null;
  name: string | null;
  service: string | null;
  kind: string | null;
  status: string | null;
  statusMessage: string | null;
  attributes: Record<string, unknown> | null;
  startTime: string;
  endTime: string;
  depth: number;
  childCount: number;
  offsetMs: number;
  durationMs: number;
  selfTimeMs: number;
  onCriticalPath: boolean;
  isInferred: boolean;
  isPlaceholder: boolean;
  breaksCycle: boolean;
  cutAtDepthLimit: boolean;
  /** The trace is larger than the timeline reads or shows; these are its earliest spans. */
  traceCutAtLimit: boolean;
  eventCount: number;
  events: SpanEvent[];
}

export const TIMELINE_QUERY = `query Timeline($traceId: String!) {
  getTraceTimeline(pTraceId: $traceId) {
    nodes {
      traceId spanId parentSpanId recordedParentSpanId name service kind status statusMessage attributes
      startTime endTime depth childCount offsetMs durationMs selfTimeMs onCriticalPath isInferred isPlaceholder
      breaksCycle cutAtDepthLimit traceCutAtLimit eventCount events
    }
  }
}`;

export interface TraceSummary {
  traceId: string;
  rootSpanId: string | null;
  rootName: string | null;
  rootService: string | null;
  services: string[];
  startTime: string;
  endTime: string;
  durationMs: number;
  spanCount: number;
  inferredSpanCount: number;
  errorCount: number;
  eventCount: number;
  status: string;
  sessionId: string | null;
  correlationId: string | null;
}

export const SUMMARY_FIELDS = `traceId rootSpanId rootName rootService services startTime endTime durationMs spanCount
  inferredSpanCount errorCount eventCount status sessionId correlationId`;
