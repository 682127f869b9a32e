// The query API's latency (issue: trace query API benchmark):
//   p50/p99 of the three event lookups through GraphQL over HTTP (the real
//   server, a reader token, row-level security on), at ctx.events events;
//   api.get_trace_timeline in SQL against the function it replaced, from 10
//   to 10,000 spans among 100,000 other spans, and traces of 50,000 and
//   100,000 spans that the timeline cuts (bench/timeline.ts); a trace
//   by id (10 spans, getTraceTimeline) over HTTP, with where its time goes
//   (bench/trace-lookup-http.ts).
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { createTokenVerifier, signToken } from '../server/auth/jwt.ts';
import { startHttpServer } from '../server/http-server.ts';
import { summarize, type BenchContext } from './context.ts';
import { compareTimelines } from './timeline.ts';
import { traceLookupOverHttp } from './trace-lookup-http.ts';

const ORG = '0a000000-0000-4000-8000-000000000001';
const EVENTS_PER_REQUEST = 5;
const REQUESTS_PER_SESSION = 8;

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const db = await ctx.createDatabase();
  const { sql } = db;
  try {
    ctx.log(`seeding ${ctx.events} events`);
    await sql.unsafe(`
      insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, organization_id,
        correlation_id, session_id, trace_id, span_id, event_metadata, created_at)
      select 'order', (i / ${EVENTS_PER_REQUEST})::text, 'order.step', '{}'::jsonb, '${ORG}',
             md5('c' || (i / ${EVENTS_PER_REQUEST}))::uuid, md5('s' || (i / ${EVENTS_PER_REQUEST * REQUESTS_PER_SESSION}))::uuid,
             md5('t' || (i / ${EVENTS_PER_REQUEST}))::uuid, ('x' || left(md5('p' || i), 16))::bit(64)::bigint,
             jsonb_build_object('correlation_id', md5('c' || (i / ${EVENTS_PER_REQUEST}))::uuid,
                                'session_id', md5('s' || (i / ${EVENTS_PER_REQUEST * REQUESTS_PER_SESSION}))::uuid,
                                'trace_id', md5('t' || (i / ${EVENTS_PER_REQUEST})),
                                'span_id', left(md5('p' || i), 16)),
             now() - interval '1 ms' * (${ctx.events} - i)
      from generate_series(0, ${ctx.events - 1}) i`);
    await sql.unsafe('vacuum analyze tracing.domain_events');

    // As many background spans as events (at least 100,000), so the lookups
    // below run at the table size the targets name (10M with --events 10000000).
    const backgroundSpans = Math.max(100_000, Math.round(ctx.events / 1000) * 1000);
    ctx.log(`seeding spans: ${backgroundSpans} background, one trace of 1,000 and one of 10,000`);
    await seedTrace(sql, 'background', backgroundSpans, 10);
    await seedTrace(sql, 'thousand', 1_000, 8);
    await seedTrace(sql, 'tenthousand', 10_000, 8);
    await sql.unsafe('vacuum analyze tracing.spans');

    const timelines = await compareTimelines(ctx, sql, seedTrace);

    const graphql = await graphqlLookups(ctx, db.url);
    // The background traces have 10 spans each: md5('background' || k).
    const tenSpanTraces = Array.from({ length: 1000 }, (_, k) =>
      createHash('md5')
        .update(`background${k * 7}`)
        .digest('hex'),
    );
    const traceById = await traceLookupOverHttp(ctx, db.url, ORG, tenSpanTraces);
    return {
      events: ctx.events,
      background_spans: backgroundSpans,
      graphql_over_http: graphql,
      trace_by_id_over_http: traceById,
      timeline_in_sql: timelines,
    };
  } finally {
    await db.drop();
  }
}

