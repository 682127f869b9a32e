// OTLP/HTTP encoding and decoding, both directions, from the .proto files
// under ./proto (the OTLP specification's messages and field numbers).
//
// Both wire formats meet in one plain shape (`OtlpRequest`): camelCase
// field names, ids as lowercase hex, 64-bit integers as decimal strings,
// enums as numbers. That is OTLP/JSON's own shape (the specification makes
// JSON ids hex, not base64), so JSON needs no conversion and protobuf needs
// only its ids and longs translated.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'proto');

/**
 * The messages of `files` (absolute, or relative to ./proto), whose imports
 * resolve under ./proto as with protoc's -I: OTLP's own, and those of the
 * query APIs that embed OTLP's messages. google/protobuf/* are protobufjs's
 * bundled definitions.
 */
export function loadProtoRoot(files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  root.loadSync(files);
  root.resolveAll();
  return root;
}

const root = loadProtoRoot(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'google/rpc/status.proto']);
export const ExportTraceServiceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
export const ExportTraceServiceResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
export const RpcStatus = root.lookupType('google.rpc.Status');

export const SPAN_KIND = { unspecified: 0, internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
export const STATUS_CODE = { unset: 0, ok: 1, error: 2 } as const;

export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number | string;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
export interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
export interface OtlpEvent {
  timeUnixNano?: string | number;
  name?: string;
  attributes?: OtlpKeyValue[];
}
export interface OtlpLink {
  traceId?: string;
  spanId?: string;
  traceState?: string;
  attributes?: OtlpKeyValue[];
  flags?: number;
}
export interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  traceState?: string;
  parentSpanId?: string;
  flags?: number;
  name?: string;
  kind?: number | string;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: OtlpKeyValue[];
  events?: OtlpEvent[];
  links?: OtlpLink[];
  status?: { code?: number | string; message?: string };
  /** Set by the protobuf decoder on a span it could not decode (only its ids are kept). */
  decodeError?: string;
}
export interface OtlpScopeSpans {
  scope?: { name?: string; version?: string; attributes?: OtlpKeyValue[] };
  spans?: OtlpSpan[];
  schemaUrl?: string;
}
export interface OtlpResourceSpans {
  resource?: { attributes?: OtlpKeyValue[] };
  scopeSpans?: OtlpScopeSpans[];
  schemaUrl?: string;
}
export interface OtlpRequest {
  resourceSpans?: OtlpResourceSpans[];
}
export interface OtlpResponse {
  partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string };
}

export type Protocol = 'http/protobuf' | 'http/json';

export class MalformedPayloadError extends Error {}

// Paths (within a request) of the fields that are bytes on the wire and hex
// in the plain shape.
const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

/** Plain shape -> protobuf bytes. */
export function encodeRequestProtobuf(request: OtlpRequest): Uint8Array {
  const message = ExportTraceServiceRequest.fromObject(mapIds(request, hexToBytes) as Record<string, unknown>);
  return ExportTraceServiceRequest.encode(message).finish();
}

/** Protobuf bytes -> plain shape; throws MalformedPayloadError. */
export function decodeRequestProtobuf(body: Uint8Array): OtlpRequest {
  let message;
  try {
    message = ExportTraceServiceRequest.decode(body);
  } catch (error) {
    // One span the decoder refuses (nested beyond its depth limit) must not
    // cost the others: decode span by span, marking the ones that fail.
    const spanBySpan = decodeSpanBySpan(body);
    if (spanBySpan) return spanBySpan;
    throw new MalformedPayloadError(`not a protobuf ExportTraceServiceRequest: ${(error as Error).message}`);
  }
  // A walk written for these messages: protobufjs' generic toObject plus a
  // pass converting ids took about half of ingest's CPU time.
  return plainRequest(message as unknown as DecodedRequest);
}

