// The read path on a real streaming replica: a hot standby made by
// `pg_basebackup -R` of the test server. The api read functions answer on
// it what they answer on the primary once it has replayed; every query
// function of `api` runs there without attempting a write; GraphQL with
// TRACEGRES_READ_DATABASE_URL reads from the standby while its mutations
// and live subscriptions go to the primary; and PostGraphile starts (introspects) on a standby.
//
// The standby refuses every write, so a read path that wrote would fail
// here. When no standby can be made (no pg_basebackup for the server's
// major version, replication not allowed) the tests skip with the reason
// printed; in CI they fail instead.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it, type TestContext } from 'vitest';
import { createTokenVerifier, signToken } from '../../../server/auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../../../server/http-server.ts';
import { postGraphQL } from '../../../server/testing/graphql-client.ts';
import { startJaegerStorage, type JaegerStorageParts } from '../../../server/jaeger/server.ts';
import { createStorageClient } from '../../../server/jaeger/test-client.ts';
import { startTempoApi, type TempoApiParts } from '../../../server/tempo/server.ts';
import { Metadata } from '@grpc/grpc-js';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ReplicaUnavailableError, startStreamingReplica, type StreamingReplica } from '../helpers/streaming-replica.ts';
import { useTestDatabase } from '../helpers/test-database.ts';
import { actAs, at, insertEvent, ORG_A, recordFailedCheckout, recordSpans, span, traceId } from '../helpers/trace-fixtures.ts';

const db = useTestDatabase();
const SECRET = 'read-replica-test-secret-for-hs256!!';
const SESSION_A = '5e551010-0000-4000-8000-0000000000a1';
const CORRELATION_A = 'c0441000-0000-4000-8000-0000000000a1';
let replica: StreamingReplica | undefined;
let standby: postgres.Sql;

beforeAll(async () => {
  await recordFailedCheckout(db.sql, { trace: 'ra', otherTrace: 'rb', session: SESSION_A, correlation: CORRELATION_A });
  try {
    replica = await startStreamingReplica(inject('testServerUrl'));
  } catch (error) {
    if (!(error instanceof ReplicaUnavailableError) || process.env.CI) throw error;
    console.warn(`read replica tests skipped: ${error.message}`);
    return;
  }
  standby = postgres(replica.urlFor(db.url), { max: 2, onnotice: () => {} });
  await replica.caughtUp();
}, 180_000);

afterAll(async () => {
  await standby?.end();
  await replica?.stop();
});

function needsReplica(ctx: TestContext): StreamingReplica {
  if (!replica) ctx.skip();
  return replica!;
}

/** `query` as a tenant A reader, in a read-only transaction, on `sql`. */
async function asReaderA<T>(sql: postgres.Sql, query: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return (await sql.begin('read only', (tx) => actAs(tx, 'tracegres_reader', ORG_A, () => query(tx)))) as T;
}

const FROM = at(-60_000);
const TO = at(60_000);
const READS: Record<string, (tx: postgres.TransactionSql) => Promise<unknown>> = {
  timeline: (tx) => tx`select span_id, parent_span_id, name, depth, on_critical_path, events from api.get_trace_timeline(${traceId('ra')})`,
  summary: (tx) => tx`select * from api.get_trace_summary(${traceId('ra')})`,
  'events by trace': (tx) => tx`select id, event_type from api.get_events_by_trace(${traceId('ra')})`,
  'events by session': (tx) => tx`select id, event_type from api.get_events_by_session(${SESSION_A}::uuid)`,
  'events by correlation': (tx) => tx`select id, event_type from api.get_events_by_correlation(${CORRELATION_A}::uuid)`,
  'failed events': (tx) => tx`select id, event_type, processing_error from api.get_failed_events()`,
  'session traces': (tx) => tx`select * from api.get_session_traces(${SESSION_A}::uuid)`,
  search: (tx) => tx`select * from api.search_traces(p_from => ${FROM}, p_to => ${TO})`,
  'find traces': (tx) => tx`select * from api.find_traces(${tx.json({ service: 'worker', from: FROM, to: TO } as never)}::jsonb)`,
  'RED metrics': (tx) => tx`select * from api.red_metrics(${FROM}, ${TO}, 60)`,
  'service map': (tx) => tx`select * from api.service_map(${FROM}, ${TO})`,
  operations: (tx) => tx`select * from api.list_operations(${FROM}, ${TO})`,
};

