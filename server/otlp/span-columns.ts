// A batch of spans as tracing.record_span_columns takes it: one array per
// field, element i of each being span i, every value already the text
// Postgres reads for its column type (trace ids as 32 hex digits for uuid,
// span ids as the signed decimal of their 8 bytes for bigint, times in ISO
// 8601 for timestamptz, attributes as storable JSON text). Two paths fill
// it: protobuf-columns.ts straight from the protobuf bytes, and
// columnsFromRecords from span records (OTLP/JSON, and protobuf requests the
// direct path leaves to the reference decoder).
import type postgres from 'postgres';
import { toPostgresJson, toPostgresText } from '../../ts/trace-context/postgres-json.ts';
import type { SpanRecord } from './mapping.ts';

export interface SpanColumns {
  /** Position in the request of each span. */
  positions: number[];
  trace_id: string[];
  span_id: string[];
  parent_span_id: Array<string | null>;
  name: string[];
  service: string[];
  kind: string[];
  start_time: string[];
  end_time: string[];
  status: string[];
  status_message: Array<string | null>;
  attributes: string[];
  events: Array<string | null>;
  links: Array<string | null>;
  correlation_id: Array<string | null>;
  session_id: Array<string | null>;
}

export function emptySpanColumns(): SpanColumns {
  return {
    positions: [],
    trace_id: [],
    span_id: [],
    parent_span_id: [],
    name: [],
    service: [],
    kind: [],
    start_time: [],
    end_time: [],
    status: [],
    status_message: [],
    attributes: [],
    events: [],
    links: [],
    correlation_id: [],
    session_id: [],
  };
}

/** The columns of span records (hex ids, ISO times, JSON values). */
export function columnsFromRecords(records: SpanRecord[], positions: number[]): SpanColumns {
  const columns = emptySpanColumns();
  columns.positions = positions;
  for (const r of records) {
    columns.trace_id.push(r.trace_id);
    columns.span_id.push(spanIdToBigint(r.span_id));
    columns.parent_span_id.push(r.parent_span_id ? spanIdToBigint(r.parent_span_id) : null);
    columns.name.push(toPostgresText(r.name));
    columns.service.push(toPostgresText(r.service));
    columns.kind.push(r.kind);
    columns.start_time.push(r.start_time);
    columns.end_time.push(r.end_time);
    columns.status.push(r.status);
    columns.status_message.push(r.status_message ? toPostgresText(r.status_message) : null);
    columns.attributes.push(toPostgresJson(r.attributes));
    columns.events.push(r.events ? toPostgresJson(r.events) : null);
    columns.links.push(r.links ? toPostgresJson(r.links) : null);
    columns.correlation_id.push(r.correlation_id);
    columns.session_id.push(r.session_id);
  }
  return columns;
}

/**
 * The arguments of tracing.record_span_columns, every span in
 * `organizationId`. Each array goes as the text of an array literal: the
 * client's own array parameters come out wrong for nulls, and on a
 * connection that has not yet read the server's types, for everything.
 * The JSON columns go as one JSON array each, which needs no escaping
 * (tracing.jsonb_elements_array turns it into the jsonb[]).
 */
export function spanColumnArguments(sql: postgres.Sql, c: SpanColumns, organizationId: string) {
  return sql`${plainArrayLiteral(c.trace_id)}::uuid[], ${plainArrayLiteral(c.span_id)}::bigint[], ${plainArrayLiteral(c.parent_span_id)}::bigint[],
    ${arrayLiteral(c.name)}::text[], ${arrayLiteral(c.service)}::text[], ${plainArrayLiteral(c.kind)}::text[],
    ${plainArrayLiteral(c.start_time)}::timestamptz[], ${plainArrayLiteral(c.end_time)}::timestamptz[], ${plainArrayLiteral(c.status)}::text[],
    ${arrayLiteral(c.status_message)}::text[], tracing.jsonb_elements_array(${jsonArray(c.attributes)}::text::jsonb),
    tracing.jsonb_elements_array(${jsonArray(c.events)}::text::jsonb), tracing.jsonb_elements_array(${jsonArray(c.links)}::text::jsonb),
    ${plainArrayLiteral(c.correlation_id)}::uuid[], ${plainArrayLiteral(c.session_id)}::uuid[],
    ${plainArrayLiteral(c.trace_id.map(() => organizationId))}::uuid[]`;
}

/** JSON texts as the text of one JSON array, null as JSON null; null when every one is (no span has the field). */
function jsonArray(values: Array<string | null>): string | null {
  if (values.every((value) => value === null)) return null;
  let text = '[';
  for (let i = 0; i < values.length; i++) text += `${i ? ',' : ''}${values[i] ?? 'null'}`;
  return `${text}]`;
}

/**
 * The array literal of values that need no quoting: hex and decimal ids,
 * uuids, ISO 8601 times and the kind and status names, as the two decoding
 * paths write them (checked there), never the word NULL.
 */
function plainArrayLiteral(values: Array<string | null>): string {
  return `{${values.map((value) => value ?? 'NULL').join(',')}}`;
}

/** A one-dimensional Postgres array literal: every element quoted (backslash and quote escaped), NULL for null. */
export function arrayLiteral(values: Array<string | null>): string {
  return `{${values.map((value) => (value === null ? 'NULL' : `"${value.replace(/[\\"]/g, '\\$&')}"`)).join(',')}}`;
}

/**
 * A W3C span id (16 hex digits) as tracing.spans keeps it: the signed
 * 64-bit integer of its 8 bytes (tracing.hex_to_span_id in SQL).
 */
export function spanIdToBigint(hex: string): string {
  return BigInt.asIntN(64, BigInt(`0x${hex}`)).toString();
}

/** The W3C hex of a span id kept as a signed 64-bit integer (tracing.span_id_to_hex in SQL). */
export function bigintToSpanId(value: string): string {
  return BigInt.asUintN(64, BigInt(value)).toString(16).padStart(16, '0');
}
