// End to end with the real Jaeger v2 binary as a query-only front end on
// tracegres's remote storage: traces written through tracegres (the demo's
// browser → edge → workflow → activity traces, and spans from the
// OpenTelemetry JS SDK over OTLP/gRPC) read back through Jaeger's HTTP API,
// which is what Jaeger's UI and Grafana's Jaeger data source call.
import { Metadata } from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ORGANIZATION_ID, seedDemo, type DemoSummary } from '../../cli/demo.ts';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier, signToken } from '../auth/jwt.ts';
import { startOtlpGrpcServer, type OtlpGrpcServer } from '../otlp/ingest-grpc.ts';
import { encodeRequestProtobuf } from '../otlp/protocol.ts';
import { createJaegerCallers } from './callers.ts';
import { startJaegerStorageServer, type JaegerStorageServer } from './storage-server.ts';
import { findJaegerBinary, HOW_TO_GET_JAEGER, startJaeger, type RunningJaeger } from './testing/jaeger-process.ts';

const binary = findJaegerBinary();
if (!binary) {
  if (process.env.CI) throw new Error(`the Jaeger binary is missing; CI must build it. ${HOW_TO_GET_JAEGER}`);
  console.warn(`Jaeger end-to-end tests skipped: no Jaeger binary. ${HOW_TO_GET_JAEGER}`);
}
const SECRET = 'jaeger-e2e-secret-long-enough-for-hs256';
const INGEST_TOKEN = 'jaeger-e2e-ingest-token';
const OTHER_ORG = '0b000000-0000-4000-8000-00000000000b';
const FOREIGN_TRACE = 'f0000000000000000000000000000001';

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Array<{ refType: string; spanID: string }>;
  processID: string;
  duration: number;
  tags: Array<{ key: string; value: unknown }>;
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

