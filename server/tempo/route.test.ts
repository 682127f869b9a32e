// The Tempo query API over real HTTP, as Grafana's Tempo data source calls
// it, against a real database: trace by id in protobuf (decoded with OTLP's
// own definitions) and JSON, search, tags and values, who may read what,
// and every bad parameter named.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier, signToken } from '../auth/jwt.ts';
import { loadProtoRoot } from '../otlp/protocol.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';
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
import { TraceByIDResponse } from './messages.ts';
import { createTempoRoute, MAX_TRACE_SPANS, TEMPO_API_VERSION } from './route.ts';

const db = useTestDatabase();
const SECRET = 'tempo-api-test-secret-long-enough';
const SLOW = 'c0000000000000000000000000000002';
// 10,001 spans, started before the window the other tests search.
const HUGE = 'c0000000000000000000000000000003';
const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

// OTLP's TracesData from the OTLP definitions tracegres ingests with.
const TracesData = loadProtoRoot(['opentelemetry/proto/trace/v1/trace.proto']).lookupType('opentelemetry.proto.trace.v1.TracesData');

interface DecodedSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId?: Uint8Array;
  name: string;
  status?: { code?: number };
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
  events?: Array<{ name: string }>;
}
interface DecodedResourceSpans {
  resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
  scopeSpans?: Array<{ spans?: DecodedSpan[] }>;
}

let sql: postgres.Sql;
let http: HttpServer;
let readerA: string;
let readerB: string;
let admin: string;

beforeAll(async () => {
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  const spans = [
    ...checkoutSpans({ root: { 'http.request.method': 'POST' }, charge: { 'payment.amount': 12.5 } }),
    span(SLOW, 'a000000000000011', null, {
      name: 'GET /report',
      service: 'reports',
      kind: 'server',
      start_time: at(1000),
      end_time: at(4000),
      attributes: { 'http.request.method': 'GET' },
      organization_id: ORG_A,
    }),
    otherOrganizationSpan({ 'vault.secret': 'classified' }),
  ];
  await sql`select tracing.record_spans(${sql.json(spans as postgres.JSONValue)})`;
  const huge = wideTraceSpans(HUGE, MAX_TRACE_SPANS + 1, (i) => ({
    name: `row ${i}`,
    start_time: at(-100_000 + i),
    end_time: at(-99_000 + i),
  }));
  await sql`select tracing.record_spans(${sql.json(huge as postgres.JSONValue)})`;
  await recordPaymentFailed(sql);
  const pgSettingsFor = createTokenVerifier({ secret: SECRET });
  http = await startHttpServer({
    databaseUrl: db.url,
    port: 0,
    host: '127.0.0.1',
    pgSettingsFor,
    routes: [createTempoRoute({ sql, pgSettingsFor, statementTimeout: '10s', log: () => {} })],
  });
  readerA = await signToken(SECRET, { role: 'reader', organization_id: ORG_A });
  readerB = await signToken(SECRET, { role: 'reader', organization_id: ORG_B });
  admin = await signToken(SECRET, { role: 'admin', sub: 'tempo-test' });
});
afterAll(async () => {
  await http?.close();
  await sql?.end();
});

