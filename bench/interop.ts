// Trace by id through Jaeger's query front end (issue: speak the field's
// protocols). The same Jaeger v2 binary answers `/api/traces/{id}` three
// ways: as a query-only front end on tracegres's remote storage (gRPC), and
// on its own Badger and memory storage. Target: tracegres behind Jaeger
// within 1.5x of Jaeger on Badger at p50.
//
// In the same turns, tracegres's own HTTP endpoints look the same traces up
// with a reader token (issue: faster than the peers): GraphQL
// `getTraceTimeline` and the Tempo API's `/api/v2/traces/{id}` in protobuf
// and JSON. Target for each: p50 <= 1.5 ms and p99 <= 4 ms, at or below
// Jaeger on memory.
//
// Every side holds the same spans: 10-span traces, sent once as OTLP
// protobuf requests of 1,000 spans (tracegres through its OTLP ingest,
// Jaeger through its OTLP/HTTP receiver). Lookups take random stored traces
// and visit the three sides in turn, rotating who goes first, so a machine
// shared with other work loads them alike; compare the ratios of one run.
//
// Jaeger is the binary .ci/install-jaeger.sh builds (JAEGER_BINARY_PATH
// overrides it), run by server/jaeger/testing/jaeger-process.ts.
import { randomBytes } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import { createOtlpIngester } from '../server/otlp/ingest.ts';
import { encodeRequestProtobuf, type OtlpRequest, type OtlpSpan } from '../server/otlp/protocol.ts';
import { createJaegerCallers } from '../server/jaeger/callers.ts';
import { startJaegerStorageServer } from '../server/jaeger/storage-server.ts';
import { createStorageClient } from '../server/jaeger/test-client.ts';
import {
  findJaegerBinary,
  HOW_TO_GET_JAEGER,
  JAEGER_VERSION,
  startJaeger,
  type RunningJaeger,
} from '../server/jaeger/testing/jaeger-process.ts';
import { createTokenVerifier, signToken } from '../server/auth/jwt.ts';
import { startHttpServer } from '../server/http-server.ts';
import { createTempoRoute } from '../server/tempo/route.ts';
import { summarize, type BenchContext } from './context.ts';
import { TIMELINE } from './trace-lookup-http.ts';

