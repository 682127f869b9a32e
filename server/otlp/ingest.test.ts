// OTLP ingest over HTTP (POST /v1/traces) and gRPC (TraceService/Export):
// spans from the real OpenTelemetry JS SDK and its OTLP exporters, through
// real servers, into api.get_trace_timeline; and every way a request can be
// wrong.
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { OTLPTraceExporter as OTLPGrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPHttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import protobuf from 'protobufjs';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier, signToken } from '../auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';
import { startOtlpGrpcServer, TRACE_SERVICE_EXPORT_PATH, type OtlpGrpcServer } from './ingest-grpc.ts';
import { createOtlpIngestRoute } from './ingest-http.ts';
import { arrayLiteral } from './span-columns.ts';
import { generateIngestToken, hashIngestToken } from './ingest-tokens.ts';
import { encodeRequestProtobuf, ExportTraceServiceResponse, RpcStatus, type OtlpRequest } from './protocol.ts';

const db = useTestDatabase();
const SECRET = 'ingest-test-secret-long-enough-for-hs256';
const INGEST_TOKEN = 'ingest-token-for-tests';
// The organization TRACEGRES_INGEST_TOKEN is bound to in these tests.
const INGEST_ORG = '0a000000-0000-4000-8000-00000000000a';
const OTHER_ORG = '0b000000-0000-4000-8000-00000000000b';
let http: HttpServer;
let grpcServer: OtlpGrpcServer;
let sql: postgres.Sql;
let adminJwt: string;

beforeAll(async () => {
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  const pgSettingsFor = createTokenVerifier({ secret: SECRET });
  http = await startHttpServer({
    databaseUrl: db.url,
    port: 0,
    host: '127.0.0.1',
    pgSettingsFor,
    routes: [
      createOtlpIngestRoute({
        sql,
        pgSettingsFor,
        token: INGEST_TOKEN,
        organizationId: INGEST_ORG,
        maxBodyBytes: 256 * 1024,
        log: () => {},
      }),
    ],
  });
  grpcServer = await startOtlpGrpcServer({
    sql,
    pgSettingsFor,
    token: INGEST_TOKEN,
    organizationId: INGEST_ORG,
    maxBodyBytes: 256 * 1024,
    log: () => {},
    host: '127.0.0.1',
    port: 0,
  });
  adminJwt = await signToken(SECRET, { role: 'admin', sub: 'ingest-test' });
});
afterAll(async () => {
  await http?.close();
  await grpcServer?.close();
  await sql?.end();
});

async function timeline(traceId: string) {
  return sql`select span_id, parent_span_id, name, service, kind, status, status_message, attributes,
                    start_time, end_time, offset_ms, duration_ms, depth
               from api.get_trace_timeline(${traceId}) order by position`;
}

async function sendWithSdk(exporter: SpanExporter, serviceName: string) {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'deployment.environment.name': 'test' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('ingest-test', '1.0.0');
  const t0 = Date.UTC(2026, 2, 1, 12, 0, 0);
  const root = tracer.startSpan('GET /orders/:id', {
    kind: SpanKind.SERVER,
    startTime: new Date(t0),
    attributes: {
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'session.id': '0d9e8f7a-6b5c-4d3e-9f1a-2b3c4d5e6f70',
      ratio: 0.5,
      ok: true,
      tags: ['x', 'y'],
    },
  });
  const rootContext = trace.setSpan(context.active(), root);
  const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, startTime: new Date(t0 + 20) }, rootContext);
  child.addEvent('rows fetched', { rows: 3 }, new Date(t0 + 60));
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'deadlock detected' });
  const grandchild = tracer.startSpan('parse rows', { startTime: new Date(t0 + 70) }, trace.setSpan(rootContext, child));
  grandchild.end(new Date(t0 + 75));
  child.end(new Date(t0 + 80));
  root.end(new Date(t0 + 125));
  await provider.forceFlush();
  await provider.shutdown();
  return {
    traceId: root.spanContext().traceId,
    rootId: root.spanContext().spanId,
    childId: child.spanContext().spanId,
    grandchildId: grandchild.spanContext().spanId,
    t0,
  };
}

