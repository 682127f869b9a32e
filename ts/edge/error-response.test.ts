import { assert, describe, it } from '../trace-context/test-harness.ts';
import { corsHeaders, errorResponse, handlePreflight } from './error-response.ts';
import { extractTracingContext } from '../trace-context/extract.ts';
import { createSpan } from '../trace-context/span.ts';

const UUID_A = '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function list(value: string | null | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

describe('corsHeaders', () => {
  it('allows the tracing request headers and exposes the ids', () => {
    const headers = corsHeaders();
    assert.deepEqual(list(headers['access-control-allow-headers']).sort(), [
      'authorization',
      'content-type',
      'traceparent',
      'tracestate',
      'x-correlation-id',
      'x-session-id',
    ]);
    assert.deepEqual(list(headers['access-control-expose-headers']).sort(), ['traceresponse', 'x-correlation-id']);
    assert.equal(headers['access-control-allow-origin'], '*');
    assert.ok(list(headers['access-control-allow-methods']).includes('POST'));
    assert.equal(headers.vary, undefined);
  });

  it('names a specific origin with Vary: Origin and adds extra headers', () => {
    const headers = corsHeaders({ origin: 'https://app.example', allowHeaders: ['X-Client-Info'], methods: ['POST'] });
    assert.equal(headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(headers.vary, 'Origin');
    assert.ok(list(headers['access-control-allow-headers']).includes('x-client-info'));
    assert.equal(headers['access-control-allow-methods'], 'POST');
  });
});

describe('handlePreflight', () => {
  it('answers OPTIONS with 204 and the CORS headers', async () => {
    const response = handlePreflight(
      new Request('https://edge.example/f', {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-headers': 'traceparent, x-correlation-id' },
      }),
    );
    assert.ok(response);
    assert.equal(response?.status, 204);
    assert.equal(await response?.text(), '');
    assert.ok(list(response?.headers.get('access-control-allow-headers')).includes('traceparent'));
    assert.ok(list(response?.headers.get('access-control-expose-headers')).includes('x-correlation-id'));
  });

  it('returns null for other methods', () => {
    assert.equal(handlePreflight(new Request('https://edge.example/f', { method: 'POST', body: '{}' })), null);
    assert.equal(handlePreflight(new Request('https://edge.example/f')), null);
  });
});

describe('errorResponse', () => {
  const context = extractTracingContext(
    new Request('https://edge.example/f', { headers: { traceparent: TRACEPARENT, 'x-correlation-id': UUID_A } }),
  );

  it('carries the correlation id in the body and the header, with the trace id and CORS', async () => {
    const response = errorResponse(context, 400, 'Invalid input', { issues: [{ path: 'email', message: 'required' }] });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('x-correlation-id'), UUID_A);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(await response.json(), {
      error: {
        message: 'Invalid input',
        correlationId: UUID_A,
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        details: { issues: [{ path: 'email', message: 'required' }] },
      },
    });
  });

  it('accepts a span and omits absent details', async () => {
    const span = createSpan(context, 'x', { kind: 'server' });
    const response = errorResponse(span, 404, 'Not found');
    const body = (await response.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['correlationId', 'message', 'traceId']);
  });

  it('never leaks a stack trace', async () => {
    const error = new Error('password=hunter2 at db.internal');
    const response = errorResponse(context, 500, 'Internal server error', { cause: error, nested: { stack: 'at x (y.ts:1)' } });
    const text = await response.text();
    assert.ok(!text.includes('hunter2'));
    assert.ok(!text.includes('at x'));
    assert.ok(!text.includes('stack'));
    assert.deepEqual(JSON.parse(text).error.details, { cause: { name: 'Error' }, nested: {} });
  });
});
