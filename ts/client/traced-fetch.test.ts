import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorResponse } from '../edge/error-response.ts';
import { extractTracingContext } from '../trace-context/extract.ts';
import { parseTraceparent } from '../trace-context/traceparent.ts';
import { signAccessToken } from './test-access-token.ts';
import { type TestServer, refusedUrl, startTestServer } from './test-server.ts';
import { TracedRequestError, startUserAction, tracedFetch, tracedFetchJson } from './traced-fetch.ts';
import { generateCorrelationId } from './tracing.ts';

const SESSION_ID = '8a3c1f9e-2b7d-4e61-9c05-3f1d2a6b7c80';
const SERVER_CORRELATION_ID = '1d6b1c7e-0f3a-4f4e-8b1a-9e2c3d4f5a6b';
const SERVER_TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

let server: TestServer;
let accessToken: string;
/** Lets the /slow route answer; set per request. */
const slowReleases: (() => void)[] = [];

function sentTraceId(headers: Headers): string {
  const parsed = parseTraceparent(headers.get('traceparent'));
  if (!parsed.ok) throw new Error(`client sent an invalid traceparent: ${parsed.reason}`);
  return parsed.traceparent.traceId;
}

/** Runs `promise`, which must reject, and returns the TracedRequestError it rejected with. */
async function tracedFailure(promise: Promise<unknown>): Promise<TracedRequestError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(TracedRequestError);
  return error as TracedRequestError;
}

beforeAll(async () => {
  accessToken = await signAccessToken({ userId: '5b0e8f2c-1d3a-4c6e-8f90-a1b2c3d4e5f6', sessionId: SESSION_ID });

  server = await startTestServer(async (request) => {
    const path = new URL(request.url).pathname;
    switch (path) {
      case '/ok':
        return Response.json({ ok: true });
      case '/echo':
        return Response.json({ method: request.method, body: await request.text(), custom: request.headers.get('x-custom') });
      case '/not-json':
        return new Response('<html>ok</html>', { headers: { 'content-type': 'text/html' } });
      case '/edge-conflict': {
        // A handler the way an edge function writes it, with the edge toolkit.
        const context = extractTracingContext(request);
        return errorResponse(context, 409, 'Email already invited');
      }
      case '/header-only':
        return new Response('upstream unavailable', {
          status: 503,
          statusText: 'Service Unavailable',
          headers: { 'x-correlation-id': SERVER_CORRELATION_ID },
        });
      case '/body-only':
        return Response.json(
          { error: { message: 'Invitation expired', correlationId: SERVER_CORRELATION_ID, traceId: SERVER_TRACE_ID } },
          { status: 410 },
        );
      case '/traceresponse-only':
        return new Response(null, { status: 500, headers: { traceresponse: `00-${SERVER_TRACE_ID}-b7ad6b7169203331-01` } });
      case '/string-error':
        return Response.json({ error: 'Forbidden for this role' }, { status: 403 });
      case '/html-error':
        return new Response('<html><body>Bad gateway</body></html>', { status: 502, headers: { 'content-type': 'text/html' } });
      case '/slow':
        await new Promise<void>((resolve) => slowReleases.push(resolve));
        return Response.json({ late: true });
      default:
        return new Response('no such route', { status: 404 });
    }
  });
});

afterAll(async () => {
  for (const release of slowReleases) release();
  await server?.close();
});

