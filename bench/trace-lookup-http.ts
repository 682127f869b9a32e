// Trace by id over HTTP: GraphQL `getTraceTimeline` of a 10-span trace
// through the real server (reader token, row-level security, cost budget,
// statement timeout), beside the same lookup in SQL, and where the time in
// between goes. The parts run one after another in every round, round after
// round, with the same client and server:
//
//   sql_in_server         api.get_trace_timeline's execution time (EXPLAIN ANALYZE)
//   sql_round_trip        the bare SQL call from Node (one prepared statement)
//   settings_transaction_ the transaction that carries a request's role and
//     dataplan_pg /       claims around a trivial query: @dataplan/pg's (begin,
//     server              set_config, query, commit, each awaited) and the
//                         server's for a query (begin and set_config sent
//                         with the query, commit after the answer)
//   jwt_verify            the server's token check for one Authorization header
//   jwt_verify_uncached   jose's signature and claims check, which every
//                         request paid before verified tokens were remembered
//   parse_and_validate    graphql parse + validate of the document (grafserv
//                         keeps the result per document text, so a repeated
//                         query skips it)
//   budget_check          the query cost check (server/graphql/query-cost.ts)
//   graphql_in_process    grafast execution as the server runs it, without HTTP
//   http_round_trip       a request to /health: Node's HTTP server and client alone
//   graphql_over_http     the whole lookup, as a client sees it
//   gc                    the process's garbage collections during the rounds
//                         (client and server share it): how many, their total
//                         and longest pause, and the total per lookup over HTTP
import type { IncomingMessage } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';
import { jwtVerify } from 'jose';
import { createWithPgClient } from 'postgraphile/adaptors/pg';
import { grafast } from 'postgraphile/grafast';
import { parse, validate, specifiedRules } from 'postgraphile/graphql';
import postgres from 'postgres';
import { createTokenVerifier, signToken } from '../server/auth/jwt.ts';
import { requestSettings } from '../server/graphql/preset.ts';
import { withSettingsTransaction } from '../server/graphql/settings-transaction.ts';
import { assertWithinBudget } from '../server/graphql/query-cost.ts';
import { startHttpServer } from '../server/http-server.ts';
import { summarize, type BenchContext } from './context.ts';

// The fields a trace view needs, as the dashboard asks for them.
export const TIMELINE = `query Timeline($traceId: String!) {
  getTraceTimeline(pTraceId: $traceId) {
    nodes {
      traceId spanId parentSpanId name service kind status statusMessage attributes
      startTime endTime depth childCount offsetMs durationMs selfTimeMs onCriticalPath events
    }
  }
}`;

const SAMPLES = 500;
const WARMUP = 50;

type Summary = ReturnType<typeof summarize>;

/**
 * Times every part once per round, round after round, so a busy machine
 * slows all of them alike and their ratios hold.
 */
async function measureInterleaved(parts: Record<string, (i: number) => unknown>): Promise<Record<string, Summary>> {
  const durations: Record<string, number[]> = Object.fromEntries(Object.keys(parts).map((name) => [name, []]));
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    for (const [name, part] of Object.entries(parts)) {
      const start = performance.now();
      await part(i);
      if (i >= WARMUP) durations[name]!.push(performance.now() - start);
    }
  }
  return Object.fromEntries(Object.entries(durations).map(([name, d]) => [name, summarize(d)]));
}

/**
 * `traceIds` are 32-hex ids of 10-span traces of organization `org`; the
 * lookups cycle through them.
 */
