import { assert, describe, it } from './test-harness.ts';
import {
  createSpan,
  endSpan,
  extractTracingContext,
  formatTraceparent,
  generateSpanId,
  generateTraceId,
  injectTracingHeaders,
  parseTraceparent,
  parseTracestate,
  truncateTracestate,
  upsertTracestate,
  TRACE_FLAG_RANDOM_TRACE_ID,
  TRACE_FLAG_SAMPLED,
  type TracingContext,
} from './tracing-context.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;
const UUID_A = '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6';
const UUID_B = '0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3';

function request(headers: HeadersInit): Request {
  return new Request('https://edge.example/functions/v1/probe', { headers });
}

function reasonOf(value: string | null): string {
  const result = parseTraceparent(value);
  assert.equal(result.ok, false, `expected ${value} to be rejected`);
  return result.ok ? '' : result.reason;
}

function tracestateOf(headers: HeadersInit): string | null {
  return extractTracingContext(request({ traceparent: VALID, ...Object.fromEntries(new Headers(headers)) })).tracestate;
}

function member(key: string, valueLength: number): string {
  return `${key}=${'v'.repeat(valueLength)}`;
}

describe('id generation', () => {
  it('makes 32-hex trace ids and 16-hex span ids, lowercase and never all zero', () => {
    for (let i = 0; i < 200; i++) {
      const traceId = generateTraceId();
      const spanId = generateSpanId();
      assert.match(traceId, /^[0-9a-f]{32}$/);
      assert.match(spanId, /^[0-9a-f]{16}$/);
      assert.notEqual(traceId, '0'.repeat(32));
      assert.notEqual(spanId, '0'.repeat(16));
    }
  });

  it('retries when the random source yields all zeros', () => {
    const original = crypto.getRandomValues.bind(crypto);
    let calls = 0;
    const stub = <T extends ArrayBufferView | null>(array: T): T => {
      calls++;
      if (calls === 1 && array instanceof Uint8Array) {
        array.fill(0);
        return array;
      }
      return original(array as never) as T;
    };
    Object.defineProperty(crypto, 'getRandomValues', { value: stub, configurable: true, writable: true });
    try {
      const spanId = generateSpanId();
      assert.equal(calls, 2);
      assert.notEqual(spanId, '0'.repeat(16));
    } finally {
      Object.defineProperty(crypto, 'getRandomValues', { value: original, configurable: true, writable: true });
    }
  });
});

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