describe('spans from the OpenTelemetry JS SDK', () => {
  for (const [protocol, makeExporter] of [
    ['http/protobuf', () => new OTLPProtoExporter({ url: `${http.url}/v1/traces`, headers: { authorization: `Bearer ${INGEST_TOKEN}` } })],
    ['http/json', () => new OTLPHttpJsonExporter({ url: `${http.url}/v1/traces`, headers: { authorization: `Bearer ${INGEST_TOKEN}` } })],
    ['grpc', () => new OTLPGrpcExporter({ url: `http://${grpcServer.address}`, metadata: grpcMetadata(INGEST_TOKEN) })],
    [
      'grpc, gzip',
      () =>
        new OTLPGrpcExporter({ url: `http://${grpcServer.address}`, metadata: grpcMetadata(INGEST_TOKEN), compression: 'gzip' as never }),
    ],
  ] as const) {
    it(`appear in the trace timeline with their parents and timing (${protocol})`, async () => {
      const exporter = makeExporter();
      const sent = await sendWithSdk(exporter, `orders-${protocol}`);
      const rows = await timeline(sent.traceId);
      expect(rows.map((r) => [r.span_id, r.parent_span_id, r.depth])).toEqual([
        [sent.rootId, null, 0],
        [sent.childId, sent.rootId, 1],
        [sent.grandchildId, sent.childId, 2],
      ]);
      const [root, child, grandchild] = rows;
      expect(root!.name).toBe('GET /orders/:id');
      expect(root!.service).toBe(`orders-${protocol}`);
      expect(root!.kind).toBe('server');
      expect(root!.start_time.getTime()).toBe(sent.t0);
      expect(root!.duration_ms).toBeCloseTo(125, 6);
      expect(child!.kind).toBe('client');
      expect(child!.offset_ms).toBeCloseTo(20, 6);
      expect(child!.duration_ms).toBeCloseTo(60, 6);
      expect(child!.status).toBe('error');
      expect(child!.status_message).toBe('deadlock detected');
      expect(grandchild!.offset_ms).toBeCloseTo(70, 6);
      expect(grandchild!.kind).toBe('internal');
      // Typed attributes; resource attributes other than service.name stay with the span.
      expect(root!.attributes).toMatchObject({
        'http.request.method': 'GET',
        'http.response.status_code': 200,
        ratio: 0.5,
        ok: true,
        tags: ['x', 'y'],
        'deployment.environment.name': 'test',
      });
      expect(root!.attributes['service.name']).toBeUndefined();
      const [stored] = await sql`select session_id, span_events from tracing.spans
                                 where trace_id = tracing.hex_to_trace_id(${sent.traceId}) and span_id = tracing.hex_to_span_id(${sent.childId})`;
      expect(stored!.span_events).toEqual([
        {
          name: 'rows fetched',
          time: '2026-03-01T12:00:00.060000Z',
          time_unix_nano: String((sent.t0 + 60) * 1e6),
          attributes: { rows: 3 },
        },
      ]);
      const [rootRow] = await sql`select session_id from tracing.spans
                                  where trace_id = tracing.hex_to_trace_id(${sent.traceId}) and span_id = tracing.hex_to_span_id(${sent.rootId})`;
      expect(rootRow!.session_id).toBe('0d9e8f7a-6b5c-4d3e-9f1a-2b3c4d5e6f70');
    });
  }

  it('accepts a query API token with role admin, and refuses a reader token, a wrong token and none', async () => {
    const body = new Uint8Array(encodeRequestProtobuf(request([span()])));
    const post = (authorization?: string) =>
      fetch(`${http.url}/v1/traces`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-protobuf', ...(authorization ? { authorization } : {}) },
      });
    const asAdmin = (headers: Record<string, string>) =>
      fetch(`${http.url}/v1/traces`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${adminJwt}`, ...headers },
      });
    expect((await asAdmin({ 'x-tracegres-organization-id': OTHER_ORG })).status).toBe(200);
    const reader = await signToken(SECRET, { role: 'reader', organization_id: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee' });
    for (const authorization of [`Bearer ${reader}`, 'Bearer wrong-token', undefined, `Basic ${INGEST_TOKEN}`]) {
      const response = await post(authorization);
      expect(response.status).toBe(401);
      const status = RpcStatus.toObject(RpcStatus.decode(new Uint8Array(await response.arrayBuffer()))) as { message: string };
      expect(status.message).toMatch(/Bearer token is required/);
    }
  });
});

describe('tenants: spans belong to the organization of the token that sent them', () => {
  const claim = (org: string) => [{ key: 'tracegres.organization_id', value: { stringValue: org } }];
  async function storedOrgs(traceId: string) {
    const rows = await sql`select organization_id::text, name from tracing.spans
                            where trace_id = tracing.hex_to_trace_id(${traceId}) order by organization_id, name`;
    return rows.map((r) => [r.organization_id, r.name]);
  }

  it("TRACEGRES_INGEST_TOKEN's spans are its configured organization's, whatever organization they claim", async () => {
    const sent = span({ name: 'claims another tenant', attributes: claim(OTHER_ORG) });
    expect((await postJson(JSON.stringify(request([sent])))).status).toBe(200);
    expect(await storedOrgs(sent.traceId)).toEqual([[INGEST_ORG, 'claims another tenant']]);
  });

  it('a stored ingest token writes into its own organization until it is revoked', async () => {
    const token = generateIngestToken();
    const [created] = await sql`select tracing.create_ingest_token(${OTHER_ORG}, ${hashIngestToken(token)}, 'ci') as id`;
    const sent = span({ name: 'from the token', attributes: claim(INGEST_ORG) });
    expect((await postJson(JSON.stringify(request([sent])), { authorization: `Bearer ${token}` })).status).toBe(200);
    expect(await storedOrgs(sent.traceId)).toEqual([[OTHER_ORG, 'from the token']]);
    await sql`select tracing.revoke_ingest_token(${created!.id})`;
    expect((await postJson(JSON.stringify(request([span()])), { authorization: `Bearer ${token}` })).status).toBe(401);
  });

  it('an admin JWT ingests only for an organization it names', async () => {
    const sent = span({ name: 'admin', attributes: claim(INGEST_ORG) });
    const missing = await postJson(JSON.stringify(request([sent])), { authorization: `Bearer ${adminJwt}` });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toMatch(/x-tracegres-organization-id/);
    const named = await postJson(JSON.stringify(request([sent])), {
      authorization: `Bearer ${adminJwt}`,
      'x-tracegres-organization-id': OTHER_ORG,
    });
    expect(named.status).toBe(200);
    expect(await storedOrgs(sent.traceId)).toEqual([[OTHER_ORG, 'admin']]);
  });

  it('a span whose ids another tenant recorded first is still stored for its own tenant', async () => {
    const token = generateIngestToken();
    await sql`select tracing.create_ingest_token(${OTHER_ORG}, ${hashIngestToken(token)}) as id`;
    const victim = span({ name: 'victim' });
    // The attacker saw the victim's traceparent and sends its ids first.
    expect((await postJson(JSON.stringify(request([{ ...victim, name: 'squatter' }])), { authorization: `Bearer ${token}` })).status).toBe(
      200,
    );
    const response = await postJson(JSON.stringify(request([victim])));
    expect(response).toEqual({ status: 200, body: {} });
    expect(await storedOrgs(victim.traceId)).toEqual([
      [INGEST_ORG, 'victim'],
      [OTHER_ORG, 'squatter'],
    ]);
  });
});

describe('span ids already used in the same organization', () => {
  it('a retried span is accepted silently; a different span with the same ids is reported in partial_success', async () => {
    const first = span({ name: 'first' });
    expect(await postJson(JSON.stringify(request([first])))).toEqual({ status: 200, body: {} });
    // The same span again (an exporter's retry) is no conflict.
    expect(await postJson(JSON.stringify(request([first])))).toEqual({ status: 200, body: {} });
    const other = span();
    const response = await postJson(JSON.stringify(request([other, { ...first, name: 'second' }])));
    expect(response.status).toBe(200);
    expect(response.body.partialSuccess.rejectedSpans).toBe('1');
    expect(response.body.partialSuccess.errorMessage).toMatch(
      new RegExp(`span 1 \\(trace ${first.traceId}, span ${first.spanId}\\): a different span with these ids is already recorded`),
    );
    const stored = await sql`select name from tracing.spans where trace_id = tracing.hex_to_trace_id(${first.traceId})
                               and span_id = tracing.hex_to_span_id(${first.spanId})`;
    expect(stored).toEqual([{ name: 'first' }]);
  });
});

let spanCounter = 0;
function span(overrides: Record<string, unknown> = {}) {
  spanCounter += 1;
  return {
    traceId: `${spanCounter.toString(16).padStart(8, '0')}11112222333344445555aaaa`,
    spanId: `${spanCounter.toString(16).padStart(8, '0')}bbbbcccc`,
    name: 'op',
    kind: 1,
    startTimeUnixNano: '1772366400000000000',
    endTimeUnixNano: '1772366400500000000',
    ...overrides,
  };
}

function request(spans: unknown[]): OtlpRequest {
  return {
    resourceSpans: [
      { resource: { attributes: [{ key: 'service.name', value: { stringValue: 'raw' } }] }, scopeSpans: [{ spans: spans as never }] },
    ],
  };
}

async function postJson(body: string | Uint8Array, headers: Record<string, string> = {}) {
  const response = await fetch(`${http.url}/v1/traces`, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}`, ...headers },
  });
  const text = await response.text();
  // Errors come back in the request's encoding: protobuf when it was not JSON.
  const json = response.headers.get('content-type') === 'application/json';
  return { status: response.status, body: json && text ? JSON.parse(text) : {} };
}

