// Between tracegres spans and OTLP spans, per the OTLP specification and
// OpenTelemetry's semantic conventions:
// - ids are hex in tracegres and bytes on the wire (protocol.ts converts);
// - times are Unix nanoseconds (tracegres stores microseconds);
// - kind and status are OTLP's enum numbers;
// - attributes are typed AnyValues: JSON strings, booleans, integers,
//   other numbers, arrays and objects become string, bool, int, double,
//   array and kvlist values, and back;
// - the resource carries `service.name` (one ResourceSpans per service);
// - a span's domain events and its own span events are OTLP span events;
// - the session id travels as `session.id` (semantic conventions), the
//   correlation and organization ids as `tracegres.correlation_id` and
//   `tracegres.organization_id` (no convention exists; the product prefix
//   is what the conventions ask for in that case).
import {
  SPAN_KIND,
  STATUS_CODE,
  type OtlpAnyValue,
  type OtlpEvent,
  type OtlpKeyValue,
  type OtlpLink,
  type OtlpRequest,
  type OtlpResourceSpans,
  type OtlpSpan,
} from './protocol.ts';
import { NIL_UUID, UUID_PATTERN } from '../../ts/trace-context/headers.ts';
import type { SpanRecord } from '../../ts/trace-context/span-record.ts';

export const SESSION_ID_ATTRIBUTE = 'session.id';
export const CORRELATION_ID_ATTRIBUTE = 'tracegres.correlation_id';
export const ORGANIZATION_ID_ATTRIBUTE = 'tracegres.organization_id';
export const SCOPE = { name: 'tracegres', version: '0.1.0' };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// ---------------------------------------------------------------- export

/** A row of tracing.otlp_trace_spans: a stored span in OTLP's terms. */
export interface StoredSpan {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  service: string;
  kind: string;
  start_time_unix_nano: string;
  end_time_unix_nano: string;
  status: string;
  status_message: string | null;
  attributes: Record<string, Json> | null;
  span_events: Array<Record<string, Json>> | null;
  links: Array<Record<string, Json>> | null;
  correlation_id: string | null;
  session_id: string | null;
  organization_id: string | null;
  domain_events: Array<{ name: string; time_unix_nano: string; attributes: Record<string, Json> }> | null;
}

/** A row of tracing.otlp_claim_spans. */
export interface QueuedSpan extends StoredSpan {
  outbox_id: string | number | bigint;
}

export interface ResourceConfig {
  /** OTEL_RESOURCE_ATTRIBUTES, added to every resource. */
  attributes: Record<string, string>;
  /** OTEL_SERVICE_NAME: the service of spans recorded without one. */
  serviceName?: string;
}

export function spansToOtlpRequest(rows: StoredSpan[], resource: ResourceConfig): OtlpRequest {
  const byService = new Map<string, OtlpSpan[]>();
  for (const row of rows) {
    const service = row.service === 'unknown_service' && resource.serviceName ? resource.serviceName : row.service;
    let spans = byService.get(service);
    if (!spans) byService.set(service, (spans = []));
    spans.push(spanToOtlp(row));
  }
  const resourceSpans: OtlpResourceSpans[] = [];
  for (const [service, spans] of byService) {
    // The span's own service names the resource; the configured resource
    // attributes describe the deployment and never override it.
    const attributes = { ...resource.attributes, 'service.name': service };
    resourceSpans.push({
      resource: { attributes: toKeyValues(attributes) },
      scopeSpans: [{ scope: SCOPE, spans }],
    });
  }
  return { resourceSpans };
}