async function get(pathAndQuery: string, token: string | null = readerA, accept = 'application/json') {
  const headers: Record<string, string> = { accept };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${http.url}${pathAndQuery}`, { headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, type: response.headers.get('content-type') ?? '', body, text: body.toString('utf8') };
}
const getJson = async (pathAndQuery: string, token?: string) => {
  const response = await get(pathAndQuery, token);
  expect(response.status, response.text).toBe(200);
  return JSON.parse(response.text);
};
const hex = (bytes?: Uint8Array) => (bytes ? Buffer.from(bytes).toString('hex') : '');
const spansOf = (resourceSpans: DecodedResourceSpans[]) => resourceSpans.flatMap((r) => r.scopeSpans ?? []).flatMap((s) => s.spans ?? []);
const window = () => `start=${seconds(START) - 60}&end=${seconds(new Date()) + 60}`;

describe('trace by id', () => {
  it('v2 in protobuf: a TraceByIDResponse whose trace is OTLP spans with parents, services, status and domain events', async () => {
    const response = await get(`/api/v2/traces/${CHECKOUT}`, readerA, 'application/protobuf');
    expect(response.status).toBe(200);
    expect(response.type).toBe('application/protobuf');
    const decoded = TraceByIDResponse.toObject(TraceByIDResponse.decode(response.body), { longs: String }) as {
      trace: { resourceSpans: DecodedResourceSpans[] };
      status?: number;
    };
    expect(decoded.status ?? 0).toBe(0); // COMPLETE
    const spans = spansOf(decoded.trace.resourceSpans);
    expect(spans.map((s) => [hex(s.traceId), hex(s.spanId), hex(s.parentSpanId), s.name])).toEqual([
      [CHECKOUT, 'a000000000000001', '', 'POST /checkout'],
      [CHECKOUT, 'a000000000000002', 'a000000000000001', 'charge card'],
    ]);
    expect(
      decoded.trace.resourceSpans.map((r) => r.resource!.attributes!.find((a) => a.key === 'service.name')!.value.stringValue),
    ).toEqual(['checkout', 'payments']);
    expect(spans[1]!.status?.code).toBe(2);
    expect(spans[1]!.attributes).toContainEqual({ key: 'http.response.status_code', value: { intValue: '500' } });
    expect(spans[1]!.events?.map((e) => e.name)).toEqual(['PaymentFailed']);
  });

  it('v1 in protobuf is a Trace, the same bytes as OTLP TracesData', async () => {
    const response = await get(`/api/traces/${CHECKOUT}`, readerA, 'application/protobuf');
    expect(response.status).toBe(200);
    const decoded = TracesData.toObject(TracesData.decode(response.body)) as { resourceSpans: DecodedResourceSpans[] };
    expect(spansOf(decoded.resourceSpans).map((s) => s.name)).toEqual(['POST /checkout', 'charge card']);
  });

  it('answers JSON otherwise: v2 {trace: {resourceSpans}, status}, v1 {batches}, ids in hex', async () => {
    const v2 = await getJson(`/api/v2/traces/${CHECKOUT.toUpperCase()}`);
    expect(v2.status).toBe('COMPLETE');
    expect(v2.trace.resourceSpans).toHaveLength(2);
    expect(v2.trace.resourceSpans[1].scopeSpans[0].spans[0]).toMatchObject({
      traceId: CHECKOUT,
      spanId: 'a000000000000002',
      parentSpanId: 'a000000000000001',
      name: 'charge card',
    });
    const v1 = await getJson(`/api/traces/${CHECKOUT}`);
    expect(v1.batches).toEqual(v2.trace.resourceSpans);
  });

  it('takes a 64-bit id padded with zeros, and start/end narrow where it looks', async () => {
    const padded = await get('/api/v2/traces/b000000000000001', admin);
    expect(padded.status).toBe(404); // 0000…b000000000000001 is another id
    expect((await get(`/api/v2/traces/${CHECKOUT}?${window()}`)).status).toBe(200);
    const before = `start=${seconds(START) - 7200}&end=${seconds(START) - 3600}`;
    expect((await get(`/api/v2/traces/${CHECKOUT}?${before}`)).status).toBe(404);
  });

  it('answers a trace of more than 10,000 spans with its first 10,000 and status PARTIAL', async () => {
    const response = await get(`/api/v2/traces/${HUGE}`, readerA, 'application/protobuf');
    const decoded = TraceByIDResponse.toObject(TraceByIDResponse.decode(response.body)) as {
      trace: { resourceSpans: DecodedResourceSpans[] };
      status?: number;
      message?: string;
    };
    expect(decoded.status).toBe(1); // PARTIAL
    expect(decoded.message).toMatch(/more than 10000 spans/);
    expect(spansOf(decoded.trace.resourceSpans)).toHaveLength(MAX_TRACE_SPANS);
    expect((await getJson(`/api/v2/traces/${HUGE}`)).status).toBe('PARTIAL');
  });

  it('404 for an unknown id, 400 naming a malformed id or time', async () => {
    const unknown = await get(`/api/v2/traces/${'e'.repeat(32)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.text).toMatch(/not found/);
    for (const bad of ['not-hex', 'f'.repeat(33), '0'.repeat(32)]) {
      const response = await get(`/api/v2/traces/${bad}`);
      expect(response.status).toBe(400);
      expect(response.text).toMatch(/^trace id must be 1 to 32 hex characters/);
    }
    const badStart = await get(`/api/traces/${CHECKOUT}?start=yesterday&end=1`);
    expect(badStart.status).toBe(400);
    expect(badStart.text).toMatch(/^start must be a time in Unix seconds/);
  });
});

