// The OTLP exporter against a real local receiver that decodes with the
// OTLP .proto definitions: every mapped field, sampling, and delivery when
// the receiver is down, slow, throttling or refusing.
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import type { OtlpExportConfig } from './config.ts';
import { createOtlpExporter, retryAfterMs } from './exporter.ts';
import type { OtlpAnyValue, OtlpKeyValue, OtlpSpan } from './protocol.ts';
import { startTestReceiver, type TestReceiver } from './test-receiver.ts';

const db = useTestDatabase();
let sql: postgres.Sql;
let receiver: TestReceiver;

beforeAll(async () => {
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  receiver = await startTestReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await sql?.end();
});
beforeEach(async () => {
  await sql`delete from tracing.otlp_outbox`;
  await sql`delete from tracing.otlp_dead_letters`;
  await sql`update tracing.otlp_export_settings set enabled = true, follow_sampling = true, max_queued_spans = 10000000`;
  receiver.requests.length = 0;
});

function config(overrides: Partial<OtlpExportConfig> = {}): OtlpExportConfig {
  return {
    endpoint: receiver.url,
    protocol: 'http/protobuf',
    headers: { 'x-api-key': 'secret-key' },
    timeoutMs: 2000,
    gzip: false,
    resource: { attributes: { 'deployment.environment.name': 'test' }, serviceName: 'fallback-service' },
    batchSize: 100,
    statsIntervalMs: 60_000,
    ...overrides,
  };
}

const quiet = { log: () => {}, pollIntervalMs: 20, initialBackoffMs: 20, maxBackoffMs: 200 };

let counter = 0;
function traceHex(): string {
  counter += 1;
  return `${counter.toString(16).padStart(8, '0')}aaaabbbbccccdddd${Math.floor(Math.random() * 0xffffffff)
    .toString(16)
    .padStart(8, '0')}`;
}

async function record(spans: unknown[]): Promise<void> {
  await sql`select tracing.record_spans(${sql.json(spans as postgres.JSONValue)})`;
}

async function keep(traceId: string, sampledBy = 'head'): Promise<void> {
  // Decisions are per trace and organization: one for each organization the trace's spans have.
  await sql`insert into tracing.trace_sampling (trace_id, organization_id, sampled_by, sample_rate, environment)
            select distinct trace_id, organization_id, ${sampledBy}, 1, 'development'
              from tracing.spans where trace_id = tracing.hex_to_trace_id(${traceId})
            union
            select tracing.hex_to_trace_id(${traceId}), null, ${sampledBy}, 1, 'development'`;
}

function attr(attributes: OtlpKeyValue[] | undefined, key: string): OtlpAnyValue | undefined {
  return attributes?.find((a) => a.key === key)?.value;
}

function hexOf(id: unknown): string {
  return String(id ?? '');
}

