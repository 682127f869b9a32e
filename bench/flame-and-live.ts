// The flame graph and the live view against issue 16's targets:
//
//   operation flame graph: api.operation_flame_graph over 10,000 traces of
//     one operation (7 spans each), as an admin and as a tenant reader
//     (row-level security on every span), on a quiet database and while two
//     writers ingest spans; target <= 1 s. Calls alternate with the
//     function it replaced (bench/operation-flame-graph-baseline.sql), so
//     both see the same load, and both must return the same rows;
//   live failed events: from a failed event's commit to its arrival on a
//     tenant reader's `failedEvents` GraphQL subscription (WebSocket)
//     through the real server;
//     target p99 <= 1 s (to the browser showing it; the browser's drawing
//     is not included here);
//   new-trace trigger: record_spans of 500 spans that each start a trace,
//     with the live trigger on against off, in alternating rounds.
import { createClient } from 'graphql-ws';
import { readFile } from 'node:fs/promises';
import postgres from 'postgres';
import WebSocket from 'ws';
import { createTokenVerifier, signToken } from '../server/auth/jwt.ts';
import { startHttpServer } from '../server/http-server.ts';
import { summarize, type BenchContext } from './context.ts';

const TRACES = 10_000;
const FLAME_CALLS = 5;
const INGEST_WRITERS = 2;
const LIVE_SAMPLES = 300;
const TRIGGER_ROUNDS = 6;
const TRIGGER_CALLS = 5;
const ORG = 'a0000000-0000-4000-8000-00000000000a';
const SECRET = 'bench-live-secret-long-enough-for-hs256!';

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const db = await ctx.createDatabase();
  try {
    ctx.log(`flame_and_live: seeding ${TRACES} checkout traces of 7 spans`);
    await seedCheckouts(db.sql);
    ctx.log('flame_and_live: operation flame graph');
    await db.sql.unsafe(await readFile(new URL('./operation-flame-graph-baseline.sql', import.meta.url), 'utf8'));
    const admin = { role: 'tracegres_admin' };
    const tenantReader = { role: 'tracegres_reader', 'jwt.claims.organization_id': ORG };
    for (const settings of [admin, tenantReader]) await requireSameFlameGraph(db.sql, settings);
    const quiet = {
      admin: await timeFlameGraph(db.sql, admin),
      tenant_reader: await timeFlameGraph(db.sql, tenantReader),
    };
    ctx.log(`flame_and_live: operation flame graph while ${INGEST_WRITERS} writers ingest spans`);
    const underIngest = await whileIngesting(db.url, async () => ({
      admin: await timeFlameGraph(db.sql, admin),
      tenant_reader: await timeFlameGraph(db.sql, tenantReader),
    }));
    const flame = {
      traces: TRACES,
      same_rows_as_baseline: true,
      ...quiet,
      under_ingest: { writers: INGEST_WRITERS, ...underIngest },
      target_ms: 1000,
    };
    ctx.log('flame_and_live: live failed events, commit to subscriber');
    const live = { ...(await liveLatency(db.url, db.sql)), target_p99_ms: 1000 };
    ctx.log('flame_and_live: new-trace trigger on ingest');
    const trigger = await newTraceTriggerCost(db.sql);
    return { operation_flame_graph: flame, live_failed_events: live, new_trace_trigger: trigger };
  } finally {
    await db.drop();
  }
}

// browser -> edge -> workflow -> reserve, charge (-> insert), email; a third
// of the charges fail. Spread over the last 30 minutes.
async function seedCheckouts(sql: postgres.Sql): Promise<void> {
  await sql`
    select tracing.record_spans(jsonb_agg(x)) from (
      select jsonb_build_object(
        'trace_id', lpad(to_hex(t), 32, '0'), 'span_id', lpad(to_hex(t * 16 + k), 16, '0'),
        'parent_span_id', case k when 1 then null when 5 then lpad(to_hex(t * 16 + 3), 16, '0')
                                 when 6 then lpad(to_hex(t * 16 + 3), 16, '0') when 7 then lpad(to_hex(t * 16 + 5), 16, '0')
                                 else lpad(to_hex(t * 16 + k - 1), 16, '0') end,
        'name', (array['POST /checkout', 'checkout', 'OrderWorkflow', 'reserveInventory', 'chargePayment', 'sendEmail', 'INSERT payments'])[k],
        'service', (array['shop-web', 'edge-checkout', 'order-worker', 'order-worker', 'order-worker', 'order-worker', 'postgres'])[k],
        'start_time', now() - interval '30 minutes' + (t % 1800) * interval '1 second' + k * interval '10 ms',
        'end_time', now() - interval '30 minutes' + (t % 1800) * interval '1 second' + (200 - k * 10) * interval '1 ms' + k * interval '10 ms',
        'status', case when k = 5 and t % 3 = 0 then 'error' else 'unset' end,
        'organization_id', ${ORG}::text) as x
      from generate_series(1, ${TRACES}::int) t, generate_series(1, 7) k) s`;
  // As autovacuum would leave them: statistics, visibility map, hint bits.
  await sql`vacuum analyze tracing.spans`;
  await sql`vacuum analyze tracing.trace_summaries`;
}