describe('parseTracestate', () => {
  it('parses and normalises a list, dropping OWS and empty members', () => {
    const result = parseTracestate(' rojo=00f067aa0ba902b7 ,\t, ,congo=t61rcWkgMzE,  ');
    assert.deepEqual(result, {
      ok: true,
      entries: [
        { key: 'rojo', value: '00f067aa0ba902b7' },
        { key: 'congo', value: 't61rcWkgMzE' },
      ],
      header: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
      truncated: 0,
    });
  });

  it('ignores long runs of spaces and tabs around members, and refuses a header over the parse cap unread', () => {
    const ows = ' \t'.repeat(2 * 1024);
    const padded = parseTracestate(`${ows}rojo=1${ows},${ows}congo=2${ows}`);
    assert.deepEqual(padded.ok && padded.entries, [{ key: 'rojo', value: '1' }, { key: 'congo', value: '2' }]);
    const huge = parseTracestate(' \t'.repeat(32 * 1024));
    assert.deepEqual(huge, { ok: false, reason: 'tracestate is longer than 32768 characters' });
  });

  it('accepts empty and whitespace-only headers as an empty list', () => {
    assert.deepEqual(parseTracestate(''), { ok: true, entries: [], header: null, truncated: 0 });
    assert.deepEqual(parseTracestate(' , \t ,'), { ok: true, entries: [], header: null, truncated: 0 });
    assert.deepEqual(parseTracestate(null), { ok: true, entries: [], header: null, truncated: 0 });
  });

  it('combines several header fields in order', () => {
    const result = parseTracestate(['a=1', 'b=2,c=3']);
    assert.equal(result.ok && result.header, 'a=1,b=2,c=3');
  });

  it('keeps leading spaces of a value and drops trailing ones', () => {
    const result = parseTracestate('a=  x y  ');
    assert.equal(result.ok && result.entries[0]?.value, '  x y');
  });

  // The key cases of the W3C test suite (test_tracestate_key_illegal_vendor_format,
  // test_tracestate_key_length_limit) as Level 2's merged key grammar has them.
  it('accepts every key of the Level 2 grammar, vendor forms included', () => {
    const ok = [
      'a',
      'z0_-*/',
      '1abc', // a key may start with a digit
      'tenant@system',
      '0tenant@s',
      'foo@', // "@" is a key character anywhere but first
      'foo@@bar',
      'foo@bar@baz',
      'tenant@0system',
      `z${'a'.repeat(255)}`, // 256 characters, the longest key
      `t${'x'.repeat(240)}@${'v'.repeat(14)}`,
      `t${'x'.repeat(241)}@v`,
    ];
    for (const key of ok) {
      const result = parseTracestate(`foo=1,${key}=v,bar=2`);
      assert.ok(result.ok, key);
      assert.deepEqual(result.ok && result.entries.map((e) => e.key), ['foo', key, 'bar'], key);
    }
  });

  it('drops the whole list for an invalid key', () => {
    const bad = [
      'A=1', // uppercase
      'a.b=1', // "." is not a key character
      `z${'a'.repeat(256)}=1`, // 257 characters
      '@foo=1', // a key starts with a letter or digit
      '@=1',
      'Tenant@system=1',
      'ke y=1',
      '_a=1',
    ];
    for (const member of bad) {
      const result = parseTracestate(`good=1,${member},other=2`);
      assert.equal(result.ok, false, member);
    }
  });

  it('drops the whole list for an invalid value', () => {
    const bad = ['a=', 'a=b=c', 'a=\tx', 'a=x\ty', 'a=é', `a=${'v'.repeat(257)}`, 'a= ', 'a'];
    for (const member of bad) assert.equal(parseTracestate(`good=1,${member}`).ok, false, JSON.stringify(member));
    assert.ok(parseTracestate(`a=${'v'.repeat(256)}`).ok);
    assert.ok(parseTracestate('a=!"#$%&\'()*+-./:;<>?@[\\]^_`{|}~').ok);
  });

  // test_tracestate_duplicated_keys: the list is propagated with one entry per key.
  it('keeps the left-most entry of a repeated key and propagates the list', () => {
    const cases: Array<[string | string[], string]> = [
      ['a=1,b=2,a=3', 'a=1,b=2'],
      ['foo=1,foo=1', 'foo=1'],
      ['foo=1,foo=2', 'foo=1'],
      [['foo=1', 'foo=2'], 'foo=1'],
    ];
    for (const [value, header] of cases) {
      const result = parseTracestate(value);
      assert.equal(result.ok && result.header, header, String(value));
    }
  });

  it('counts a repeated key once toward the 32 list-members', () => {
    const members = Array.from({ length: 32 }, (_, i) => `k${i}=${i}`);
    const result = parseTracestate([...members, 'k0=again'].join(','));
    assert.equal(result.ok && result.entries.length, 32);
  });

  it('allows 32 list-members and refuses 33', () => {
    const members = Array.from({ length: 33 }, (_, i) => `k${i}=${i}`);
    const thirtyTwo = parseTracestate(members.slice(0, 32).join(','));
    assert.equal(thirtyTwo.ok && thirtyTwo.entries.length, 32);
    assert.equal(parseTracestate(members.join(',')).ok, false);
    // Empty members carry no state and do not count.
    assert.ok(parseTracestate(`${members.slice(0, 32).join(',')},, ,`).ok);
  });

  it('keeps a list of exactly 512 characters whole', () => {
    // 3 members of 127 characters, one of exactly 128, and 3 commas = 512.
    const list = [member('a', 125), member('b', 125), member('c', 125), member('d', 126)].join(',');
    assert.equal(list.length, 512);
    const result = parseTracestate(list);
    assert.equal(result.ok && result.header, list);
  });

  it('truncates an overlong list: entries over 128 characters first, from the right', () => {
    const long1 = member('l1', 200);
    const long2 = member('l2', 200);
    const short = Array.from({ length: 10 }, (_, i) => member(`s${i}`, 20));
    const list = [long1, ...short.slice(0, 5), long2, ...short.slice(5)].join(',');
    assert.ok(list.length > 512);
    const result = parseTracestate(list);
    assert.ok(result.ok);
    // Dropping l2 (the right-most long entry) makes it fit; l1 stays.
    assert.equal(result.ok && result.header, [long1, ...short].join(','));
    assert.equal(result.ok && result.truncated, 1);
  });

  it('then drops entries from the right until the list fits', () => {
    const entries = Array.from({ length: 30 }, (_, i) => ({ key: `key${String(i).padStart(2, '0')}`, value: 'x'.repeat(20) }));
    const kept = truncateTracestate(entries);
    const header = kept.map((e) => `${e.key}=${e.value}`).join(',');
    assert.ok(header.length <= 512);
    assert.deepEqual(kept, entries.slice(0, kept.length));
    const oneMore = entries.slice(0, kept.length + 1).map((e) => `${e.key}=${e.value}`).join(',');
    assert.ok(oneMore.length > 512);
  });

  it('drops every long entry, then short ones from the right, when both are needed', () => {
    const longs = Array.from({ length: 3 }, (_, i) => member(`long${i}`, 150));
    const shorts = Array.from({ length: 20 }, (_, i) => member(`s${String(i).padStart(2, '0')}`, 25));
    const result = parseTracestate([longs[0], ...shorts, longs[1], longs[2]].join(','));
    assert.ok(result.ok);
    const keys = result.ok ? result.entries.map((e) => e.key) : [];
    assert.ok(!keys.some((k) => k.startsWith('long')));
    assert.deepEqual(keys, shorts.slice(0, keys.length).map((s) => s.split('=')[0]));
    assert.ok((result.ok && result.header ? result.header.length : 0) <= 512);
  });
});