function spanToOtlp(row: StoredSpan): OtlpSpan {
  const attributes: Record<string, Json> = { ...(row.attributes ?? {}) };
  if (row.session_id) attributes[SESSION_ID_ATTRIBUTE] = row.session_id;
  if (row.correlation_id) attributes[CORRELATION_ID_ATTRIBUTE] = row.correlation_id;
  if (row.organization_id) attributes[ORGANIZATION_ID_ATTRIBUTE] = row.organization_id;
  const events: OtlpEvent[] = [];
  for (const event of row.span_events ?? []) {
    const time = eventTimeNanos(event);
    events.push({
      name: String(event.name ?? ''),
      ...(time ? { timeUnixNano: time } : {}),
      attributes: toKeyValues(isObject(event.attributes) ? (event.attributes as Record<string, Json>) : {}),
    });
  }
  for (const event of row.domain_events ?? []) {
    events.push({ name: event.name, timeUnixNano: event.time_unix_nano, attributes: toKeyValues(event.attributes) });
  }
  events.sort((a, b) => compareNanos(a.timeUnixNano, b.timeUnixNano));
  const links: OtlpLink[] = [];
  for (const link of row.links ?? []) {
    if (typeof link.trace_id !== 'string' || typeof link.span_id !== 'string') continue;
    links.push({
      traceId: link.trace_id,
      spanId: link.span_id,
      ...(typeof link.trace_state === 'string' ? { traceState: link.trace_state } : {}),
      attributes: toKeyValues(isObject(link.attributes) ? (link.attributes as Record<string, Json>) : {}),
    });
  }
  return {
    traceId: row.trace_id,
    spanId: row.span_id,
    ...(row.parent_span_id ? { parentSpanId: row.parent_span_id } : {}),
    name: row.name,
    kind: SPAN_KIND[row.kind as keyof typeof SPAN_KIND] ?? SPAN_KIND.internal,
    startTimeUnixNano: row.start_time_unix_nano,
    endTimeUnixNano: row.end_time_unix_nano,
    attributes: toKeyValues(attributes),
    events,
    links,
    status: {
      code: STATUS_CODE[row.status as keyof typeof STATUS_CODE] ?? STATUS_CODE.unset,
      // OTLP: the message is for error statuses only.
      ...(row.status === 'error' && row.status_message ? { message: row.status_message } : {}),
    },
  };
}

function eventTimeNanos(event: Record<string, Json>): string | undefined {
  const nanos = event.time_unix_nano;
  if (typeof nanos === 'string' && /^\d+$/.test(nanos)) return nanos;
  if (typeof nanos === 'number' && Number.isFinite(nanos)) return BigInt(Math.trunc(nanos)).toString();
  if (typeof event.time === 'string') return isoToNanos(event.time);
  return undefined;
}

function compareNanos(a: string | number | undefined, b: string | number | undefined): number {
  const x = BigInt(a ?? 0);
  const y = BigInt(b ?? 0);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function toKeyValues(attributes: Record<string, Json>): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  for (const [key, value] of Object.entries(attributes)) {
    // OTLP has no null attribute; an absent key says the same.
    if (value === null || value === undefined) continue;
    out.push({ key, value: toAnyValue(value) });
  }
  return out;
}

export function toAnyValue(value: Json): OtlpAnyValue {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  }
  if (Array.isArray(value)) return { arrayValue: { values: value.map((item) => toAnyValue(item ?? '')) } };
  if (value && typeof value === 'object') return { kvlistValue: { values: toKeyValues(value) } };
  return { stringValue: '' };
}

// ---------------------------------------------------------------- ingest

/** One span as tracing.record_spans takes it: the toolkit's SpanRecord. */
export type { SpanRecord };

export interface RejectedSpan {
  /** 0-based position among all spans of the request. */
  index: number;
  traceId: string;
  spanId: string;
  reason: string;
}

export interface MappedRequest {
  total: number;
  records: SpanRecord[];
  /** Position in the request of each record. */
  positions: number[];
  rejected: RejectedSpan[];
}

