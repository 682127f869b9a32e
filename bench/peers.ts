// tracegres beside the real Jaeger v2 (issue: faster than the peers).
// Target: OTLP ingest >= 60,000 spans/s durable (answered only after the
// commit, synchronous_commit and fsync on), at least 4x Jaeger on Badger in
// the same run, with Jaeger on memory beside it as the ceiling of a store
// that keeps nothing.
//
// Every side gets the same pre-encoded OTLP/HTTP protobuf requests (500-span
// batches, 20-span traces) from the same client, a worker thread
// (bench/peers-client.ts), at 1 and at 4 requests in flight, one side after
// the other for each level, so a machine shared with other work loads them
// alike; compare the ratios of one run.
//
// Jaeger is the binary .ci/install-jaeger.sh builds once into the tracegres
// cache (JAEGER_BINARY_PATH overrides it; built here when missing), run by
// server/jaeger/testing/jaeger-process.ts with memory or Badger storage.
// Its OTLP receiver answers before its batch processor stores the spans, so
// its figures count spans accepted, not stored. Badger runs as Jaeger ships
// it (`consistency: false`: writes not synced) and with `consistency: true`.
// A side gets at most SIDE_SECONDS per level; its `spans` say how many it got.
// For tracegres it also prints the CPU milliseconds a request cost this
// process (server and load client) and the whole Postgres server, the
// figures that a machine shared with other work changes least.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import postgres from 'postgres';
import { startHttpServer } from '../server/http-server.ts';
import {
  findJaegerBinary,
  HOW_TO_GET_JAEGER,
  JAEGER_VERSION,
  startJaeger,
  type JaegerBackend,
} from '../server/jaeger/testing/jaeger-process.ts';
import { createOtlpIngestRoute } from '../server/otlp/ingest-http.ts';
import { encodeRequestProtobuf } from '../server/otlp/protocol.ts';
import { serverCpuClock, summarize, type BenchContext } from './context.ts';
import { otlpRequest } from './otlp.ts';
import type { LoadRequest, LoadResult } from './peers-client.ts';

const BATCH = 500;
const IN_FLIGHT = [1, 4];
const WARM_UP_REQUESTS = 10;
const SIDE_SECONDS = 30;
const TOKEN = 'bench-peers-token';

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  close(): Promise<void>;
}

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const binary = jaegerBinary(ctx);
  if (!binary.path) {
    if (process.env.CI) throw new Error(`peers: ${binary.reason}`);
    ctx.log(`peers: skipped, ${binary.reason}`);
    return { skipped: binary.reason };
  }
  // Scaled with --events (1M events: 100k spans), within what a run should spend.
  const spans = Math.max(10_000, Math.min(1_000_000, Math.round(ctx.events / 10 / BATCH) * BATCH));
  const results: Record<string, unknown> = { spans_per_level: spans, batch_spans: BATCH, jaeger: `${JAEGER_VERSION} (${binary.path})` };

  const db = await ctx.createDatabase();
  const [durability] = await db.sql<{ fsync: string; synchronous_commit: string }[]>`
    select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit`;
  results.tracegres_durability = durability;
  const jaegers: Record<string, JaegerBackend> = {
    jaeger_memory: { memory: {} },
    jaeger_badger: { badger: {} },
    jaeger_badger_synced: { badger: { consistency: true } },
  };
  // Each side runs only while it is measured (a Jaeger still storing what it
  // accepted would take the machine from the next side), after a warm-up.
  const sides: Array<{ name: string; start(): Promise<Target> }> = [
    { name: 'tracegres', start: () => startTracegres(db.url, ctx) },
    ...Object.entries(jaegers).map(([name, backend]) => ({
      name,
      async start(): Promise<Target> {
        const jaeger = await startJaeger(binary.path!, backend);
        return { name, url: jaeger.otlpUrl!, headers: {}, close: jaeger.close };
      },
    })),
  ];
  let tracegresSpans = WARM_UP_REQUESTS * BATCH * IN_FLIGHT.length;
  type Figures = {
    spans: number;
    spans_per_s: number;
    request_500_spans: ReturnType<typeof summarize>;
    cpu_ms_per_request?: { server_and_client_process: number; postgres: number | null };
  };
  const round = (ms: number) => Math.round(ms * 100) / 100;
  async function measure(side: (typeof sides)[number], inFlight: number, requests: Requests): Promise<Figures> {
    const target = await side.start();
    try {
      await load(target, requests.warmUp, 1);
      const tracegres = side.name === 'tracegres';
      const nodeBefore = process.cpuUsage();
      const postgresCpu = tracegres ? await serverCpuClock(db.sql) : undefined;
      const { sent, seconds, latencies } = await load(target, requests.bodies, inFlight);
      const figures: Figures = {
        spans: sent * BATCH,
        spans_per_s: Math.round((sent * BATCH) / seconds),
        request_500_spans: summarize(latencies),
      };
      if (tracegres) {
        tracegresSpans += sent * BATCH;
        // CPU per request survives a loaded machine better than spans/s.
        // This process's figure includes the load client's worker thread.
        const node = process.cpuUsage(nodeBefore);
        const postgresMs = postgresCpu!();
        figures.cpu_ms_per_request = {
          server_and_client_process: round((node.user + node.system) / 1000 / sent),
          postgres: postgresMs === undefined ? null : round(postgresMs / sent),
        };
      }
      ctx.log(`peers: ${side.name}, ${inFlight} in flight: ${figures.spans_per_s} spans/s`);
      return figures;
    } finally {
      await target.close();
    }
  }
  try {
    // One set of requests per level, sent to every side.
    const requests = new Map(IN_FLIGHT.map((inFlight) => [inFlight, newRequests(spans / BATCH)]));
    const levels: Record<string, Record<string, unknown>> = {};
    // Badger with synced writes comes last: after its SIGTERM it still
    // syncs what it accepted, which would slow the next side's commits.
    const synced = sides.find((side) => side.name === 'jaeger_badger_synced')!;
    const others = sides.filter((side) => side !== synced);
    for (const inFlight of IN_FLIGHT) {
      const level: Record<string, Figures> = {};
      for (const side of others) level[side.name] = await measure(side, inFlight, requests.get(inFlight)!);
      const rate = (name: string) => level[name]!.spans_per_s;
      levels[`in_flight_${inFlight}`] = {
        ...level,
        tracegres_vs_jaeger_badger: Number((rate('tracegres') / rate('jaeger_badger')).toFixed(2)),
        tracegres_vs_jaeger_memory: Number((rate('tracegres') / rate('jaeger_memory')).toFixed(2)),
      };
    }
    for (const inFlight of IN_FLIGHT)
      levels[`in_flight_${inFlight}`]![synced.name] = await measure(synced, inFlight, requests.get(inFlight)!);
    const [stored] = await db.sql<{ n: number }[]>`select count(*)::int as n from tracing.spans`;
    if (stored!.n !== tracegresSpans) throw new Error(`peers: tracegres stored ${stored!.n} spans of ${tracegresSpans}`);
    results.ingest = levels;
  } finally {
    await db.drop();
  }
  results.targets = { tracegres_ingest_spans_per_s: 60_000, tracegres_vs_jaeger_badger: 4 };
  return results;
}