describe.skipIf(!binary)('Jaeger v2 reading tracegres', () => {
  const db = useTestDatabase();
  let sql: postgres.Sql;
  let storage: JaegerStorageServer;
  let ingest: OtlpGrpcServer;
  let jaeger: RunningJaeger;
  let demo: DemoSummary;
  let sdk: { traceId: string; rootId: string; queryId: string; cacheId: string };

  beforeAll(async () => {
    sql = postgres(db.url, { max: 4, onnotice: () => {} });
    const pgSettingsFor = createTokenVerifier({ secret: SECRET });
    demo = await seedDemo(sql, { requests: 9 });
    // Another organization's trace, which the demo organization's Jaeger must never show.
    await sql`select tracing.record_spans(${sql.json([
      {
        trace_id: FOREIGN_TRACE,
        span_id: 'f000000000000001',
        name: 'GET /secret',
        service: 'vault',
        kind: 'server',
        status: 'ok',
        start_time: new Date(Date.now() - 60_000).toISOString(),
        end_time: new Date(Date.now() - 59_000).toISOString(),
        organization_id: OTHER_ORG,
      },
    ])})`;

    ingest = await startOtlpGrpcServer({
      sql,
      pgSettingsFor,
      token: INGEST_TOKEN,
      organizationId: DEMO_ORGANIZATION_ID,
      maxBodyBytes: 4 * 1024 * 1024,
      log: () => {},
      host: '127.0.0.1',
      port: 0,
    });
    sdk = await sendWithSdk(ingest.address);

    storage = await startJaegerStorageServer({
      callers: createJaegerCallers({ sql, pgSettingsFor, anonymous: undefined, statementTimeout: '5s' }),
      host: '127.0.0.1',
      port: 0,
      log: (message) => console.error(message),
    });
    // As docs/jaeger-and-grafana.md configures it: a reader token of one
    // organization as a header of the gRPC backend.
    const readerToken = await signToken(SECRET, { role: 'reader', organization_id: DEMO_ORGANIZATION_ID }, '1h');
    jaeger = await startJaeger(binary!, { grpc: { endpoint: storage.address, headers: { authorization: `Bearer ${readerToken}` } } });
  }, 120_000);

  afterAll(async () => {
    await jaeger?.close();
    await storage?.close();
    await ingest?.close();
    await sql?.end();
  });

  async function api<T>(pathAndQuery: string): Promise<{ status: number; data: T }> {
    const response = await fetch(`${jaeger.queryUrl}${pathAndQuery}`);
    const body = (await response.json()) as { data: T };
    return { status: response.status, data: body.data };
  }
  const serviceOf = (t: JaegerTrace, s: JaegerSpan) => t.processes[s.processID]!.serviceName;
  const parentOf = (s: JaegerSpan) => s.references.find((r) => r.refType === 'CHILD_OF')?.spanID ?? null;

  it('gives a trace by id with the spans, parents and services tracegres stored (demo: browser, edge, workflow, activities)', async () => {
    for (const request of demo.requests.slice(0, 3)) {
      const { status, data } = await api<JaegerTrace[]>(`/api/traces/${request.traceId}`);
      expect(status).toBe(200);
      const [got] = data;
      const stored = await sql<Array<{ span_id: string; parent: string | null; name: string; service: string }>>`
        select tracing.span_id_to_hex(span_id) as span_id, tracing.span_id_to_hex(parent_span_id) as parent, name, service
          from tracing.spans where trace_id = ${request.traceId}::uuid`;
      const view = (rows: Array<[string, string | null, string, string]>) => rows.sort((a, b) => a[0].localeCompare(b[0]));
      expect(view(got!.spans.map((s) => [s.spanID, parentOf(s), s.operationName, serviceOf(got!, s)]))).toEqual(
        view(stored.map((r) => [r.span_id, r.parent, r.name, r.service])),
      );
      expect(stored.map((r) => r.service)).toEqual(expect.arrayContaining(['shop-web', 'edge-checkout', 'order-worker']));
    }
  });

  it('gives a trace the OpenTelemetry SDK sent over OTLP/gRPC with its parents, kinds, status and attributes', async () => {
    const { status, data } = await api<JaegerTrace[]>(`/api/traces/${sdk.traceId}`);
    expect(status).toBe(200);
    const [got] = data;
    const byId = new Map(got!.spans.map((s) => [s.spanID, s]));
    expect(got!.spans).toHaveLength(3);
    expect(parentOf(byId.get(sdk.rootId)!)).toBeNull();
    expect(parentOf(byId.get(sdk.queryId)!)).toBe(sdk.rootId);
    expect(parentOf(byId.get(sdk.cacheId)!)).toBe(sdk.rootId);
    expect(serviceOf(got!, byId.get(sdk.rootId)!)).toBe('catalog-api');
    const query = byId.get(sdk.queryId)!;
    expect(query.operationName).toBe('SELECT products');
    expect(query.duration).toBe(80_000);
    const tags = Object.fromEntries(query.tags.map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({ 'db.system': 'postgresql', 'span.kind': 'client', error: true, 'otel.status_description': 'timeout' });
  });

  it("answers 404 for a trace of another organization, as for one that doesn't exist", async () => {
    expect((await api(`/api/traces/${FOREIGN_TRACE}`)).status).toBe(404);
    expect((await api(`/api/traces/${'e'.repeat(32)}`)).status).toBe(404);
  });

  it('lists the services and the operations of one', async () => {
    const services = (await api<string[]>('/api/services')).data;
    expect(services).toEqual(expect.arrayContaining(['catalog-api', 'edge-checkout', 'order-worker', 'shop-web']));
    expect(services).not.toContain('vault');
    expect([...(await api<string[]>('/api/services/catalog-api/operations')).data].sort()).toEqual([
      'GET /products/:id',
      'SELECT products',
      'cache lookup',
    ]);
    const clientOps = await api<Array<{ name: string; spanKind: string }>>('/api/operations?service=catalog-api&spanKind=client');
    expect(clientOps.data).toEqual([{ name: 'SELECT products', spanKind: 'client' }]);
  });

  it('searches by service, operation, tags and duration', async () => {
    const search = async (query: Record<string, string>) => {
      const { status, data } = await api<JaegerTrace[]>(`/api/traces?${new URLSearchParams({ lookback: '2h', limit: '50', ...query })}`);
      expect(status).toBe(200);
      return data.map((t) => t.traceID);
    };
    expect(await search({ service: 'catalog-api' })).toEqual([sdk.traceId]);
    expect(await search({ service: 'catalog-api', operation: 'SELECT products', tags: '{"db.system":"postgresql"}' })).toEqual([
      sdk.traceId,
    ]);
    expect(await search({ service: 'catalog-api', tags: '{"db.system":"mysql"}' })).toEqual([]);
    expect(await search({ service: 'catalog-api', tags: '{"error":"true"}' })).toEqual([sdk.traceId]);
    expect(await search({ service: 'catalog-api', minDuration: '70ms' })).toEqual([sdk.traceId]);
    expect(await search({ service: 'catalog-api', operation: 'cache lookup', minDuration: '70ms' })).toEqual([]);
    expect(await search({ service: 'catalog-api', maxDuration: '1ms' })).toEqual([]);
    // The demo's failed payments: error=true on the chargePayment span.
    const failed = demo.requests.filter((r) => r.failed).map((r) => r.traceId);
    expect((await search({ service: 'order-worker', operation: 'chargePayment', tags: '{"error":"true"}' })).sort()).toEqual(failed.sort());
    expect(await search({ service: 'vault' })).toEqual([]);
  });

  it('gives the dependencies: who calls whom, with call counts', async () => {
    const { status, data } = await api<Array<{ parent: string; child: string; callCount: number }>>(
      `/api/dependencies?endTs=${Date.now()}&lookback=${2 * 3600_000}`,
    );
    expect(status).toBe(200);
    // The same figures as tracegres's own service map, read as the same reader.
    const expected = await sql.begin(async (tx) => {
      await tx`select set_config('role', 'tracegres_reader', true), set_config('jwt.claims.organization_id', ${DEMO_ORGANIZATION_ID}, true)`;
      return tx<Array<{ parent_service: string; child_service: string; call_count: string }>>`
        select parent_service, child_service, call_count from api.service_map(now() - interval '2 hours', now())`;
    });
    const edges = (rows: Array<[string, string, number]>) => rows.map((r) => r.join(' ')).sort();
    expect(edges(data.map((d) => [d.parent, d.child, d.callCount]))).toEqual(
      edges(expected.map((r) => [r.parent_service, r.child_service, Number(r.call_count)])),
    );
    // The browser calls the edge function once per demo request.
    expect(data).toContainEqual(expect.objectContaining({ parent: 'shop-web', child: 'edge-checkout', callCount: 9 }));
    expect(data.some((d) => d.parent === 'vault' || d.child === 'vault')).toBe(false);
  });

  it("reads the organization Jaeger's multi-tenancy names in tracegres's tenant header, with an admin token", async () => {
    const adminToken = await signToken(SECRET, { role: 'admin', sub: 'jaeger-e2e' }, '1h');
    const header = 'x-tracegres-organization-id';
    const tenantJaeger = await startJaeger(
      binary!,
      { grpc: { endpoint: storage.address, headers: { authorization: `Bearer ${adminToken}` } } },
      { tenancy: { header, probeTenant: DEMO_ORGANIZATION_ID } },
    );
    try {
      const as = async (tenant: string | undefined, pathAndQuery: string) => {
        const response = await fetch(`${tenantJaeger.queryUrl}${pathAndQuery}`, { headers: tenant ? { [header]: tenant } : {} });
        const text = await response.text();
        return {
          status: response.status,
          body: (response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : { text }) as { data?: unknown; text?: string },
        };
      };
      const servicesOfB = await as(OTHER_ORG, '/api/services');
      expect(servicesOfB, JSON.stringify(servicesOfB)).toMatchObject({ body: { data: ['vault'] } });
      expect((await as(OTHER_ORG, `/api/traces/${FOREIGN_TRACE}`)).status).toBe(200);
      expect((await as(DEMO_ORGANIZATION_ID, `/api/traces/${FOREIGN_TRACE}`)).status).toBe(404);
      expect((await as(DEMO_ORGANIZATION_ID, `/api/traces/${sdk.traceId}`)).status).toBe(200);
      expect((await as(DEMO_ORGANIZATION_ID, '/api/services')).body.data).not.toContain('vault');
      // Jaeger itself refuses a request without the header.
      expect(await as(undefined, '/api/services')).toMatchObject({
        status: 401,
        body: { text: expect.stringMatching(/missing tenant header/) },
      });
    } finally {
      await tenantJaeger.close();
    }
  });

  it("writes through Jaeger: spans its OTLP receiver takes reach tracegres's OTLP/gRPC ingest, its writer endpoint", async () => {
    const writing = await startJaeger(binary!, {
      grpc: {
        endpoint: storage.address,
        headers: { authorization: `Bearer ${await signToken(SECRET, { role: 'reader', organization_id: DEMO_ORGANIZATION_ID }, '1h')}` },
        writer: { endpoint: ingest.address, headers: { authorization: `Bearer ${INGEST_TOKEN}` } },
      },
    });
    try {
      const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
      const now = BigInt(Date.now()) * 1_000_000n;
      const request = {
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'via-jaeger' } }] },
            scopeSpans: [
              {
                spans: [
                  {
                    traceId,
                    spanId: '1111111111111111',
                    name: 'GET /via',
                    kind: 2,
                    startTimeUnixNano: String(now),
                    endTimeUnixNano: String(now + 5_000_000n),
                  },
                  {
                    traceId,
                    spanId: '2222222222222222',
                    parentSpanId: '1111111111111111',
                    name: 'SELECT via',
                    kind: 3,
                    startTimeUnixNano: String(now + 1_000_000n),
                    endTimeUnixNano: String(now + 2_000_000n),
                  },
                ],
              },
            ],
          },
        ],
      };
      const sent = await fetch(writing.otlpUrl!, {
        method: 'POST',
        body: new Uint8Array(encodeRequestProtobuf(request)),
        headers: { 'content-type': 'application/x-protobuf' },
      });
      expect(sent.status).toBe(200);
      // Jaeger's batch processor writes after its receiver answered.
      let rows: Array<{ span_id: string; parent: string | null; organization_id: string }> = [];
      for (let waited = 0; rows.length < 2 && waited < 15_000; waited += 200) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        rows =
          await sql`select tracing.span_id_to_hex(span_id) as span_id, tracing.span_id_to_hex(parent_span_id) as parent, organization_id::text
                           from tracing.spans where trace_id = ${traceId}::uuid order by span_id`;
      }
      expect(rows).toEqual([
        { span_id: '1111111111111111', parent: null, organization_id: DEMO_ORGANIZATION_ID },
        { span_id: '2222222222222222', parent: '1111111111111111', organization_id: DEMO_ORGANIZATION_ID },
      ]);
      const read = await fetch(`${writing.queryUrl}/api/traces/${traceId}`);
      expect(read.status).toBe(200);
    } finally {
      await writing.close();
    }
  });
});

