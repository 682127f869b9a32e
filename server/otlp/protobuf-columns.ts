// OTLP/protobuf ExportTraceServiceRequest bytes straight into the column
// arrays of tracing.record_span_columns (span-columns.ts), with no message
// objects in between: ids are read from their bytes, times from their
// fixed64, and attributes are written as JSON text while their KeyValues
// are read.
//
// Why: decoding into protobufjs objects, mapping those to span records and
// writing the records out as column text took about 9 ms of Node's CPU for
// a 500-span request, most of what the server spent on it; this path does
// the same in a fraction of that (docs/otlp.md, Performance).
//
// It is the fast path of one reference, not a second set of rules: each
// check and message comes from mapping.ts (SPAN_RULES, the kind and status
// names, the uuid attributes), and a test decodes generated requests both
// ways and compares the columns. Whatever this reader does not take on
// (wire data it does not expect, attribute values nested deeper than the
// limit, malformed resource attributes) throws, and the request goes the
// reference way (protocol.ts, mapping.ts), which gives the answers and
// errors it always gave.
import { toPostgresJsonText, toPostgresText } from '../../ts/trace-context/postgres-json.ts';
import {
  CORRELATION_ID_ATTRIBUTE,
  KIND_NAMES,
  MAX_ATTRIBUTE_DEPTH,
  MAX_NANOS,
  nanosToIso,
  ORGANIZATION_ID_ATTRIBUTE,
  SESSION_ID_ATTRIBUTE,
  SPAN_RULES,
  STATUS_NAMES,
  storedUuid,
  type RejectedSpan,
} from './mapping.ts';
import { emptySpanColumns, type SpanColumns } from './span-columns.ts';

export interface DecodedColumns {
  columns: SpanColumns;
  rejected: RejectedSpan[];
}

/** Thrown for anything the direct path leaves to the reference decoder. */
export class LeftToReferenceDecoder extends Error {}

const SERVICE_NAME = 'service.name';

