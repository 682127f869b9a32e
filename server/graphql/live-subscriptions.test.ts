// The live view's GraphQL subscriptions over the real server's WebSocket: a
// committed failure reaches its subscribers, each subscriber gets only its
// own tenant's events (row-level security on the read back), failures by
// update count too, rolled-back ones never arrive, trace signals stay within
// their tenant, and the socket is bounded (token required, operations per
// client and per server capped, sockets capped, messages at most 100 kB,
// the query budget and the introspection setting apply).
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { insertEvent, ORG_A, ORG_B, recordSpans, span } from '../../db/tests/helpers/trace-fixtures.ts';
import { createTokenVerifier, signToken } from '../auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';

const db = useTestDatabase();
const SECRET = 'live-subscriptions-test-secret-long-enough!';
let http: HttpServer;

beforeAll(async () => {
  http = await startHttpServer({ databaseUrl: db.url, port: 0, host: '127.0.0.1', pgSettingsFor: createTokenVerifier({ secret: SECRET }) });
});
afterAll(() => http?.close());

const token = (claims: Parameters<typeof signToken>[1]) => signToken(SECRET, claims);
const FAILED_EVENTS = 'subscription { failedEvents { rowId eventType processingError organizationId } }';
const TRACE_ACTIVITY = 'subscription { traceActivity }';

interface Subscription {
  results: Array<{ data?: any; errors?: Array<{ message: string; extensions?: any }> }>;
  /** Resolves with the error that ended it, or undefined when it completed. */
  done: Promise<unknown>;
  close(): void;
}