export const KIND_NAMES = ['internal', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
export const STATUS_NAMES = ['unset', 'ok', 'error'] as const;

/** Why a span is rejected: each rule's message, written once for both decoding paths (protobuf-columns.ts). */
export const SPAN_RULES = {
  traceId: 'traceId must be 16 bytes (32 hex characters), not all zeros',
  spanId: 'spanId must be 8 bytes (16 hex characters), not all zeros',
  parentSpanId: 'parentSpanId must be empty or 8 bytes (16 hex characters), not all zeros',
  name: 'name is required',
  startTime: 'startTimeUnixNano must be a positive integer',
  endTime: 'endTimeUnixNano must be a positive integer',
  endBeforeStart: 'endTimeUnixNano must not be before startTimeUnixNano',
  timeRange: 'times must be before the year 10000',
  kind: 'kind must be a SpanKind (0-5)',
  statusCode: 'status.code must be a StatusCode (0-2)',
  link: (i: number) => `links[${i}] must carry a valid traceId and spanId`,
};

export class MalformedRequestError extends Error {}

/**
 * Validates and converts every span of a request. A span that cannot be
 * stored is rejected alone (with its reason), so one bad span does not cost
 * the others; a request whose structure is wrong is malformed as a whole.
 */
export function otlpRequestToSpanRecords(request: OtlpRequest): MappedRequest {
  const result: MappedRequest = { total: 0, records: [], positions: [], rejected: [] };
  const resourceSpans = field(request, 'resourceSpans', 'resource_spans');
  if (resourceSpans === undefined || resourceSpans === null) return result;
  if (!Array.isArray(resourceSpans)) throw new MalformedRequestError('resourceSpans must be an array');
  for (const [r, rs] of resourceSpans.entries()) {
    if (!isObject(rs)) throw new MalformedRequestError(`resourceSpans[${r}] must be an object`);
    const resource = field(rs, 'resource');
    let resourceAttributes: Record<string, Json>;
    try {
      resourceAttributes = fromKeyValues(
        isObject(resource) ? field(resource, 'attributes') : undefined,
        `resourceSpans[${r}].resource.attributes`,
      );
    } catch (error) {
      if (error instanceof SpanProblem) throw new MalformedRequestError(error.message);
      throw error;
    }
    const scopeSpans = field(rs, 'scopeSpans', 'scope_spans') ?? [];
    if (!Array.isArray(scopeSpans)) throw new MalformedRequestError(`resourceSpans[${r}].scopeSpans must be an array`);
    for (const [s, ss] of scopeSpans.entries()) {
      if (!isObject(ss)) throw new MalformedRequestError(`resourceSpans[${r}].scopeSpans[${s}] must be an object`);
      const spans = field(ss, 'spans') ?? [];
      if (!Array.isArray(spans)) throw new MalformedRequestError(`resourceSpans[${r}].scopeSpans[${s}].spans must be an array`);
      for (const span of spans) {
        const index = result.total++;
        if (!isObject(span)) {
          result.rejected.push({ index, traceId: '', spanId: '', reason: 'a span must be an object' });
          continue;
        }
        const mapped = spanFromOtlp(span as OtlpSpan, resourceAttributes);
        if (typeof mapped === 'string') {
          result.rejected.push({
            index,
            traceId: String(span.traceId ?? span.trace_id ?? ''),
            spanId: String(span.spanId ?? span.span_id ?? ''),
            reason: mapped,
          });
        } else {
          result.records.push(mapped);
          result.positions.push(index);
        }
      }
    }
  }
  return result;
}

/** The record, or why the span cannot be stored. */
function spanFromOtlp(span: OtlpSpan, resourceAttributes: Record<string, Json>): SpanRecord | string {
  if (typeof span.decodeError === 'string') return span.decodeError;
  const traceId = normalizeId(field(span, 'traceId', 'trace_id'));
  const spanId = normalizeId(field(span, 'spanId', 'span_id'));
  const parent = normalizeId(field(span, 'parentSpanId', 'parent_span_id'));
  if (!isHexId(traceId, 32)) return SPAN_RULES.traceId;
  if (!isHexId(spanId, 16)) return SPAN_RULES.spanId;
  if (parent !== '' && !isHexId(parent, 16)) return SPAN_RULES.parentSpanId;
  const name = field(span, 'name');
  if (typeof name !== 'string' || name === '') return SPAN_RULES.name;
  const start = nanos(field(span, 'startTimeUnixNano', 'start_time_unix_nano'));
  const end = nanos(field(span, 'endTimeUnixNano', 'end_time_unix_nano'));
  if (start === undefined || start === 0n) return SPAN_RULES.startTime;
  if (end === undefined || end === 0n) return SPAN_RULES.endTime;
  if (end < start) return SPAN_RULES.endBeforeStart;
  if (start > MAX_NANOS || end > MAX_NANOS) return SPAN_RULES.timeRange;
  const kind = enumValue(field(span, 'kind'), 'SPAN_KIND_', KIND_NAMES.length);
  if (kind === undefined) return SPAN_RULES.kind;
  const status = field(span, 'status');
  const statusCode = enumValue(isObject(status) ? field(status, 'code') : 0, 'STATUS_CODE_', STATUS_NAMES.length);
  if (statusCode === undefined) return SPAN_RULES.statusCode;
  let attributes: Record<string, Json>;
  let events: Array<Record<string, Json>>;
  let links: Array<Record<string, Json>>;
  try {
    // Resource attributes are kept with the span (tracegres has no resource
    // table); the span's own attributes win a clash.
    attributes = { ...resourceAttributes, ...fromKeyValues(field(span, 'attributes'), 'attributes') };
    events = listOf(field(span, 'events'), 'events').map((event, i) => {
      const time = nanos(field(event, 'timeUnixNano', 'time_unix_nano'));
      return {
        name: String(field(event, 'name') ?? ''),
        time: time ? nanosToIso(time) : null,
        time_unix_nano: time ? time.toString() : null,
        attributes: fromKeyValues(field(event, 'attributes'), `events[${i}].attributes`),
      };
    });
    links = listOf(field(span, 'links'), 'links').map((link, i) => {
      const linkTrace = normalizeId(field(link, 'traceId', 'trace_id'));
      const linkSpan = normalizeId(field(link, 'spanId', 'span_id'));
      if (!isHexId(linkTrace, 32) || !isHexId(linkSpan, 16)) throw new SpanProblem(SPAN_RULES.link(i));
      const traceState = field(link, 'traceState', 'trace_state');
      return {
        trace_id: linkTrace,
        span_id: linkSpan,
        ...(typeof traceState === 'string' && traceState ? { trace_state: traceState } : {}),
        attributes: fromKeyValues(field(link, 'attributes'), `links[${i}].attributes`),
      };
    });
  } catch (error) {
    if (error instanceof SpanProblem) return error.message;
    throw error;
  }
  const service =
    typeof attributes['service.name'] === 'string' && attributes['service.name'] ? attributes['service.name'] : 'unknown_service';
  delete attributes['service.name'];
  // Ids with columns of their own move there when they are uuids; anything
  // else stays an ordinary attribute, so nothing is lost over its shape.
  const sessionId = takeUuid(attributes, SESSION_ID_ATTRIBUTE);
  const correlationId = takeUuid(attributes, CORRELATION_ID_ATTRIBUTE);
  const organizationId = takeUuid(attributes, ORGANIZATION_ID_ATTRIBUTE);
  const statusMessage = isObject(status) ? field(status, 'message') : undefined;
  return {
    trace_id: traceId,
    span_id: spanId,
    parent_span_id: parent || null,
    name,
    service,
    kind: KIND_NAMES[kind]!,
    start_time: nanosToIso(start),
    end_time: nanosToIso(end),
    status: STATUS_NAMES[statusCode]!,
    status_message: typeof statusMessage === 'string' && statusMessage ? statusMessage : null,
    attributes,
    events: events.length ? events : null,
    links: links.length ? links : null,
    correlation_id: correlationId,
    session_id: sessionId,
    organization_id: organizationId,
  };
}

class SpanProblem extends Error {}

// 9999-12-31T23:59:59.999999Z in nanoseconds.
export const MAX_NANOS = 253402300799999999000n;

function takeUuid(attributes: Record<string, Json>, key: string): string | null {
  const stored = storedUuid(attributes[key]);
  if (stored) delete attributes[key];
  return stored;
}

/** An attribute value as the uuid column it moves to (lowercase), or null when it is not a uuid (it then stays an attribute). */
export function storedUuid(value: unknown): string | null {
  if (typeof value !== 'string' || !UUID_PATTERN.test(value) || value === NIL_UUID) return null;
  return value.toLowerCase();
}

function field(object: unknown, camel: string, snake?: string): any {
  if (!isObject(object)) return undefined;
  const value = (object as Record<string, unknown>)[camel];
  return value !== undefined || !snake ? value : (object as Record<string, unknown>)[snake];
}

function isObject(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listOf(value: unknown, name: string): Array<Record<string, unknown>> {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new SpanProblem(`${name} must be an array`);
  return value.map((item, i) => {
    if (!isObject(item)) throw new SpanProblem(`${name}[${i}] must be an object`);
    return item;
  });
}

function normalizeId(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value.toLowerCase() : '\u0000';
}

function isHexId(value: string, length: number): boolean {
  return value.length === length && /^[0-9a-f]+$/.test(value) && !/^0+$/.test(value);
}

function nanos(value: unknown): bigint | undefined {
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  // Beyond 2^53 a JSON number has already lost its low digits; still the
  // nearest time, within a microsecond.
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return BigInt(Math.round(value / 1000)) * 1000n;
  return undefined;
}

/** Unix nanoseconds -> ISO 8601 (UTC, microseconds: what timestamptz keeps). */
export function nanosToIso(value: bigint): string {
  // Microseconds are exact as a Number until 2255; the spans of one
  // request share their seconds, so a second's text is made once.
  if (value < 9_000_000_000_000_000_000n) {
    const micros = Number(value / 1000n);
    const second = Math.floor(micros / 1_000_000);
    if (second !== lastSecond) {
      lastSecond = second;
      lastSecondIso = new Date(second * 1000).toISOString().slice(0, 19);
    }
    return `${lastSecondIso}.${String(micros - second * 1_000_000).padStart(6, '0')}Z`;
  }
  const micros = value / 1000n;
  const date = new Date(Number(micros / 1000n));
  const fraction = String(micros % 1000000n).padStart(6, '0');
  return `${date.toISOString().slice(0, 19)}.${fraction}Z`;
}

let lastSecond = Number.NaN;
let lastSecondIso = '';

/** ISO 8601 -> Unix nanoseconds, keeping microseconds when written. */
export function isoToNanos(value: string): string | undefined {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return undefined;
  const fraction = /\.(\d+)/.exec(value)?.[1] ?? '';
  const extraMicros = fraction.length > 3 ? Number(fraction.slice(3, 6).padEnd(3, '0')) : 0;
  return ((BigInt(ms) * 1000n + BigInt(extraMicros)) * 1000n).toString();
}

function enumValue(value: unknown, prefix: string, size: number): number | undefined {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value < size ? value : undefined;
  if (typeof value === 'string') {
    // Some JSON senders write enum names; the specification asks for numbers.
    const names =
      prefix === 'SPAN_KIND_' ? ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] : ['UNSET', 'OK', 'ERROR'];
    const i = names.indexOf(value.toUpperCase().replace(prefix, ''));
    if (i >= 0) return i;
    if (/^\d+$/.test(value)) return enumValue(Number(value), prefix, size);
  }
  return undefined;
}

// Deeper attribute values are refused with their span: protobuf's decoder
// stops at 100 message levels (about 32 of these), and a JSON request nested
// thousands of levels would otherwise exhaust the stack and fail the batch.
export const MAX_ATTRIBUTE_DEPTH = 32;

function fromKeyValues(value: unknown, name: string, depth = 0): Record<string, Json> {
  if (depth > MAX_ATTRIBUTE_DEPTH) throw new SpanProblem(`${name} nests attribute values deeper than ${MAX_ATTRIBUTE_DEPTH} levels`);
  // No prototype: a key such as `__proto__` is an ordinary attribute.
  const out: Record<string, Json> = Object.create(null);
  if (value === undefined || value === null) return out;
  if (!Array.isArray(value)) throw new SpanProblem(`${name} must be an array of key/value pairs`);
  for (const item of value) {
    if (!isObject(item) || typeof item.key !== 'string') throw new SpanProblem(`${name} must be an array of {key, value}`);
    out[item.key] = fromAnyValue(item.value, name, depth);
  }
  return out;
}

function fromAnyValue(value: unknown, name: string, depth: number): Json {
  if (!isObject(value)) return null;
  const v = value as Record<string, any>;
  const string = field(v, 'stringValue', 'string_value');
  if (string !== undefined) return String(string);
  const bool = field(v, 'boolValue', 'bool_value');
  if (bool !== undefined) return Boolean(bool);
  const int = field(v, 'intValue', 'int_value');
  if (int !== undefined) {
    // Beyond JavaScript's exact integers the decimal string is kept.
    const n = Number(int);
    return Number.isSafeInteger(n) ? n : String(int);
  }
  const double = field(v, 'doubleValue', 'double_value');
  if (double !== undefined) {
    const n = Number(double);
    // JSON has no NaN or Infinity; OTLP/JSON writes them as strings.
    return Number.isFinite(n) ? n : String(double);
  }
  const array = field(v, 'arrayValue', 'array_value');
  if (array !== undefined) {
    const values = isObject(array) ? field(array, 'values') : undefined;
    if (depth + 1 > MAX_ATTRIBUTE_DEPTH) throw new SpanProblem(`${name} nests attribute values deeper than ${MAX_ATTRIBUTE_DEPTH} levels`);
    return Array.isArray(values) ? values.map((item) => fromAnyValue(item, name, depth + 1)) : [];
  }
  const kvlist = field(v, 'kvlistValue', 'kvlist_value');
  if (kvlist !== undefined) {
    const values = isObject(kvlist) ? field(kvlist, 'values') : undefined;
    return fromKeyValues(values ?? [], name, depth + 1);
  }
  const bytes = field(v, 'bytesValue', 'bytes_value');
  if (bytes !== undefined) {
    // Stored as base64, OTLP/JSON's own spelling of bytes.
    return Array.isArray(bytes) || bytes instanceof Uint8Array ? Buffer.from(bytes as number[]).toString('base64') : String(bytes);
  }
  return null;
}
