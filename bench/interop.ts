// Trace by id through Jaeger's query front end (issue: speak the field's
// protocols). The same Jaeger v2 binary answers `/api/traces/{id}` three
// ways: as a query-only front end on tracegres's remote storage (gRPC), and
// on its own Badger and memory storage. Target: tracegres behind Jaeger
// within 1.5x of Jaeger on Badger at p50.
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
import { summarize, type BenchContext } from './context.ts';

const SPANS_PER_TRACE = 10;
const BATCH_SPANS = 1000;
const IN_FLIGHT = 4;
const WARMUP = 50;
const SAMPLES = 500;
const ORG = '0a000000-0000-4000-8000-00000000000a';

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
    const picks = Array.from({ length: WARMUP + SAMPLES }, () => traceIds[Math.floor(Math.random() * traceIds.length)]!);
    const latencies: Record<string, number[]> = Object.fromEntries(
      [...sides.map((s) => s.name), ...Object.keys(parts)].map((n) => [n, []]),
    );
    for (const [i, id] of picks.entries()) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(i + k) % sides.length]!;
        const t = performance.now();
        const response = await fetch(`${side.jaeger.queryUrl}/api/traces/${id}`);
        const body = (await response.json()) as { data?: Array<{ spans: unknown[] }> };
        const elapsed = performance.now() - t;
        if (response.status !== 200 || body.data?.[0]?.spans.length !== SPANS_PER_TRACE) {
          throw new Error(`interop: ${side.name} answered ${response.status} with ${body.data?.[0]?.spans.length} spans for ${id}`);
        }
        if (i >= WARMUP) latencies[side.name]!.push(elapsed);
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
    ctx.log(`interop: ${JSON.stringify(results.ratios)}`);
  } finally {
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