interface Requests {
  warmUp: Uint8Array<ArrayBuffer>[];
  bodies: Uint8Array<ArrayBuffer>[];
}

function newRequests(count: number): Requests {
  const encode = () => new Uint8Array(encodeRequestProtobuf(otlpRequest(BATCH)));
  return { warmUp: Array.from({ length: WARM_UP_REQUESTS }, encode), bodies: Array.from({ length: count }, encode) };
}

/** Runs bench/peers-client.ts on the target in a worker thread (SIDE_SECONDS at most). */
async function load(target: Target, bodies: Uint8Array<ArrayBuffer>[], inFlight: number): Promise<LoadResult> {
  const request: LoadRequest = { name: target.name, url: target.url, headers: target.headers, bodies, inFlight, seconds: SIDE_SECONDS };
  const worker = new Worker(new URL('./peers-client.ts', import.meta.url), { workerData: request });
  try {
    const [answer] = (await once(worker, 'message')) as [{ result?: LoadResult; error?: string }];
    if (answer.error !== undefined) throw new Error(answer.error);
    return answer.result!;
  } finally {
    await worker.terminate();
  }
}

async function startTracegres(databaseUrl: string, ctx: BenchContext): Promise<Target> {
  const sql = postgres(databaseUrl, { max: 5, onnotice: () => {} });
  const http = await startHttpServer({
    databaseUrl,
    port: 0,
    host: '127.0.0.1',
    pgSettingsFor: async () => ({ role: 'tracegres_anonymous' }),
    routes: [
      createOtlpIngestRoute({
        sql,
        token: TOKEN,
        organizationId: '0a000000-0000-4000-8000-00000000000a',
        maxBodyBytes: 64 * 1024 * 1024,
        log: ctx.log,
      }),
    ],
  });
  return {
    name: 'tracegres',
    url: `${http.url}/v1/traces`,
    headers: { authorization: `Bearer ${TOKEN}` },
    async close() {
      await http.close();
      await sql.end();
    },
  };
}

/** The binary, built once when missing; or why there is none. */
function jaegerBinary(ctx: BenchContext): { path?: string; reason?: string } {
  const found = findJaegerBinary();
  if (found) return { path: found };
  const installer = path.join(import.meta.dirname, '../.ci/install-jaeger.sh');
  if (!existsSync(installer)) return { reason: `no Jaeger binary. ${HOW_TO_GET_JAEGER}` };
  ctx.log('peers: building Jaeger once (about 6 minutes on 2 cores)');
  const built = spawnSync(installer, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const builtPath = built.stdout?.trim();
  if (built.status !== 0 || !builtPath || !existsSync(builtPath)) return { reason: `building Jaeger failed (exit ${built.status})` };
  return { path: builtPath };
}