describe('tracedFetch requests', () => {
  it('sends a valid traceparent and a uuid correlation id, and resolves with a 2xx response', async () => {
    const response = await tracedFetch(`${server.url}/ok`);
    expect(await response.json()).toEqual({ ok: true });
    const { headers } = server.lastReceived();
    expect(parseTraceparent(headers.get('traceparent'))).toMatchObject({ ok: true, traceparent: { traceFlags: 1 } });
    expect(headers.get('x-correlation-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(headers.has('x-session-id')).toBe(false);
  });

  it('sends the session id of the access token given in options', async () => {
    await tracedFetch(`${server.url}/ok`, undefined, { accessToken });
    expect(server.lastReceived().headers.get('x-session-id')).toBe(SESSION_ID);
  });

  it('reads the session id from an Authorization bearer header when no token is given', async () => {
    await tracedFetch(`${server.url}/ok`, { headers: { Authorization: `Bearer ${accessToken}` } });
    const { headers } = server.lastReceived();
    expect(headers.get('x-session-id')).toBe(SESSION_ID);
    expect(headers.get('authorization')).toBe(`Bearer ${accessToken}`);
  });

  it('uses the correlation id it is given', async () => {
    const correlationId = generateCorrelationId();
    await tracedFetch(`${server.url}/ok`, undefined, { correlationId });
    expect(server.lastReceived().headers.get('x-correlation-id')).toBe(correlationId);
  });

  it('clears the sampled flag when asked', async () => {
    await tracedFetch(`${server.url}/ok`, undefined, { sampled: false });
    expect(server.lastReceived().headers.get('traceparent')).toMatch(/-00$/);
  });

  it("keeps the caller's method, body and headers", async () => {
    const response = await tracedFetch(`${server.url}/echo`, {
      method: 'PUT',
      body: 'payload',
      headers: { 'x-custom': 'kept' },
    });
    expect(await response.json()).toEqual({ method: 'PUT', body: 'payload', custom: 'kept' });
    expect(server.lastReceived().headers.has('traceparent')).toBe(true);
  });

  it('keeps the headers of a Request given as input', async () => {
    const request = new Request(`${server.url}/echo`, { method: 'POST', body: 'from request', headers: { 'x-custom': 'on request' } });
    const response = await tracedFetch(request);
    expect(await response.json()).toEqual({ method: 'POST', body: 'from request', custom: 'on request' });
    expect(server.lastReceived().headers.has('x-correlation-id')).toBe(true);
  });

  it('shares one correlation id across the requests of a user action, with a fresh traceparent each', async () => {
    const action = startUserAction({ accessToken });
    await action.fetch(`${server.url}/ok`);
    const first = server.lastReceived().headers;
    await action.fetch(`${server.url}/ok`);
    const second = server.lastReceived().headers;
    expect(first.get('x-correlation-id')).toBe(action.correlationId);
    expect(second.get('x-correlation-id')).toBe(action.correlationId);
    expect(sentTraceId(second)).not.toBe(sentTraceId(first));
    expect(second.get('traceparent')).not.toBe(first.get('traceparent'));

    await startUserAction().fetch(`${server.url}/ok`);
    expect(server.lastReceived().headers.get('x-correlation-id')).not.toBe(action.correlationId);
  });

  it('makes a new correlation id per call when none is given', async () => {
    await tracedFetch(`${server.url}/ok`);
    const first = server.lastReceived().headers.get('x-correlation-id');
    await tracedFetch(`${server.url}/ok`);
    expect(server.lastReceived().headers.get('x-correlation-id')).not.toBe(first);
  });
});

describe('tracedFetch failures', () => {
  it("reports an edge function's error with the ids the edge recorded, which are the ones sent", async () => {
    const correlationId = generateCorrelationId();
    const error = await tracedFailure(tracedFetch(`${server.url}/edge-conflict`, { method: 'POST' }, { correlationId }));
    const { headers } = server.lastReceived();
    expect(error).toMatchObject({
      name: 'TracedRequestError',
      message: 'Email already invited',
      status: 409,
      correlationId,
      traceId: sentTraceId(headers),
      url: `${server.url}/edge-conflict`,
    });
  });

  it('takes the correlation id from the x-correlation-id header when the body has none', async () => {
    const error = await tracedFailure(tracedFetch(`${server.url}/header-only`));
    expect(error).toMatchObject({
      message: 'Request failed with status 503 Service Unavailable',
      status: 503,
      correlationId: SERVER_CORRELATION_ID,
      traceId: sentTraceId(server.lastReceived().headers),
    });
  });

  it('takes message, correlation id and trace id from the JSON error body', async () => {
    const error = await tracedFailure(tracedFetch(`${server.url}/body-only`));
    expect(error).toMatchObject({
      message: 'Invitation expired',
      status: 410,
      correlationId: SERVER_CORRELATION_ID,
      traceId: SERVER_TRACE_ID,
    });
  });

  it('takes the trace id from a traceresponse header', async () => {
    const error = await tracedFailure(tracedFetch(`${server.url}/traceresponse-only`));
    expect(error.traceId).toBe(SERVER_TRACE_ID);
  });

  it('accepts an error body whose error is a plain string', async () => {
    const error = await tracedFailure(tracedFetch(`${server.url}/string-error`));
    expect(error).toMatchObject({ message: 'Forbidden for this role', status: 403 });
  });

  it("falls back to the ids it sent when the error carries none (a proxy's HTML page)", async () => {
    const correlationId = generateCorrelationId();
    const error = await tracedFailure(tracedFetch(`${server.url}/html-error`, undefined, { correlationId }));
    expect(error).toMatchObject({
      message: 'Request failed with status 502 Bad Gateway',
      status: 502,
      correlationId,
      traceId: sentTraceId(server.lastReceived().headers),
    });
  });

  it('treats a 404 as a failure', async () => {
    const error = await tracedFailure(tracedFetch(`${server.url}/missing`));
    expect(error.status).toBe(404);
  });

  it('turns a refused connection into a TracedRequestError with the correlation id it sent', async () => {
    const correlationId = generateCorrelationId();
    const error = await tracedFailure(tracedFetch(`${await refusedUrl()}/ok`, undefined, { correlationId }));
    expect(error.status).toBeNull();
    expect(error.correlationId).toBe(correlationId);
    expect(error.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(error.message).toMatch(/^Network request failed/);
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it('reports a timeout as a failure', async () => {
    const error = await tracedFailure(tracedFetch(`${server.url}/slow`, { signal: AbortSignal.timeout(50) }));
    expect(error.status).toBeNull();
    expect(error.correlationId).toBe(server.lastReceived().headers.get('x-correlation-id'));
  });

  it("passes the caller's own abort through as an AbortError", async () => {
    const controller = new AbortController();
    const receivedBefore = server.received.length;
    const pending = tracedFetch(`${server.url}/slow`, { signal: controller.signal });
    // Abort once the request is in flight, as a user leaving the page would.
    await expect.poll(() => server.received.length).toBe(receivedBefore + 1);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await expect(pending).rejects.not.toBeInstanceOf(TracedRequestError);
  });
});

describe('tracedFetchJson', () => {
  it('resolves with the parsed body', async () => {
    await expect(tracedFetchJson<{ ok: boolean }>(`${server.url}/ok`)).resolves.toEqual({ ok: true });
  });

  it('reports a 2xx body that is not JSON as a failure with the ids it sent', async () => {
    const error = await tracedFailure(tracedFetchJson(`${server.url}/not-json`));
    expect(error).toMatchObject({
      status: 200,
      message: 'Unreadable response body (status 200)',
      correlationId: server.lastReceived().headers.get('x-correlation-id'),
      traceId: sentTraceId(server.lastReceived().headers),
    });
  });

  it('rejects on error statuses like tracedFetch', async () => {
    const error = await tracedFailure(tracedFetchJson(`${server.url}/body-only`));
    expect(error.status).toBe(410);
  });
});