const flameGraphCall = (fn: string) =>
  `select * from ${fn}(now() - interval '1 hour', now() + interval '1 hour', 'shop-web', 'POST /checkout')`;
const CURRENT = flameGraphCall('api.operation_flame_graph');
const BASELINE = flameGraphCall('tracing.operation_flame_graph_baseline');

async function asCaller<T>(sql: postgres.Sql, settings: Record<string, string>, body: (tx: postgres.TransactionSql) => Promise<T>) {
  return sql.begin(async (tx) => {
    for (const [key, value] of Object.entries(settings)) await tx`select set_config(${key}, ${value}, true)`;
    return body(tx);
  }) as Promise<T>;
}

// The same rows, compared exactly (except all, both ways), or the figures
// compare different work.
async function requireSameFlameGraph(sql: postgres.Sql, settings: Record<string, string>): Promise<void> {
  const [difference] = await asCaller(sql, settings, (tx) =>
    tx.unsafe(`select (select count(*) from (${CURRENT}) c)::int as rows,
                              (select count(*) from ((${CURRENT}) except all (${BASELINE})) d)::int as only_current,
                              (select count(*) from ((${BASELINE}) except all (${CURRENT})) d)::int as only_baseline`),
  );
  if (!difference!.rows || difference!.only_current || difference!.only_baseline) {
    throw new Error(`operation_flame_graph differs from its baseline as ${settings.role}: ${JSON.stringify(difference)}`);
  }
}

// Calls alternate between the function and its baseline, each call in a
// transaction of its own, as a GraphQL request would make it.
async function timeFlameGraph(sql: postgres.Sql, settings: Record<string, string>) {
  const durations = { current: [] as number[], baseline: [] as number[] };
  let paths = 0;
  for (let i = 0; i < FLAME_CALLS; i++) {
    for (const [name, statement] of [
      ['current', CURRENT],
      ['baseline', BASELINE],
    ] as const) {
      await asCaller(sql, settings, async (tx) => {
        const started = performance.now();
        const rows = await tx.unsafe(statement);
        durations[name].push(performance.now() - started);
        if (name === 'current') paths = rows.length;
      });
    }
  }
  const [current, baseline] = [summarize(durations.current), summarize(durations.baseline)];
  return { ...current, paths, baseline, p50_ratio: Math.round((current.p50_ms / baseline.p50_ms) * 1000) / 1000 };
}

// Writers on connections of their own, each recording batches of 500 spans
// of new traces of another service, back to back, while `measure` runs.
async function whileIngesting<T>(url: string, measure: () => Promise<T>): Promise<T & { batches_ingested: number }> {
  const writers = postgres(url, { max: INGEST_WRITERS, onnotice: () => {} });
  let running = true;
  let batches = 0;
  const write = async (writer: number) => {
    for (let batch = 0; running; batch++) {
      await writers`
        select tracing.record_spans(jsonb_agg(jsonb_build_object(
          'trace_id', lpad(to_hex(${writer}::bigint * 1000000000 + ${batch}::bigint * 1000 + t), 32, 'e'),
          'span_id', lpad(to_hex(t), 16, '0'), 'name', 'ingest', 'service', 'ingest-load',
          'start_time', now(), 'end_time', now() + interval '1 ms', 'organization_id', ${ORG}::text)))
        from generate_series(1, 500) t`;
      batches++;
    }
  };
  const writing = Array.from({ length: INGEST_WRITERS }, (_, writer) => write(writer + 1));
  try {
    return { ...(await measure()), batches_ingested: batches };
  } finally {
    running = false;
    await Promise.all(writing);
    await writers.end();
  }
}

