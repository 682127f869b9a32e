// recordSpan and withTracing against a real database, through
// tracing.record_spans(jsonb).
import postgres from 'postgres';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { recordSpan } from './record-span.ts';
import { withTracing } from '../edge/with-tracing.ts';
import { extractTracingContext } from '../trace-context/extract.ts';
import { createSpan, endSpan, type FinishedSpan } from '../trace-context/span.ts';

const db = useTestDatabase();
afterEach(() => {
  vi.restoreAllMocks();
});

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function finishedSpan() {
  const context = extractTracingContext(new Request('https://edge.example/f', { headers: { traceparent: TRACEPARENT } }));
  const span = createSpan(context, 'POST probe', { kind: 'server', service: 'probe', attributes: { 'http.request.method': 'POST' } });
  return endSpan(span, { code: 'ok' });
}

async function storedCount(traceId: string, spanId: string): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from tracing.spans
    where trace_id = tracing.hex_to_trace_id(${traceId}) and span_id = tracing.hex_to_span_id(${spanId})`;
  return row?.n ?? 0;
}

describe('recordSpan', () => {
  it('writes a span through tracing.record_spans, idempotently', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const span = finishedSpan();
    expect(await recordSpan(db.sql, span)).toBe(true);
    expect(await recordSpan(db.sql, span)).toBe(true);
    expect(errors).not.toHaveBeenCalled();
    expect(await storedCount(span.traceId, span.spanId)).toBe(1);
  });

  it('stores a span with NUL in its name or an attribute, or an empty name', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const nul = { ...finishedSpan(), name: 'POST \u0000probe', attributes: { note: 'a\u0000b', lone: '\ud800' } };
    const unnamed = { ...finishedSpan(), name: '' };
    expect(await recordSpan(db.sql, nul)).toBe(true);
    expect(await recordSpan(db.sql, unnamed)).toBe(true);
    expect(errors).not.toHaveBeenCalled();
    const [row] = await db.sql`select name, attributes from tracing.spans
      where trace_id = tracing.hex_to_trace_id(${nul.traceId}) and span_id = tracing.hex_to_span_id(${nul.spanId})`;
    expect(row).toEqual({ name: 'POST \ufffdprobe', attributes: { note: 'a\ufffdb', lone: '\ufffd' } });
    expect(await storedCount(unnamed.traceId, unnamed.spanId)).toBe(1);
  });

  it('logs one structured line with the reason and resolves false when the database refuses the span', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    // Ends before it starts: the mapping passes it on, the database's rule refuses it.
    const ended = finishedSpan();
    const span: FinishedSpan = { ...ended, endTime: new Date(ended.startTime.getTime() - 1000) };
    await expect(recordSpan(db.sql, span)).resolves.toBe(false);
    expect(errors).toHaveBeenCalledTimes(1);
    const line = JSON.parse(String(errors.mock.calls[0]?.[0])) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'error',
      message: 'span recording failed',
      span_id: span.spanId,
      error_name: 'SpanRejectedError',
      error_message: 'end_time must not be before start_time',
    });
    expect(await storedCount(span.traceId, span.spanId)).toBe(0);
  });

  it('logs one structured line and resolves false when the database fails', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const closed = postgres(db.url, { max: 1, onnotice: () => {} });
    await closed.end();
    const span = finishedSpan();
    await expect(recordSpan(closed, span)).resolves.toBe(false);
    expect(errors).toHaveBeenCalledTimes(1);
    const line = JSON.parse(String(errors.mock.calls[0]?.[0])) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'error', message: 'span recording failed', trace_id: span.traceId, span_id: span.spanId });
    expect(JSON.stringify(line)).not.toContain(db.url);
  });
});

describe('withTracing with a database', () => {
  it('records the server span after the response, through waitUntil', async () => {
    const pending: Promise<unknown>[] = [];
    let spanId = '';
    const handler = withTracing(
      (_request, { span }) => {
        spanId = span.spanId;
        return new Response('ok');
      },
      { service: 'probe', sql: db.sql, waitUntil: (p) => pending.push(p) },
    );
    const response = await handler(new Request('https://edge.example/f', { method: 'POST', headers: { traceparent: TRACEPARENT } }));
    expect(response.status).toBe(200);
    expect(pending).toHaveLength(1);
    expect(await pending[0]).toBe(true);
    expect(await storedCount('4bf92f3577b34da6a3ce929d0e0e4736', spanId)).toBe(1);
  });
});

describe("withTracing's sampling decision against the database's", () => {
  it('gives a trace the decision tracing.run_sampling then records for it', async () => {
    await db.sql.unsafe(`
      update tracing.sampling_environments set rate = 0.1, honor_forced = false, tail_window = '2 minutes', tail_latency_ms = 2000
       where environment = 'production';
      update tracing.sampling_settings set environment = 'production', watermark = now() - interval '1 day';`);
    // No sampling option: withTracing reads these settings from the database itself.

    // At 10% the head rule keeps the first trace and not the others; the last one fails.
    const cases = [
      { traceId: '0123456789abcdef23ffffffffffffff', status: 200, flags: '01', rate: 0.1, db: 'head@0.1' },
      { traceId: '0123456789abcdef2300000000000001', status: 200, flags: '00', rate: undefined, db: 'dropped@0.1' },
      { traceId: '0123456789abcdef2400000000000001', status: 500, flags: '01', rate: 1, db: 'error@1' },
    ];
    for (const c of cases) {
      const pending: Promise<unknown>[] = [];
      const spans: FinishedSpan[] = [];
      const handler = withTracing(() => new Response(null, { status: c.status }), {
        service: 'probe',
        sql: db.sql,
        waitUntil: (p) => pending.push(p),
        onSpanEnd: (s) => spans.push(s),
      });
      const response = await handler(
        new Request('https://edge.example/f', { headers: { traceparent: `00-${c.traceId}-00f067aa0ba902b7-01` } }),
      );
      expect(await Promise.all(pending)).toEqual([true]);
      expect(response.headers.get('traceresponse')?.slice(-2), c.traceId).toBe(c.flags);
      expect(spans[0]?.attributes['tracegres.sample_rate'], c.traceId).toBe(c.rate);
    }
    // Past the tail window, so the trace not kept up front is decided too.
    await db.sql`update tracing.spans set recorded_at = recorded_at - interval '10 minutes'`;
    await db.sql`update tracing.sampling_settings set watermark = watermark - interval '10 minutes'`;
    await db.sql`call tracing.run_sampling()`;
    for (const c of cases) {
      const [d] = await db.sql`
        select sampled_by || '@' || sample_rate::text as decision
          from tracing.trace_sampling where trace_id = tracing.hex_to_trace_id(${c.traceId})`;
      expect(d?.decision, c.traceId).toBe(c.db);
    }
  });
});