// The decoded message objects, as far as the walk below reads them.
type Long64 = number | { toString(): string };
interface DecodedAnyValue {
  value?: string;
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Long64;
  doubleValue?: number;
  arrayValue?: { values: DecodedAnyValue[] };
  kvlistValue?: { values: DecodedKeyValue[] };
  bytesValue?: Uint8Array;
}
interface DecodedKeyValue {
  key: string;
  value?: DecodedAnyValue | null;
}
interface DecodedSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  traceState: string;
  parentSpanId: Uint8Array;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: Long64;
  endTimeUnixNano: Long64;
  attributes: DecodedKeyValue[];
  events: Array<{ timeUnixNano: Long64; name: string; attributes: DecodedKeyValue[] }>;
  links: Array<{ traceId: Uint8Array; spanId: Uint8Array; traceState: string; attributes: DecodedKeyValue[]; flags: number }>;
  status?: { code: number; message: string } | null;
}
interface DecodedRequest {
  resourceSpans: Array<{
    resource?: { attributes: DecodedKeyValue[] } | null;
    scopeSpans: Array<{ scope?: { name: string; version: string } | null; spans: DecodedSpan[]; schemaUrl: string }>;
    schemaUrl: string;
  }>;
}

function plainRequest(m: DecodedRequest): OtlpRequest {
  return {
    resourceSpans: m.resourceSpans.map((rs) => ({
      ...(rs.resource ? { resource: { attributes: rs.resource.attributes.map(plainKeyValue) } } : {}),
      scopeSpans: rs.scopeSpans.map((ss) => ({
        ...(ss.scope ? { scope: { name: ss.scope.name, version: ss.scope.version } } : {}),
        spans: ss.spans.map(plainSpan),
      })),
    })),
  };
}

function plainSpan(s: DecodedSpan): OtlpSpan {
  return {
    traceId: hex(s.traceId),
    spanId: hex(s.spanId),
    parentSpanId: hex(s.parentSpanId),
    traceState: s.traceState,
    flags: s.flags,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: String(s.startTimeUnixNano),
    endTimeUnixNano: String(s.endTimeUnixNano),
    attributes: s.attributes.map(plainKeyValue),
    events: s.events.map((e) => ({ timeUnixNano: String(e.timeUnixNano), name: e.name, attributes: e.attributes.map(plainKeyValue) })),
    links: s.links.map((l) => ({
      traceId: hex(l.traceId),
      spanId: hex(l.spanId),
      traceState: l.traceState,
      attributes: l.attributes.map(plainKeyValue),
      flags: l.flags,
    })),
    ...(s.status ? { status: { code: s.status.code, ...(s.status.message ? { message: s.status.message } : {}) } } : {}),
  };
}

function plainKeyValue(kv: DecodedKeyValue): OtlpKeyValue {
  return kv.value ? { key: kv.key, value: plainAnyValue(kv.value) } : { key: kv.key };
}

function plainAnyValue(v: DecodedAnyValue): OtlpAnyValue {
  // protobufjs names the field set in a oneof through its virtual `value`.
  switch (v.value) {
    case 'stringValue':
      return { stringValue: v.stringValue! };
    case 'boolValue':
      return { boolValue: v.boolValue! };
    case 'intValue':
      return { intValue: String(v.intValue) };
    case 'doubleValue':
      return { doubleValue: v.doubleValue! };
    case 'arrayValue':
      return { arrayValue: { values: v.arrayValue!.values.map(plainAnyValue) } };
    case 'kvlistValue':
      return { kvlistValue: { values: v.kvlistValue!.values.map(plainKeyValue) } };
    case 'bytesValue':
      return { bytesValue: Buffer.from(v.bytesValue as Uint8Array).toString('base64') };
    default:
      return {};
  }
}

function hex(bytes: Uint8Array | number[]): string {
  // An absent bytes field decodes to protobufjs' shared empty array.
  if (bytes.length === 0) return '';
  if (Buffer.isBuffer(bytes)) return bytes.toString('hex');
  return bytes instanceof Uint8Array
    ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
    : Buffer.from(bytes).toString('hex');
}

const ResourceType = root.lookupType('opentelemetry.proto.resource.v1.Resource');
const ScopeType = root.lookupType('opentelemetry.proto.common.v1.InstrumentationScope');
const SpanType = root.lookupType('opentelemetry.proto.trace.v1.Span');

/** The length-delimited fields of a message, as [field number, bytes]. */
function* embedded(bytes: Uint8Array): Generator<[number, Uint8Array]> {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if ((tag & 7) === 2) yield [tag >>> 3, reader.bytes()];
    else reader.skipType(tag & 7);
  }
}

