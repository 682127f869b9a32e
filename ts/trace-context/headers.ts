/**
 * The names of every header that carries trace context, and the uuid rule
 * the id headers follow, defined once for every runtime (browser, edge,
 * Temporal workers, the OTLP server).
 *
 * Header names are lowercase: HTTP field names are case-insensitive, and W3C
 * Trace Context "Header Name" says vendors MUST expect them in any case, so
 * the lowercase spelling is the one sent and the one looked up.
 */

/** W3C Trace Context "traceparent Header": the caller's trace and span. */
export const TRACEPARENT_HEADER = 'traceparent';
/** W3C Trace Context "tracestate Header": vendor-specific trace state. */
export const TRACESTATE_HEADER = 'tracestate';
/** W3C Trace Context Level 2 `traceresponse`: the trace and server span a response belongs to. */
export const TRACERESPONSE_HEADER = 'traceresponse';
/** The correlation id (a uuid) of one user action. */
export const CORRELATION_ID_HEADER = 'x-correlation-id';
/** The user's session id (a uuid), absent when there is none. */
export const SESSION_ID_HEADER = 'x-session-id';
/** Temporal activities only: the span id the workflow assigned to the activity. */
export const ACTIVITY_SPAN_ID_HEADER = 'tracegres-activity-span-id';
/** The header a client sends to ask for its trace to be kept; honoured only where the configuration allows it. */
export const FORCE_SAMPLING_HEADER = 'x-tracegres-sample';
/** OTLP ingest: the organization the exported spans are filed under. */
export const ORGANIZATION_ID_HEADER = 'x-tracegres-organization-id';

/** The canonical 8-4-4-4-12 uuid spelling (either case), the same rule the database applies. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The nil uuid, which no id header may carry. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';
