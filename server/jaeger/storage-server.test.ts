// The Jaeger storage API of tracegres, called over real gRPC as Jaeger's
// query service calls it, against a real database: traces, chunking,
// services and operations, search, dependencies, and who may read what.
import { Metadata, status } from '@grpc/grpc-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier, signToken } from '../auth/jwt.ts';
import { createJaegerCallers, type AnonymousAccess } from './callers.ts';
import { startJaegerStorageServer, type JaegerStorageServer } from './storage-server.ts';
import {
  at,
  CHECKOUT,
  checkoutSpans,
  ORG_A,
  ORG_B,
  OTHER,
  otherOrganizationSpan,
  recordPaymentFailed,
  span,
  START,
  wideTraceSpans,
} from '../testing/query-fixtures.ts';
import { createStorageClient, type TracesData } from './test-client.ts';

const db = useTestDatabase();
const SECRET = 'jaeger-storage-test-secret-long-enough';
const BIG = 'c0000000000000000000000000000002';
const HEAVY = 'c0000000000000000000000000000003';

let sql: postgres.Sql;
const servers: JaegerStorageServer[] = [];
const clients: Array<ReturnType<typeof createStorageClient>> = [];
let client: ReturnType<typeof createStorageClient>;
let readerA: Metadata;
let admin: string;

async function startServer(anonymous: AnonymousAccess) {
  const server = await startJaegerStorageServer({
    callers: createJaegerCallers({ sql, pgSettingsFor: createTokenVerifier({ secret: SECRET }), anonymous, statementTimeout: '10s' }),
    host: '127.0.0.1',
    port: 0,
    log: () => {},
  });
  servers.push(server);
  const started = createStorageClient(server.address);
  clients.push(started);
  return started;
}

function bearer(token?: string, tenant?: string): Metadata {
  const metadata = new Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  if (tenant) metadata.set('x-tracegres-organization-id', tenant);
  return metadata;
}

beforeAll(async () => {
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  const spans = [
    ...checkoutSpans(),
    span(CHECKOUT, 'a000000000000003', 'a000000000000002', {
      name: 'INSERT payments',
      service: 'db',
      kind: 'client',
      start_time: at(20),
      end_time: at(30),
      organization_id: ORG_A,
    }),
    ...wideTraceSpans(BIG, 2500, (i) => ({ name: i === 0 ? 'batch import' : `row ${i}`, start_time: at(200 + i), end_time: at(201 + i) })),
    // Five spans of 900 kB each (225 attributes of 4,000 characters, the
    // cap of one): more bytes than one message may carry.
    ...Array.from({ length: 5 }, (_, i) =>
      span(HEAVY, `e00000000000000${i + 1}`, null, {
        name: `upload ${i + 1}`,
        service: 'uploads',
        start_time: at(30 + i),
        end_time: at(31 + i),
        attributes: Object.fromEntries(Array.from({ length: 225 }, (_, k) => [`upload.part.${k}`, 'x'.repeat(4000)])),
        organization_id: ORG_A,
      }),
    ),
    otherOrganizationSpan(),
  ];
  await sql`select tracing.record_spans(${sql.json(spans as postgres.JSONValue)})`;
  await recordPaymentFailed(sql);
  client = await startServer(undefined);
  readerA = bearer(await signToken(SECRET, { role: 'reader', organization_id: ORG_A }));
  admin = await signToken(SECRET, { role: 'admin', sub: 'jaeger-test' });
});
afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  await sql?.end();
});

const spansOf = (chunks: TracesData[]) =>
  chunks
    .flatMap((c) => c.resourceSpans ?? [])
    .flatMap((r) => r.scopeSpans ?? [])
    .flatMap((s) => s.spans ?? []);
const hex = (bytes?: Buffer) => (bytes ? Buffer.from(bytes).toString('hex') : '');

