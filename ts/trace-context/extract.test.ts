import { assert, describe, it } from './test-harness.ts';
import { extractTracingContext } from './extract.ts';
import { TRACE_FLAG_RANDOM_TRACE_ID, TRACE_FLAG_SAMPLED } from './traceparent.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;
const UUID_A = '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6';
const UUID_B = '0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3';

function request(headers: HeadersInit): Request {
  return new Request('https://edge.example/functions/v1/probe', { headers });
}

function tracestateOf(headers: HeadersInit): string | null {
  return extractTracingContext(request({ traceparent: VALID, ...Object.fromEntries(new Headers(headers)) })).tracestate;
}

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