describe('requests', () => {
  it('stores the valid spans and names the rejected ones in partial_success', async () => {
    const good = span();
    const bad = [
      span({ traceId: '00000000000000000000000000000000' }),
      span({ spanId: 'xyz' }),
      span({ name: '' }),
      span({ endTimeUnixNano: '1' }),
      span({ kind: 9 }),
    ];
    const { status, body } = await postJson(JSON.stringify(request([good, ...bad])));
    expect(status).toBe(200);
    expect(body.partialSuccess.rejectedSpans).toBe('5');
    expect(body.partialSuccess.errorMessage).toMatch(/^5 span\(s\) rejected: span 1 .*traceId must be 16 bytes/);
    for (const reason of ['spanId must be 8 bytes', 'name is required', 'endTimeUnixNano must not be before', 'kind must be a SpanKind']) {
      expect(body.partialSuccess.errorMessage).toContain(reason);
    }
    const [counted] = await sql`select count(*)::int as n from tracing.spans where trace_id = tracing.hex_to_trace_id(${good.traceId})`;
    expect(counted!.n).toBe(1);
  });

  it("rejects only a protobuf span nested beyond the decoder's depth limit, storing the rest", async () => {
    let deep: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 40; i += 1) deep = { kvlistValue: { values: [{ key: 'k', value: deep }] } };
    const good = span();
    const bad = span({ attributes: [{ key: 'deep', value: deep }] });
    // A sender without protobufjs' limit can write this; raise it to build the bytes.
    const limit = protobuf.util.recursionLimit;
    protobuf.util.recursionLimit = 1000;
    let body: Uint8Array;
    try {
      body = new Uint8Array(encodeRequestProtobuf(request([good, bad])));
    } finally {
      protobuf.util.recursionLimit = limit;
    }
    const response = await fetch(`${http.url}/v1/traces`, {
      method: 'POST',
      body: body as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${INGEST_TOKEN}` },
    });
    expect(response.status).toBe(200);
    const decoded = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(new Uint8Array(await response.arrayBuffer())), {
      longs: String,
    });
    expect(decoded.partialSuccess.rejectedSpans).toBe('1');
    expect(decoded.partialSuccess.errorMessage).toMatch(
      new RegExp(
        `^1 span\\(s\\) rejected: span 1 \\(trace ${bad.traceId}, span ${bad.spanId}\\): the span cannot be decoded: max depth exceeded`,
      ),
    );
    const [counted] = await sql`select count(*)::int as n from tracing.spans where trace_id = tracing.hex_to_trace_id(${good.traceId})`;
    expect(counted!.n).toBe(1);
  });

  it('answers protobuf with a protobuf ExportTraceServiceResponse, and is idempotent', async () => {
    const body = new Uint8Array(encodeRequestProtobuf(request([span(), span()])));
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${http.url}/v1/traces`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${INGEST_TOKEN}` },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/x-protobuf');
      const decoded = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(new Uint8Array(await response.arrayBuffer())));
      expect(decoded).toEqual({});
    }
  });

  it('stores a NUL character (which Postgres text cannot hold) as U+FFFD instead of failing the request', async () => {
    const s = span({
      name: 'op\u0000name',
      attributes: [
        { key: 'raw', value: { stringValue: 'a\u0000b' } },
        { key: 'literal', value: { stringValue: 'c\\u0000d' } },
      ],
    });
    const { status } = await postJson(new Uint8Array(encodeRequestProtobuf(request([s]))), { 'content-type': 'application/x-protobuf' });
    expect(status).toBe(200);
    const [stored] = await sql`select name, attributes from tracing.spans where trace_id = tracing.hex_to_trace_id(${s.traceId})`;
    expect(stored).toEqual({ name: 'op\ufffdname', attributes: { raw: 'a\ufffdb', literal: 'c\\u0000d' } });
  });

  it('stores a lone surrogate (which jsonb refuses) as U+FFFD instead of failing the request with 400', async () => {
    const s = span({ attributes: [{ key: 'lone', value: { stringValue: 'x\ud800' } }] });
    const { status } = await postJson(JSON.stringify(request([s])));
    expect(status).toBe(200);
    const [stored] = await sql`select attributes from tracing.spans where trace_id = tracing.hex_to_trace_id(${s.traceId})`;
    expect(stored!.attributes).toEqual({ lone: 'x\ufffd' });
  });

  it('sends every character of a field to the database as it is (the array literals of record_span_columns)', async () => {
    const values = ['plain', '', 'NULL', null, 'a "quoted" word', 'back\\slash \\" end\\', '{braces},commas', ' spaces ', 'ünïcödé ✓ 𝄞'];
    // Read back as JSON text: the client's own parser of text[] turns NULL into 'NULL'.
    const [row] = await sql<{ back: string }[]>`select array_to_json(${arrayLiteral(values)}::text[])::text as back`;
    expect(JSON.parse(row!.back)).toEqual(values);
  });

  it('accepts gzip', async () => {
    const s = span();
    const { status } = await postJson(gzipSync(JSON.stringify(request([s]))), { 'content-encoding': 'gzip' });
    expect(status).toBe(200);
    const [counted] = await sql`select count(*)::int as n from tracing.spans where trace_id = tracing.hex_to_trace_id(${s.traceId})`;
    expect(counted!.n).toBe(1);
  });

  it('answers 400 with a clear message for malformed payloads, and keeps serving', async () => {
    expect(await postJson('{not json')).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^not valid JSON/) } });
    expect(await postJson('[1,2]')).toMatchObject({ status: 400, body: { message: expect.stringMatching(/must be a JSON object/) } });
    expect(await postJson('{"resourceSpans": 3}')).toMatchObject({ status: 400, body: { message: 'resourceSpans must be an array' } });
    expect(await postJson('{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}')).toMatchObject({ status: 400 });
    expect(await postJson('not gzip', { 'content-encoding': 'gzip' })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/not valid gzip/) },
    });
    const garbage = await fetch(`${http.url}/v1/traces`, {
      method: 'POST',
      body: new Uint8Array([0xff, 0xff, 0xff, 0x0f, 0x01]),
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${INGEST_TOKEN}` },
    });
    expect(garbage.status).toBe(400);
    expect((RpcStatus.toObject(RpcStatus.decode(new Uint8Array(await garbage.arrayBuffer()))) as { message: string }).message).toMatch(
      /not a protobuf ExportTraceServiceRequest/,
    );
    expect((await postJson('{}', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await fetch(`${http.url}/v1/traces`)).status).toBe(405);
    expect((await postJson('{}')).status).toBe(200);
  });

  it('bounds the body, compressed or not', async () => {
    const big = JSON.stringify(
      request(Array.from({ length: 2000 }, () => span({ attributes: [{ key: 'padding', value: { stringValue: 'x'.repeat(200) } }] }))),
    );
    expect(big.length).toBeGreaterThan(256 * 1024);
    expect((await postJson(big)).status).toBe(413);
    const bomb = await postJson(gzipSync(big), { 'content-encoding': 'gzip' });
    expect(bomb.status).toBe(413);
    expect(bomb.body.message).toMatch(/once decompressed/);
  });
});

