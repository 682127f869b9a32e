// Reads on a streaming replica: a hot standby of the bench server (made as
// the replica tests make it, db/tests/helpers/streaming-replica.ts), loaded
// with the search suite's traces. Two figures:
//
// - replay lag: from the commit of a 500-span record_spans call on the
//   primary to the moment its trace summary is visible on the standby
//   (polled about every millisecond), idle otherwise;
// - trace by id over GraphQL (getTraceTimeline, 10 spans, a reader token)
//   with the queries on the standby (TRACEGRES_READ_DATABASE_URL) beside
//   the same server reading the primary, taking turns request by request.
//
// Both servers and both Postgres share this machine's cores, so the lookup
// ratio shows what the replica's path costs, not what moving reads to
// another machine gains.
import { createTokenVerifier, signToken } from '../server/auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../server/http-server.ts';
import { startStreamingReplica } from '../db/tests/helpers/streaming-replica.ts';
import postgres from 'postgres';
import { summarize, type BenchContext } from './context.ts';
import { ORG, seedTraces, SPANS_PER_TRACE } from './search.ts';

const LAG_SAMPLES = 200;
const LOOKUPS = 1000;
const WARMUP = 100;
const TIMELINE = `query($t: String!) { getTraceTimeline(pTraceId: $t) { nodes { spanId parentSpanId name depth status onCriticalPath } } }`;

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const db = await ctx.createDatabase();
  const traces = Math.min(100_000, Math.max(1000, Math.floor(ctx.events / SPANS_PER_TRACE)));
  ctx.log(`replica: seeding ${traces} traces of ${SPANS_PER_TRACE} spans`);
  await seedTraces(db.sql, traces);
  await db.sql.unsafe('vacuum analyze tracing.spans, tracing.trace_summaries');
  ctx.log('replica: base backup and standby');
  const replica = await startStreamingReplica(ctx.serverUrl, { timeoutMs: 300_000 });
  const standby = postgres(replica.urlFor(db.url), { max: 1, onnotice: () => {} });
  const servers: HttpServer[] = [];
  try {
    await replica.caughtUp();

    ctx.log('replica: replay lag of 500-span writes');
    const lags: number[] = [];
    for (let i = 0; i < LAG_SAMPLES; i++) {
      const traceId = `f${String(i).padStart(31, '0')}`;
      await db.sql.unsafe(
        `select tracing.record_spans(jsonb_agg(jsonb_build_object('trace_id', $1::text, 'span_id', lpad(to_hex(s + 1), 16, '0'),
           'name', 'op', 'service', 'bench', 'start_time', now(), 'end_time', now() + interval '1 ms', 'organization_id', $2::text)))
           from generate_series(0, 499) s`,
        [traceId, ORG],
      );
      const committed = performance.now();
      for (;;) {
        const [row] = await standby<
          [{ seen: boolean }]
        >`select exists (select 1 from tracing.trace_summaries where trace_id = ${traceId}::uuid) as seen`;
        if (row!.seen) break;
        if (performance.now() - committed > 30_000) throw new Error(`trace ${traceId} not replayed within 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      lags.push(performance.now() - committed);
    }

    ctx.log('replica: trace by id over GraphQL, primary and standby in turns');
    const secret = 'bench-secret-bench-secret-bench-secret';
    const pgSettingsFor = createTokenVerifier({ secret });
    const onPrimary = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor,
      graphql: { introspection: false },
    });
    servers.push(onPrimary);
    const onStandby = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor,
      graphql: { introspection: false, readDatabaseUrl: replica.urlFor(db.url) },
    });
    servers.push(onStandby);
    const authorization = `Bearer ${await signToken(secret, { role: 'reader', organization_id: ORG })}`;
    const ids = (
      await db.sql<Array<{ id: string }>>`select md5('t' || (random() * ${traces - 1})::int) as id from generate_series(1, 500)`
    ).map((row) => row.id);
    const lookup = (server: HttpServer) => async (i: number) => {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ query: TIMELINE, variables: { t: ids[i % ids.length] } }),
      });
      const body = (await response.json()) as { data?: { getTraceTimeline: { nodes: unknown[] } }; errors?: unknown };
      if (body.errors || body.data?.getTraceTimeline.nodes.length !== SPANS_PER_TRACE) {
        throw new Error(`trace ${ids[i % ids.length]}: ${JSON.stringify(body).slice(0, 200)}`);
      }
    };
    const variants = { primary: lookup(onPrimary), standby: lookup(onStandby) };
    const durations: Record<string, number[]> = { primary: [], standby: [] };
    for (let i = 0; i < WARMUP + LOOKUPS; i++) {
      for (const [name, variant] of Object.entries(variants)) {
        const started = performance.now();
        await variant(i);
        if (i >= WARMUP) durations[name]!.push(performance.now() - started);
      }
    }
    const primary = summarize(durations.primary!);
    const replicaLookup = summarize(durations.standby!);
    return {
      spans: traces * SPANS_PER_TRACE,
      replay_lag_500_span_write: summarize(lags),
      trace_by_id_graphql: {
        reading_primary: primary,
        reading_standby: replicaLookup,
        standby_over_primary_p50: Math.round((replicaLookup.p50_ms / primary.p50_ms) * 100) / 100,
      },
    };
  } finally {
    for (const server of servers) await server.close();
    await standby.end();
    await replica.stop();
    await db.drop();
  }
}
