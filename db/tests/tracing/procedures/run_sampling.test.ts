// tracing.run_sampling: one decision per trace, recorded with its rate;
// errors always kept; forcing only where allowed; slow traces kept by the
// tail decision; dropped traces lose their spans and summaries, never their
// domain events.
import { randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import { beforeEach, describe, expect, it } from 'vitest';
import { first } from '../../helpers/event-ledger.ts';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

/** A trace id whose head decision at 10% is `keep` (lower 56 bits at the top or bottom of the range). */
function traceId(keep: boolean): string {
  return randomBytes(9).toString('hex') + (keep ? 'ffffffffffffff' : '00000000000001');
}

let spanCounter = 0;
interface SpanSpec {
  name?: string;
  root?: boolean;
  status?: 'ok' | 'error' | 'unset';
  durationMs?: number;
  /** Start after the trace's first span, in ms. */
  startMs?: number;
  attributes?: Record<string, unknown>;
}

async function recordTrace(trace: string, spans: SpanSpec[] = [{ root: true }, {}], organizationId?: string): Promise<void> {
  const rootId = (++spanCounter).toString(16).padStart(16, '0');
  const start = Date.parse('2026-01-01T00:00:00Z');
  const payload = spans.map((s, i) => ({
    trace_id: trace,
    span_id: i === 0 ? rootId : (++spanCounter).toString(16).padStart(16, '0'),
    parent_span_id: i === 0 || s.root ? null : rootId,
    name: s.name ?? (i === 0 ? 'GET /orders' : 'db.query'),
    service: 'api',
    start_time: new Date(start + (s.startMs ?? 0)).toISOString(),
    end_time: new Date(start + (s.startMs ?? 0) + (s.durationMs ?? 40)).toISOString(),
    status: s.status ?? 'ok',
    attributes: s.attributes ?? {},
    organization_id: organizationId ?? null,
  }));
  await db.sql`select tracing.record_spans(${db.sql.json(payload as unknown as postgres.JSONValue)})`;
}

async function addEvent(trace: string, options: { eventType?: string; failed?: boolean } = {}): Promise<void> {
  await db.sql`
    insert into tracing.domain_events (stream_type, stream_id, event_type, trace_id, processing_error)
    values ('order', 'o-1', ${options.eventType ?? 'order.placed'}, tracing.hex_to_trace_id(${trace}), ${options.failed ? 'boom' : null})`;
}

/**
 * Lets `minutes` pass for the spans recorded so far: they, and the
 * sampling cursor with them, move back in time, past the tail window.
 */
async function age(minutes = 10): Promise<void> {
  await db.sql`update tracing.spans set recorded_at = recorded_at - make_interval(mins => ${minutes})`;
  await db.sql`update tracing.sampling_settings set watermark = watermark - make_interval(mins => ${minutes})`;
}

async function runSampling() {
  return first(await db.sql`call tracing.run_sampling()`);
}

async function decision(trace: string) {
  const [row] = await db.sql`
    select sampled_by, sample_rate::text as rate from tracing.trace_sampling where trace_id = tracing.hex_to_trace_id(${trace})`;
  return row ? `${row.sampled_by}@${row.rate}` : 'undecided';
}

async function counts(trace: string) {
  return first(
    await db.sql`
    select (select count(*)::int from tracing.spans where trace_id = tracing.hex_to_trace_id(${trace})) as spans,
           (select count(*)::int from tracing.trace_summaries where trace_id = tracing.hex_to_trace_id(${trace})) as summaries,
           (select count(*)::int from tracing.domain_events where trace_id = tracing.hex_to_trace_id(${trace})) as events`,
  );
}

beforeEach(async () => {
  await db.sql.unsafe(`
    truncate tracing.spans, tracing.trace_summaries, tracing.trace_sampling, tracing.domain_events, tracing.sampling_overrides;
    delete from tracing.retention_runs;
    update tracing.sampling_environments set rate = 0.1, honor_forced = false, tail_window = '2 minutes', tail_latency_ms = 2000
     where environment = 'production';
    update tracing.sampling_settings set environment = 'production', watermark = now() - interval '1 day';`);
});

describe('run_sampling in production (10%)', () => {
  it('keeps traces the head rule keeps at once, with their rate', async () => {
    const kept = traceId(true);
    await recordTrace(kept);
    const result = await runSampling();
    expect(Number(result.traces_kept)).toBe(1);
    expect(await decision(kept)).toBe('head@0.1');
    expect(await counts(kept)).toMatchObject({ spans: 2, summaries: 1 });
    const rates =
      await db.sql`select sampled_by, sample_rate::float8 as rate from tracing.sampled_spans where trace_id = tracing.hex_to_trace_id(${kept})`;
    expect(rates).toEqual([
      { sampled_by: 'head', rate: 0.1 },
      { sampled_by: 'head', rate: 0.1 },
    ]);
  });

  it('lets the others wait out the tail window, then drops their spans and summary but not their events', async () => {
    const dropped = traceId(false);
    await recordTrace(dropped);
    await addEvent(dropped);
    await runSampling();
    expect(await decision(dropped)).toBe('undecided');
    expect(await counts(dropped)).toEqual({ spans: 2, summaries: 1, events: 1 });

    await age();
    const result = await runSampling();
    expect(Number(result.traces_dropped)).toBe(1);
    expect(await decision(dropped)).toBe('dropped@0.1');
    expect(await counts(dropped)).toEqual({ spans: 0, summaries: 0, events: 1 });
    const [run] =
      await db.sql`select status, details from tracing.retention_runs where operation = 'tail_sampling' order by id desc limit 1`;
    expect(run).toMatchObject({ status: 'succeeded', details: { traces_dropped: 1, spans_dropped: 2, traces_waiting: 0 } });
  });

  it('always keeps a trace with an error, without waiting', async () => {
    const failing = traceId(false);
    await recordTrace(failing, [{ root: true }, { status: 'error' }]);
    await runSampling();
    expect(await decision(failing)).toBe('error@1');
  });

  it("decides each organization's trace apart when two tenants use the same trace id", async () => {
    const orgA = '0a000000-0000-4000-8000-00000000000a';
    const orgB = '0b000000-0000-4000-8000-00000000000b';
    const shared = traceId(false);
    await recordTrace(shared, [{ root: true }, { status: 'error' }], orgA);
    await recordTrace(shared, [{ root: true }, {}], orgB);
    await age();
    await runSampling();
    const rows = await db.sql`
      select d.organization_id::text, d.sampled_by,
             (select count(*)::int from tracing.spans s
               where s.trace_id = d.trace_id and s.organization_id = d.organization_id) as spans
        from tracing.trace_sampling d where d.trace_id = tracing.hex_to_trace_id(${shared}) order by 1`;
    // Tenant A's error keeps only tenant A's trace; B's is sampled on its own.
    expect(rows).toEqual([
      { organization_id: orgA, sampled_by: 'error', spans: 2 },
      { organization_id: orgB, sampled_by: 'dropped', spans: 0 },
    ]);
  });

  it('keeps a trace whose domain event failed to process', async () => {
    const failing = traceId(false);
    await recordTrace(failing);
    await addEvent(failing, { failed: true });
    await runSampling();
    expect(await decision(failing)).toBe('error@1');
  });

  it('keeps, by the tail decision, a trace that turns out to have an error within the window', async () => {
    const trace = traceId(false);
    await recordTrace(trace);
    await runSampling();
    expect(await decision(trace)).toBe('undecided');
    await recordTrace(trace, [{ status: 'error', name: 'worker.activity' }]);
    await runSampling();
    expect(await decision(trace)).toBe('error@1');
    expect((await counts(trace)).spans).toBe(3);
  });

  it('keeps whole a trace slower than the latency threshold', async () => {
    const slow = traceId(false);
    await recordTrace(slow, [{ root: true, durationMs: 2500 }, { durationMs: 100 }]);
    await age();
    await runSampling();
    expect(await decision(slow)).toBe('latency@1');
    expect((await counts(slow)).spans).toBe(2);
  });

  it('honours sampling.priority only where the environment allows forcing', async () => {
    const forced = traceId(false);
    await recordTrace(forced, [{ root: true, attributes: { 'sampling.priority': 1 } }]);
    await age();
    await runSampling();
    expect(await decision(forced)).toBe('dropped@0.1');

    await db.sql`update tracing.sampling_environments set honor_forced = true where environment = 'production'`;
    const allowed = traceId(false);
    await recordTrace(allowed, [{ root: true, attributes: { 'sampling.priority': '1' } }]);
    await runSampling();
    expect(await decision(allowed)).toBe('forced@1');
  });

  it('treats spans arriving late like the rest of their trace', async () => {
    const kept = traceId(true);
    const dropped = traceId(false);
    await recordTrace(kept);
    await recordTrace(dropped);
    await age();
    await runSampling();
    await recordTrace(kept, [{ name: 'late' }]);
    await recordTrace(dropped, [{ name: 'late' }]);
    await runSampling();
    expect(await counts(kept)).toMatchObject({ spans: 3, summaries: 1 });
    expect(await counts(dropped)).toMatchObject({ spans: 0, summaries: 0 });
  });

  it('applies operation and event type overrides, the highest winning', async () => {
    await db.sql`
      insert into tracing.sampling_overrides (environment, kind, pattern, rate) values
        ('production', 'operation', 'POST /checkout*', 1),
        ('production', 'operation', 'GET /health', 0),
        ('production', 'event_type', 'payment.failed', 1)`;
    const checkout = traceId(false);
    const health = traceId(true);
    const payment = traceId(false);
    await recordTrace(checkout, [{ root: true, name: 'POST /checkout/confirm' }]);
    await recordTrace(health, [{ root: true, name: 'GET /health' }]);
    await recordTrace(payment);
    await addEvent(payment, { eventType: 'payment.failed' });
    await age();
    await runSampling();
    expect(await decision(checkout)).toBe('head@1');
    expect(await decision(health)).toBe('dropped@0');
    expect(await decision(payment)).toBe('head@1');
  });

  it('keeps everything in development', async () => {
    await db.sql`update tracing.sampling_settings set environment = 'development'`;
    const trace = traceId(false);
    await recordTrace(trace);
    await runSampling();
    expect(await decision(trace)).toBe('head@1');
  });

  it('never touches spans recorded before sampling was installed (the watermark)', async () => {
    const old = traceId(false);
    await recordTrace(old);
    await db.sql`update tracing.spans set recorded_at = now() - interval '2 days'`;
    await runSampling();
    expect(await decision(old)).toBe('undecided');
    expect((await counts(old)).spans).toBe(2);
  });

  it("keeps a dropped trace's summary over the spans the drop leaves, so they stay found by re-send checks and retention", async () => {
    // Spans recorded before the watermark (before sampling was installed,
    // or by a transaction that committed after a run moved past its
    // recorded_at) are outside every run's window: the drop leaves them.
    const trace = traceId(false);
    await recordTrace(trace, [{ root: true, durationMs: 300 }]);
    await db.sql`update tracing.spans set recorded_at = now() - interval '2 days'`;
    await recordTrace(trace, [{ name: 'late', durationMs: 40 }]);
    await age();
    const result = await runSampling();
    expect(Number(result.traces_dropped)).toBe(1);
    expect(await counts(trace)).toMatchObject({ spans: 1, summaries: 1 });
    const [summary] = await db.sql`
      select t.span_count, t.error_count, t.root_name, t.start_time = s.start_time and t.end_time = s.end_time as covers_exactly
        from tracing.trace_summaries t join tracing.spans s on s.trace_id = t.trace_id
       where t.trace_id = tracing.hex_to_trace_id(${trace})`;
    expect(summary).toEqual({ span_count: 1, error_count: 0, root_name: 'GET /orders', covers_exactly: true });

    // The span left is found through the summary: sent again with another
    // start time it is a conflict, not a second copy.
    const stored = first(
      await db.sql`
      select tracing.trace_id_to_hex(trace_id) as trace_id, tracing.span_id_to_hex(span_id) as span_id
        from tracing.spans where trace_id = tracing.hex_to_trace_id(${trace})`,
    );
    const resent = [
      {
        trace_id: stored.trace_id,
        span_id: stored.span_id,
        parent_span_id: null,
        name: 'GET /orders',
        service: 'api',
        start_time: '2026-01-01T00:00:00.100Z',
        end_time: '2026-01-01T00:00:00.300Z',
        status: 'ok',
      },
    ];
    const answer = first(await db.sql`select (tracing.record_spans(${db.sql.json(resent as unknown as postgres.JSONValue)})).*`);
    expect(answer.recorded).toBe(0);
    expect(answer.rejected).toHaveLength(1);
    expect((await counts(trace)).spans).toBe(1);

    // And retention moves it with its summary.
    await db.sql`select tracing.archive_traces(array[tracing.hex_to_trace_id(${trace})], array[null::uuid])`;
    const [archived] = await db.sql`
      select (select count(*)::int from tracing.spans_archive where trace_id = tracing.hex_to_trace_id(${trace})) as spans,
             (select span_count from tracing.trace_summaries_archive where trace_id = tracing.hex_to_trace_id(${trace})) as span_count`;
    expect(archived).toEqual({ spans: 1, span_count: 1 });
    expect(await counts(trace)).toMatchObject({ spans: 0, summaries: 0 });
  });

  it('refolds a summary only after a batch adding to its trace meanwhile has committed, so no span is left outside it', async () => {
    const trace = traceId(false);
    await recordTrace(trace, [{ root: true, durationMs: 300 }]);
    await db.sql`update tracing.spans set recorded_at = now() - interval '2 days'`;
    await recordTrace(trace, [{ name: 'late' }]);
    await age();
    await runSampling();
    expect(await decision(trace)).toBe('dropped@0.1');

    // A straggler is there to drop, and a writer's batch for the trace,
    // later than the summary's range, holds the summary as the drop starts.
    await recordTrace(trace, [{ name: 'straggler' }]);
    const writer = await db.sql.reserve();
    const dropper = await db.sql.reserve();
    let dropping: Promise<postgres.RowList<postgres.Row[]>> | undefined;
    try {
      await writer`begin`;
      const straggler = [
        {
          trace_id: trace,
          span_id: 'ffffffffffff0001',
          parent_span_id: null,
          name: 'later straggler',
          service: 'worker',
          start_time: '2026-01-01T00:00:05Z',
          end_time: '2026-01-01T00:00:06Z',
          status: 'ok',
        },
      ];
      await writer`select tracing.record_spans(${writer.json(straggler as unknown as postgres.JSONValue)})`;
      const { pid } = first(await dropper`select pg_backend_pid() as pid`);
      dropping = dropper`select tracing.drop_sampled_out_spans(now() - interval '1 hour') as dropped`.execute();
      await expect
        .poll(async () => (await db.sql`select wait_event_type from pg_stat_activity where pid = ${pid}`)[0]?.wait_event_type, {
          timeout: 5000,
        })
        .toBe('Lock');
      await writer`commit`;
      const { dropped } = first(await dropping);
      // The drop waited for the batch, so read it too: both stragglers go.
      expect(Number(dropped)).toBe(2);
    } finally {
      // On a failure above, the writer's open transaction would hold the
      // summary for the tests after this one.
      await writer`rollback`;
      await dropping?.catch(() => {});
      writer.release();
      dropper.release();
    }
    const [state] = await db.sql`
      select count(*)::int as spans,
             count(*) filter (where s.start_time between t.start_time and t.end_time)::int as within_summary,
             min(t.span_count) as span_count
        from tracing.spans s join tracing.trace_summaries t on t.trace_id = s.trace_id
       where s.trace_id = tracing.hex_to_trace_id(${trace})`;
    expect(state).toEqual({ spans: 1, within_summary: 1, span_count: 1 });
  });

  it('skips while another run is at work', async () => {
    const holder = await db.sql.reserve();
    try {
      await holder`select pg_advisory_lock(tracing.sampling_lock_key())`;
      const result = await runSampling();
      expect(result.run_id).toBeNull();
    } finally {
      await holder`select pg_advisory_unlock(tracing.sampling_lock_key())`;
      holder.release();
    }
  });
});

describe('claim_sampling_tick', () => {
  it('is true once per minute while retention is scheduled here', async () => {
    await db.sql`update tracing.retention_settings set schedule = '17 3 * * *', pg_cron_job = null`;
    const claim = async (at: string) => first(await db.sql`select tracing.claim_sampling_tick(${at}::timestamptz) as due`).due;
    expect(await claim('2026-03-04 05:10:00Z')).toBe(true);
    expect(await claim('2026-03-04 05:10:40Z')).toBe(false);
    expect(await claim('2026-03-04 05:11:00Z')).toBe(true);
    await db.sql`update tracing.retention_settings set schedule = null`;
    expect(await claim('2026-03-04 05:12:00Z')).toBe(false);
    await db.sql`update tracing.retention_settings set schedule = '17 3 * * *'`;
  });
});