describe('who reads what', () => {
  it('a reader reads its own organization only; an admin reads every one', async () => {
    expect((await get(`/api/v2/traces/${CHECKOUT}`, readerB)).status).toBe(404);
    expect((await get(`/api/v2/traces/${OTHER}`, readerB)).status).toBe(200);
    expect((await get(`/api/v2/traces/${OTHER}`, readerA)).status).toBe(404);
    expect((await get(`/api/v2/traces/${OTHER}`, admin)).status).toBe(200);
    const traceIds = async (token: string) =>
      (await getJson(`/api/search?${window()}`, token)).traces.map((t: { traceID: string }) => t.traceID).sort();
    expect(await traceIds(readerA)).toEqual([CHECKOUT, SLOW]);
    expect(await traceIds(readerB)).toEqual([OTHER]);
    expect(await traceIds(admin)).toEqual([OTHER, CHECKOUT, SLOW].sort());
    const tagsOf = async (token: string) => (await getJson(`/api/search/tags?${window()}`, token)).tagNames;
    expect(await tagsOf(readerB)).toEqual(['service.name', 'vault.secret']);
    expect(await tagsOf(readerA)).not.toContain('vault.secret');
  });

  it('cancels a request that outlasts the statement timeout: 504', async () => {
    const pgSettingsFor = createTokenVerifier({ secret: SECRET });
    const hasty = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor,
      routes: [createTempoRoute({ sql, pgSettingsFor, statementTimeout: '1ms', log: () => {} })],
    });
    try {
      // Tag names over the 10,000 spans of HUGE: far more than 1 ms.
      const window = `start=${seconds(START) - 3600}&end=${seconds(new Date()) + 60}`;
      const response = await fetch(`${hasty.url}/api/search/tags?${window}`, { headers: { authorization: `Bearer ${readerA}` } });
      expect([response.status, await response.text()]).toEqual([504, expect.stringMatching(/statement timeout/)]);
    } finally {
      await hasty.close();
    }
  });

  it('401 without a token or with a bad one; echo and buildinfo need none', async () => {
    for (const token of [null, 'not-a-jwt']) {
      const response = await get(`/api/v2/traces/${CHECKOUT}`, token);
      expect(response.status).toBe(401);
      const searched = await get('/api/search', token);
      expect(searched.status).toBe(401);
    }
    const echo = await get('/api/echo', null);
    expect([echo.status, echo.text]).toEqual([200, 'echo']);
    const buildinfo = JSON.parse((await get('/api/status/buildinfo', null)).text);
    expect(buildinfo).toMatchObject({ version: TEMPO_API_VERSION, branch: 'tracegres' });
  });
});

