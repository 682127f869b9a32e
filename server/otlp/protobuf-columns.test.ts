// The direct protobuf path against the reference one: generated requests
// (valid and invalid spans, every attribute type, the attributes that become
// columns, events, links) decoded both ways give the same columns and the
// same rejections; what the direct path does not take on, it leaves to the
// reference instead of guessing.
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { otlpRequestToSpanRecords } from './mapping.ts';
import { LeftToReferenceDecoder, protobufToSpanColumns } from './protobuf-columns.ts';
import {
  decodeRequestProtobuf,
  encodeRequestProtobuf,
  type OtlpAnyValue,
  type OtlpKeyValue,
  type OtlpRequest,
  type OtlpSpan,
} from './protocol.ts';
import { columnsFromRecords, type SpanColumns } from './span-columns.ts';

/** A small seeded generator, so a failure names a case that can be run again. */
function generator(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const hex = (bytes: number) => Array.from({ length: bytes * 2 }, () => '0123456789abcdef'[int(16)]).join('');
  return { next, int, pick, hex };
}
type Gen = ReturnType<typeof generator>;

const UUID = '6f1c3a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
const KEYS = [
  'http.route',
  'db.rows',
  'service.name',
  'session.id',
  'tracegres.correlation_id',
  'tracegres.organization_id',
  '__proto__',
  'k',
];
const STRINGS = [
  '',
  'x',
  'checkout',
  'a\u0000b',
  'é漢字🙂',
  UUID,
  UUID.toUpperCase(),
  '00000000-0000-0000-0000-000000000000',
  'not-a-uuid',
];

function anyValue(g: Gen, depth: number): OtlpAnyValue {
  switch (g.int(depth > 3 ? 6 : 8)) {
    case 0:
    case 1:
      return { stringValue: g.pick(STRINGS) };
    case 2:
      return { boolValue: g.next() < 0.5 };
    case 3:
      return { intValue: g.pick(['0', '7', '-12', '9007199254740993', '-9223372036854775808', '9223372036854775807']) };
    case 4:
      return { doubleValue: g.pick([0.5, -1.25, 3, 1e300, Number.NaN, Number.POSITIVE_INFINITY]) };
    case 5:
      return g.next() < 0.5 ? { bytesValue: Buffer.from(g.hex(3), 'hex').toString('base64') } : {};
    case 6:
      return { arrayValue: { values: Array.from({ length: g.int(3) }, () => anyValue(g, depth + 1)) } };
    default:
      return { kvlistValue: { values: keyValues(g, depth + 1, 3) } };
  }
}

function keyValues(g: Gen, depth: number, most: number): OtlpKeyValue[] {
  return Array.from({ length: g.int(most + 1) }, () => ({ key: g.pick(KEYS), value: anyValue(g, depth) }));
}

function span(g: Gen): OtlpSpan {
  const start = 1_700_000_000_000_000_000n + BigInt(g.int(1_000_000_000));
  const bad = g.int(12);
  return {
    traceId: bad === 0 ? g.pick(['', '00'.repeat(16), g.hex(8)]) : g.hex(16),
    spanId: bad === 1 ? g.pick(['', '00'.repeat(8), g.hex(4)]) : g.hex(8),
    ...(g.next() < 0.6 ? { parentSpanId: bad === 2 ? g.pick(['00'.repeat(8), g.hex(3)]) : g.hex(8) } : {}),
    name: bad === 3 ? '' : g.pick(['GET /', 'SELECT 1', 'a\u0000b', 'é']),
    // Fields neither path stores, which the direct one must step over.
    ...(g.next() < 0.5 ? { traceState: 'vendor=1', flags: 257, droppedAttributesCount: 2, droppedEventsCount: 1 } : {}),
    kind: bad === 4 ? 9 : g.int(6),
    startTimeUnixNano: bad === 5 ? '0' : String(start),
    endTimeUnixNano: bad === 6 ? String(start - 1n) : bad === 7 ? '253402300800000000000' : String(start + BigInt(g.int(10_000_000))),
    attributes: keyValues(g, 0, 5),
    ...(g.next() < 0.3
      ? {
          events: Array.from({ length: 1 + g.int(2) }, () => ({
            name: g.pick(['', 'exception', 'é']),
            ...(g.next() < 0.7 ? { timeUnixNano: String(start + 5n) } : {}),
            attributes: keyValues(g, 0, 2),
          })),
        }
      : {}),
    ...(g.next() < 0.3
      ? {
          links: Array.from({ length: 1 + g.int(2) }, () => ({
            traceId: bad === 8 ? g.hex(3) : g.hex(16),
            spanId: g.hex(8),
            ...(g.next() < 0.5 ? { traceState: 'k=v', flags: 1 } : {}),
            attributes: keyValues(g, 0, 2),
          })),
        }
      : {}),
    ...(g.next() < 0.7
      ? { status: { code: bad === 9 ? 7 : g.int(3), ...(g.next() < 0.5 ? { message: g.pick(['boom', 'a\u0000']) } : {}) } }
      : {}),
  };
}