async function liveLatency(url: string, sql: postgres.Sql) {
  const http = await startHttpServer({
    databaseUrl: url,
    port: 0,
    host: '127.0.0.1',
    pgSettingsFor: createTokenVerifier({ secret: SECRET }),
  });
  const token = await signToken(SECRET, { role: 'reader', organization_id: ORG, sub: 'bench' });
  const client = createClient({
    url: http.url.replace(/^http/, 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  try {
    // An event may reach the subscriber before its insert's answer reaches
    // the writer (both are in this process), so arrivals are kept by id.
    const arrivedAt = new Map<string, number>();
    const waiting = new Map<string, (at: number) => void>();
    const arrival = (id: string) =>
      new Promise<number>((resolve) => {
        const at = arrivedAt.get(id);
        if (at === undefined) waiting.set(id, resolve);
        else resolve(at);
      });
    const stop = client.subscribe(
      { query: 'subscription { failedEvents { rowId } }' },
      {
        next: (result) => {
          const id = (result.data as { failedEvents?: { rowId: string } } | undefined)?.failedEvents?.rowId;
          if (!id) return;
          const at = performance.now();
          const waiter = waiting.get(id);
          if (waiter) waiter(at);
          else arrivedAt.set(id, at);
        },
        error: (error) => console.error(error),
        complete: () => {},
      },
    );
    const insertFailed = async (streamId: string) => {
      const [row] = await sql`
        insert into tracing.domain_events (stream_type, stream_id, event_type, organization_id, processing_error)
        values ('order', ${streamId}, 'payment.failed', ${ORG}, 'card declined') returning id`;
      return String(row!.id);
    };
    // The subscription runs once a warm-up event arrives (one every 100 ms until then).
    for (let round = 0; ; round++) {
      if (round === 100) throw new Error('the live subscription did not start within 10 s');
      const id = await insertFailed(`warmup-${round}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (arrivedAt.has(id)) break;
    }
    // From sending each insert (it commits on its own) to its arrival: the
    // insert's own round trip is included, since the commit's instant lies
    // somewhere inside it.
    const latencies: number[] = [];
    const inserts: number[] = [];
    for (let i = 0; i < LIVE_SAMPLES; i++) {
      const sent = performance.now();
      const id = await insertFailed('o-' + i);
      inserts.push(performance.now() - sent);
      latencies.push((await arrival(id)) - sent);
      arrivedAt.delete(id);
      waiting.delete(id);
    }
    stop();
    return { ...summarize(latencies), insert_round_trip: summarize(inserts) };
  } finally {
    await client.dispose();
    await http.close();
  }
}

async function newTraceTriggerCost(sql: postgres.Sql) {
  const on: number[] = [];
  const off: number[] = [];
  let base = 1_000_000;
  for (let round = 0; round < TRIGGER_ROUNDS; round++) {
    for (const enabled of round % 2 ? [false, true] : [true, false]) {
      await sql.unsafe(`alter table tracing.trace_summaries ${enabled ? 'enable' : 'disable'} trigger _700_notify_new_trace`);
      for (let call = 0; call < TRIGGER_CALLS; call++) {
        base += 1000;
        const started = performance.now();
        await sql`
          select tracing.record_spans(jsonb_agg(jsonb_build_object(
            'trace_id', lpad(to_hex(${base}::bigint + t), 32, 'f'), 'span_id', lpad(to_hex(t + 1), 16, '0'),
            'name', 'bench', 'service', 'bench', 'start_time', now(), 'end_time', now() + interval '1 ms',
            'organization_id', ${ORG}::text)))
          from generate_series(1, 500) t`;
        (enabled ? on : off).push(performance.now() - started);
      }
    }
  }
  await sql`alter table tracing.trace_summaries enable trigger _700_notify_new_trace`;
  const [withTrigger, without] = [summarize(on), summarize(off)];
  return {
    spans_per_call: 500,
    with_trigger: withTrigger,
    without,
    p50_ratio: Math.round((withTrigger.p50_ms / without.p50_ms) * 1000) / 1000,
  };
}