describe('a hot standby made by pg_basebackup', () => {
  it('is in recovery and refuses writes', async (ctx) => {
    needsReplica(ctx);
    const [{ recovering }] = await standby<[{ recovering: boolean }]>`select pg_is_in_recovery() as recovering`;
    expect(recovering).toBe(true);
    await expect(recordSpans(standby, [span('w', { trace: 'rw', start: 0, end: 1 })])).rejects.toMatchObject({ code: '25006' });
  });

  it.for(Object.keys(READS))('answers %s as the primary does, after replay', async (name, ctx) => {
    needsReplica(ctx);
    const onPrimary = await asReaderA(db.sql, READS[name]!);
    const onStandby = await asReaderA(standby, READS[name]!);
    expect(onPrimary).not.toEqual([]);
    expect(onStandby).toEqual(onPrimary);
  });

  it('runs every query function of api without attempting a write', async (ctx) => {
    needsReplica(ctx);
    // Stable and immutable functions are GraphQL queries (volatile ones are
    // mutations): each is called with its arguments null, as an admin. An
    // argument error is a fine answer; a write refused by the standby is not.
    const functions = await standby<Array<{ call: string }>>`
      select format('select * from %s(%s)', p.oid::regproc, (select string_agg('null', ', ') from unnest(p.proargtypes))) as call
        from pg_proc p
       where p.pronamespace = 'api'::regnamespace and p.provolatile <> 'v' and p.prokind = 'f'
       order by 1`;
    expect(functions.length).toBeGreaterThan(20);
    const refused: string[] = [];
    for (const { call } of functions) {
      try {
        await standby.begin('read only', (tx) => actAs(tx, 'tracegres_admin', null, () => tx.unsafe(call)));
      } catch (error) {
        const e = error as { code?: string; message?: string };
        if (e.code === '25006' || /recovery|read-only/i.test(e.message ?? '')) refused.push(`${call}: ${e.message}`);
      }
    }
    expect(refused).toEqual([]);
  });
});