/** A trace of three spans from the OpenTelemetry JS SDK, exported over OTLP/gRPC to tracegres. */
async function sendWithSdk(address: string) {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${INGEST_TOKEN}`);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'catalog-api' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `http://${address}`, metadata }))],
  });
  const tracer = provider.getTracer('jaeger-e2e');
  const t0 = Date.now() - 10 * 60_000;
  const root = tracer.startSpan('GET /products/:id', { kind: SpanKind.SERVER, startTime: new Date(t0) });
  const rootContext = trace.setSpan(context.active(), root);
  const query = tracer.startSpan(
    'SELECT products',
    { kind: SpanKind.CLIENT, startTime: new Date(t0 + 10), attributes: { 'db.system': 'postgresql' } },
    rootContext,
  );
  query.setStatus({ code: SpanStatusCode.ERROR, message: 'timeout' });
  query.end(new Date(t0 + 90));
  const cache = tracer.startSpan('cache lookup', { startTime: new Date(t0 + 2) }, rootContext);
  cache.end(new Date(t0 + 4));
  root.end(new Date(t0 + 100));
  await provider.forceFlush();
  await provider.shutdown();
  return {
    traceId: root.spanContext().traceId,
    rootId: root.spanContext().spanId,
    queryId: query.spanContext().spanId,
    cacheId: cache.spanContext().spanId,
  };
}
