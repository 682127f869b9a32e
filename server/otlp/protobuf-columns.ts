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
  let spans = 0;
  for (let pos = 0, end = reader.buf.length; pos < end;) {
    pos = reader.next(pos, end);
    if (reader.field !== 1) continue;
    expectWireType(reader.wireType, LENGTH_DELIMITED);
    spans = readResourceSpans(reader, reader.start, reader.end, spans, result);
  }
  return result;
}

/** The spans of one ResourceSpans, the first being span `first` of the request; answers the index of the next. */
function readResourceSpans(reader: WireReader, start: number, end: number, first: number, out: DecodedColumns): number {
  // The resource may come after its spans on the wire.
  let resource: Member[] = [];
  const scopes: number[] = [];
  for (let pos = start; pos < end;) {
    pos = reader.next(pos, end);
    if (reader.field === 1) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      resource = readAttributes(reader, reader.start, reader.end, 1);
    } else if (reader.field === 2) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      scopes.push(reader.start, reader.end);
    }
  }
  let index = first;
  for (let i = 0; i < scopes.length; i += 2) {
    for (let pos = scopes[i]!, scopeEnd = scopes[i + 1]!; pos < scopeEnd;) {
      pos = reader.next(pos, scopeEnd);
      if (reader.field !== 2) continue;
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      readSpan(reader, reader.start, reader.end, resource, index++, out);
    }
  }
  return index;
}

/** The KeyValues of a message (field `field`), as object members. */
function readAttributes(reader: WireReader, start: number, end: number, field: number): Member[] {
  const members: Member[] = [];
  for (let pos = start; pos < end;) {
    pos = reader.next(pos, end);
    if (reader.field !== field) continue;
    expectWireType(reader.wireType, LENGTH_DELIMITED);
    members.push(readKeyValue(reader, reader.start, reader.end, 0));
  }
  return members;
}

/** An attribute as a JSON object member. */
interface Member {
  key: string;
  json: string;
  /** stringValue's answer, kept: a resource's members are read for each of its spans. */
  text?: string | undefined;
}

function readSpan(reader: WireReader, start: number, end: number, resource: Member[], index: number, out: DecodedColumns): void {
  const buf = reader.buf;
  let traceStart = 0;
  let traceEnd = 0;
  let spanStart = 0;
  let spanEnd = 0;
  let parentStart = 0;
  let parentEnd = 0;
  let name = '';
  let kind = 0;
  let startNanos = 0n;
  let endNanos = 0n;
  let statusStart = -1;
  let statusEnd = -1;
  // Attributes, events and links are read before any check: one nested
  // beyond the limit goes the reference way whatever else is wrong, as the
  // reference decoder refuses such a span before it checks anything.
  // Resource attributes are kept with the span; the span's own win a clash
  // (a JSON object's last member wins in jsonb, as in the reference's merge).
  const members = resource.slice();
  let eventsJson: string | null = null;
  let linksJson: string | null = null;
  let badLink = -1;
  let links = 0;
  for (let pos = start; pos < end;) {
    pos = reader.next(pos, end);
    const s = reader.start;
    const e = reader.end;
    switch (reader.field) {
      case 1:
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        traceStart = s;
        traceEnd = e;
        break;
      case 2:
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        spanStart = s;
        spanEnd = e;
        break;
      case 4:
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        parentStart = s;
        parentEnd = e;
        break;
      case 5:
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        name = buf.toString('utf8', s, e);
        break;
      case 6:
        expectWireType(reader.wireType, VARINT);
        kind = reader.int32At(s);
        break;
      case 7:
        expectWireType(reader.wireType, FIXED64);
        startNanos = buf.readBigUInt64LE(s);
        break;
      case 8:
        expectWireType(reader.wireType, FIXED64);
        endNanos = buf.readBigUInt64LE(s);
        break;
      case 9:
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        members.push(readKeyValue(reader, s, e, 0));
        break;
      case 11:
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        eventsJson = eventsJson === null ? readEvent(reader, s, e) : `${eventsJson},${readEvent(reader, s, e)}`;
        break;
      case 13: {
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        const link = readLink(reader, s, e);
        if (link === undefined) {
          if (badLink < 0) badLink = links;
        } else linksJson = linksJson === null ? link : `${linksJson},${link}`;
        links++;
        break;
      }
      case 15:
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        statusStart = s;
        statusEnd = e;
        break;
    }
  }

  // The checks of mapping.ts' spanFromOtlp, in its order.
  let problem: string | undefined;
  if (!isId(buf, traceStart, traceEnd, 16)) problem = SPAN_RULES.traceId;
  else if (!isId(buf, spanStart, spanEnd, 8)) problem = SPAN_RULES.spanId;
  else if (parentEnd > parentStart && !isId(buf, parentStart, parentEnd, 8)) problem = SPAN_RULES.parentSpanId;
  else if (name === '') problem = SPAN_RULES.name;
  else if (startNanos === 0n) problem = SPAN_RULES.startTime;
  else if (endNanos === 0n) problem = SPAN_RULES.endTime;
  else if (endNanos < startNanos) problem = SPAN_RULES.endBeforeStart;
  else if (startNanos > MAX_NANOS || endNanos > MAX_NANOS) problem = SPAN_RULES.timeRange;
  else if (!(kind >= 0 && kind < KIND_NAMES.length)) problem = SPAN_RULES.kind;
  let statusCode = 0;
  let statusMessage = '';
  if (problem === undefined && statusStart >= 0) {
    for (let pos = statusStart; pos < statusEnd;) {
      pos = reader.next(pos, statusEnd);
      if (reader.field === 3) {
        expectWireType(reader.wireType, VARINT);
        statusCode = reader.int32At(reader.start);
      } else if (reader.field === 2) {
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        statusMessage = buf.toString('utf8', reader.start, reader.end);
      }
    }
  }
  if (problem === undefined && !(statusCode >= 0 && statusCode < STATUS_NAMES.length)) problem = SPAN_RULES.statusCode;
  if (problem === undefined && badLink >= 0) problem = SPAN_RULES.link(badLink);
  if (problem !== undefined) {
    out.rejected.push({
      index,
      traceId: buf.toString('hex', traceStart, traceEnd),
      spanId: buf.toString('hex', spanStart, spanEnd),
      reason: problem,
    });
    return;
  }

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
  c.trace_id.push(buf.toString('hex', traceStart, traceEnd));
  c.span_id.push(buf.readBigInt64BE(spanStart).toString());
  c.parent_span_id.push(parentEnd > parentStart ? buf.readBigInt64BE(parentStart).toString() : null);
  c.name.push(toPostgresText(name));
  c.service.push(serviceText ? toPostgresText(serviceText) : 'unknown_service');
  c.kind.push(KIND_NAMES[kind]!);
  c.start_time.push(nanosToIso(startNanos));
  c.end_time.push(nanosToIso(endNanos));
  c.status.push(STATUS_NAMES[statusCode]!);
  c.status_message.push(statusMessage ? toPostgresText(statusMessage) : null);
  c.attributes.push(toPostgresJsonText(objectJson(kept)));
  c.events.push(eventsJson === null ? null : toPostgresJsonText(`[${eventsJson}]`));
  c.links.push(linksJson === null ? null : toPostgresJsonText(`[${linksJson}]`));
  c.correlation_id.push(correlationId || null);
  c.session_id.push(sessionId || null);
}