describe('mapping to OTLP', () => {
  it('sends every field of a recorded span as the OTLP specification maps it', async () => {
    const traceId = traceHex();
    const session = '6f1c3a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
    const correlation = '1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b';
    const organization = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
    await record([
      {
        trace_id: traceId,
        span_id: '1111111111111111',
        name: 'POST /checkout',
        service: 'edge',
        kind: 'server',
        start_time: '2026-03-01T10:00:00.123456Z',
        end_time: '2026-03-01T10:00:01.5Z',
        status: 'error',
        status_message: 'payment declined',
        attributes: { 'http.method': 'POST', 'http.status_code': 402, ratio: 0.25, retry: true, tags: ['a', 'b'], nested: { k: 'v' } },
        events: [{ name: 'exception', time: '2026-03-01T10:00:01.000001Z', attributes: { 'exception.message': 'declined' } }],
        links: [{ trace_id: 'abcdefabcdefabcdefabcdefabcdef12', span_id: 'abcdefabcdef1234', attributes: { 'link.kind': 'follows' } }],
        correlation_id: correlation,
        session_id: session,
        organization_id: organization,
      },
      {
        trace_id: traceId,
        span_id: '2222222222222222',
        parent_span_id: '1111111111111111',
        name: 'charge card',
        service: 'unknown_service',
        kind: 'client',
        start_time: '2026-03-01T10:00:00.2Z',
        end_time: '2026-03-01T10:00:00.9Z',
        status: 'ok',
      },
    ]);
    await sql`insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, trace_id, span_id, organization_id, created_at)
              values ('order', 'o-1', 'OrderPlaced', '{}', tracing.hex_to_trace_id(${traceId}), tracing.hex_to_span_id('1111111111111111'),
                      ${organization}, '2026-03-01T10:00:00.5Z')`;
    await keep(traceId);

    const exporter = createOtlpExporter(sql, config(), quiet);
    expect(await exporter.exportBatch()).toEqual({ kind: 'exported', spans: 2 });

    expect(receiver.requests).toHaveLength(1);
    const received = receiver.requests[0]!;
    expect(received.headers['x-api-key']).toBe('secret-key');
    expect(received.headers['content-type']).toBe('application/x-protobuf');
    const resources = received.request.resourceSpans!;
    const byService = new Map(resources.map((rs) => [attr(rs.resource?.attributes, 'service.name')?.stringValue, rs]));
    // The span's own service names its resource; OTEL_SERVICE_NAME covers spans without one.
    expect([...byService.keys()].sort()).toEqual(['edge', 'fallback-service']);
    expect(attr(byService.get('edge')!.resource!.attributes, 'deployment.environment.name')).toEqual({ stringValue: 'test' });
    expect(byService.get('edge')!.scopeSpans![0]!.scope!.name).toBe('tracegres');

    const root = byService.get('edge')!.scopeSpans![0]!.spans![0]! as OtlpSpan;
    expect(hexOf(root.traceId)).toBe(traceId);
    expect(hexOf(root.spanId)).toBe('1111111111111111');
    expect(root.parentSpanId ?? '').toBe('');
    expect(root.name).toBe('POST /checkout');
    expect(root.kind).toBe(2); // SPAN_KIND_SERVER
    expect(root.startTimeUnixNano).toBe(String(Date.parse('2026-03-01T10:00:00.123Z') * 1e6 + 456_000));
    expect(root.endTimeUnixNano).toBe(String(Date.parse('2026-03-01T10:00:01.5Z') * 1e6));
    expect(root.status).toEqual({ code: 2, message: 'payment declined' });
    const attributes = root.attributes!;
    expect(attr(attributes, 'http.method')).toEqual({ stringValue: 'POST' });
    expect(attr(attributes, 'http.status_code')).toEqual({ intValue: '402' });
    expect(attr(attributes, 'ratio')).toEqual({ doubleValue: 0.25 });
    expect(attr(attributes, 'retry')).toEqual({ boolValue: true });
    expect(attr(attributes, 'tags')).toEqual({ arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } });
    expect(attr(attributes, 'nested')).toEqual({ kvlistValue: { values: [{ key: 'k', value: { stringValue: 'v' } }] } });
    expect(attr(attributes, 'session.id')).toEqual({ stringValue: session });
    expect(attr(attributes, 'tracegres.correlation_id')).toEqual({ stringValue: correlation });
    expect(attr(attributes, 'tracegres.organization_id')).toEqual({ stringValue: organization });
    // The domain event and the span event, in time order.
    expect(root.events!.map((e) => e.name)).toEqual(['OrderPlaced', 'exception']);
    const [domain, exception] = root.events!;
    expect(domain!.timeUnixNano).toBe(String(Date.parse('2026-03-01T10:00:00.5Z') * 1e6));
    expect(attr(domain!.attributes, 'tracegres.stream.type')).toEqual({ stringValue: 'order' });
    expect(attr(domain!.attributes, 'tracegres.stream.id')).toEqual({ stringValue: 'o-1' });
    expect(attr(domain!.attributes, 'tracegres.event.id')?.intValue).toMatch(/^\d+$/);
    expect(exception!.timeUnixNano).toBe(String(Date.parse('2026-03-01T10:00:01Z') * 1e6 + 1000));
    expect(attr(exception!.attributes, 'exception.message')).toEqual({ stringValue: 'declined' });
    expect(root.links).toHaveLength(1);
    expect(hexOf(root.links![0]!.traceId)).toBe('abcdefabcdefabcdefabcdefabcdef12');
    expect(hexOf(root.links![0]!.spanId)).toBe('abcdefabcdef1234');
    expect(attr(root.links![0]!.attributes, 'link.kind')).toEqual({ stringValue: 'follows' });

    const child = byService.get('fallback-service')!.scopeSpans![0]!.spans![0]!;
    expect(hexOf(child.parentSpanId)).toBe('1111111111111111');
    expect(child.kind).toBe(3); // SPAN_KIND_CLIENT
    // OTLP keeps the status message for errors only.
    expect(child.status).toEqual({ code: 1 });

    const [status] = await sql`select queue_depth, exported_spans from tracing.otlp_export_status`;
    expect(Number(status!.queue_depth)).toBe(0);
    expect(Number(status!.exported_spans)).toBeGreaterThanOrEqual(2);
  });

  it('speaks OTLP/JSON with hex ids when the protocol is http/json, gzipped when asked', async () => {
    const traceId = traceHex();
    await record([
      {
        trace_id: traceId,
        span_id: '3333333333333333',
        name: 'json',
        service: 's',
        start_time: '2026-03-01T10:00:00Z',
        end_time: '2026-03-01T10:00:00.001Z',
      },
    ]);
    await keep(traceId);
    const exporter = createOtlpExporter(sql, config({ protocol: 'http/json', gzip: true }), quiet);
    expect(await exporter.exportBatch()).toEqual({ kind: 'exported', spans: 1 });
    const received = receiver.requests[0]!;
    expect(received.headers['content-type']).toBe('application/json');
    expect(received.headers['content-encoding']).toBe('gzip');
    const span = received.request.resourceSpans![0]!.scopeSpans![0]!.spans![0]!;
    expect(span.traceId).toBe(traceId);
    expect(span.spanId).toBe('3333333333333333');
  });
});