const SPANS_PER_TRACE = 10;
const BATCH_SPANS = 1000;
const IN_FLIGHT = 4;
const WARMUP = 50;
const SAMPLES = 500;
const ORG = '0a000000-0000-4000-8000-00000000000a';
const TARGET = { p50_ms: 1.5, p99_ms: 4 };

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const binary = findJaegerBinary();
  if (!binary) {
    if (process.env.CI) throw new Error(`interop: no Jaeger binary. ${HOW_TO_GET_JAEGER}`);
    ctx.log(`interop: skipped, no Jaeger binary. ${HOW_TO_GET_JAEGER}`);
    return { skipped: `no Jaeger binary. ${HOW_TO_GET_JAEGER}` };
  }
  // 1M spans with the default --events; fewer with a smaller run.
  const spans = Math.max(10 * BATCH_SPANS, Math.round(ctx.events / BATCH_SPANS) * BATCH_SPANS);
  const results: Record<string, unknown> = { spans, spans_per_trace: SPANS_PER_TRACE, jaeger: `${JAEGER_VERSION} (${binary})` };

  const db = await ctx.createDatabase();
  const sides: Array<{ name: string; jaeger: RunningJaeger }> = [];
  let storage: Awaited<ReturnType<typeof startJaegerStorageServer>> | undefined;
  let http: Awaited<ReturnType<typeof startHttpServer>> | undefined;
  try {
    // The operator's setting: calls without a token read this organization.
    const callers = createJaegerCallers({
      sql: db.sql,
      pgSettingsFor: async () => ({ role: 'tracegres_anonymous' }),
      anonymous: { organization: ORG },
      statementTimeout: '5s',
    });
    storage = await startJaegerStorageServer({
      callers,
      host: '127.0.0.1',
      port: 0,
      log: ctx.log,
    });
    sides.push({ name: 'tracegres_behind_jaeger', jaeger: await startJaeger(binary, { grpc: { endpoint: storage.address } }) });
    sides.push({ name: 'jaeger_badger', jaeger: await startJaeger(binary, { badger: {} }) });
    sides.push({ name: 'jaeger_memory', jaeger: await startJaeger(binary, { memory: {} }) });
    // tracegres's HTTP server as `npm start` runs it: GraphQL and the Tempo API, reader tokens.
    const secret = 'bench-secret-bench-secret-bench-secret';
    const pgSettingsFor = createTokenVerifier({ secret });
    http = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor,
      routes: [createTempoRoute({ sql: db.sql, pgSettingsFor, statementTimeout: '10s', log: ctx.log })],
    });
    const authorization = `Bearer ${await signToken(secret, { role: 'reader', organization_id: ORG })}`;

    // Load: one batch at a time, generated once and sent to every side.
    const ingester = createOtlpIngester({ sql: db.sql, maxBodyBytes: 64 * 1024 * 1024 });
    const traceIds: string[] = [];
    const loadMs: Record<string, number> = { tracegres: 0, jaeger_badger: 0, jaeger_memory: 0 };
    const start = Date.now() - 30 * 60_000;
    const batches = spans / BATCH_SPANS;
    const send = async (batch: number) => {
      const request = batchOf(start + batch * 10, traceIds);
      const body = new Uint8Array(encodeRequestProtobuf(request));
      let t = performance.now();
      const answer = await ingester.ingest(request, ORG);
      const rejected = Number(answer.partialSuccess?.rejectedSpans ?? 0);
      if (rejected > 0) throw new Error(`interop: tracegres rejected ${rejected} spans`);
      loadMs.tracegres! += performance.now() - t;
      for (const side of sides.slice(1)) {
        t = performance.now();
        const response = await fetch(side.jaeger.otlpUrl!, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`interop: ${side.name} answered ${response.status}`);
        loadMs[side.name]! += performance.now() - t;
      }
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < batches) {
          const batch = next++;
          await send(batch);
          if (batch % 100 === 99) ctx.log(`interop: loaded ${(batch + 1) * BATCH_SPANS} spans on every side`);
        }
      }),
    );
    results.load_seconds_summed_over_requests = Object.fromEntries(Object.entries(loadMs).map(([k, v]) => [k, Math.round(v / 100) / 10]));
    await db.sql`analyze tracing.spans`;

    // Jaeger's receiver answers before its batch processor stores: wait
    // until the last traces sent are found on every side.
    for (const side of sides) {
      for (const id of traceIds.slice(-20)) await waitForTrace(side.jaeger.queryUrl, id);
    }

    // Where tracegres's time goes, in the same turns: the storage's SQL
    // alone (its read-only transaction as the caller), and the storage's
    // GetTraces over gRPC from a Node client, without Jaeger.
    const client = createStorageClient(storage.address);
    const none = new Metadata();
    const parts: Record<string, (id: string) => Promise<void>> = {
      tracegres_sql_transaction: async (id) => {
        const rows = await callers.read(none, (sql) => sql`select * from tracing.otlp_trace_spans(array[${id}::uuid])`);
        if (rows.length !== SPANS_PER_TRACE) throw new Error(`interop: the SQL gave ${rows.length} spans for ${id}`);
      },
      tracegres_get_traces_grpc: async (id) => {
        const result = await client.getTraces([id], none);
        if (result.code !== 0 || result.value?.length !== 1) throw new Error(`interop: GetTraces answered ${result.code} for ${id}`);
      },
    };
    // Every lookup over HTTP, as its client sees it: each reads the whole
    // answer and checks it holds the trace's spans.
    const tempo = (accept: string) => async (id: string) => {
      const response = await fetch(`${http!.url}/api/v2/traces/${id}`, { headers: { authorization, accept } });
      const body = await response.arrayBuffer();
      if (response.status !== 200 || body.byteLength === 0) throw new Error(`interop: Tempo answered ${response.status} for ${id}`);
      return body;
    };
    const lookups: Record<string, (id: string) => Promise<number>> = {
      ...Object.fromEntries(
        sides.map((side) => [
          side.name,
          async (id: string) => {
            const response = await fetch(`${side.jaeger.queryUrl}/api/traces/${id}`);
            const body = (await response.json()) as { data?: Array<{ spans: unknown[] }> };
            if (response.status !== 200) throw new Error(`interop: ${side.name} answered ${response.status} for ${id}`);
            return body.data?.[0]?.spans.length ?? 0;
          },
        ]),
      ),
      tracegres_graphql: async (id) => {
        const response = await fetch(`${http!.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization },
          body: JSON.stringify({ query: TIMELINE, variables: { traceId: id } }),
        });
        const body = (await response.json()) as { data?: { getTraceTimeline: { nodes: unknown[] } }; errors?: unknown };
        if (body.errors) throw new Error(`interop: GraphQL answered ${JSON.stringify(body.errors)} for ${id}`);
        return body.data!.getTraceTimeline.nodes.length;
      },
      tracegres_tempo_protobuf: async (id) => (await tempo('application/protobuf')(id), SPANS_PER_TRACE),
      tracegres_tempo_json: async (id) => {
        const body = JSON.parse(Buffer.from(await tempo('application/json')(id)).toString()) as {
          trace: { resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> };
        };
        return body.trace.resourceSpans.reduce((n, r) => n + r.scopeSpans.reduce((m, s) => m + s.spans.length, 0), 0);
      },
    };
    // The protobuf answer holds the spans too (checked once, outside the timing).
    await tempo('application/protobuf')(traceIds[0]!);
    const lookupNames = Object.keys(lookups);
    const picks = Array.from({ length: WARMUP + SAMPLES }, () => traceIds[Math.floor(Math.random() * traceIds.length)]!);
    const latencies: Record<string, number[]> = Object.fromEntries([...lookupNames, ...Object.keys(parts)].map((n) => [n, []]));
    for (const [i, id] of picks.entries()) {
      for (let k = 0; k < lookupNames.length; k++) {
        const name = lookupNames[(i + k) % lookupNames.length]!;
        const t = performance.now();
        const spans = await lookups[name]!(id);
        const elapsed = performance.now() - t;
        if (spans !== SPANS_PER_TRACE) throw new Error(`interop: ${name} answered ${spans} spans for ${id}`);
        if (i >= WARMUP) latencies[name]!.push(elapsed);
      }
      for (const [name, part] of Object.entries(parts)) {
        const t = performance.now();
        await part(id);
        if (i >= WARMUP) latencies[name]!.push(performance.now() - t);
      }
    }
    client.close();
    results.tracegres_parts = Object.fromEntries(Object.keys(parts).map((name) => [name, summarize(latencies[name]!)]));
    const trace_by_id = Object.fromEntries(sides.map((s) => [s.name, summarize(latencies[s.name]!)]));
    results.trace_by_id_through_jaeger_http = trace_by_id;
    const p50 = (name: string) => trace_by_id[name]!.p50_ms;
    const p99 = (name: string) => trace_by_id[name]!.p99_ms;
    results.ratios = {
      tracegres_vs_badger_p50: round2(p50('tracegres_behind_jaeger') / p50('jaeger_badger')),
      tracegres_vs_badger_p99: round2(p99('tracegres_behind_jaeger') / p99('jaeger_badger')),
      tracegres_vs_memory_p50: round2(p50('tracegres_behind_jaeger') / p50('jaeger_memory')),
    };
    results.target = { tracegres_vs_badger_p50_at_most: 1.5 };
    // tracegres's own endpoints beside Jaeger on memory, a store that keeps nothing.
    const own = ['tracegres_graphql', 'tracegres_tempo_protobuf', 'tracegres_tempo_json'];
    const overHttp = Object.fromEntries(own.map((name) => [name, summarize(latencies[name]!)]));
    const memory = trace_by_id.jaeger_memory!;
    results.trace_by_id_over_tracegres_http = {
      ...overHttp,
      jaeger_memory: memory,
      vs_jaeger_memory: Object.fromEntries(
        own.map((name) => [
          name,
          { p50: round2(overHttp[name]!.p50_ms / memory.p50_ms), p99: round2(overHttp[name]!.p99_ms / memory.p99_ms) },
        ]),
      ),
      target: { ...TARGET, at_or_below_jaeger_memory: true },
      met: Object.fromEntries(
        own.map((name) => {
          const { p50_ms, p99_ms } = overHttp[name]!;
          return [
            name,
            {
              p50: p50_ms <= TARGET.p50_ms,
              p99: p99_ms <= TARGET.p99_ms,
              vs_jaeger_memory: p50_ms <= memory.p50_ms && p99_ms <= memory.p99_ms,
            },
          ];
        }),
      ),
    };
    ctx.log(`interop: ${JSON.stringify(results.ratios)}`);
  } finally {
    await http?.close();
    for (const side of sides.reverse()) await side.jaeger.close();
    await storage?.close();
    await db.drop();
  }
  return results;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** 1,000 spans in 10-span traces of two services (a server span, its client calls, a callee), recording the trace ids. */
function batchOf(startMs: number, traceIds: string[]): OtlpRequest {
  const byService: Record<string, OtlpSpan[]> = { orders: [], payments: [] };
  const nanos = (ms: number) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();
  for (let t = 0; t < BATCH_SPANS / SPANS_PER_TRACE; t++) {
    const traceId = randomBytes(16).toString('hex');
    traceIds.push(traceId);
    const rootId = randomBytes(8).toString('hex');
    for (let s = 0; s < SPANS_PER_TRACE; s++) {
      const service = s >= 7 ? 'payments' : 'orders';
      byService[service]!.push({
        traceId,
        spanId: s === 0 ? rootId : randomBytes(8).toString('hex'),
        ...(s === 0 ? {} : { parentSpanId: rootId }),
        name: s === 0 ? 'POST /orders' : s >= 7 ? 'charge' : `SELECT ${s}`,
        kind: s === 0 ? 2 : s >= 7 ? 2 : 3,
        startTimeUnixNano: nanos(startMs + s),
        endTimeUnixNano: nanos(startMs + s + (s === 0 ? 20 : 2)),
        attributes: [
          { key: 'http.route', value: { stringValue: '/orders' } },
          { key: 'db.rows', value: { intValue: String(s) } },
        ],
        status: { code: 1 },
      });
    }
  }
  return {
    resourceSpans: Object.entries(byService).map(([service, list]) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ scope: { name: 'bench' }, spans: list }],
    })),
  };
}

async function waitForTrace(queryUrl: string, traceId: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    const response = await fetch(`${queryUrl}/api/traces/${traceId}`);
    await response.arrayBuffer();
    if (response.status === 200) return;
    if (Date.now() - started > 60_000) throw new Error(`interop: trace ${traceId} not found at ${queryUrl} within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