/** The attribute's value when it is stored as a JSON string (text, and what JSON cannot hold exactly: big integers, NaN, bytes). */
function stringValue(member: Member | undefined): string | undefined {
  if (!member?.json.startsWith('"')) return undefined;
  return (member.text ??= JSON.parse(member.json) as string);
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
  for (let pos = start; pos < end;) {
    pos = reader.next(pos, end);
    if (reader.field === 1) {
      expectWireType(reader.wireType, FIXED64);
      nanos = reader.buf.readBigUInt64LE(reader.start);
    } else if (reader.field === 2) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      name = reader.buf.toString('utf8', reader.start, reader.end);
    } else if (reader.field === 3) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      attributes.push(readKeyValue(reader, reader.start, reader.end, 0));
    }
  }
  // As the reference maps an event: a zero time is no time.
  const time = nanos ? JSON.stringify(nanosToIso(nanos)) : 'null';
  const timeNanos = nanos ? JSON.stringify(nanos.toString()) : 'null';
  return `{"name":${JSON.stringify(name)},"time":${time},"time_unix_nano":${timeNanos},"attributes":${objectJson(attributes)}}`;
}

/** The link as JSON, or undefined when its ids are not valid. */
function readLink(reader: WireReader, start: number, end: number): string | undefined {
  let traceStart = 0;
  let traceEnd = 0;
  let spanStart = 0;
  let spanEnd = 0;
  let traceState = '';
  const attributes: Member[] = [];
  for (let pos = start; pos < end;) {
    pos = reader.next(pos, end);
    if (reader.field === 1) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      traceStart = reader.start;
      traceEnd = reader.end;
    } else if (reader.field === 2) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      spanStart = reader.start;
      spanEnd = reader.end;
    } else if (reader.field === 3) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      traceState = reader.buf.toString('utf8', reader.start, reader.end);
    } else if (reader.field === 4) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      attributes.push(readKeyValue(reader, reader.start, reader.end, 0));
    }
  }
  if (!isId(reader.buf, traceStart, traceEnd, 16) || !isId(reader.buf, spanStart, spanEnd, 8)) return undefined;
  const state = traceState ? `,"trace_state":${JSON.stringify(traceState)}` : '';
  return `{"trace_id":"${reader.buf.toString('hex', traceStart, traceEnd)}","span_id":"${reader.buf.toString('hex', spanStart, spanEnd)}"${state},"attributes":${objectJson(attributes)}}`;
}