describe('GetTraces', () => {
  it('streams each trace apart, a large one over consecutive chunks, and skips unknown ids', async () => {
    const result = await client.getTraces([CHECKOUT, 'f'.repeat(32), BIG], readerA);
    expect(result.code).toBe(status.OK);
    const chunks = result.value!;
    const traceOf = (chunk: TracesData) => [...new Set(spansOf([chunk]).map((s) => hex(s.traceId)))];
    // One trace per chunk, none empty; 2,500 spans in chunks of 1,000 at most.
    expect(chunks.map(traceOf)).toEqual([[CHECKOUT], [BIG], [BIG], [BIG]]);
    expect(chunks.map((c) => spansOf([c]).length)).toEqual([3, 1000, 1000, 500]);

    const checkout = spansOf([chunks[0]!]);
    expect(checkout.map((s) => [hex(s.spanId), hex(s.parentSpanId), s.name])).toEqual([
      ['a000000000000001', '', 'POST /checkout'],
      ['a000000000000002', 'a000000000000001', 'charge card'],
      ['a000000000000003', 'a000000000000002', 'INSERT payments'],
    ]);
    const services = chunks[0]!.resourceSpans!.map(
      (r) => r.resource!.attributes!.find((a) => a.key === 'service.name')!.value!.stringValue,
    );
    expect(services).toEqual(['checkout', 'payments', 'db']);
    const charge = checkout[1]!;
    expect(charge.status?.code).toBe(2);
    expect(charge.attributes).toContainEqual({ key: 'http.response.status_code', value: { intValue: '500' } });
    // The domain event the span emitted is one of its span events.
    expect(charge.events?.map((e) => e.name)).toEqual(['PaymentFailed']);
  });

  it('keeps each message under 2 MiB, within the 4 MiB a Go client takes, and sends a trace asked for twice once', async () => {
    const result = await client.getTraces([HEAVY, HEAVY], readerA);
    expect(result.code).toBe(status.OK);
    const chunks = result.value!;
    expect(chunks.map((c) => spansOf([c]).map((s) => s.name))).toEqual([['upload 1', 'upload 2'], ['upload 3'], ['upload 4', 'upload 5']]);
    expect(result.sizes!.every((size) => size < 2 * 1024 * 1024)).toBe(true);
  });

  it('answers nothing for ids that match nothing, and refuses more than 100 ids', async () => {
    expect(await client.getTraces(['e'.repeat(32)], readerA)).toMatchObject({ code: status.OK, value: [] });
    const tooMany = await client.getTraces(
      Array.from({ length: 101 }, (_, i) => i.toString(16).padStart(32, '1')),
      readerA,
    );
    expect(tooMany).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/at most 100 trace ids/) });
  });
});

describe('who reads what', () => {
  it('a reader reads its own organization only; an admin reads all, or the one its tenant header names', async () => {
    const traceIds = async (metadata: Metadata) => {
      const result = await client.getTraces([CHECKOUT, OTHER], metadata);
      expect(result.code).toBe(status.OK);
      return [...new Set(spansOf(result.value!).map((s) => hex(s.traceId)))];
    };
    expect(await traceIds(readerA)).toEqual([CHECKOUT]);
    expect(await traceIds(bearer(admin))).toEqual([CHECKOUT, OTHER]);
    expect(await traceIds(bearer(admin, ORG_B))).toEqual([OTHER]);
    const crossing = await client.getTraces([OTHER], bearer(await signToken(SECRET, { role: 'reader', organization_id: ORG_A }), ORG_B));
    expect(crossing.code).toBe(status.PERMISSION_DENIED);
  });

  it('refuses a call without a valid token unless the server says what it reads', async () => {
    for (const metadata of [bearer(), bearer('not-a-jwt'), bearer(undefined, ORG_A)]) {
      expect((await client.getServices(metadata)).code).toBe(status.UNAUTHENTICATED);
    }
    expect((await client.getServices(bearer(admin, 'acme'))).code).toBe(status.INVALID_ARGUMENT);
    const fixed = await startServer({ organization: ORG_B });
    expect((await fixed.getServices(bearer())).value!.services).toEqual(['vault']);
    const byHeader = await startServer('tenant-header');
    expect((await byHeader.getServices(bearer(undefined, ORG_A))).value!.services).toEqual([
      'checkout',
      'db',
      'importer',
      'payments',
      'uploads',
    ]);
    expect((await byHeader.getServices(bearer())).code).toBe(status.UNAUTHENTICATED);
  });
});

describe('each call', () => {
  it("runs in a read-only transaction, as its caller's role, under the statement timeout", async () => {
    const callers = createJaegerCallers({
      sql,
      pgSettingsFor: createTokenVerifier({ secret: SECRET }),
      anonymous: undefined,
      statementTimeout: '750ms',
    });
    const [settings] = await callers.read(
      readerA,
      (tx) => tx`select current_user as role, current_setting('transaction_read_only') as read_only,
                        current_setting('statement_timeout') as timeout, current_setting('jwt.claims.organization_id') as organization`,
    );
    expect(settings).toEqual({ role: 'tracegres_reader', read_only: 'on', timeout: '750ms', organization: ORG_A });
    // The connection goes back to the pool with none of it.
    const [after] = await sql`select current_user as role, current_setting('statement_timeout') as timeout`;
    expect(after!.role).not.toBe('tracegres_reader');
  });
});