// The wire format (protobuf encoding): a tag is a varint of field number
// and wire type; these are the wire types OTLP's messages use.
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** The columns of every span of the request, and the spans rejected with their reasons; throws LeftToReferenceDecoder. */
export function protobufToSpanColumns(body: Uint8Array): DecodedColumns {
  const reader = new WireReader(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  const result: DecodedColumns = { columns: emptySpanColumns(), rejected: [] };
  let total = 0;
  reader.fields(0, reader.buf.length, (field, wireType, start, end) => {
    if (field !== 1) return;
    expectWireType(wireType, LENGTH_DELIMITED);
    // ResourceSpans: the resource may come after its spans on the wire.
    let resource: Member[] = [];
    const scopes: Array<[number, number]> = [];
    reader.fields(start, end, (f, w, s, e) => {
      if (f === 1) {
        expectWireType(w, LENGTH_DELIMITED);
        resource = [];
        reader.fields(s, e, (rf, rw, rs, re) => {
          if (rf !== 1) return;
          expectWireType(rw, LENGTH_DELIMITED);
          resource.push(readKeyValue(reader, rs, re, 0));
        });
      } else if (f === 2) {
        expectWireType(w, LENGTH_DELIMITED);
        scopes.push([s, e]);
      }
    });
    for (const [s, e] of scopes) {
      reader.fields(s, e, (f, w, spanStart, spanEnd) => {
        if (f !== 2) return;
        expectWireType(w, LENGTH_DELIMITED);
        readSpan(reader, spanStart, spanEnd, resource, total++, result);
      });
    }
  });
  return result;
}

/** An attribute as a JSON object member. */
interface Member {
  key: string;
  json: string;
}

function readSpan(reader: WireReader, start: number, end: number, resource: Member[], index: number, out: DecodedColumns): void {
  const buf = reader.buf;
  let traceId: [number, number] = [0, 0];
  let spanId: [number, number] = [0, 0];
  let parent: [number, number] = [0, 0];
  let name = '';
  let kind = 0;
  let startNanos = 0n;
  let endNanos = 0n;
  const attributes: Array<[number, number]> = [];
  const events: Array<[number, number]> = [];
  const links: Array<[number, number]> = [];
  let status: [number, number] | undefined;
  reader.fields(start, end, (field, wireType, s, e) => {
    switch (field) {
      case 1:
        expectWireType(wireType, LENGTH_DELIMITED);
        traceId = [s, e];
        break;
      case 2:
        expectWireType(wireType, LENGTH_DELIMITED);
        spanId = [s, e];
        break;
      case 4:
        expectWireType(wireType, LENGTH_DELIMITED);
        parent = [s, e];
        break;
      case 5:
        expectWireType(wireType, LENGTH_DELIMITED);
        name = buf.toString('utf8', s, e);
        break;
      case 6:
        expectWireType(wireType, VARINT);
        kind = reader.int32At(s);
        break;
      case 7:
        expectWireType(wireType, FIXED64);
        startNanos = buf.readBigUInt64LE(s);
        break;
      case 8:
        expectWireType(wireType, FIXED64);
        endNanos = buf.readBigUInt64LE(s);
        break;
      case 9:
        expectWireType(wireType, LENGTH_DELIMITED);
        attributes.push([s, e]);
        break;
      case 11:
        expectWireType(wireType, LENGTH_DELIMITED);
        events.push([s, e]);
        break;
      case 13:
        expectWireType(wireType, LENGTH_DELIMITED);
        links.push([s, e]);
        break;
      case 15:
        expectWireType(wireType, LENGTH_DELIMITED);
        status = [s, e];
        break;
    }
  });
  // Attributes, events and links are read before any check: one nested
  // beyond the limit goes the reference way whatever else is wrong, as the
  // reference decoder refuses such a span before it checks anything.
  // Resource attributes are kept with the span; the span's own win a clash
  // (a JSON object's last member wins in jsonb, as in the reference's merge).
  const members = [...resource];
  for (const [s, e] of attributes) members.push(readKeyValue(reader, s, e, 0));
  const eventsJson = events.length ? `[${events.map(([s, e]) => readEvent(reader, s, e)).join(',')}]` : null;
  const linkParts = links.map(([s, e]) => readLink(reader, s, e));

  const hex = ([s, e]: [number, number]) => buf.toString('hex', s, e);
  const reject = (reason: string) => out.rejected.push({ index, traceId: hex(traceId), spanId: hex(spanId), reason });
  // The checks of mapping.ts' spanFromOtlp, in its order.
  if (!isId(buf, traceId, 16)) return void reject(SPAN_RULES.traceId);
  if (!isId(buf, spanId, 8)) return void reject(SPAN_RULES.spanId);
  if (parent[1] > parent[0] && !isId(buf, parent, 8)) return void reject(SPAN_RULES.parentSpanId);
  if (name === '') return void reject(SPAN_RULES.name);
  if (startNanos === 0n) return void reject(SPAN_RULES.startTime);
  if (endNanos === 0n) return void reject(SPAN_RULES.endTime);
  if (endNanos < startNanos) return void reject(SPAN_RULES.endBeforeStart);
  if (startNanos > MAX_NANOS || endNanos > MAX_NANOS) return void reject(SPAN_RULES.timeRange);
  if (!(kind >= 0 && kind < KIND_NAMES.length)) return void reject(SPAN_RULES.kind);
  let statusCode = 0;
  let statusMessage = '';
  if (status) {
    reader.fields(status[0], status[1], (f, w, s, e) => {
      if (f === 3) {
        expectWireType(w, VARINT);
        statusCode = reader.int32At(s);
      } else if (f === 2) {
        expectWireType(w, LENGTH_DELIMITED);
        statusMessage = buf.toString('utf8', s, e);
      }
    });
  }
  if (!(statusCode >= 0 && statusCode < STATUS_NAMES.length)) return void reject(SPAN_RULES.statusCode);

  const badLink = linkParts.indexOf(undefined);
  if (badLink >= 0) return void reject(SPAN_RULES.link(badLink));
  const linksJson = linkParts.length ? `[${linkParts.join(',')}]` : null;

  // The attributes that name the service or have columns of their own
  // (the last value of each counts, as in an object).
  let service: Member | undefined;
  let session: Member | undefined;
  let correlation: Member | undefined;
  let organization: Member | undefined;
  for (const member of members) {
    if (member.key === SERVICE_NAME) service = member;
    else if (member.key === SESSION_ID_ATTRIBUTE) session = member;
    else if (member.key === CORRELATION_ID_ATTRIBUTE) correlation = member;
    else if (member.key === ORGANIZATION_ID_ATTRIBUTE) organization = member;
  }
  const serviceText = stringValue(service);
  const sessionId = session && storedUuid(stringValue(session));
  const correlationId = correlation && storedUuid(stringValue(correlation));
  const organizationId = organization && storedUuid(stringValue(organization));
  const kept =
    service || sessionId || correlationId || organizationId
      ? members.filter(
          (m) =>
            m.key !== SERVICE_NAME &&
            !(sessionId && m.key === SESSION_ID_ATTRIBUTE) &&
            !(correlationId && m.key === CORRELATION_ID_ATTRIBUTE) &&
            !(organizationId && m.key === ORGANIZATION_ID_ATTRIBUTE),
        )
      : members;

  const c = out.columns;
  c.positions.push(index);
  c.trace_id.push(hex(traceId));
  c.span_id.push(buf.readBigInt64BE(spanId[0]).toString());
  c.parent_span_id.push(parent[1] > parent[0] ? buf.readBigInt64BE(parent[0]).toString() : null);
  c.name.push(toPostgresText(name));
  c.service.push(serviceText ? toPostgresText(serviceText) : 'unknown_service');
  c.kind.push(KIND_NAMES[kind]!);
  c.start_time.push(nanosToIso(startNanos));
  c.end_time.push(nanosToIso(endNanos));
  c.status.push(STATUS_NAMES[statusCode]!);
  c.status_message.push(statusMessage ? toPostgresText(statusMessage) : null);
  c.attributes.push(toPostgresJsonText(objectJson(kept)));
  c.events.push(eventsJson === null ? null : toPostgresJsonText(eventsJson));
  c.links.push(linksJson === null ? null : toPostgresJsonText(linksJson));
  c.correlation_id.push(correlationId || null);
  c.session_id.push(sessionId || null);
}

/** The attribute's value when it is stored as a JSON string (text, and what JSON cannot hold exactly: big integers, NaN, bytes). */
function stringValue(member: Member | undefined): string | undefined {
  return member?.json.startsWith('"') ? (JSON.parse(member.json) as string) : undefined;
}

function objectJson(members: Member[]): string {
  let json = '{';
  for (let i = 0; i < members.length; i++) json += `${i ? ',' : ''}${JSON.stringify(members[i]!.key)}:${members[i]!.json}`;
  return `${json}}`;
}

function readEvent(reader: WireReader, start: number, end: number): string {
  let nanos = 0n;
  let name = '';
  const attributes: Member[] = [];
  reader.fields(start, end, (f, w, s, e) => {
    if (f === 1) {
      expectWireType(w, FIXED64);
      nanos = reader.buf.readBigUInt64LE(s);
    } else if (f === 2) {
      expectWireType(w, LENGTH_DELIMITED);
      name = reader.buf.toString('utf8', s, e);
    } else if (f === 3) {
      expectWireType(w, LENGTH_DELIMITED);
      attributes.push(readKeyValue(reader, s, e, 0));
    }
  });
  // As the reference maps an event: a zero time is no time.
  const time = nanos ? JSON.stringify(nanosToIso(nanos)) : 'null';
  const timeNanos = nanos ? JSON.stringify(nanos.toString()) : 'null';
  return `{"name":${JSON.stringify(name)},"time":${time},"time_unix_nano":${timeNanos},"attributes":${objectJson(attributes)}}`;
}

/** The link as JSON, or undefined when its ids are not valid. */
function readLink(reader: WireReader, start: number, end: number): string | undefined {
  let traceId: [number, number] = [0, 0];
  let spanId: [number, number] = [0, 0];
  let traceState = '';
  const attributes: Member[] = [];
  reader.fields(start, end, (f, w, s, e) => {
    if (f === 1) {
      expectWireType(w, LENGTH_DELIMITED);
      traceId = [s, e];
    } else if (f === 2) {
      expectWireType(w, LENGTH_DELIMITED);
      spanId = [s, e];
    } else if (f === 3) {
      expectWireType(w, LENGTH_DELIMITED);
      traceState = reader.buf.toString('utf8', s, e);
    } else if (f === 4) {
      expectWireType(w, LENGTH_DELIMITED);
      attributes.push(readKeyValue(reader, s, e, 0));
    }
  });
  if (!isId(reader.buf, traceId, 16) || !isId(reader.buf, spanId, 8)) return undefined;
  const state = traceState ? `,"trace_state":${JSON.stringify(traceState)}` : '';
  return `{"trace_id":"${reader.buf.toString('hex', traceId[0], traceId[1])}","span_id":"${reader.buf.toString('hex', spanId[0], spanId[1])}"${state},"attributes":${objectJson(attributes)}}`;
}

/** A KeyValue at `depth` (the level of the object holding it, 0 for a span's attributes). */
function readKeyValue(reader: WireReader, start: number, end: number, depth: number): Member {
  // Deeper values go the reference way, which rejects their span with its message.
  if (depth > MAX_ATTRIBUTE_DEPTH) throw new LeftToReferenceDecoder('attribute values nested beyond the limit');
  let key = '';
  let value: [number, number] | undefined;
  reader.fields(start, end, (f, w, s, e) => {
    if (f === 1) {
      expectWireType(w, LENGTH_DELIMITED);
      key = reader.buf.toString('utf8', s, e);
    } else if (f === 2) {
      expectWireType(w, LENGTH_DELIMITED);
      value = [s, e];
    }
  });
  return { key, json: value ? readAnyValue(reader, value[0], value[1], depth) : 'null' };
}

/** An AnyValue as JSON, as mapping.ts' fromAnyValue stores it. */
function readAnyValue(reader: WireReader, start: number, end: number, depth: number): string {
  const buf = reader.buf;
  // A oneof: the last member on the wire is the value.
  let field = 0;
  let s0 = 0;
  let e0 = 0;
  reader.fields(start, end, (f, w, s, e) => {
    if (f < 1 || f > 7) return;
    expectWireType(w, f === 2 || f === 3 ? VARINT : f === 4 ? FIXED64 : LENGTH_DELIMITED);
    field = f;
    s0 = s;
    e0 = e;
  });
  switch (field) {
    case 1:
      return JSON.stringify(buf.toString('utf8', s0, e0));
    case 2:
      return reader.varintIsZero(s0) ? 'false' : 'true';
    case 3: {
      // Beyond JavaScript's exact integers the decimal string is kept.
      const int = reader.int64At(s0);
      const n = Number(int);
      return Number.isSafeInteger(n) ? String(n) : JSON.stringify(int.toString());
    }
    case 4: {
      // JSON has no NaN or Infinity; they are kept as text.
      const n = buf.readDoubleLE(s0);
      return Number.isFinite(n) ? JSON.stringify(n) : JSON.stringify(String(n));
    }
    case 5: {
      if (depth + 1 > MAX_ATTRIBUTE_DEPTH) throw new LeftToReferenceDecoder('attribute values nested beyond the limit');
      const items: string[] = [];
      reader.fields(s0, e0, (f, w, s, e) => {
        if (f !== 1) return;
        expectWireType(w, LENGTH_DELIMITED);
        items.push(readAnyValue(reader, s, e, depth + 1));
      });
      return `[${items.join(',')}]`;
    }
    case 6: {
      const members: Member[] = [];
      reader.fields(s0, e0, (f, w, s, e) => {
        if (f !== 1) return;
        expectWireType(w, LENGTH_DELIMITED);
        members.push(readKeyValue(reader, s, e, depth + 1));
      });
      if (depth + 1 > MAX_ATTRIBUTE_DEPTH) throw new LeftToReferenceDecoder('attribute values nested beyond the limit');
      return objectJson(members);
    }
    case 7:
      // Stored as base64, OTLP/JSON's own spelling of bytes.
      return JSON.stringify(buf.toString('base64', s0, e0));
    default:
      return 'null';
  }
}

function isId(buf: Buffer, [start, end]: [number, number], bytes: number): boolean {
  if (end - start !== bytes) return false;
  for (let i = start; i < end; i++) if (buf[i] !== 0) return true;
  return false;
}

function expectWireType(actual: number, expected: number): void {
  if (actual !== expected) throw new LeftToReferenceDecoder(`wire type ${actual} where ${expected} was expected`);
}

/** Reads fields of the protobuf wire format by position, without copying or allocating messages. */
class WireReader {
  constructor(readonly buf: Buffer) {}

  /**
   * Calls `each` with every field of the message between start and end:
   * number, wire type, and where its payload starts and ends (a varint's or
   * fixed value's own bytes for the other wire types).
   */
  fields(start: number, end: number, each: (field: number, wireType: number, start: number, end: number) => void): void {
    let pos = start;
    while (pos < end) {
      const [tag, afterTag] = this.varint32(pos, end);
      const field = tag >>> 3;
      const wireType = tag & 7;
      if (field === 0) throw new LeftToReferenceDecoder('field number 0');
      let payloadStart = afterTag;
      let payloadEnd: number;
      switch (wireType) {
        case VARINT:
          payloadEnd = this.skipVarint(afterTag, end);
          break;
        case FIXED64:
          payloadEnd = afterTag + 8;
          break;
        case LENGTH_DELIMITED: {
          const [length, afterLength] = this.varint32(afterTag, end);
          payloadStart = afterLength;
          payloadEnd = afterLength + length;
          break;
        }
        case FIXED32:
          payloadEnd = afterTag + 4;
          break;
        default:
          throw new LeftToReferenceDecoder(`wire type ${wireType}`);
      }
      if (payloadEnd > end) throw new LeftToReferenceDecoder('a field runs past its message');
      each(field, wireType, payloadStart, payloadEnd);
      pos = payloadEnd;
    }
  }

  /** An unsigned varint of at most 32 bits (tags, lengths), and the position after it. */
  private varint32(pos: number, end: number): [number, number] {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= end) throw new LeftToReferenceDecoder('a varint runs past its message');
      const byte = this.buf[pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) {
        if (value > 0xffffffff) throw new LeftToReferenceDecoder('a varint beyond 32 bits');
        return [value, pos];
      }
    }
    throw new LeftToReferenceDecoder('a varint beyond 32 bits');
  }

  private skipVarint(pos: number, end: number): number {
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new LeftToReferenceDecoder('a varint runs past its message');
      if (this.buf[pos++]! < 0x80) return pos;
    }
    throw new LeftToReferenceDecoder('a varint longer than 10 bytes');
  }

  /** The varint at pos as a signed 64-bit integer (int64). */
  int64At(pos: number): bigint {
    if (this.buf[pos]! < 0x80) return BigInt(this.buf[pos]!);
    let value = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.buf[pos++]!;
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asIntN(64, value);
      shift += 7n;
    }
  }

  /** The varint at pos as protobuf's int32 (enums): its low 32 bits, signed. */
  int32At(pos: number): number {
    // One byte holds every valid enum value.
    const first = this.buf[pos]!;
    return first < 0x80 ? first : Number(BigInt.asIntN(32, this.int64At(pos)));
  }

  varintIsZero(pos: number): boolean {
    return this.int64At(pos) === 0n;
  }
}