/** A graphql-ws client of `server` (this file's by default); it connects with its first operation. */
function connect(authorization?: string, server: HttpServer = http): Client {
  return createClient({
    url: server.url.replace(/^http/, 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    connectionParams: authorization ? { Authorization: authorization } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

function subscribe(client: Client, query: string): Subscription {
  const results: Subscription['results'] = [];
  let finish!: (error?: unknown) => void;
  const done = new Promise<unknown>((resolve) => (finish = resolve));
  const stop = client.subscribe(
    { query },
    {
      next: (result) => void results.push(result as Subscription['results'][number]),
      error: (error) => finish(error),
      complete: () => finish(),
    },
  );
  return { results, done, close: stop };
}

/**
 * Resolves once every subscription runs: `poke` makes something each should
 * receive, again every 200 ms until all have; what they received is cleared.
 */
async function running(subscriptions: Subscription[], poke: (round: number) => Promise<unknown>): Promise<void> {
  for (let round = 0; subscriptions.some((s) => s.results.length === 0); round++) {
    if (round === 25) throw new Error('the subscriptions did not start within 5 s');
    await poke(round);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (const s of subscriptions) s.results.splice(0);
}

describe('the live subscriptions', () => {
  it("sends a tenant's committed failures to its subscribers only, inserted failed or failed later", async () => {
    const clients = [
      connect(`Bearer ${await token({ role: 'reader', organization_id: ORG_A, sub: 'viewer-a' })}`),
      connect(`Bearer ${await token({ role: 'reader', organization_id: ORG_B, sub: 'viewer-b' })}`),
      connect(`Bearer ${await token({ role: 'admin', sub: 'ops' })}`),
    ];
    const [a, b, admin] = clients.map((client) => subscribe(client, FAILED_EVENTS)) as [Subscription, Subscription, Subscription];
    try {
      await running([a, b, admin], async () => {
        await insertEvent(db.sql, { at: 0, type: 'probe', error: 'p', org: ORG_A });
        await insertEvent(db.sql, { at: 0, type: 'probe', error: 'p', org: ORG_B });
      });

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

      await expect.poll(() => a.results.length, { timeout: 5_000 }).toBe(2);
      await expect.poll(() => admin.results.length, { timeout: 5_000 }).toBe(3);
      await expect.poll(() => b.results.length, { timeout: 5_000 }).toBe(1);
      expect(a.results.map((r) => r.data.failedEvents).map((e) => [e.rowId, e.eventType, e.processingError])).toEqual([
        [failedA, 'payment.captured', 'card declined'],
        [laterA, 'email.send', 'mailbox full'],
      ]);
      expect(b.results[0]!.data.failedEvents).toMatchObject({ eventType: 'invoice.sent', organizationId: ORG_B });
      expect(admin.results.map((r) => r.data.failedEvents.eventType)).not.toContain('ghost.event');
      // Nothing hidden was sent as an empty result either.
      expect([...a.results, ...b.results].every((r) => r.data.failedEvents && !r.errors)).toBe(true);
    } finally {
      for (const client of clients) await client.dispose();
    }
  });

  it("signals new traces to their tenant's subscribers and to admins only", async () => {
    const clients = [
      connect(`Bearer ${await token({ role: 'reader', organization_id: ORG_A, sub: 'traces-a' })}`),
      connect(`Bearer ${await token({ role: 'reader', organization_id: ORG_B, sub: 'traces-b' })}`),
      connect(`Bearer ${await token({ role: 'admin', sub: 'traces-ops' })}`),
    ];
    const [a, b, admin] = clients.map((client) => subscribe(client, TRACE_ACTIVITY)) as [Subscription, Subscription, Subscription];
    try {
      await running([a, b, admin], (round) =>
        recordSpans(db.sql, [
          span('root', { trace: `probe-a-${round}`, start: 0, end: 10 }),
          span('root', { trace: `probe-b-${round}`, start: 0, end: 10, org: ORG_B }),
        ]),
      );
      // Each transaction's signals come at its commit: wait out the probes' last.
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const s of [a, b, admin]) s.results.splice(0);
      await recordSpans(db.sql, [span('root', { trace: 'live-a', start: 0, end: 10 })]);
      await expect.poll(() => a.results.length, { timeout: 5_000 }).toBe(1);
      await expect.poll(() => admin.results.length, { timeout: 5_000 }).toBe(1);
      expect(a.results[0]).toEqual({ data: { traceActivity: true } });
      // A later span of the same trace is not a new trace.
      await recordSpans(db.sql, [span('child', { trace: 'live-a', parent: 'root', start: 1, end: 5 })]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(a.results.length).toBe(1);
      expect(b.results).toEqual([]);
    } finally {
      for (const client of clients) await client.dispose();
    }
  });

  it('signals a trace of no organization to admins only', async () => {
    const clients = [
      connect(`Bearer ${await token({ role: 'reader', organization_id: ORG_A, sub: 'none-a' })}`),
      connect(`Bearer ${await token({ role: 'admin', sub: 'none-ops' })}`),
    ];
    const [a, admin] = clients.map((client) => subscribe(client, TRACE_ACTIVITY)) as [Subscription, Subscription];
    try {
      await running([a, admin], (round) => recordSpans(db.sql, [span('root', { trace: `probe-none-a-${round}`, start: 0, end: 10 })]));
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const s of [a, admin]) s.results.splice(0);
      await recordSpans(db.sql, [span('root', { trace: 'live-none', start: 0, end: 10, org: null })]);
      await expect.poll(() => admin.results.length, { timeout: 5_000 }).toBe(1);
      expect(admin.results[0]).toEqual({ data: { traceActivity: true } });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(a.results).toEqual([]);
    } finally {
      for (const client of clients) await client.dispose();
    }
  });

  it('needs a token, caps the operations of one client, and applies the query budget', async () => {
    for (const authorization of [undefined, 'Bearer nope']) {
      const client = connect(authorization);
      const refused = subscribe(client, FAILED_EVENTS);
      const closed = await new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
      expect(closed).toBe(4403);
      refused.close();
      await client.dispose();
    }

    const viewer = `Bearer ${await token({ role: 'reader', organization_id: ORG_A, sub: 'greedy' })}`;
    const first = connect(viewer);
    const second = connect(viewer);
    const other = connect(`Bearer ${await token({ role: 'reader', organization_id: ORG_A, sub: 'someone-else' })}`);
    try {
      const held = [subscribe(first, FAILED_EVENTS), subscribe(first, TRACE_ACTIVITY), subscribe(second, FAILED_EVENTS)];
      await running(held, async (round) => {
        await insertEvent(db.sql, { at: 0, type: 'probe', error: 'p', org: ORG_A });
        await recordSpans(db.sql, [span('root', { trace: `probe-caps-${round}`, start: 0, end: 10 })]);
      });
      // A fourth, on either socket, is refused alone.
      const fourth = subscribe(second, TRACE_ACTIVITY);
      expect(await fourth.done).toEqual([expect.objectContaining({ message: 'this client already runs 3 live subscriptions' })]);
      expect(fourth.results).toEqual([]);
      // Another client is not affected.
      const others = subscribe(other, FAILED_EVENTS);
      // A closed subscription frees its place.
      held[0]!.close();
      await expect
        .poll(
          async () => {
            const again = subscribe(second, TRACE_ACTIVITY);
            const outcome = await Promise.race([again.done.then(() => 'refused'), new Promise((r) => setTimeout(() => r('running'), 300))]);
            again.close();
            return outcome;
          },
          { timeout: 5_000 },
        )
        .toBe('running');
      others.close();

      // The query budget applies to subscription documents too: each
      // fragment spreads the one before twice, 2^17 selections in all.
      const fragments = Array.from({ length: 17 }, (_, i) => `fragment F${i + 1} on Event { ...F${i} ...F${i} }`).join(' ');
      const costly = `subscription { failedEvents { ...F17 } } fragment F0 on Event { rowId } ${fragments}`;
      const refused = await new Promise<any>((resolve) =>
        other.subscribe({ query: costly }, { next: resolve, error: resolve, complete: () => resolve('complete') }),
      );
      expect(JSON.stringify(refused)).toContain('QUERY_TOO_EXPENSIVE');
    } finally {
      for (const client of [first, second, other]) await client.dispose();
    }
  });

  it('closes a socket when its token expires, as a request with that token would then be refused', async () => {
    const shortLived = await signToken(SECRET, { role: 'reader', organization_id: ORG_A, sub: 'short-lived' }, '2s');
    const client = connect(`Bearer ${shortLived}`);
    let connected = false;
    client.on('connected', () => (connected = true));
    const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    const live = subscribe(client, FAILED_EVENTS);
    try {
      expect(await closed).toBe(4403);
      // Accepted first, then closed: not refused at connection_init.
      expect(connected).toBe(true);
    } finally {
      live.close();
      await client.dispose();
    }
  });

  it("caps the server's operations and sockets", async () => {
    const small = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor: createTokenVerifier({ secret: SECRET }),
      websocket: { maxSubscriptions: 2 },
    });
    const connectTo = async (sub: string) => connect(`Bearer ${await token({ role: 'reader', organization_id: ORG_A, sub })}`, small);
    const first = await connectTo('first');
    const second = await connectTo('second');
    try {
      const held = [subscribe(first, FAILED_EVENTS), subscribe(first, TRACE_ACTIVITY)];
      await running(held, async (round) => {
        await insertEvent(db.sql, { at: 0, type: 'probe', error: 'p', org: ORG_A });
        await recordSpans(db.sql, [span('root', { trace: `probe-srv-${round}`, start: 0, end: 10 })]);
      });
      // Another client's operation is refused: the server runs its most.
      expect(await subscribe(second, FAILED_EVENTS).done).toEqual([
        expect.objectContaining({ message: 'the server runs its most live subscriptions' }),
      ]);
      // Two sockets are open: a third is refused at the upgrade.
      const third = new WebSocket(small.url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
      const status = await new Promise<number | undefined>((resolve) => {
        third.once('unexpected-response', (_req, res) => resolve(res.statusCode));
        third.once('open', () => resolve(undefined));
        third.once('error', () => {});
      });
      expect(status).toBe(503);
      third.terminate();
    } finally {
      await first.dispose();
      await second.dispose();
      await small.close();
    }
  });

  it('closes a socket that sends a message over 100 kB', async () => {
    const socket = new WebSocket(http.url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: 'x'.repeat(150_000) } }));
    expect(await closed).toBe(1009);
  });

  it('keeps introspection off over the socket when the server has it off', async () => {
    const closed = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor: createTokenVerifier({ secret: SECRET }),
      graphql: { introspection: false },
    });
    const client = connect(`Bearer ${await token({ role: 'admin', sub: 'curious' })}`, closed);
    try {
      const answer = await new Promise<any>((resolve) =>
        client.subscribe({ query: '{ __schema { types { name } } }' }, { next: resolve, error: resolve, complete: () => {} }),
      );
      expect(JSON.stringify(answer)).toMatch(/introspection has been disabled/i);
    } finally {
      await client.dispose();
      await closed.close();
    }
  });
});
