// OTLP values into tracegres spans and back: the edges of the typed
// attribute mapping and of time conversion.
import { describe, expect, it } from 'vitest';
import { isoToNanos, nanosToIso, otlpRequestToSpanRecords, toAnyValue } from './mapping.ts';
import type { OtlpRequest } from './protocol.ts';

const span = (attributes: unknown[]): OtlpRequest =>
  ({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: [
              {
                traceId: '4BF92F3577B34DA6A3CE929D0E0E4736',
                spanId: '00F067AA0BA902B7',
                name: 'op',
                startTimeUnixNano: '1772366400000000001',
                endTimeUnixNano: 1772366400000001000,
                attributes,
              },
            ],
          },
        ],
      },
    ],
  }) as unknown as OtlpRequest;

describe('ingest mapping', () => {
  it('stores typed values as JSON, keeping what JSON cannot hold exactly as text', () => {
    const { records, rejected } = otlpRequestToSpanRecords(
      span([
        { key: 's', value: { stringValue: 'x' } },
        { key: 'i', value: { intValue: '42' } },
        { key: 'big', value: { intValue: '9223372036854775807' } },
        { key: 'd', value: { doubleValue: 1.5 } },
        { key: 'nan', value: { doubleValue: 'NaN' } },
        { key: 'b', value: { boolValue: false } },
        { key: 'a', value: { arrayValue: { values: [{ intValue: 1 }, { stringValue: 'two' }] } } },
        { key: 'kv', value: { kvlistValue: { values: [{ key: 'k', value: { boolValue: true } }] } } },
        { key: 'bytes', value: { bytesValue: 'AQID' } },
        { key: 'empty' },
      ]),
    );
    expect(rejected).toEqual([]);
    const [record] = records;
    expect(record!.attributes).toEqual({
      s: 'x',
      i: 42,
      big: '9223372036854775807',
      d: 1.5,
      nan: 'NaN',
      b: false,
      a: [1, 'two'],
      kv: { k: true },
      bytes: 'AQID',
      empty: null,
    });
    // Ids lowercased; nanoseconds below a microsecond dropped.
    expect(record!.trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(record!.start_time).toBe('2026-03-01T12:00:00.000000Z');
    expect(record!.end_time).toBe('2026-03-01T12:00:00.000001Z');
    expect(record!.service).toBe('unknown_service');
    expect(record!.kind).toBe('internal');
    expect(record!.status).toBe('unset');
  });

  it('keeps a session.id that is not a uuid as an ordinary attribute', () => {
    const { records } = otlpRequestToSpanRecords(span([{ key: 'session.id', value: { stringValue: 'web-123' } }]));
    expect(records[0]!.session_id).toBeNull();
    expect(records[0]!.attributes).toEqual({ 'session.id': 'web-123' });
  });
});

describe('export mapping', () => {
  it('types JSON values as OTLP AnyValues', () => {
    expect(toAnyValue(3)).toEqual({ intValue: '3' });
    expect(toAnyValue(2 ** 60)).toEqual({ doubleValue: 2 ** 60 });
    expect(toAnyValue(0.1)).toEqual({ doubleValue: 0.1 });
    expect(toAnyValue([true, null])).toEqual({ arrayValue: { values: [{ boolValue: true }, { stringValue: '' }] } });
  });

  it('converts between ISO times and Unix nanoseconds at microsecond precision', () => {
    expect(nanosToIso(1772366400123456789n)).toBe('2026-03-01T12:00:00.123456Z');
    // The next second, the same second again, and times past 2255 (beyond a Number's exact microseconds).
    expect(nanosToIso(1772366401000000999n)).toBe('2026-03-01T12:00:01.000000Z');
    expect(nanosToIso(1772366401999999000n)).toBe('2026-03-01T12:00:01.999999Z');
    expect(nanosToIso(253402300799999999000n)).toBe('9999-12-31T23:59:59.999999Z');
    expect(nanosToIso(9_000_000_000_000_001_000n)).toBe('2255-03-14T16:00:00.000001Z');
    expect(isoToNanos('2026-03-01T12:00:00.123456Z')).toBe('1772366400123456000');
    expect(isoToNanos('2026-03-01T12:00:00Z')).toBe('1772366400000000000');
    expect(isoToNanos('not a time')).toBeUndefined();
  });

  it('keeps an attribute named __proto__ as an ordinary attribute', () => {
    const { records } = otlpRequestToSpanRecords(span([{ key: '__proto__', value: { stringValue: 'kept' } }]));
    expect(JSON.parse(JSON.stringify(records[0]!.attributes))).toEqual(JSON.parse('{"__proto__":"kept"}'));
  });

  it('rejects only the span whose attribute nests deeper than the limit, even thousands of levels', () => {
    let deep: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 3000; i += 1) deep = { kvlistValue: { values: [{ key: 'k', value: deep }] } };
    const request = span([{ key: 'deep', value: deep }]) as unknown as { resourceSpans: [{ scopeSpans: [{ spans: unknown[] }] }] };
    const spans = request.resourceSpans[0].scopeSpans[0].spans;
    spans.push({ ...(spans[0] as object), spanId: '00F067AA0BA902B8', attributes: [{ key: 'ok', value: { stringValue: 'y' } }] });
    const { records, rejected } = otlpRequestToSpanRecords(request as unknown as OtlpRequest);
    expect(records.map((r) => r.span_id)).toEqual(['00f067aa0ba902b8']);
    expect(rejected).toEqual([
      {
        index: 0,
        traceId: '4BF92F3577B34DA6A3CE929D0E0E4736',
        spanId: '00F067AA0BA902B7',
        reason: 'attributes nests attribute values deeper than 32 levels',
      },
    ]);
  });
});