function grpcMetadata(token?: string, extra: Record<string, string> = {}): Metadata {
  const metadata = new Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
  return metadata;
}

/** One TraceService/Export call with raw bytes: the answer decoded, or the gRPC error's code and details. */
async function exportOverGrpc(
  body: Uint8Array,
  metadata: Metadata,
  options: grpc.ClientOptions = {},
): Promise<{ code: number; details?: string; response?: Record<string, unknown> }> {
  const client = new grpc.Client(grpcServer.address, grpc.credentials.createInsecure(), options);
  try {
    return await new Promise((resolve) =>
      client.makeUnaryRequest(
        TRACE_SERVICE_EXPORT_PATH,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(bytes), { longs: String }),
        Buffer.from(body),
        metadata,
        (error, response) =>
          resolve(
            error ? { code: error.code, details: error.details } : { code: grpc.status.OK, response: response as Record<string, unknown> },
          ),
      ),
    );
  } finally {
    client.close();
  }
}

describe('OTLP/gRPC', () => {
  it('stores the valid spans and names the rejected ones in partial_success', async () => {
    const good = span();
    const body = encodeRequestProtobuf(request([good, span({ spanId: '0000000000000000' }), span({ name: '' })]));
    const answer = await exportOverGrpc(body, grpcMetadata(INGEST_TOKEN));
    expect(answer.code).toBe(grpc.status.OK);
    expect(answer.response).toMatchObject({ partialSuccess: { rejectedSpans: '2' } });
    expect((answer.response!.partialSuccess as { errorMessage: string }).errorMessage).toMatch(
      /span 1 .*spanId.*; span 2 .*name is required/,
    );
    const [counted] = await sql`select count(*)::int as n, min(organization_id::text) as org from tracing.spans
                                 where trace_id = tracing.hex_to_trace_id(${good.traceId})`;
    expect(counted).toEqual({ n: 1, org: INGEST_ORG });
  });

  it('binds spans to the token, as over HTTP: an admin JWT names its organization, other callers are refused', async () => {
    const claimsOther = span({
      name: 'grpc claims another tenant',
      attributes: [{ key: 'tracegres.organization_id', value: { stringValue: OTHER_ORG } }],
    });
    expect((await exportOverGrpc(encodeRequestProtobuf(request([claimsOther])), grpcMetadata(INGEST_TOKEN))).code).toBe(grpc.status.OK);
    const viaAdmin = span({ name: 'grpc admin' });
    const body = encodeRequestProtobuf(request([viaAdmin]));
    const unnamed = await exportOverGrpc(body, grpcMetadata(adminJwt));
    expect(unnamed).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/x-tracegres-organization-id/) });
    expect((await exportOverGrpc(body, grpcMetadata(adminJwt, { 'x-tracegres-organization-id': OTHER_ORG }))).code).toBe(grpc.status.OK);
    const stored = await sql`select name, organization_id::text as org from tracing.spans
                              where trace_id in (tracing.hex_to_trace_id(${claimsOther.traceId}), tracing.hex_to_trace_id(${viaAdmin.traceId}))
                              order by name`;
    expect(stored).toEqual([
      { name: 'grpc admin', org: OTHER_ORG },
      { name: 'grpc claims another tenant', org: INGEST_ORG },
    ]);
    const reader = await signToken(SECRET, { role: 'reader', organization_id: OTHER_ORG });
    for (const metadata of [grpcMetadata(), grpcMetadata('wrong-token'), grpcMetadata(reader)]) {
      expect(await exportOverGrpc(body, metadata)).toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
        details: expect.stringMatching(/Bearer token is required/),
      });
    }
  });

  it('refuses a malformed message with INVALID_ARGUMENT and keeps serving', async () => {
    const garbage = await exportOverGrpc(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), grpcMetadata(INGEST_TOKEN));
    expect(garbage.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(garbage.details).toBeTruthy();
    expect((await exportOverGrpc(encodeRequestProtobuf(request([span()])), grpcMetadata(INGEST_TOKEN))).code).toBe(grpc.status.OK);
  });

  it('bounds the message, compressed or not', async () => {
    const big = encodeRequestProtobuf(
      request(Array.from({ length: 2000 }, () => span({ attributes: [{ key: 'padding', value: { stringValue: 'x'.repeat(200) } }] }))),
    );
    expect(big.length).toBeGreaterThan(256 * 1024);
    expect((await exportOverGrpc(big, grpcMetadata(INGEST_TOKEN))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Padding compresses to almost nothing: the limit applies once decompressed.
    const gzip = { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip };
    const bomb = await exportOverGrpc(big, grpcMetadata(INGEST_TOKEN), gzip);
    expect(bomb).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/decompresses/) });
  });
});