describe('sampling', () => {
  it('sends spans of kept traces, discards those of dropped traces, holds undecided ones', async () => {
    const [kept, dropped, undecided] = [traceHex(), traceHex(), traceHex()];
    for (const [traceId, spanId] of [
      [kept, '4444444444444441'],
      [dropped, '4444444444444442'],
      [undecided, '4444444444444443'],
    ] as const) {
      await record([
        {
          trace_id: traceId,
          span_id: spanId,
          name: 'op',
          service: 's',
          start_time: '2026-03-01T10:00:00Z',
          end_time: '2026-03-01T10:00:01Z',
        },
      ]);
    }
    await keep(kept, 'error');
    await keep(dropped, 'dropped');
    const exporter = createOtlpExporter(sql, config(), quiet);
    expect(await exporter.exportBatch()).toEqual({ kind: 'exported', spans: 1 });
    expect(hexOf(receiver.acceptedSpans()[0]!.traceId)).toBe(kept);
    const waiting =
      await sql`select tracing.trace_id_to_hex(trace_id) as trace_id, available_at > now() as set_aside from tracing.otlp_outbox`;
    expect(waiting).toEqual([{ trace_id: undecided, set_aside: true }]);
    // Once sampling keeps the trace (and its recheck is due), it goes out.
    await keep(undecided);
    await sql`update tracing.otlp_outbox set available_at = now()`;
    expect(await exporter.exportBatch()).toEqual({ kind: 'exported', spans: 1 });
  });

  it('never fails an insert when the queue is full: the span is stored, a warning raised, the shortfall counted', async () => {
    await sql`update tracing.otlp_export_settings set max_queued_spans = 2`;
    const traceId = traceHex();
    const notices: string[] = [];
    const listening = postgres(db.url, { max: 1, onnotice: (n) => notices.push(String(n.message)) });
    try {
      const spans = ['5555555555555551', '5555555555555552', '5555555555555553'].map((span_id) => ({
        trace_id: traceId,
        span_id,
        name: 'op',
        service: 's',
        start_time: '2026-03-01T10:00:00Z',
        end_time: '2026-03-01T10:00:01Z',
      }));
      const recorded = (await listening`select recorded from tracing.record_spans(${listening.json(spans)})`)[0]!.recorded;
      expect(recorded).toBe(3);
    } finally {
      await listening.end();
    }
    expect(notices.join('\n')).toMatch(/OTLP export queue is full \(2 spans\): 1 spans recorded but not queued/);
    const [status] = await sql`select queue_depth, spans_not_queued from tracing.otlp_export_status`;
    expect(Number(status!.queue_depth)).toBe(2);
    expect(Number(status!.spans_not_queued)).toBeGreaterThanOrEqual(1);
  });
});