describe('upsertTracestate (mutating the tracestate field)', () => {
  it('adds a new key to the left', () => {
    assert.equal(upsertTracestate('rojo=00f067aa0ba902b7', 'congo', 't61rcWkgMzE'), 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    assert.equal(upsertTracestate(null, 'congo', 'x'), 'congo=x');
  });

  it('moves an existing key to the left with its new value, keeping the others in order', () => {
    assert.equal(upsertTracestate('a=1,congo=old,b=2', 'congo', 'new'), 'congo=new,a=1,b=2');
  });

  it('keeps at most 32 members, dropping from the right', () => {
    const list = Array.from({ length: 32 }, (_, i) => `k${i}=${i}`).join(',');
    const result = upsertTracestate(list, 'me', 'x');
    const keys = result?.split(',').map((m) => m.split('=')[0]);
    assert.equal(keys?.length, 32);
    assert.equal(keys?.[0], 'me');
    assert.equal(keys?.at(-1), 'k30');
  });

  it('ignores an invalid vendor entry and keeps the list', () => {
    assert.equal(upsertTracestate('a=1', 'Bad', 'x'), 'a=1');
    assert.equal(upsertTracestate('a=1', 'good', 'x,y'), 'a=1');
  });
});

describe('extractTracingContext', () => {
  it('continues a valid trace', () => {
    const context = extractTracingContext(
      request({ traceparent: VALID, tracestate: 'rojo=00f067aa0ba902b7', 'x-correlation-id': UUID_A, 'x-session-id': UUID_B }),
    );
    assert.deepEqual(context, {
      traceId: TRACE_ID,
      parentSpanId: PARENT_ID,
      traceFlags: 1,
      tracestate: 'rojo=00f067aa0ba902b7',
      correlationId: UUID_A,
      sessionId: UUID_B,
      restarted: false,
    });
  });

  it('reads header names in any case', () => {
    const context = extractTracingContext(request({ TraceParent: VALID, TRACESTATE: 'a=1', 'X-Correlation-ID': UUID_A.toUpperCase() }));
    assert.equal(context.traceId, TRACE_ID);
    assert.equal(context.tracestate, 'a=1');
    assert.equal(context.correlationId, UUID_A);
  });

  it('starts a new trace when there is no traceparent, and drops a lone tracestate', () => {
    const context = extractTracingContext(request({ tracestate: 'a=1' }));
    assert.equal(context.restarted, true);
    assert.equal(context.restartReason, 'missing traceparent');
    assert.match(context.traceId, /^[0-9a-f]{32}$/);
    assert.equal(context.parentSpanId, null);
    assert.equal(context.tracestate, null);
    assert.equal(context.traceFlags, TRACE_FLAG_SAMPLED | TRACE_FLAG_RANDOM_TRACE_ID);
  });

  it('can start unsampled traces', () => {
    const context = extractTracingContext(request({}), { sampled: false });
    assert.equal(context.traceFlags, TRACE_FLAG_RANDOM_TRACE_ID);
  });

  it('restarts an invalid trace with a new trace id and no tracestate', () => {
    for (const bad of [`00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`, `ff-${TRACE_ID}-${PARENT_ID}-01`, `${VALID}-extra`, 'garbage']) {
      const context = extractTracingContext(request({ traceparent: bad, tracestate: 'a=1' }));
      assert.equal(context.restarted, true, bad);
      assert.notEqual(context.traceId, TRACE_ID);
      assert.notEqual(context.traceId, TRACE_ID.toUpperCase());
      assert.equal(context.parentSpanId, null);
      assert.equal(context.tracestate, null);
      assert.ok(context.restartReason);
    }
  });

  it('restarts when traceparent arrives twice', () => {
    const headers = new Headers();
    headers.append('traceparent', VALID);
    headers.append('traceparent', `00-${TRACE_ID}-b7ad6b7169203331-01`);
    headers.append('tracestate', 'a=1');
    const context = extractTracingContext(request(headers));
    assert.equal(context.restarted, true);
    assert.equal(context.restartReason, 'duplicate traceparent headers');
    assert.notEqual(context.traceId, TRACE_ID);
    assert.equal(context.tracestate, null);
  });

  it('continues a higher version by position and clears unknown flags', () => {
    const context = extractTracingContext(request({ traceparent: `cc-${TRACE_ID}-${PARENT_ID}-ff-future-field` }));
    assert.equal(context.restarted, false);
    assert.equal(context.traceId, TRACE_ID);
    assert.equal(context.parentSpanId, PARENT_ID);
    assert.equal(context.traceFlags, 0x03);
  });

  it('combines several tracestate headers in order', () => {
    const headers = new Headers({ traceparent: VALID });
    headers.append('tracestate', 'a=1,b=2');
    headers.append('tracestate', 'c=3');
    assert.equal(extractTracingContext(request(headers)).tracestate, 'a=1,b=2,c=3');
  });

  it('keeps the traceparent when only the tracestate is invalid', () => {
    const context = extractTracingContext(request({ traceparent: VALID, tracestate: 'a=1,B=2' }));
    assert.equal(context.restarted, false);
    assert.equal(context.traceId, TRACE_ID);
    assert.equal(context.tracestate, null);
  });

  it('propagates a list with a repeated key, keeping the left-most entry', () => {
    assert.equal(tracestateOf({ tracestate: 'a=1,a=2' }), 'a=1');
    assert.equal(tracestateOf({ tracestate: 'foo@=1,bar=2' }), 'foo@=1,bar=2');
    assert.equal(tracestateOf({ tracestate: '@foo=1,bar=2' }), null);
  });

  it('treats an empty tracestate as none', () => {
    assert.equal(tracestateOf({ tracestate: '' }), null);
  });

  it('uses a valid x-correlation-id and makes a new one otherwise', () => {
    assert.equal(extractTracingContext(request({ 'x-correlation-id': UUID_A })).correlationId, UUID_A);
    for (const bad of ['not-a-uuid', '00000000-0000-0000-0000-000000000000', `{${UUID_A}}`, UUID_A.replaceAll('-', ''), '']) {
      const id = extractTracingContext(request({ 'x-correlation-id': bad })).correlationId;
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, bad);
    }
    const a = extractTracingContext(request({})).correlationId;
    const b = extractTracingContext(request({})).correlationId;
    assert.notEqual(a, b);
  });

  it('uses a valid x-session-id and null otherwise', () => {
    assert.equal(extractTracingContext(request({ 'x-session-id': UUID_B })).sessionId, UUID_B);
    assert.equal(extractTracingContext(request({ 'x-session-id': 'session-42' })).sessionId, null);
    assert.equal(extractTracingContext(request({})).sessionId, null);
  });
});