/** A KeyValue at `depth` (the level of the object holding it, 0 for a span's attributes). */
function readKeyValue(reader: WireReader, start: number, end: number, depth: number): Member {
  // Deeper values go the reference way, which rejects their span with its message.
  if (depth > MAX_ATTRIBUTE_DEPTH) throw new LeftToReferenceDecoder('attribute values nested beyond the limit');
  let key = '';
  let valueStart = -1;
  let valueEnd = -1;
  for (let pos = start; pos < end;) {
    pos = reader.next(pos, end);
    if (reader.field === 1) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      key = reader.buf.toString('utf8', reader.start, reader.end);
    } else if (reader.field === 2) {
      expectWireType(reader.wireType, LENGTH_DELIMITED);
      valueStart = reader.start;
      valueEnd = reader.end;
    }
  }
  return { key, json: valueStart >= 0 ? readAnyValue(reader, valueStart, valueEnd, depth) : 'null' };
}

/** An AnyValue as JSON, as mapping.ts' fromAnyValue stores it. */
function readAnyValue(reader: WireReader, start: number, end: number, depth: number): string {
  const buf = reader.buf;
  // A oneof: the last member on the wire is the value.
  let field = 0;
  let s0 = 0;
  let e0 = 0;
  for (let pos = start; pos < end;) {
    pos = reader.next(pos, end);
    const f = reader.field;
    if (f < 1 || f > 7) continue;
    expectWireType(reader.wireType, f === 2 || f === 3 ? VARINT : f === 4 ? FIXED64 : LENGTH_DELIMITED);
    field = f;
    s0 = reader.start;
    e0 = reader.end;
  }
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
      let items = '';
      for (let pos = s0; pos < e0;) {
        pos = reader.next(pos, e0);
        if (reader.field !== 1) continue;
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        const item = readAnyValue(reader, reader.start, reader.end, depth + 1);
        items = items ? `${items},${item}` : item;
      }
      return `[${items}]`;
    }
    case 6: {
      const members: Member[] = [];
      for (let pos = s0; pos < e0;) {
        pos = reader.next(pos, e0);
        if (reader.field !== 1) continue;
        expectWireType(reader.wireType, LENGTH_DELIMITED);
        members.push(readKeyValue(reader, reader.start, reader.end, depth + 1));
      }
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

function isId(buf: Buffer, start: number, end: number, bytes: number): boolean {
  if (end - start !== bytes) return false;
  for (let i = start; i < end; i++) if (buf[i] !== 0) return true;
  return false;
}

function expectWireType(actual: number, expected: number): void {
  if (actual !== expected) throw new LeftToReferenceDecoder(`wire type ${actual} where ${expected} was expected`);
}

/**
 * Reads fields of the protobuf wire format by position, without copying or
 * allocating: next() reads one field and leaves its number, wire type and
 * payload in the reader's own properties, which the next call overwrites
 * (so a caller copies what it keeps before reading a nested message).
 */
class WireReader {
  /** The field last read by next(): its number and wire type. */
  field = 0;
  wireType = 0;
  /** Where its payload starts and ends (a varint's or fixed value's own bytes for the other wire types). */
  start = 0;
  end = 0;
  // Where the varint last read by varint32 ends.
  private after = 0;

  constructor(readonly buf: Buffer) {}

  /** Reads the field at pos of a message ending at limit; answers where the next field begins. */
  next(pos: number, limit: number): number {
    const tag = this.varint32(pos, limit);
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new LeftToReferenceDecoder('field number 0');
    let payloadStart = this.after;
    let payloadEnd: number;
    switch (wireType) {
      case VARINT:
        payloadEnd = this.skipVarint(payloadStart, limit);
        break;
      case FIXED64:
        payloadEnd = payloadStart + 8;
        break;
      case LENGTH_DELIMITED: {
        const length = this.varint32(payloadStart, limit);
        payloadStart = this.after;
        payloadEnd = payloadStart + length;
        break;
      }
      case FIXED32:
        payloadEnd = payloadStart + 4;
        break;
      default:
        throw new LeftToReferenceDecoder(`wire type ${wireType}`);
    }
    if (payloadEnd > limit) throw new LeftToReferenceDecoder('a field runs past its message');
    this.field = field;
    this.wireType = wireType;
    this.start = payloadStart;
    this.end = payloadEnd;
    return payloadEnd;
  }

  /** An unsigned varint of at most 32 bits (tags, lengths); this.after is the position after it. */
  private varint32(pos: number, end: number): number {
    const buf = this.buf;
    // Most tags and lengths take one or two bytes.
    if (pos < end && buf[pos]! < 0x80) {
      this.after = pos + 1;
      return buf[pos]!;
    }
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= end) throw new LeftToReferenceDecoder('a varint runs past its message');
      const byte = buf[pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) {
        if (value > 0xffffffff) throw new LeftToReferenceDecoder('a varint beyond 32 bits');
        this.after = pos;
        return value;
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