describe('services and operations', () => {
  it('lists the services, and the operations of one with their span kind', async () => {
    expect((await client.getServices(readerA)).value!.services).toEqual(['checkout', 'db', 'importer', 'payments', 'uploads']);
    expect((await client.getOperations('payments', '', readerA)).value!.operations).toEqual([{ name: 'charge card', spanKind: 'client' }]);
    expect((await client.getOperations('checkout', 'server', readerA)).value!.operations).toEqual([
      { name: 'POST /checkout', spanKind: 'server' },
    ]);
    expect((await client.getOperations('checkout', 'client', readerA)).value!.operations ?? []).toEqual([]);
  });
});

describe('FindTraces and FindTraceIDs', () => {
  const window = {
    startTimeMin: { seconds: Math.floor(START.getTime() / 1000) - 60 },
    startTimeMax: { seconds: Math.floor(Date.now() / 1000) + 60 },
  };
  const found = async (query: Record<string, unknown>) => {
    const result = await client.findTraceIds({ ...window, ...query }, readerA);
    expect(result.code).toBe(status.OK);
    return (result.value!.traceIds ?? []).map((t) => hex(t.traceId));
  };

  it('matches service, operation, tags (typed or as text) and duration on one span', async () => {
    expect(await found({ serviceName: 'payments' })).toEqual([CHECKOUT]);
    expect(await found({ serviceName: 'payments', operationName: 'charge card' })).toEqual([CHECKOUT]);
    expect(await found({ serviceName: 'payments', operationName: 'POST /checkout' })).toEqual([]);
    // Jaeger's UI sends every tag as a string.
    const tag = (key: string, value: string) => ({ attributes: [{ key, value: { stringValue: value } }] });
    expect(await found(tag('http.response.status_code', '500'))).toEqual([CHECKOUT]);
    expect(await found(tag('payment.provider', 'acme'))).toEqual([CHECKOUT]);
    expect(await found(tag('error', 'true'))).toEqual([CHECKOUT]);
    expect(await found({ serviceName: 'importer', ...tag('error', 'true') })).toEqual([]);
    expect(await found({ serviceName: 'payments', durationMin: { nanos: 70_000_000 } })).toEqual([CHECKOUT]);
    expect(await found({ serviceName: 'payments', durationMax: { nanos: 70_000_000 } })).toEqual([]);
    // Newest first, at most search_depth.
    expect(await found({})).toEqual([BIG, HEAVY, CHECKOUT]);
    expect(await found({ searchDepth: 1 })).toEqual([BIG]);
  });

  it('gives each trace id with its start and end, and streams the traces themselves', async () => {
    const ids = await client.findTraceIds({ ...window, serviceName: 'checkout' }, readerA);
    const [trace] = ids.value!.traceIds!;
    expect(Number(trace!.start.seconds) * 1000 + (trace!.start.nanos ?? 0) / 1e6).toBe(START.getTime());
    expect(Number(trace!.end.seconds) * 1000 + (trace!.end.nanos ?? 0) / 1e6).toBe(START.getTime() + 120);
    const traces = await client.findTraces({ ...window, serviceName: 'checkout' }, readerA);
    expect(spansOf(traces.value!).map((s) => s.name)).toEqual(['POST /checkout', 'charge card', 'INSERT payments']);
  });

  it('refuses what it cannot search with INVALID_ARGUMENT', async () => {
    const result = await client.findTraceIds({ ...window, attributes: [{ key: 'x', value: { arrayValue: { values: [] } } }] }, readerA);
    expect(result).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/attribute x/) });
  });
});

describe('GetDependencies', () => {
  it('gives who calls whom with call counts, within the organization', async () => {
    const result = await client.getDependencies(new Date(START.getTime() - 60_000), new Date(), readerA);
    expect(result.value!.dependencies).toEqual([
      { parent: 'checkout', child: 'payments', callCount: '1', source: 'tracegres' },
      { parent: 'payments', child: 'db', callCount: '1', source: 'tracegres' },
    ]);
  });
});
