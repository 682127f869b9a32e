// OTLP throughput (issue: OTLP both ways). Targets: export >= 20k spans/s,
// ingest >= 20k spans/s, on a 2-core machine.
//
//   queue cost: tracing.record_spans in 1,000-span calls with the export
//     queue off and on (the trigger's share of the write path);
//   export: spans/s drained from the queue with one and with two batches in
//     flight (TRACEGRES_OTLP_CONCURRENCY; 2 is the default) to a local OTLP/HTTP receiver (protobuf, 1,000-span batches; traces
//     kept by sampling decisions, one domain event per ten spans), and
//     p50/p99 of one 1,000-span batch (claim, encode, send, dequeue);
//   ingest: spans/s through POST /v1/traces of a real startHttpServer, from
//     4 concurrent clients sending pre-encoded 1,000-span protobuf requests,
//     with p50/p99 per request; the same through OTLP/gRPC's
//     TraceService/Export (target: at least the OTLP/HTTP figure of the
//     same run); and the same for OTLP/JSON.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import postgres from 'postgres';
import { startHttpServer } from '../server/http-server.ts';
import type { OtlpExportConfig } from '../server/otlp/config.ts';
import { createOtlpExporter } from '../server/otlp/exporter.ts';
import { startOtlpGrpcServer, TRACE_SERVICE_EXPORT_PATH } from '../server/otlp/ingest-grpc.ts';
import { createOtlpIngestRoute } from '../server/otlp/ingest-http.ts';
import { encodeRequestProtobuf, type OtlpRequest, type OtlpSpan } from '../server/otlp/protocol.ts';
import { startTestReceiver } from '../server/otlp/test-receiver.ts';
import { summarize, type BenchContext } from './context.ts';