describe('spans', () => {
  const context: TracingContext = {
    traceId: TRACE_ID,
    parentSpanId: PARENT_ID,
    traceFlags: 1,
    tracestate: 'rojo=1',
    correlationId: UUID_A,
    sessionId: UUID_B,
    restarted: false,
  };

  it('a server span started from a request has the caller span as parent', () => {
    const span = createSpan(context, 'POST /invite-user', { kind: 'server', service: 'invite-user', attributes: { a: 1 } });
    assert.equal(span.traceId, TRACE_ID);
    assert.equal(span.parentSpanId, PARENT_ID);
    assert.match(span.spanId, /^[0-9a-f]{16}$/);
    assert.notEqual(span.spanId, PARENT_ID);
    assert.equal(span.kind, 'server');
    assert.equal(span.service, 'invite-user');
    assert.deepEqual(span.attributes, { a: 1 });
    assert.equal(span.traceFlags, 1);
    assert.equal(span.tracestate, 'rojo=1');
    assert.equal(span.correlationId, UUID_A);
    assert.equal(span.sessionId, UUID_B);
    assert.ok(span.startTime instanceof Date);
    assert.equal(typeof span.startMonotonic, 'number');
  });

  it('a span started from a restarted context has no parent', () => {
    const span = createSpan(extractTracingContext(request({})), 'root', { kind: 'server' });
    assert.equal(span.parentSpanId, null);
  });

  it('children and grandchildren chain their parent ids and inherit the service', () => {
    const server = createSpan(context, 'server', { kind: 'server', service: 'svc' });
    const child = createSpan(server, 'child');
    const grandchild = createSpan(child, 'grandchild', { kind: 'client' });
    assert.equal(child.parentSpanId, server.spanId);
    assert.equal(grandchild.parentSpanId, child.spanId);
    assert.equal(grandchild.traceId, TRACE_ID);
    assert.equal(child.kind, 'internal');
    assert.equal(grandchild.service, 'svc');
    assert.equal(createSpan(context, 'x').service, 'unknown_service');
    assert.equal(new Set([server.spanId, child.spanId, grandchild.spanId]).size, 3);
  });

  it('does not share the attributes object with the caller', () => {
    const attributes = { a: 1 };
    const span = createSpan(context, 'x', { attributes });
    span.attributes.b = 2;
    assert.deepEqual(attributes, { a: 1 });
  });

  it('measures duration on the monotonic clock, with endTime = startTime + duration', async () => {
    const span = createSpan(context, 'timed');
    await new Promise((resolve) => setTimeout(resolve, 25));
    const finished = endSpan(span, { code: 'ok' });
    assert.ok(finished.durationMs >= 20, `duration ${finished.durationMs}`);
    assert.ok(finished.durationMs < 5000);
    // Date keeps whole milliseconds.
    assert.equal(finished.endTime.getTime(), Math.trunc(span.startTime.getTime() + finished.durationMs));
    assert.deepEqual(finished.status, { code: 'ok' });
    assert.equal(finished.spanId, span.spanId);
  });

  it('ignores wall-clock steps while the span is open', () => {
    const span = createSpan(context, 'clock-step');
    // A wall clock that jumped back an hour since the start changes nothing.
    span.startTime = new Date(span.startTime.getTime() + 3_600_000);
    const finished = endSpan(span);
    assert.ok(finished.durationMs >= 0 && finished.durationMs < 1000);
    assert.deepEqual(finished.status, { code: 'unset' });
  });

  it('records an error status with its message', () => {
    const finished = endSpan(createSpan(context, 'x'), { code: 'error', message: 'boom' });
    assert.deepEqual(finished.status, { code: 'error', message: 'boom' });
  });
});