export async function traceLookupOverHttp(ctx: BenchContext, databaseUrl: string, org: string, traceIds: string[]) {
  const secret = 'bench-secret-bench-secret-bench-secret';
  const pgSettingsFor = createTokenVerifier({ secret });
  const http = await startHttpServer({ databaseUrl, port: 0, host: '127.0.0.1', pgSettingsFor });
  const token = await signToken(secret, { role: 'reader', organization_id: org });
  const authorization = `Bearer ${token}`;
  const secretKey = new TextEncoder().encode(secret);
  const sql = postgres(databaseUrl, { max: 1, prepare: true, onnotice: () => {} });
  const trace = (i: number) => traceIds[i % traceIds.length]!;
  const out: Record<string, unknown> = { spans_per_trace: 10, traces: traceIds.length };
  try {
    const settings = await pgSettingsFor(authorization);
    const { schema } = await http.pgl.getSchemaResult();
    const resolvedPreset = http.pgl.getResolvedPreset();
    const document = parse(TIMELINE);

    ctx.log('trace by id: SQL alone');
    const executionTimes: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const [plan] = await sql.unsafe(`explain (analyze, format json, timing off) select * from api.get_trace_timeline('${trace(i)}')`);
      executionTimes.push((plan!['QUERY PLAN'] as Array<{ 'Execution Time': number }>)[0]!['Execution Time']);
    }
    out.sql_in_server = summarize(executionTimes);

    ctx.log('trace by id: GraphQL over HTTP and its parts, interleaved');
    // The request's transaction around a trivial query, as @dataplan/pg
    // opens it (begin, set_config, query, commit) and as the server does for
    // a GraphQL query (read-only: begin and set_config go with the query).
    // The server's own pool.
    const pool = (resolvedPreset.pgServices![0]!.adaptorSettings as { pool: Parameters<typeof withSettingsTransaction>[0] }).pool;
    const withDataplanPgClient = createWithPgClient({ pool });
    const withOwnPgClient = withSettingsTransaction(pool);
    const transactionSettings = { ...settings, statement_timeout: '10s', transaction_read_only: 'on' };
    const trivial = (client: { query(q: { text: string }): Promise<unknown> }) => client.query({ text: 'select 1' });
    const req = {} as IncomingMessage;
    requestSettings.set(req, settings);
    let spans = 0;
    // Every pause the collector makes while the rounds run.
    const pauses: number[] = [];
    const gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) pauses.push(entry.duration);
    });
    gc.observe({ entryTypes: ['gc'] });
    Object.assign(
      out,
      await measureInterleaved({
        sql_round_trip: (i) => sql`select * from api.get_trace_timeline(${trace(i)})`,
        settings_transaction_dataplan_pg: () => withDataplanPgClient(transactionSettings, trivial),
        settings_transaction_server: () => withOwnPgClient(transactionSettings, trivial),
        jwt_verify: () => pgSettingsFor(authorization),
        // The signature and claims check itself, as every request paid it
        // before verified tokens were remembered.
        jwt_verify_uncached: () => jwtVerify(token, secretKey, { algorithms: ['HS256'], requiredClaims: ['exp'] }),
        parse_and_validate: () => validate(schema, parse(TIMELINE), specifiedRules),
        budget_check: (i) => assertWithinBudget(schema, document, null, { traceId: trace(i) }),
        graphql_in_process: async (i) => {
          const result = (await grafast({
            schema,
            source: TIMELINE,
            variableValues: { traceId: trace(i) },
            resolvedPreset,
            requestContext: { node: { req } } as never,
          })) as { errors?: unknown };
          if (result.errors) throw new Error(`GraphQL error: ${JSON.stringify(result.errors)}`);
        },
        http_round_trip: async () => (await fetch(`${http.url}/health`)).text(),
        graphql_over_http: async (i) => {
          const response = await fetch(`${http.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization },
            body: JSON.stringify({ query: TIMELINE, variables: { traceId: trace(i) } }),
          });
          const body = (await response.json()) as { data?: { getTraceTimeline: { nodes: unknown[] } }; errors?: unknown };
          if (body.errors) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
          spans += body.data!.getTraceTimeline.nodes.length;
        },
      }),
    );
    gc.disconnect();
    const round = (n: number) => Math.round(n * 1000) / 1000;
    const paused = pauses.reduce((a, b) => a + b, 0);
    out.gc = {
      collections: pauses.length,
      total_ms: round(paused),
      longest_ms: round(Math.max(0, ...pauses)),
      per_lookup_over_http_ms: round(paused / (SAMPLES + WARMUP)),
    };
    if (spans !== (SAMPLES + WARMUP) * 10) throw new Error(`expected 10 spans a trace, got ${spans / (SAMPLES + WARMUP)} on average`);

    const p50 = (key: string) => (out[key] as Summary).p50_ms;
    const p99 = (key: string) => (out[key] as Summary).p99_ms;
    out.graphql_overhead_over_sql_p50_ms = round(p50('graphql_over_http') - p50('sql_round_trip'));
    out.targets = { p50_ms: 1.5, p99_ms: 4, graphql_overhead_over_sql_p50_ms: 0.7 };
    out.met = {
      p50: p50('graphql_over_http') <= 1.5,
      p99: p99('graphql_over_http') <= 4,
      overhead: p50('graphql_over_http') - p50('sql_round_trip') <= 0.7,
    };
  } finally {
    await sql.end();
    await http.close();
  }
  return out;
}