describe('GraphQL with a read replica', () => {
  let split: HttpServer | undefined;
  let onStandbyOnly: HttpServer | undefined;
  let reader: string;
  let admin: string;
  beforeAll(async () => {
    if (!replica) return;
    const pgSettingsFor = createTokenVerifier({ secret: SECRET });
    split = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor,
      graphql: { readDatabaseUrl: replica.urlFor(db.url) },
    });
    // Everything on the standby, introspection included.
    onStandbyOnly = await startHttpServer({ databaseUrl: replica.urlFor(db.url), port: 0, host: '127.0.0.1', pgSettingsFor });
    reader = await signToken(SECRET, { role: 'reader', organization_id: ORG_A, sub: 'support-a' });
    admin = await signToken(SECRET, { role: 'admin', sub: 'ops' });
  }, 120_000);
  afterAll(async () => {
    await split?.close();
    await onStandbyOnly?.close();
  });

  const gql = (server: HttpServer, query: string, variables: Record<string, unknown>, token: string) =>
    postGraphQL(server.url, query, variables, token);
  const SEARCH = `query($from: Datetime!, $to: Datetime!) { searchTraces(pFrom: $from, pTo: $to) { nodes { traceId } } }`;

  it('reads from the standby: a write replay has not reached is not seen', async (ctx) => {
    const r = needsReplica(ctx);
    await r.caughtUp();
    const before = await gql(split!, SEARCH, { from: FROM, to: TO }, reader);
    expect(before.errors).toBeUndefined();
    expect(before.data.searchTraces.nodes).toEqual([{ traceId: traceId('ra') }]);
    await standby`select pg_wal_replay_pause()`;
    try {
      await recordSpans(db.sql, [span('late', { trace: 'rl', start: 1000, end: 1010, name: 'GET /late' })]);
      const paused = await gql(split!, SEARCH, { from: FROM, to: TO }, reader);
      expect(paused.data.searchTraces.nodes.map((n: any) => n.traceId)).toEqual([traceId('ra')]);
    } finally {
      await standby`select pg_wal_replay_resume()`;
    }
    await r.caughtUp();
    const after = await gql(split!, SEARCH, { from: FROM, to: TO }, reader);
    expect(after.data.searchTraces.nodes.map((n: any) => n.traceId).sort()).toEqual([traceId('ra'), traceId('rl')].sort());
  });

  it('runs live subscriptions on the primary: a failure arrives while the standby has not replayed it', async (ctx) => {
    const r = needsReplica(ctx);
    await r.caughtUp();
    const client = createClient({
      url: split!.url.replace(/^http/, 'ws') + '/graphql',
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${reader}` },
      retryAttempts: 0,
    });
    const arrived: string[] = [];
    client.subscribe(
      { query: 'subscription { failedEvents { eventType } }' },
      { next: (result: any) => void arrived.push(result.data.failedEvents.eventType), error: () => {}, complete: () => {} },
    );
    await standby`select pg_wal_replay_pause()`;
    try {
      // Until the subscription runs, a failure every 200 ms; then the one that counts.
      for (let round = 0; arrived.length === 0; round++) {
        if (round === 25) throw new Error('the live subscription did not start within 5 s');
        await insertEvent(db.sql, { at: 0, type: 'live.probe', error: 'probe' });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await insertEvent(db.sql, { at: 0, type: 'live.during-pause', error: 'card declined' });
      await expect.poll(() => arrived, { timeout: 5_000 }).toContain('live.during-pause');
      expect((await standby`select count(*)::int as n from tracing.domain_events where event_type = 'live.during-pause'`)[0]!.n).toBe(0);
    } finally {
      await standby`select pg_wal_replay_resume()`;
      await client.dispose();
    }
  });

  it('sends mutations to the primary', async (ctx) => {
    needsReplica(ctx);
    const created = await gql(
      split!,
      `mutation($org: UUID) { createAlertRule(input: { pName: "Replica check", pKind: "event", pChannel: "slack",
         pTarget: "https://hooks.slack.com/services/T/B/R", pOrganizationId: $org, pEventTypePattern: "payment.*" }) { result { name } } }`,
      { org: ORG_A },
      admin,
    );
    expect(created.errors, JSON.stringify(created.errors)).toBeUndefined();
    const [row] = await db.sql`select name from tracing.alert_rules where name = 'Replica check'`;
    expect(row).toEqual({ name: 'Replica check' });
  });

  it('starts and answers queries with the standby as its only database', async (ctx) => {
    needsReplica(ctx);
    const timeline = await gql(
      onStandbyOnly!,
      `query($t: String!) { getTraceTimeline(pTraceId: $t) { nodes { name } } }`,
      { t: traceId('ra') },
      reader,
    );
    expect(timeline.errors).toBeUndefined();
    expect(timeline.data.getTraceTimeline.nodes.map((n: any) => n.name)).toEqual([
      'POST /checkout',
      'RunWorkflow:checkout',
      'RunActivity:charge',
    ]);
  });
});

describe('the Jaeger storage and the Tempo API on the standby', () => {
  // As npm start wires them with TRACEGRES_READ_DATABASE_URL, one pair on
  // the standby and one on the primary, to compare.
  const sides: Array<{ jaeger: JaegerStorageParts; tempo: TempoApiParts; http: HttpServer }> = [];
  let reader: string;
  beforeAll(async () => {
    if (!replica) return;
    const pgSettingsFor = createTokenVerifier({ secret: SECRET });
    for (const databaseUrl of [replica.urlFor(db.url), db.url]) {
      const jaeger = await startJaegerStorage({
        databaseUrl,
        host: '127.0.0.1',
        pgSettingsFor,
        log: () => {},
        env: { TRACEGRES_JAEGER_STORAGE_PORT: '0' },
      });
      const tempo = startTempoApi({ databaseUrl, pgSettingsFor, log: () => {} });
      const http = await startHttpServer({ databaseUrl, port: 0, host: '127.0.0.1', pgSettingsFor, routes: [tempo.route] });
      sides.push({ jaeger, tempo, http });
    }
    reader = await signToken(SECRET, { role: 'reader', organization_id: ORG_A, sub: 'support-a' });
  }, 120_000);
  afterAll(async () => {
    for (const side of sides) {
      await side.http.close();
      await side.jaeger.stop();
      await side.tempo.stop();
    }
  });

  it("answers Jaeger's GetTraces as the primary does", async (ctx) => {
    needsReplica(ctx);
    await replica!.caughtUp();
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${reader}`);
    const [onStandby, onPrimary] = await Promise.all(
      sides.map(async ({ jaeger }) => {
        const client = createStorageClient(jaeger.server!.address);
        try {
          return await client.getTraces([traceId('ra')], metadata);
        } finally {
          client.close();
        }
      }),
    );
    expect(onStandby!.details).toBeUndefined();
    expect(JSON.stringify(onStandby!.value)).toContain('RunActivity:charge');
    expect(onStandby!.value).toEqual(onPrimary!.value);
  });

  it("answers Tempo's trace by id as the primary does", async (ctx) => {
    needsReplica(ctx);
    await replica!.caughtUp();
    const [onStandby, onPrimary] = await Promise.all(
      sides.map(async ({ http }) => {
        const response = await fetch(`${http.url}/api/v2/traces/${traceId('ra')}`, {
          headers: { authorization: `Bearer ${reader}`, accept: 'application/json' },
        });
        return { status: response.status, body: await response.text() };
      }),
    );
    expect(onStandby!.status).toBe(200);
    expect(onStandby!.body).toContain('RunActivity:charge');
    expect(onStandby).toEqual(onPrimary);
  });
});
