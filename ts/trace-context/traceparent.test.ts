import { assert, describe, it } from './test-harness.ts';
import { generateSpanId, generateTraceId } from './ids.ts';
import { formatTraceparent, parseTraceparent, TRACE_FLAG_RANDOM_TRACE_ID } from './traceparent.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;

function reasonOf(value: string | null): string {
  const result = parseTraceparent(value);
  assert.equal(result.ok, false, `expected ${value} to be rejected`);
  return result.ok ? '' : result.reason;
}

describe('parseTraceparent', () => {
  it('accepts the spec examples', () => {
    const sampled = parseTraceparent(VALID);
    assert.deepEqual(sampled, { ok: true, traceparent: { version: 0, traceId: TRACE_ID, parentId: PARENT_ID, traceFlags: 1 } });
    const unsampled = parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-00`);
    assert.equal(unsampled.ok && unsampled.traceparent.traceFlags, 0);
  });

  it('reports a missing header', () => {
    assert.equal(reasonOf(null), 'missing traceparent');
  });

  it('rejects wrong lengths of every field', () => {
    reasonOf(`00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`);
    reasonOf(`00-${TRACE_ID}0-${PARENT_ID}-01`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID.slice(1)}-01`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID}0-01`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID}-1`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID}-`);
    reasonOf(`0-${TRACE_ID}-${PARENT_ID}-01`);
    reasonOf(`000-${TRACE_ID}-${PARENT_ID}-01`);
    reasonOf('');
    reasonOf('00');
  });

  it('rejects uppercase hex in any field (HEXDIGLC)', () => {
    assert.match(reasonOf(`00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`), /trace-id/);
    assert.match(reasonOf(`00-${TRACE_ID}-${PARENT_ID.toUpperCase().replace('00F', '00F')}-01`), /parent-id/);
    assert.match(reasonOf(`00-${TRACE_ID}-${PARENT_ID}-0A`), /trace-flags/);
    assert.match(reasonOf(`0A-${TRACE_ID}-${PARENT_ID}-01`), /version/);
  });

  it('rejects non-hex characters and wrong delimiters', () => {
    reasonOf(`00-${TRACE_ID.slice(0, 31)}g-${PARENT_ID}-01`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID.slice(0, 15)}z-01`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID}-0x`);
    reasonOf(`00_${TRACE_ID}-${PARENT_ID}-01`);
    reasonOf(`00-${TRACE_ID}_${PARENT_ID}-01`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID}_01`);
    reasonOf(`00-${TRACE_ID}-${PARENT_ID}.01`);
  });

  it('rejects all-zero trace and parent ids', () => {
    assert.equal(reasonOf(`00-${'0'.repeat(32)}-${PARENT_ID}-01`), 'trace-id is all zeros');
    assert.equal(reasonOf(`00-${TRACE_ID}-${'0'.repeat(16)}-01`), 'parent-id is all zeros');
  });

  it('rejects version ff', () => {
    assert.equal(reasonOf(`ff-${TRACE_ID}-${PARENT_ID}-01`), 'version ff is forbidden');
  });

  it('rejects version 00 with trailing data', () => {
    assert.equal(reasonOf(`${VALID}-what-the-future-will-be-like`), 'version 00 traceparent has trailing data');
    assert.equal(reasonOf(`${VALID}-`), 'version 00 traceparent has trailing data');
    assert.equal(reasonOf(`${VALID}0`), 'version 00 traceparent has trailing data');
  });

  it('parses a higher version by position, ignoring fields after the flags', () => {
    const result = parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01-what-the-future-will-be-like`);
    assert.deepEqual(result, { ok: true, traceparent: { version: 0xcc, traceId: TRACE_ID, parentId: PARENT_ID, traceFlags: 1 } });
    const exact = parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01`);
    assert.equal(exact.ok, true);
  });

  it('rejects a higher version whose flags are followed by something other than "-"', () => {
    reasonOf(`cc-${TRACE_ID}-${PARENT_ID}-01.what-the-future-will-be-like`);
    reasonOf(`cc-${TRACE_ID}-${PARENT_ID}-0100`);
  });

  it('rejects a higher version shorter than 55 characters', () => {
    assert.match(reasonOf(`cc-${TRACE_ID}-${PARENT_ID}-1`), /shorter than 55/);
  });

  it('still validates the ids of a higher version', () => {
    reasonOf(`cc-${'0'.repeat(32)}-${PARENT_ID}-01-future`);
    reasonOf(`cc-${TRACE_ID}-${PARENT_ID.toUpperCase()}-01-future`);
  });

  it('clears unknown flag bits, keeping sampled and random-trace-id', () => {
    const flags = (hex: string): number => {
      const result = parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-${hex}`);
      assert.ok(result.ok);
      return result.ok ? result.traceparent.traceFlags : -1;
    };
    assert.equal(flags('ff'), 0x03);
    assert.equal(flags('09'), 0x01);
    assert.equal(flags('02'), TRACE_FLAG_RANDOM_TRACE_ID);
    assert.equal(flags('fc'), 0x00);
    assert.equal(flags('03'), 0x03);
  });

  it('detects duplicated headers joined by Headers', () => {
    const headers = new Headers();
    headers.append('traceparent', VALID);
    headers.append('traceparent', VALID);
    assert.equal(reasonOf(headers.get('traceparent')), 'duplicate traceparent headers');
  });
});

describe('formatTraceparent', () => {
  it('formats version 00 with two-hex flags and masks unknown bits', () => {
    assert.equal(formatTraceparent(TRACE_ID, PARENT_ID, 1), VALID);
    assert.equal(formatTraceparent(TRACE_ID, PARENT_ID, 0xff), `00-${TRACE_ID}-${PARENT_ID}-03`);
    assert.equal(formatTraceparent(TRACE_ID, PARENT_ID, 0), `00-${TRACE_ID}-${PARENT_ID}-00`);
  });

  it('refuses ids a receiver would have to reject', () => {
    assert.throws(() => formatTraceparent('0'.repeat(32), PARENT_ID, 1), RangeError);
    assert.throws(() => formatTraceparent(TRACE_ID, PARENT_ID.toUpperCase() + 'X', 1), RangeError);
    assert.throws(() => formatTraceparent(TRACE_ID.toUpperCase(), PARENT_ID, 1), RangeError);
  });

  it('round-trips through parseTraceparent', () => {
    for (let i = 0; i < 50; i++) {
      const traceId = generateTraceId();
      const spanId = generateSpanId();
      const flags = i % 4;
      assert.deepEqual(parseTraceparent(formatTraceparent(traceId, spanId, flags)), {
        ok: true,
        traceparent: { version: 0, traceId, parentId: spanId, traceFlags: flags },
      });
    }
  });
});