// A trace of `spans` spans as a tree with `fanout` children per span.
async function seedTrace(sql: postgres.Sql, label: string, spans: number, fanout: number): Promise<void> {
  for (let from = 0; from < spans; from += 1000) {
    await sql.unsafe(`
      select tracing.record_spans(jsonb_agg(jsonb_build_object(
        'trace_id', md5('${label}' || case when '${label}' = 'background' then (i / 10)::text else '' end),
        'span_id', left(md5('${label}-span-' || i), 16),
        'parent_span_id', case when i % ${fanout === 10 ? 10 : spans} = 0 and '${label}' = 'background' then null
                               when i = 0 then null
                               else left(md5('${label}-span-' || case when '${label}' = 'background' then (i / 10) * 10 else (i - 1) / ${fanout} end), 16) end,
        'name', 'op-' || (i % 20), 'service', 'svc-' || (i % 4),
        'start_time', now() - interval '1 hour' + interval '1 ms' * i,
        'end_time', now() - interval '1 hour' + interval '1 ms' * (i + 5 + i % 7),
        'status', case when i % 97 = 0 then 'error' else 'ok' end,
        'organization_id', '${ORG}')))
      from generate_series(${from}, ${Math.min(spans, from + 1000) - 1}) i`);
  }
}

async function graphqlLookups(ctx: BenchContext, databaseUrl: string) {
  const secret = 'bench-secret-bench-secret-bench-secret';
  const http = await startHttpServer({ databaseUrl, port: 0, host: '127.0.0.1', pgSettingsFor: createTokenVerifier({ secret }) });
  const token = await signToken(secret, { role: 'reader', organization_id: ORG });
  const requests = Math.floor(ctx.events / EVENTS_PER_REQUEST);
  const sessions = Math.floor(requests / REQUESTS_PER_SESSION);
  const md5uuid = async (s: string) => {
    const { createHash } = await import('node:crypto');
    const h = createHash('md5').update(s).digest('hex');
    return { hex: h, uuid: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` };
  };
  const lookups: Record<string, { query: string; variable: (k: number) => Promise<string>; keys: number }> = {
    correlation_id: {
      query: 'query($v: UUID!) { getEventsByCorrelation(pCorrelationId: $v) { nodes { rowId eventType createdAt traceId } } }',
      variable: async (k) => (await md5uuid(`c${k}`)).uuid,
      keys: requests,
    },
    session_id: {
      query: 'query($v: UUID!) { getEventsBySession(pSessionId: $v) { nodes { rowId eventType createdAt traceId } } }',
      variable: async (k) => (await md5uuid(`s${k}`)).uuid,
      keys: sessions,
    },
    trace_id: {
      query: 'query($v: String!) { getEventsByTrace(pTraceId: $v) { nodes { rowId eventType createdAt spanId } } }',
      variable: async (k) => (await md5uuid(`t${k}`)).hex,
      keys: requests,
    },
  };
  const out: Record<string, unknown> = {};
  try {
    for (const [name, lookup] of Object.entries(lookups)) {
      ctx.log(`GraphQL lookups by ${name}`);
      const durations: number[] = [];
      let rows = 0;
      for (let i = 0; i < 550; i++) {
        const variable = await lookup.variable(Math.floor(Math.random() * lookup.keys));
        const start = performance.now();
        const response = await fetch(`${http.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: lookup.query, variables: { v: variable } }),
        });
        const body = (await response.json()) as { data?: Record<string, { nodes: unknown[] }>; errors?: unknown };
        const elapsed = performance.now() - start;
        if (body.errors) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
        if (i >= 50) {
          durations.push(elapsed);
          rows += Object.values(body.data!)[0]!.nodes.length;
        }
      }
      if (rows === 0) throw new Error(`lookups by ${name} found nothing: the benchmark would measure empty answers`);
      out[name] = { ...summarize(durations), mean_rows: Math.round((rows / durations.length) * 10) / 10 };
    }
    out.target_p99_ms = 10;
  } finally {
    await http.close();
  }
  return out;
}
