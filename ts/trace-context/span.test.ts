import { assert, describe, it } from './test-harness.ts';
import { extractTracingContext } from './extract.ts';
import { createSpan, endSpan, injectTracingHeaders, type TracingContext } from './span.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const UUID_A = '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6';
const UUID_B = '0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3';

function request(headers: HeadersInit): Request {
  return new Request('https://edge.example/functions/v1/probe', { headers });
}

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