/** The request with each undecodable span kept as its ids and `decodeError`; undefined when the request's own structure is broken. */
function decodeSpanBySpan(body: Uint8Array): OtlpRequest | undefined {
  try {
    const resourceSpans: OtlpResourceSpans[] = [];
    for (const [n, rs] of embedded(body)) {
      if (n !== 1) continue;
      const out: OtlpResourceSpans = { scopeSpans: [] };
      for (const [m, part] of embedded(rs)) {
        if (m === 1)
          out.resource = {
            attributes: (ResourceType.decode(part) as unknown as { attributes: DecodedKeyValue[] }).attributes.map(plainKeyValue),
          };
        if (m !== 2) continue;
        const scopeSpans: OtlpScopeSpans = { spans: [] };
        for (const [k, item] of embedded(part)) {
          if (k === 1) {
            const scope = ScopeType.decode(item) as unknown as { name: string; version: string };
            scopeSpans.scope = { name: scope.name, version: scope.version };
          } else if (k === 2) {
            try {
              scopeSpans.spans!.push(plainSpan(SpanType.decode(item) as unknown as DecodedSpan));
            } catch (error) {
              const ids: OtlpSpan = {};
              for (const [f, id] of embedded(item)) {
                if (f === 1) ids.traceId = hex(id);
                if (f === 2) ids.spanId = hex(id);
                if (f > 2) break;
              }
              scopeSpans.spans!.push({ ...ids, decodeError: `the span cannot be decoded: ${(error as Error).message}` });
            }
          }
        }
        out.scopeSpans!.push(scopeSpans);
      }
      resourceSpans.push(out);
    }
    return { resourceSpans };
  } catch {
    return undefined;
  }
}

/** OTLP/JSON text -> plain shape; throws MalformedPayloadError. */
export function decodeRequestJson(body: string): OtlpRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new MalformedPayloadError(`not valid JSON: ${(error as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new MalformedPayloadError('an OTLP/JSON ExportTraceServiceRequest must be a JSON object');
  }
  return parsed as OtlpRequest;
}

export function encodeRequest(request: OtlpRequest, protocol: Protocol): Uint8Array {
  return protocol === 'http/json' ? new TextEncoder().encode(JSON.stringify(request)) : encodeRequestProtobuf(request);
}

export function encodeResponse(response: OtlpResponse, protocol: Protocol): Uint8Array {
  if (protocol === 'http/json') return new TextEncoder().encode(JSON.stringify(response));
  return ExportTraceServiceResponse.encode(ExportTraceServiceResponse.fromObject(response)).finish();
}

/** A collector's response body -> plain shape; an empty body is a full success. */
export function decodeResponse(body: Uint8Array, protocol: Protocol): OtlpResponse {
  if (body.length === 0) return {};
  if (protocol === 'http/json') {
    const parsed = JSON.parse(new TextDecoder().decode(body)) as OtlpResponse;
    return parsed && typeof parsed === 'object' ? parsed : {};
  }
  const message = ExportTraceServiceResponse.decode(body);
  return ExportTraceServiceResponse.toObject(message, { longs: String, defaults: false }) as OtlpResponse;
}

export function encodeStatus(code: number, message: string, protocol: Protocol): Uint8Array {
  if (protocol === 'http/json') return new TextEncoder().encode(JSON.stringify({ code, message }));
  return RpcStatus.encode(RpcStatus.fromObject({ code, message })).finish();
}

/** The message of an error body (google.rpc.Status, JSON or text), best effort. */
export function errorMessageOf(body: Uint8Array, contentType: string | null): string {
  if (body.length === 0) return '';
  try {
    if (contentType?.includes('protobuf')) {
      const status = RpcStatus.toObject(RpcStatus.decode(body)) as { message?: string };
      if (status.message) return status.message;
    }
  } catch {
    // Not a Status: fall through to text.
  }
  const text = new TextDecoder().decode(body);
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed?.message === 'string') return parsed.message;
  } catch {
    // Plain text.
  }
  return text.slice(0, 1000);
}

/** The plain shape with its ids as bytes, as protobufjs' fromObject takes it: for messages that embed OTLP's. */
export function withIdBytes(value: unknown): unknown {
  return mapIds(value, hexToBytes);
}

function mapIds(value: unknown, convert: (id: unknown) => unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => mapIds(item, convert));
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // Attribute values (AnyValue) never hold ids; their bytesValue stays as is.
    out[key] = ID_FIELDS.has(key) ? convert(item) : key === 'value' ? item : mapIds(item, convert);
  }
  return out;
}

function hexToBytes(id: unknown): unknown {
  if (typeof id !== 'string' || id === '') return undefined;
  return Buffer.from(id, 'hex');
}
