// The live feeds over the real server: a committed failure
// reaches the open stream, each viewer gets only its own tenant's events,
// failures by update count too, rolled-back ones never arrive, and the
// stream is bounded (token required, streams per client capped).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { insertEvent, ORG_A, ORG_B, recordSpans, span } from '../../db/tests/helpers/trace-fixtures.ts';
import { createTokenVerifier, signToken } from '../auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';
import { FAILED_EVENTS_PATH, TRACES_PATH } from './live-feed.ts';

const db = useTestDatabase();
const SECRET = 'live-feed-test-secret-long-enough-for-hs256!';
let http: HttpServer;

beforeAll(async () => {
  http = await startHttpServer({ databaseUrl: db.url, port: 0, host: '127.0.0.1', pgSettingsFor: createTokenVerifier({ secret: SECRET }) });
});
afterAll(() => http?.close());

interface Stream {
  events: Array<{ event: string; data: any }>;
  close(): void;
}

/** Opens the stream and resolves once the server says it is listening. */
async function open(token: string, path = FAILED_EVENTS_PATH): Promise<Stream> {
  const abort = new AbortController();
  const response = await fetch(http.url + path, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/event-stream');
  const events: Stream['events'] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body! as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'ready') ready();
          else if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted
    }
  })();
  await isReady;
  return { events, close: () => abort.abort() };
}

const token = (claims: Parameters<typeof signToken>[1]) => signToken(SECRET, claims);

describe('the live feeds', () => {
  it("pushes a tenant's committed failures to its viewers only, inserted failed or failed later", async () => {
    const a = await open(await token({ role: 'reader', organization_id: ORG_A, sub: 'viewer-a' }));
    const b = await open(await token({ role: 'reader', organization_id: ORG_B, sub: 'viewer-b' }));
    const admin = await open(await token({ role: 'admin', sub: 'ops' }));
    try {
      const failedA = await insertEvent(db.sql, { at: 0, type: 'payment.captured', error: 'card declined', org: ORG_A });
      await insertEvent(db.sql, { at: 0, type: 'invoice.sent', error: 'smtp timeout', org: ORG_B });
      await insertEvent(db.sql, { at: 0, type: 'order.placed', org: ORG_A });
      const laterA = await insertEvent(db.sql, { at: 0, type: 'email.send', org: ORG_A });
      await db.sql`update tracing.domain_events set processing_error = 'mailbox full' where id = ${laterA}`;
      // Rolled back: never committed, never sent.
      await db.sql
        .begin(async (tx) => {
          await insertEvent(tx, { at: 0, type: 'ghost.event', error: 'never', org: ORG_A });
          throw new Error('rollback');
        })
        .catch(() => {});

      await expect.poll(() => a.events.length, { timeout: 5_000 }).toBe(2);
      await expect.poll(() => admin.events.length, { timeout: 5_000 }).toBe(3);
      await expect.poll(() => b.events.length, { timeout: 5_000 }).toBe(1);
      expect(a.events.map((e) => [e.event, e.data.rowId, e.data.eventType, e.data.processingError])).toEqual([
        ['failed-event', failedA, 'payment.captured', 'card declined'],
        ['failed-event', laterA, 'email.send', 'mailbox full'],
      ]);
      expect(b.events[0]!.data).toMatchObject({ eventType: 'invoice.sent', organizationId: ORG_B });
      expect(admin.events.map((e) => e.data.eventType)).not.toContain('ghost.event');
    } finally {
      a.close();
      b.close();
      admin.close();
    }
  });

  it("signals new traces to their tenant's viewers and to admins only", async () => {
    const a = await open(await token({ role: 'reader', organization_id: ORG_A, sub: 'traces-a' }), TRACES_PATH);
    const b = await open(await token({ role: 'reader', organization_id: ORG_B, sub: 'traces-b' }), TRACES_PATH);
    const admin = await open(await token({ role: 'admin', sub: 'traces-ops' }), TRACES_PATH);
    try {
      await recordSpans(db.sql, [span('root', { trace: 'live-a', start: 0, end: 10 })]);
      await expect.poll(() => a.events.length, { timeout: 5_000 }).toBe(1);
      await expect.poll(() => admin.events.length, { timeout: 5_000 }).toBe(1);
      expect(a.events[0]).toEqual({ event: 'new-traces', data: {} });
      // A later span of the same trace is not a new trace.
      await recordSpans(db.sql, [span('child', { trace: 'live-a', parent: 'root', start: 1, end: 5 })]);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(a.events.length).toBe(1);
      expect(b.events).toEqual([]);
    } finally {
      a.close();
      b.close();
      admin.close();
    }
  });

  it('needs a token, and caps the streams of one client', async () => {
    expect((await fetch(http.url + FAILED_EVENTS_PATH)).status).toBe(401);
    expect((await fetch(http.url + FAILED_EVENTS_PATH, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const viewer = await token({ role: 'reader', organization_id: ORG_A, sub: 'greedy' });
    const streams = [await open(viewer), await open(viewer), await open(viewer)];
    try {
      const fourth = await fetch(http.url + FAILED_EVENTS_PATH, { headers: { authorization: `Bearer ${viewer}` } });
      expect(fourth.status).toBe(429);
      expect(await fourth.json()).toEqual({ error: 'this client already holds 3 live streams' });
      // Another client is not affected.
      const other = await open(await token({ role: 'reader', organization_id: ORG_A, sub: 'someone-else' }));
      other.close();
    } finally {
      for (const stream of streams) stream.close();
    }
    // A closed stream frees its place.
    await expect
      .poll(
        async () => {
          const response = await fetch(http.url + FAILED_EVENTS_PATH, { headers: { authorization: `Bearer ${viewer}` } });
          await response.body?.cancel();
          return response.status;
        },
        { timeout: 5_000 },
      )
      .toBe(200);
  });
});