function request(g: Gen): OtlpRequest {
  return {
    resourceSpans: Array.from({ length: 1 + g.int(2) }, () => ({
      ...(g.next() < 0.8 ? { resource: { attributes: keyValues(g, 0, 3) } } : {}),
      scopeSpans: Array.from({ length: 1 + g.int(2) }, () => ({
        scope: { name: 'test', version: '1.0' },
        ...(g.next() < 0.5 ? { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' } : {}),
        spans: Array.from({ length: g.int(6) }, () => span(g)),
      })),
    })),
  };
}

/** The columns with their JSON values parsed: jsonb reads both the same, member order and repeated keys alike. */
function comparable(columns: SpanColumns) {
  const parse = (texts: Array<string | null>) => texts.map((text) => (text === null ? null : JSON.parse(text)));
  return { ...columns, attributes: parse(columns.attributes), events: parse(columns.events), links: parse(columns.links) };
}

function reference(body: Uint8Array) {
  const mapped = otlpRequestToSpanRecords(decodeRequestProtobuf(body));
  return { columns: comparable(columnsFromRecords(mapped.records, mapped.positions)), rejected: mapped.rejected };
}

describe('protobufToSpanColumns', () => {
  it('decodes generated requests as the reference decoder and mapping do', () => {
    let spans = 0;
    let rejected = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const body = encodeRequestProtobuf(request(generator(seed)));
      const direct = protobufToSpanColumns(body);
      const expected = reference(body);
      expect({ columns: comparable(direct.columns), rejected: direct.rejected }, `seed ${seed}`).toEqual(expected);
      spans += direct.columns.trace_id.length + direct.rejected.length;
      rejected += direct.rejected.length;
    }
    // The generated requests reach both outcomes often.
    expect(spans).toBeGreaterThan(1500);
    expect(rejected).toBeGreaterThan(300);
  });

  it('reads the ids, times and typed columns of a span', () => {
    const body = encodeRequestProtobuf({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
                  spanId: 'f067aa0ba902b7ff',
                  parentSpanId: '00f067aa0ba902b7',
                  name: 'GET /orders/:id',
                  kind: 2,
                  startTimeUnixNano: '1700000000123456789',
                  endTimeUnixNano: '1700000000223456789',
                  attributes: [
                    { key: 'session.id', value: { stringValue: UUID.toUpperCase() } },
                    { key: 'db.rows', value: { intValue: '3' } },
                  ],
                  status: { code: 2, message: 'boom' },
                },
              ],
            },
          ],
        },
      ],
    });
    const { columns, rejected } = protobufToSpanColumns(body);
    expect(rejected).toEqual([]);
    expect(columns).toEqual({
      positions: [0],
      trace_id: ['4bf92f3577b34da6a3ce929d0e0e4736'],
      // The signed 64-bit value of the bytes: the high bit set makes it negative.
      span_id: [BigInt.asIntN(64, 0xf067aa0ba902b7ffn).toString()],
      parent_span_id: [String(0x00f067aa0ba902b7n)],
      name: ['GET /orders/:id'],
      service: ['orders'],
      kind: ['server'],
      start_time: ['2023-11-14T22:13:20.123456Z'],
      end_time: ['2023-11-14T22:13:20.223456Z'],
      status: ['error'],
      status_message: ['boom'],
      attributes: ['{"db.rows":3}'],
      events: [null],
      links: [null],
      correlation_id: [null],
      session_id: [UUID],
    });
  });

  it('leaves to the reference what it does not take on: values nested beyond the limit, malformed wire data', () => {
    let value: OtlpAnyValue = { stringValue: 'bottom' };
    for (let i = 0; i < 40; i++) value = { kvlistValue: { values: [{ key: 'next', value }] } };
    // A sender without protobufjs' limit can write this; raise it to build the bytes.
    const limit = protobuf.util.recursionLimit;
    protobuf.util.recursionLimit = 1000;
    let deep: Uint8Array;
    try {
      deep = encodeRequestProtobuf({
        resourceSpans: [{ scopeSpans: [{ spans: [{ ...span(generator(7)), attributes: [{ key: 'deep', value }] }] }] }],
      });
    } finally {
      protobuf.util.recursionLimit = limit;
    }
    expect(() => protobufToSpanColumns(deep)).toThrow(LeftToReferenceDecoder);
    const valid = encodeRequestProtobuf(request(generator(3)));
    expect(() => protobufToSpanColumns(valid.subarray(0, valid.length - 3))).toThrow(LeftToReferenceDecoder);
    expect(() => protobufToSpanColumns(Buffer.from('not protobuf at all'))).toThrow(LeftToReferenceDecoder);
  });
});