describe('search', () => {
  it('TraceQL: traces with the spans that matched, in the documented shape', async () => {
    const q = encodeURIComponent('{ resource.service.name = "payments" && status = error }');
    const { traces } = await getJson(`/api/search?q=${q}&${window()}`);
    expect(traces).toHaveLength(1);
    const [trace] = traces;
    expect(trace).toMatchObject({
      traceID: CHECKOUT,
      rootServiceName: 'checkout',
      rootTraceName: 'POST /checkout',
      durationMs: 120,
      spanSets: [{ matched: 1 }],
    });
    expect(trace.startTimeUnixNano).toBe(String(BigInt(START.getTime()) * 1_000_000n));
    const [matched] = trace.spanSets[0].spans;
    expect(matched).toMatchObject({
      spanID: 'a000000000000002',
      name: 'charge card',
      startTimeUnixNano: String(BigInt(START.getTime() + 10) * 1_000_000n),
      durationNanos: '80000000',
    });
    expect(matched.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'payments' } });
    expect(matched.attributes).toContainEqual({ key: 'payment.provider', value: { stringValue: 'acme' } });
  });

  it('structural TraceQL, limit and spss', async () => {
    const q = encodeURIComponent('{ kind = server } > { status = error }');
    expect((await getJson(`/api/search?q=${q}&${window()}`)).traces.map((t: { traceID: string }) => t.traceID)).toEqual([CHECKOUT]);
    const all = await getJson(`/api/search?q=${encodeURIComponent('{ }')}&limit=1&spss=1&${window()}`);
    expect(all.traces.map((t: { traceID: string }) => t.traceID)).toEqual([SLOW]); // newest first
    expect(all.traces[0].spanSets[0].spans).toHaveLength(1);
  });

  it('the older form: tags in logfmt, minDuration and maxDuration', async () => {
    const ids = async (query: string) =>
      (await getJson(`/api/search?${query}&${window()}`)).traces.map((t: { traceID: string }) => t.traceID);
    expect(await ids(`tags=${encodeURIComponent('service.name=payments http.response.status_code=500')}`)).toEqual([CHECKOUT]);
    expect(await ids(`tags=${encodeURIComponent('payment.provider="acme" error=true')}`)).toEqual([CHECKOUT]);
    expect(await ids(`tags=${encodeURIComponent('service.name=payments http.response.status_code=404')}`)).toEqual([]);
    expect(await ids('minDuration=1s')).toEqual([SLOW]);
    expect(await ids('maxDuration=500ms')).toEqual([CHECKOUT]);
  });

  it('400 naming the parameter: a query outside the subset, bad limit, spss, window, tags, durations', async () => {
    const cases: Array<[string, RegExp]> = [
      [`q=${encodeURIComponent('{ status = error } | count() > 1')}`, /^q has an unsupported construct "\|"/],
      [`q=${encodeURIComponent('{ status = error ')}`, /^q /],
      ['limit=0', /^limit must be an integer from 1 to 100/],
      ['limit=101', /^limit must be an integer from 1 to 100/],
      ['spss=21', /^spss must be an integer from 1 to 20/],
      ['start=100&end=50', /^start must be before end/],
      ['start=1000000&end=2000000', /^end must be at most 7 days/],
      ['tags=novalue', /^tags must be logfmt/],
      ['minDuration=fast', /^minDuration must be a duration/],
    ];
    for (const [query, message] of cases) {
      const response = await get(`/api/search?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.text, query).toMatch(message);
    }
  });
});

describe('tags and values', () => {
  it('v2 tag names by scope', async () => {
    const { scopes } = await getJson(`/api/v2/search/tags?${window()}`);
    expect(scopes.map((s: { name: string }) => s.name)).toEqual(['span', 'resource', 'intrinsic']);
    expect(scopes[0].tags).toEqual(['http.request.method', 'http.response.status_code', 'payment.amount', 'payment.provider']);
    expect(scopes[1].tags).toEqual(['service.name']);
    expect(scopes[2].tags).toContain('status');
    expect((await getJson(`/api/v2/search/tags?scope=resource&${window()}`)).scopes).toEqual([
      { name: 'resource', tags: ['service.name'] },
    ]);
    const bad = await get(`/api/v2/search/tags?scope=everything`);
    expect([bad.status, bad.text]).toEqual([400, expect.stringMatching(/^scope must be one of/)]);
  });

  it('v2 values with their types, narrowed by a spanset in q', async () => {
    const values = async (tag: string, query = '') =>
      (await getJson(`/api/v2/search/tag/${encodeURIComponent(tag)}/values?${window()}${query}`)).tagValues;
    expect(await values('resource.service.name')).toEqual([
      { type: 'string', value: 'checkout' },
      { type: 'string', value: 'payments' },
      { type: 'string', value: 'reports' },
    ]);
    expect(await values('span.http.response.status_code')).toEqual([{ type: 'int', value: '500' }]);
    expect(await values('.payment.amount')).toEqual([{ type: 'float', value: '12.5' }]);
    expect(await values('status')).toEqual([
      { type: 'keyword', value: 'error' },
      { type: 'keyword', value: 'ok' },
    ]);
    const q = `&q=${encodeURIComponent('{ kind = server }')}`;
    expect(await values('name', q)).toEqual([
      { type: 'string', value: 'GET /report' },
      { type: 'string', value: 'POST /checkout' },
    ]);
  });

  it('v1 names and values', async () => {
    expect((await getJson(`/api/search/tags?${window()}`)).tagNames).toEqual([
      'http.request.method',
      'http.response.status_code',
      'payment.amount',
      'payment.provider',
      'service.name',
    ]);
    expect((await getJson(`/api/search/tag/service.name/values?${window()}`)).tagValues).toEqual(['checkout', 'payments', 'reports']);
    expect((await getJson(`/api/search/tag/http.request.method/values?${window()}`)).tagValues).toEqual(['GET', 'POST']);
  });

  it('400 naming the tag or q', async () => {
    const duration = await get(`/api/v2/search/tag/duration/values?${window()}`);
    expect([duration.status, duration.text]).toEqual([400, expect.stringMatching(/^tag must be name, status, kind/)]);
    const structural = await get(`/api/v2/search/tag/name/values?q=${encodeURIComponent('{ } >> { }')}`);
    expect([structural.status, structural.text]).toEqual([400, expect.stringMatching(/^q must be one spanset/)]);
  });
});