describe('delivery', () => {
  it('loses nothing and duplicates only what a slow receiver took late, through down, slow, 429, 503 and 400', async () => {
    const traceIds = Array.from({ length: 30 }, () => traceHex());
    const expected = new Set<string>();
    for (const traceId of traceIds) {
      const spans = Array.from({ length: 5 }, (_, i) => ({
        trace_id: traceId,
        span_id: `66666666666666${(i + 1).toString(16).padStart(2, '0')}`,
        name: 'op',
        service: 's',
        start_time: '2026-03-01T10:00:00Z',
        end_time: '2026-03-01T10:00:01Z',
      }));
      await record(spans);
      await keep(traceId);
      for (const span of spans) expected.add(`${traceId}:${span.span_id}`);
    }
    await receiver.down();
    const exporter = createOtlpExporter(sql, config({ batchSize: 20, timeoutMs: 300 }), quiet);
    // Down: connection refused, retried with backoff, nothing dequeued.
    const refused = await exporter.exportBatch();
    expect(refused.kind).toBe('retry');
    expect(refused.kind === 'retry' && refused.reason).toMatch(/network error/);
    await receiver.listen();
    receiver.script(
      { kind: 'status', status: 503 },
      { kind: 'status', status: 429, retryAfter: '0' },
      { kind: 'slow', delayMs: 600 }, // longer than the timeout: retried, and the receiver keeps it too
      { kind: 'status', status: 400, message: 'span too large' },
      { kind: 'status', status: 502 },
    );
    await sql`update tracing.otlp_outbox set available_at = now()`;
    exporter.start();
    await waitFor(async () => {
      const waiting = (await sql`select count(*)::int as waiting from tracing.otlp_outbox`)[0]!.waiting;
      return waiting === 0;
    }, 20_000);
    await exporter.stop();

    const deadLetters =
      await sql`select tracing.trace_id_to_hex(trace_id) || ':' || tracing.span_id_to_hex(span_id) as id, http_status, reason from tracing.otlp_dead_letters`;
    expect(deadLetters).toHaveLength(20);
    expect(deadLetters.every((d) => d.http_status === 400 && /HTTP 400: span too large/.test(d.reason))).toBe(true);
    const delivered = receiver.acceptedSpans().map((s) => `${hexOf(s.traceId)}:${hexOf(s.spanId)}`);
    const deliveredSet = new Set(delivered);
    const dead = new Set(deadLetters.map((d) => d.id as string));
    // Every span either reached the collector or is in the dead letters.
    for (const id of expected) expect(deliveredSet.has(id) || dead.has(id)).toBe(true);
    // Duplicates: only the batch the slow receiver accepted after the timeout.
    expect(delivered.length - deliveredSet.size).toBeLessThanOrEqual(20);
    const [status] = await sql`select exported_spans, retried_spans, dead_lettered_spans from tracing.otlp_export_status`;
    expect(Number(status!.retried_spans)).toBeGreaterThanOrEqual(20 * 4);
    expect(Number(status!.dead_lettered_spans)).toBeGreaterThanOrEqual(20);
  }, 30_000);

  it("dead-letters a partially rejected batch with the collector's count and message; requeueing sends it again", async () => {
    const traceId = traceHex();
    await record(
      [1, 2, 3].map((i) => ({
        trace_id: traceId,
        span_id: `777777777777777${i}`,
        name: 'op',
        service: 's',
        start_time: '2026-03-01T10:00:00Z',
        end_time: '2026-03-01T10:00:01Z',
      })),
    );
    await keep(traceId);
    receiver.script({ kind: 'partial', rejected: 1, message: 'attribute value too long' });
    const exporter = createOtlpExporter(sql, config(), quiet);
    const result = await exporter.exportBatch();
    expect(result.kind).toBe('dead_lettered');
    const rows = await sql`select reason, http_status from tracing.otlp_dead_letters`;
    expect(rows).toHaveLength(3);
    expect(rows[0]!.reason).toBe('partial success: the collector rejected 1 of 3 spans of this batch: attribute value too long');
    expect(rows[0]!.http_status).toBeNull();
    const requeued = (await sql`select tracing.otlp_requeue_dead_letters() as requeued`)[0]!.requeued;
    expect(Number(requeued)).toBe(3);
    expect(await exporter.exportBatch()).toEqual({ kind: 'exported', spans: 3 });
  });

  it('dead-letters only a span that cannot be encoded, with the reason, and sends the rest of its batch', async () => {
    const traceId = traceHex();
    let deep: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 40; i += 1) deep = { nested: deep };
    const span = (spanId: string, attributes: Record<string, unknown>) => ({
      trace_id: traceId,
      span_id: spanId,
      name: 'op',
      service: 's',
      start_time: '2026-03-01T10:00:00Z',
      end_time: '2026-03-01T10:00:01Z',
      attributes,
    });
    await record([span('8888888888888881', {}), span('8888888888888882', { deep }), span('8888888888888883', {})]);
    // Written straight into the table, as an older writer without the cap could have left it.
    await sql`update tracing.spans set attributes = ${sql.json({ deep } as postgres.JSONValue)} where span_id = tracing.hex_to_span_id('8888888888888882')`;
    await keep(traceId);
    const exporter = createOtlpExporter(sql, config(), quiet);
    expect(await exporter.exportBatch()).toEqual({ kind: 'exported', spans: 2 });
    expect(
      receiver
        .acceptedSpans()
        .map((s) => hexOf(s.spanId))
        .sort(),
    ).toEqual(['8888888888888881', '8888888888888883']);
    const dead = await sql`select tracing.span_id_to_hex(span_id) as span_id, reason from tracing.otlp_dead_letters`;
    expect(dead).toHaveLength(1);
    expect(dead[0]!.span_id).toBe('8888888888888882');
    expect(dead[0]!.reason).toMatch(/cannot be encoded as OTLP.*max depth exceeded/);
    expect(await exporter.exportBatch()).toEqual({ kind: 'empty' });
  });

  it('never lets two exporters send the same span (skip locked)', async () => {
    const traceId = traceHex();
    await record(
      Array.from({ length: 60 }, (_, i) => ({
        trace_id: traceId,
        span_id: `88888888888888${(i + 1).toString(16).padStart(2, '0')}`,
        name: 'op',
        service: 's',
        start_time: '2026-03-01T10:00:00Z',
        end_time: '2026-03-01T10:00:01Z',
      })),
    );
    await keep(traceId);
    // Each send is slow, so the three exporters' claims overlap in time.
    receiver.script(...Array.from({ length: 10 }, () => ({ kind: 'slow' as const, delayMs: 100 })));
    const exporters = [1, 2, 3].map(() => createOtlpExporter(sql, config({ batchSize: 10 }), quiet));
    await Promise.all(
      exporters.map(async (exporter) => {
        for (let i = 0; i < 4; i++) await exporter.exportBatch();
      }),
    );
    const delivered = receiver.acceptedSpans().map((s) => hexOf(s.spanId));
    expect(delivered).toHaveLength(60);
    expect(new Set(delivered).size).toBe(60);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
