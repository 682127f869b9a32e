// The Tempo query API's trace by id (GET /api/v2/traces/{id}) as Grafana's
// Tempo data source calls it: protobuf, a reader token, through the real
// HTTP server, over the search suite's data (ctx.events spans in 10-span
// traces over a day). Beside it, in the same run: the same lookup in JSON,
// the bare SQL call from Node, a request to /health (Node's HTTP server
// and client alone), the route called in process and the token check, so
// the time each layer adds can be read as a difference or a ratio.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createTokenVerifier, signToken } from '../server/auth/jwt.ts';
import { startHttpServer } from '../server/http-server.ts';
import { createTempoRoute } from '../server/tempo/route.ts';
import { summarize, type BenchContext } from './context.ts';
import { ORG, seedTraces, SPANS_PER_TRACE } from './search.ts';

const SAMPLES = 1000;
const WARMUP = 100;

/**
 * Times each variant `samples` times, taking turns (one of each per round),
 * so a burst of load on the shared machine falls on all of them alike.
 */
async function measureInTurns(variants: Record<string, (i: number) => Promise<unknown>>, samples = SAMPLES, warmup = WARMUP) {
  const names = Object.keys(variants);
  const durations: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let i = 0; i < warmup + samples; i++) {
    for (const name of names) {
      const started = performance.now();
      await variants[name]!(i);
      if (i >= warmup) durations[name]!.push(performance.now() - started);
    }
  }
  return Object.fromEntries(names.map((name) => [name, summarize(durations[name]!)]));
}

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const db = await ctx.createDatabase();
  const { sql } = db;
  const secret = 'bench-secret-bench-secret-bench-secret';
  const pgSettingsFor = createTokenVerifier({ secret });
  const route = createTempoRoute({ sql, pgSettingsFor, statementTimeout: '10s', log: ctx.log });
  const http = await startHttpServer({ databaseUrl: db.url, port: 0, host: '127.0.0.1', pgSettingsFor, routes: [route] });
  try {
    const traces = Math.max(1000, Math.floor(ctx.events / SPANS_PER_TRACE));
    ctx.log(`tempo: seeding ${traces} traces of ${SPANS_PER_TRACE} spans`);
    await seedTraces(sql, traces);
    await sql.unsafe('vacuum analyze tracing.spans, tracing.trace_summaries');
    const [{ hex }] = (await sql`select md5('t' || ${Math.floor(traces / 3)}) as hex`) as unknown as [{ hex: string }];
    // Lookups spread over the whole table, so they are not all one cached page.
    const ids = (
      await sql<Array<{ id: string }>>`select md5('t' || (random() * ${traces - 1})::int) as id from generate_series(1, 500)`
    ).map((row) => row.id);
    const trace = (i: number) => ids[i % ids.length]!;
    const authorization = `Bearer ${await signToken(secret, { role: 'reader', organization_id: ORG })}`;
    const lookup = (accept: string) => async (i: number) => {
      const response = await fetch(`${http.url}/api/v2/traces/${trace(i)}`, { headers: { authorization, accept } });
      const body = await response.arrayBuffer();
      if (response.status !== 200 || body.byteLength === 0) throw new Error(`trace ${trace(i)}: HTTP ${response.status}`);
    };
    // The answer holds the trace's spans (checked once, outside the timing).
    const check = await (await fetch(`${http.url}/api/v2/traces/${hex}`, { headers: { authorization } })).json();
    const spans = (check as { trace: { resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> } }).trace.resourceSpans.flatMap(
      (r) => r.scopeSpans.flatMap((s) => s.spans),
    );
    if (spans.length !== SPANS_PER_TRACE) throw new Error(`expected ${SPANS_PER_TRACE} spans, got ${spans.length}`);

    ctx.log('tempo: a first pass over the traces looked up, so every variant reads them cached');
    for (let i = 0; i < ids.length; i++) await lookup('application/json')(i);
    ctx.log('tempo: trace by id in protobuf and JSON, beside the SQL alone and an HTTP round trip');
    const figures = await measureInTurns({
      trace_by_id_protobuf: lookup('application/protobuf'),
      trace_by_id_json: lookup('application/json'),
      sql_as_reader_round_trip: (i) =>
        sql.begin(async (tx) => {
          await tx`select set_config('role', 'tracegres_reader', true), set_config('jwt.claims.organization_id', ${ORG}, true)`;
          return tx`select * from tracing.otlp_trace_spans(array[tracing.hex_to_trace_id(${trace(i)})])`;
        }),
      http_round_trip: async () => (await fetch(`${http.url}/health`)).text(),
      // The route alone, called in process: token check, transaction, mapping, encoding.
      route_in_process: async (i) => {
        const req = { url: `/api/v2/traces/${trace(i)}`, method: 'GET', headers: { authorization, accept: 'application/protobuf' } };
        const res = { headersSent: false, setHeader() {}, writeHead() {}, end() {} };
        await route(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      },
      jwt_verify: () => pgSettingsFor(authorization),
    });
    const protobuf = figures.trace_by_id_protobuf!;

    // What a search form asks for, over the default window (the last day),
    // where the 10,000 spans the tag functions read at most bound the cost.
    ctx.log('tempo: tag names and values, and a TraceQL search');
    const get = (path: string) => async () => {
      const response = await fetch(`${http.url}${path}`, { headers: { authorization } });
      if (response.status !== 200) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
      return response.text();
    };
    const tags = await measureInTurns(
      {
        tag_names_v2: get('/api/v2/search/tags?scope=span'),
        tag_values_service: get('/api/v2/search/tag/resource.service.name/values'),
        tag_values_attribute: get('/api/v2/search/tag/span.order.id/values'),
        search_traceql: get(`/api/search?q=${encodeURIComponent('{ status = error }')}&limit=20`),
      },
      30,
      3,
    );
    return {
      spans: traces * SPANS_PER_TRACE,
      spans_per_trace: SPANS_PER_TRACE,
      ...figures,
      search_form: tags,
      targets: { p50_ms: 2, p99_ms: 6 },
      met: { p50: protobuf.p50_ms <= 2, p99: protobuf.p99_ms <= 6 },
    };
  } finally {
    await http.close();
    await db.drop();
  }
}