describe('injectTracingHeaders', () => {
  const context: TracingContext = {
    traceId: TRACE_ID,
    parentSpanId: PARENT_ID,
    traceFlags: 1,
    tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
    correlationId: UUID_A,
    sessionId: UUID_B,
    restarted: false,
  };

  it('sets traceparent with the span as parent-id, and carries tracestate and ids', () => {
    const span = createSpan(context, 'call', { kind: 'client' });
    const headers = injectTracingHeaders(span, { accept: 'application/json' });
    assert.equal(headers.get('traceparent'), `00-${TRACE_ID}-${span.spanId}-01`);
    assert.equal(headers.get('tracestate'), 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    assert.equal(headers.get('x-correlation-id'), UUID_A);
    assert.equal(headers.get('x-session-id'), UUID_B);
    assert.equal(headers.get('accept'), 'application/json');
  });

  it('moves the configured vendor key to the left with its new value', () => {
    const span = createSpan(context, 'call');
    const headers = injectTracingHeaders(span, undefined, { vendorKey: 'congo', vendorValue: 'ucfJifl5GOE' });
    assert.equal(headers.get('tracestate'), 'congo=ucfJifl5GOE,rojo=00f067aa0ba902b7');
    const added = injectTracingHeaders(span, undefined, { vendorKey: 'tracegres', vendorValue: span.spanId });
    assert.equal(added.get('tracestate'), `tracegres=${span.spanId},rojo=00f067aa0ba902b7,congo=t61rcWkgMzE`);
  });

  it('omits tracestate and session when there are none, replacing stale values', () => {
    const span = createSpan({ ...context, tracestate: null, sessionId: null }, 'call');
    const headers = injectTracingHeaders(span, { tracestate: 'stale=1', traceparent: 'stale' });
    assert.equal(headers.get('tracestate'), null);
    assert.equal(headers.get('x-session-id'), null);
    assert.equal(headers.get('traceparent'), `00-${TRACE_ID}-${span.spanId}-01`);
  });

  it('produces headers that extract back to a child of the span', () => {
    const span = createSpan(context, 'call');
    const downstream = extractTracingContext(request(injectTracingHeaders(span)));
    assert.equal(downstream.traceId, TRACE_ID);
    assert.equal(downstream.parentSpanId, span.spanId);
    assert.equal(downstream.correlationId, UUID_A);
    assert.equal(downstream.sessionId, UUID_B);
    assert.equal(downstream.tracestate, context.tracestate);
    assert.equal(downstream.restarted, false);
  });
});
