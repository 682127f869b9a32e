// Trace by id over HTTP: GraphQL `getTraceTimeline` of a 10-span trace
// through the real server (reader token, row-level security, cost budget,
// statement timeout), beside the same lookup in SQL, and where the time in
// between goes. The parts run one after another in every round, round after
// round, with the same client and server:
//
//   sql_in_server         api.get_trace_timeline's execution time (EXPLAIN
//                         ANALYZE), in the same rounds as the parts below
//   sql_round_trip        the bare SQL call from Node (one prepared statement)
//   settings_transaction_ the transaction that carries a request's role and
//     dataplan_pg /       claims around a trivial query: @dataplan/pg's (begin,
//     server              set_config, query, commit, each awaited) and the
//                         server's for a query (begin and set_config sent
//                         with the query, commit after the answer)
//   jwt_verify            the server's token check for one Authorization header
//   jwt_verify_uncached   jose's signature and claims check, which every
//                         request paid before verified tokens were remembered
//   parse_and_validate_   graphql parse + validate of the document: paid once
//     uncached            per document text, since grafserv keeps the result
//                         (an LRU of 500 texts), so a repeated query skips it
//   budget_check          the query cost check (server/graphql/query-cost.ts),
//                         which walks the cached document, not a new parse
//   graphql_in_process    grafast execution as the server runs it, without HTTP
//   http_round_trip       a request to /health: Node's HTTP server and the
//                         fetch client alone
//   graphql_over_http     the whole lookup, as a client using fetch sees it
//   http_round_trip_node_ the same two through node:http with a keep-alive
//     client, graphql_    agent instead of fetch (undici): how much of the
//     over_http_node_     lookup is the client's own work
//     client
//   server_stages         graphql_over_http's requests cut where the server
//                         hands its first statement to the driver and where
//                         the query's rows are back (bench/server-stages.ts):
//                         before_database (token, body, grafserv, budget,
//                         grafast planning and SQL text, pool checkout),
//                         database (one round trip: the transaction's opening
//                         and the query leave in one write), after_database
//                         (grafast output, JSON, response written), and
//                         client_and_transport (the rest of the client's
//                         wait: fetch's own work and the loopback HTTP);
//                         server_stages_node_client: the same for the
//                         node:http client's requests
//   statements_per_request what one GraphQL request sends to Postgres
//   gc                    the process's garbage collections during the rounds
//                         (client and server share it): how many, their total
//                         and longest pause, and the total per lookup over HTTP
import { Agent, request, type IncomingMessage } from 'node:http';
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
import { traceServerStages, type RequestStages } from './server-stages.ts';

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

    // api.get_trace_timeline's execution time as EXPLAIN ANALYZE counts it,
    // taken in the same rounds as the bare call: measured in a loop of its
    // own before them, it ran at another moment of the machine's load, and
    // the two differed by more than the round trip between them.
    const executionTimes: number[] = [];
    const explainAnalyze = async (i: number) => {
      const [plan] = await sql.unsafe(`explain (analyze, format json, timing off) select * from api.get_trace_timeline('${trace(i)}')`);
      if (i >= WARMUP) executionTimes.push((plan!['QUERY PLAN'] as Array<{ 'Execution Time': number }>)[0]!['Execution Time']);
    };

    ctx.log('trace by id: GraphQL over HTTP and its parts, interleaved');
    // The request's transaction around a trivial query, as @dataplan/pg
    // opens it (begin, set_config, query, commit) and as the server does for
    // a GraphQL query (read-only: begin and set_config go with the query).
    // The server's own pool.
    const pool = (resolvedPreset.pgServices![0]!.adaptorSettings as { pool: Parameters<typeof withSettingsTransaction>[0] }).pool;
    const stages = traceServerStages(http.server, pool as never);
    const withDataplanPgClient = createWithPgClient({ pool });
    const withOwnPgClient = withSettingsTransaction(pool);
    const transactionSettings = { ...settings, statement_timeout: '10s', transaction_read_only: 'on' };
    const trivial = (client: { query(q: { text: string }): Promise<unknown> }) => client.query({ text: 'select 1' });
    const req = {} as IncomingMessage;
    requestSettings.set(req, settings);
    let spans = 0;
    const countSpans = (body: { data?: { getTraceTimeline: { nodes: unknown[] } }; errors?: unknown }) => {
      if (body.errors) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
      spans += body.data!.getTraceTimeline.nodes.length;
    };
    const lookupBody = (i: number) => JSON.stringify({ query: TIMELINE, variables: { traceId: trace(i) } });
    // The same requests through node:http, one kept-alive connection.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const { hostname, port } = new URL(http.url);
    const nodeClient = (path: string, body?: string) =>
      new Promise<string>((resolve, reject) => {
        const headers = body ? { 'content-type': 'application/json', authorization, 'content-length': Buffer.byteLength(body) } : {};
        const req = request({ hostname, port, path, method: body ? 'POST' : 'GET', agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    // The server's stages of each lookup, with the client's wait beside them.
    const traced: Record<'fetch' | 'node_client', Array<RequestStages & { client: number }>> = { fetch: [], node_client: [] };
    const tracedLookup = async (i: number, client: keyof typeof traced, lookup: () => Promise<void>) => {
      stages.take();
      const start = performance.now();
      await lookup();
      const wait = performance.now() - start;
      const request = stages.take();
      if (request && i >= WARMUP) traced[client].push({ ...request, client: wait });
    };
    // Every pause the collector makes while the rounds run.
    const pauses: number[] = [];
    const gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) pauses.push(entry.duration);
    });
    gc.observe({ entryTypes: ['gc'] });
    const { explain_analyze: _explainRoundTrip, ...rounds } = await measureInterleaved({
      explain_analyze: explainAnalyze,
      sql_round_trip: (i) => sql`select * from api.get_trace_timeline(${trace(i)})`,
      settings_transaction_dataplan_pg: () => withDataplanPgClient(transactionSettings, trivial),
      settings_transaction_server: () => withOwnPgClient(transactionSettings, trivial),
      jwt_verify: () => pgSettingsFor(authorization),
      // The signature and claims check itself, as every request paid it
      // before verified tokens were remembered.
      jwt_verify_uncached: () => jwtVerify(token, secretKey, { algorithms: ['HS256'], requiredClaims: ['exp'] }),
      parse_and_validate_uncached: () => validate(schema, parse(TIMELINE), specifiedRules),
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
      graphql_over_http: (i) =>
        tracedLookup(i, 'fetch', async () => {
          const response = await fetch(`${http.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization },
            body: lookupBody(i),
          });
          countSpans(await response.json());
        }),
      http_round_trip_node_client: () => nodeClient('/health'),
      graphql_over_http_node_client: (i) =>
        tracedLookup(i, 'node_client', async () => countSpans(JSON.parse(await nodeClient('/graphql', lookupBody(i))))),
    });
    Object.assign(out, { sql_in_server: summarize(executionTimes) }, rounds);
    gc.disconnect();
    const round = (n: number) => Math.round(n * 1000) / 1000;
    const paused = pauses.reduce((a, b) => a + b, 0);
    out.gc = {
      collections: pauses.length,
      total_ms: round(paused),
      longest_ms: round(Math.max(0, ...pauses)),
      per_lookup_over_http_ms: round(paused / (SAMPLES + WARMUP)),
    };
    agent.destroy();
    if (spans !== (SAMPLES + WARMUP) * 20) throw new Error(`expected 10 spans a trace, got ${spans / (SAMPLES + WARMUP) / 2} on average`);
    const stagesOf = (lookups: Array<RequestStages & { client: number }>) => {
      if (lookups.length < SAMPLES / 2) throw new Error(`only ${lookups.length} of ${SAMPLES} lookups had their server stages traced`);
      return {
        before_database: summarize(lookups.map((t) => t.firstStatement)),
        database: summarize(lookups.map((t) => t.rows - t.firstStatement)),
        after_database: summarize(lookups.map((t) => t.finished - t.rows)),
        client_and_transport: summarize(lookups.map((t) => t.client - t.finished)),
        traced: lookups.length,
      };
    };
    out.server_stages = stagesOf(traced.fetch);
    out.server_stages_node_client = stagesOf(traced.node_client);
    // The statements of a typical request: the list most requests sent
    // (a connection's first request also turns JIT optimization off).
    const lists = new Map<string, number>();
    for (const { statements } of traced.fetch) lists.set(JSON.stringify(statements), (lists.get(JSON.stringify(statements)) ?? 0) + 1);
    const [typical, requests] = [...lists].sort((a, b) => b[1] - a[1])[0]!;
    out.statements_per_request = { statements: JSON.parse(typical) as string[], requests, of: traced.fetch.length };

    const p50 = (key: string) => (out[key] as Summary).p50_ms;
    const p99 = (key: string) => (out[key] as Summary).p99_ms;
    out.graphql_overhead_over_sql_p50_ms = round(p50('graphql_over_http') - p50('sql_round_trip'));
    out.graphql_overhead_over_sql_node_client_p50_ms = round(p50('graphql_over_http_node_client') - p50('sql_round_trip'));
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