const BATCH = 1000;
const SPANS_PER_TRACE = 20;
const CLIENTS = 4;
const TOKEN = 'bench-ingest-token';

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  // Scaled with --events, within what a run should spend here.
  const spans = Math.max(20_000, Math.min(200_000, Math.round(ctx.events / 5 / BATCH) * BATCH));
  const results: Record<string, unknown> = { spans };

  // ---------------------------------------------------------------- queue cost
  {
    const db = await ctx.createDatabase();
    try {
      const off = await recordSpans(db.sql, spans / 2);
      await db.sql`select tracing.otlp_enable_export(true)`;
      const on = await recordSpans(db.sql, spans / 2);
      results.record_spans = {
        queue_off_spans_per_s: Math.round(off.spansPerSecond),
        queue_on_spans_per_s: Math.round(on.spansPerSecond),
        queue_on_batch_1000: summarize(on.batchMs),
      };
      ctx.log(`otlp: record_spans ${Math.round(off.spansPerSecond)} spans/s without the queue, ${Math.round(on.spansPerSecond)} with`);
    } finally {
      await db.drop();
    }
  }

  // ---------------------------------------------------------------- export
  {
    const db = await ctx.createDatabase();
    const receiver = await startTestReceiver();
    // The receiver answers without decoding: on two cores a decoding
    // collector would take its CPU from the exporter being measured.
    receiver.decode = false;
    const config: OtlpExportConfig = {
      endpoint: receiver.url,
      protocol: 'http/protobuf',
      headers: {},
      timeoutMs: 10_000,
      gzip: false,
      resource: { attributes: { 'deployment.environment.name': 'bench' } },
      batchSize: BATCH,
      statsIntervalMs: 3_600_000,
    };
    try {
      await db.sql`select tracing.otlp_enable_export(true)`;
      const exportFigures: Record<string, unknown> = {};
      for (const exporters of [1, 2]) {
        await recordSpans(db.sql, spans, { keep: true, events: true });
        await db.sql`vacuum analyze tracing.otlp_outbox`;
        const loops = Array.from({ length: exporters }, () => createOtlpExporter(db.sql, config, { log: () => {} }));
        const batchMs: number[] = [];
        const started = performance.now();
        await Promise.all(
          loops.map(async (exporter) => {
            for (;;) {
              const t = performance.now();
              const result = await exporter.exportBatch();
              if (result.kind === 'empty') return;
              if (result.kind !== 'exported') throw new Error(`export bench: ${result.kind}`);
              if (result.spans === BATCH) batchMs.push(performance.now() - t);
            }
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        const [left] = await db.sql`select count(*)::int as n from tracing.otlp_outbox`;
        if (left!.n !== 0) throw new Error(`export bench: ${left!.n} spans left in the queue`);
        exportFigures[`in_flight_${exporters}`] = {
          spans_per_s: Math.round(spans / seconds),
          batch_1000: summarize(batchMs),
        };
        ctx.log(`otlp: export with ${exporters} batch(es) in flight: ${Math.round(spans / seconds)} spans/s`);
      }
      const [status] = await db.sql`select exported_spans from tracing.otlp_export_status`;
      exportFigures.exported_spans = Number(status!.exported_spans);
      exportFigures.bytes_per_span = Math.round(receiver.bytesReceived / Number(status!.exported_spans));
      results.export = exportFigures;
    } finally {
      await receiver.close();
      await db.drop();
    }
  }

  // ---------------------------------------------------------------- ingest
  {
    const db = await ctx.createDatabase();
    const sql = postgres(db.url, { max: CLIENTS + 1, onnotice: () => {} });
    const ingestOptions = {
      sql,
      token: TOKEN,
      organizationId: '0a000000-0000-4000-8000-00000000000a',
      maxBodyBytes: 64 * 1024 * 1024,
      log: ctx.log,
    };
    const http = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor: async () => ({ role: 'tracegres_anonymous' }),
      routes: [createOtlpIngestRoute(ingestOptions)],
    });
    const grpcServer = await startOtlpGrpcServer({ ...ingestOptions, host: '127.0.0.1', port: 0 });
    const grpcClient = new grpc.Client(grpcServer.address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': ingestOptions.maxBodyBytes,
    });
    const grpcMetadata = new grpc.Metadata();
    grpcMetadata.set('authorization', `Bearer ${TOKEN}`);
    const senders = {
      async 'http/protobuf'(body: Uint8Array) {
        await post(body, 'application/x-protobuf');
      },
      async 'http/json'(body: Uint8Array) {
        await post(body, 'application/json');
      },
      grpc: (body: Uint8Array) =>
        new Promise<void>((resolve, reject) =>
          grpcClient.makeUnaryRequest(
            TRACE_SERVICE_EXPORT_PATH,
            (bytes: Buffer) => bytes,
            (bytes: Buffer) => bytes,
            Buffer.from(body),
            grpcMetadata,
            (error) => (error ? reject(new Error(`ingest bench: gRPC ${error.code} ${error.details}`)) : resolve()),
          ),
        ),
    };
    async function post(body: Uint8Array, contentType: string) {
      const response = await fetch(`${http.url}/v1/traces`, {
        method: 'POST',
        body: new Uint8Array(body),
        headers: { 'content-type': contentType, authorization: `Bearer ${TOKEN}` },
      });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`ingest bench: HTTP ${response.status}`);
    }
    try {
      // The queue on, as when this server also exports.
      await sql`select tracing.otlp_enable_export(true)`;
      const ingest: Record<string, unknown> = {};
      for (const protocol of ['http/protobuf', 'grpc', 'http/json'] as const) {
        const total = protocol === 'http/json' ? spans / 2 : spans;
        const bodies = Array.from({ length: total / BATCH }, () => {
          const request = otlpRequest(BATCH);
          return protocol === 'http/json' ? new TextEncoder().encode(JSON.stringify(request)) : encodeRequestProtobuf(request);
        });
        const latencies: number[] = [];
        let next = 0;
        const started = performance.now();
        await Promise.all(
          Array.from({ length: CLIENTS }, async () => {
            while (next < bodies.length) {
              const body = bodies[next++]!;
              const t = performance.now();
              await senders[protocol](body);
              latencies.push(performance.now() - t);
            }
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        ingest[{ 'http/protobuf': 'protobuf', grpc: 'grpc', 'http/json': 'json' }[protocol]] = {
          spans: total,
          clients: CLIENTS,
          spans_per_s: Math.round(total / seconds),
          request_1000_spans: summarize(latencies),
        };
        ctx.log(`otlp: ingest ${protocol}: ${Math.round(total / seconds)} spans/s`);
      }
      const rate = (key: string) => (ingest[key] as { spans_per_s: number }).spans_per_s;
      ingest.grpc_vs_http_protobuf = Number((rate('grpc') / rate('protobuf')).toFixed(2));
      const [stored] = await sql`select count(*)::int as n from tracing.spans`;
      ingest.stored_spans = stored!.n;
      results.ingest = ingest;
    } finally {
      grpcClient.close();
      await grpcServer.close();
      await http.close();
      await sql.end();
      await db.drop();
    }
  }

  results.targets = { export_spans_per_s: 20_000, ingest_spans_per_s: 20_000, grpc_ingest_vs_http_protobuf: 1 };
  return results;
}

/** Records `count` spans in 1,000-span record_spans calls; optionally keeps their traces and gives them domain events. */
async function recordSpans(sql: postgres.Sql, count: number, options: { keep?: boolean; events?: boolean } = {}) {
  const batchMs: number[] = [];
  let elapsed = 0;
  for (let done = 0; done < count; done += BATCH) {
    const batch: unknown[] = [];
    const traces: string[] = [];
    for (let t = 0; t < BATCH / SPANS_PER_TRACE; t++) {
      const traceId = randomBytes(16).toString('hex');
      traces.push(traceId);
      const rootId = randomBytes(8).toString('hex');
      const start = Date.now() - 60_000;
      for (let s = 0; s < SPANS_PER_TRACE; s++) {
        batch.push({
          trace_id: traceId,
          span_id: s === 0 ? rootId : randomBytes(8).toString('hex'),
          parent_span_id: s === 0 ? null : rootId,
          name: s === 0 ? 'POST /checkout' : `step ${s}`,
          service: s % 2 ? 'edge' : 'worker',
          kind: s === 0 ? 'server' : 'internal',
          start_time: new Date(start + s).toISOString(),
          end_time: new Date(start + s + 5).toISOString(),
          status: 'ok',
          attributes: { 'http.route': '/checkout', 'app.step': s, 'app.ratio': 0.5, 'app.retry': false },
          session_id: '6f1c3a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b',
        });
      }
    }
    const t = performance.now();
    await sql`select tracing.record_spans(${sql.json(batch as postgres.JSONValue)})`;
    const ms = performance.now() - t;
    batchMs.push(ms);
    elapsed += ms;
    if (options.keep) {
      await sql`insert into tracing.trace_sampling (trace_id, sampled_by, sample_rate, environment)
                select tracing.hex_to_trace_id(t), 'head', 1, 'development' from unnest(${traces}::text[]) as t`;
    }
    if (options.events) {
      await sql`insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, trace_id, span_id)
                select 'order', 'o-' || n, 'OrderPlaced', '{}', (s ->> 'trace_id')::text::uuid, tracing.hex_to_span_id(s ->> 'span_id')
                  from jsonb_array_elements(${sql.json(batch.filter((_, i) => i % 10 === 0) as postgres.JSONValue)}) with ordinality as e(s, n)`;
    }
  }
  return { spansPerSecond: count / (elapsed / 1000), batchMs };
}

/** A request of `count` spans in 20-span traces of one service, as a tracer sends them. */
export function otlpRequest(count: number): OtlpRequest {
  const spans: OtlpSpan[] = [];
  const start = BigInt(Date.now() - 60_000) * 1_000_000n;
  for (let i = 0; i < count; i += SPANS_PER_TRACE) {
    const traceId = randomBytes(16).toString('hex');
    const rootId = randomBytes(8).toString('hex');
    for (let s = 0; s < SPANS_PER_TRACE; s++) {
      spans.push({
        traceId,
        spanId: s === 0 ? rootId : randomBytes(8).toString('hex'),
        ...(s === 0 ? {} : { parentSpanId: rootId }),
        name: s === 0 ? 'GET /orders/:id' : `SELECT ${s}`,
        kind: s === 0 ? 2 : 3,
        startTimeUnixNano: String(start + BigInt(s) * 1_000_000n),
        endTimeUnixNano: String(start + BigInt(s + 5) * 1_000_000n),
        attributes: [
          { key: 'http.route', value: { stringValue: '/orders/:id' } },
          { key: 'db.rows', value: { intValue: String(s) } },
          { key: 'session.id', value: { stringValue: '6f1c3a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b' } },
        ],
        status: { code: 1 },
      });
    }
  }
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }] },
        scopeSpans: [{ scope: { name: 'bench' }, spans }],
      },
    ],
  };
}
