// OTLP through `npm start` end to end: the OpenTelemetry JS SDK sends spans
// to the server's /v1/traces and its OTLP/gRPC port, they land in the trace timeline, sampling
// keeps the trace, and the exporter loop (configured by the OTEL_* variables)
// forwards them to a collector.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { Metadata } from '@grpc/grpc-js';
import { OTLPTraceExporter as OTLPGrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import postgres from 'postgres';
import { afterAll, expect, it } from 'vitest';
import { embeddedDatabaseUrl, readConfig } from '../config.ts';
import { freePort } from '../database/embedded-postgres.ts';
import { startNpmStart, type NpmStart } from '../testing/npm-start.ts';
import { startTestReceiver } from './test-receiver.ts';

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-otlp-start-'));
let started: NpmStart | undefined;
afterAll(async () => {
  await started?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

it('ingests SDK spans through npm start and exports them once sampling keeps the trace', async () => {
  const receiver = await startTestReceiver();
  const pgPort = await freePort();
  started = await startNpmStart({
    dataDir,
    pgPort,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=abc%20def',
      OTEL_SERVICE_NAME: 'tracegres-test',
    },
    readyTimeoutMs: 90_000,
  });
  const output = started.output;
  const ingestUrl = /OTLP ingest:\s+(\S+)/.exec(output())![1]!;
  const grpcAddress = /OTLP\/gRPC ingest:\s+(\S+)/.exec(output())![1]!;
  const token = /development token[^\n]*\n(\S+)/.exec(output())![1]!;
  // The exporter announces itself once it has turned queueing on.
  await waitFor(async () => output().includes(`exporting to http://127.0.0.1:${receiver.port}/v1/traces (http/protobuf)`), 10_000, output);

  // An admin token ingests for the organization it names.
  const headers = { authorization: `Bearer ${token}`, 'x-tracegres-organization-id': '0d000000-0000-4000-8000-00000000000d' };
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
  const checkout = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: ingestUrl, headers }))],
  });
  const payments = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'payments' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPGrpcExporter({ url: `http://${grpcAddress}`, metadata }))],
  });
  const t0 = Date.now() - 1000;
  const root = checkout.getTracer('npm-start-test').startSpan('POST /checkout', { startTime: new Date(t0) });
  const inRoot = trace.setSpan(context.active(), root);
  const child1 = checkout.getTracer('npm-start-test').startSpan('reserve stock', { startTime: new Date(t0 + 10) }, inRoot);
  child1.end(new Date(t0 + 40));
  const child2 = payments.getTracer('npm-start-test').startSpan('charge card', { startTime: new Date(t0 + 50) }, inRoot);
  child2.end(new Date(t0 + 90));
  root.end(new Date(t0 + 100));
  for (const provider of [checkout, payments]) {
    await provider.forceFlush();
    await provider.shutdown();
  }
  const traceId = root.spanContext().traceId;

  const sql = postgres(embeddedDatabaseUrl(readConfig({ TRACEGRES_DATA_DIR: dataDir, TRACEGRES_EMBEDDED_PG_PORT: String(pgPort) })), {
    max: 1,
    onnotice: () => {},
  });
  try {
    const rows =
      await sql`select span_id, parent_span_id, offset_ms, duration_ms from api.get_trace_timeline(${traceId}) order by position`;
    expect(rows.map((r) => [r.span_id, r.parent_span_id])).toEqual([
      [root.spanContext().spanId, null],
      [child1.spanContext().spanId, root.spanContext().spanId],
      [child2.spanContext().spanId, root.spanContext().spanId],
    ]);
    expect(rows[1]!.offset_ms).toBeCloseTo(10, 6);
    expect(rows[1]!.duration_ms).toBeCloseTo(30, 6);

    // Development keeps every trace (rate 1); decide now rather than at the
    // next minute, and let the exporter look again at once.
    await sql`call tracing.run_sampling()`;
    await sql`update tracing.otlp_outbox set available_at = now()`;
    await waitFor(async () => receiver.acceptedSpans().length >= 3, 15_000, output);
    const exported = receiver
      .acceptedSpans()
      .map((s) => s.spanId)
      .sort();
    expect(exported).toEqual([root, child1, child2].map((s) => s.spanContext().spanId).sort());
    expect(receiver.requests[0]!.headers['x-collector-key']).toBe('abc def');
  } finally {
    await sql.end();
    await receiver.close();
  }
}, 120_000);

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, context: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`condition not met within ${timeoutMs} ms:\n${context()}`);
}
