// The Tempo query API's trace by id (GET /api/v2/traces/{id}) as Grafana's
// Tempo data source calls it: protobuf, a reader token, through the real
// HTTP server, over the search suite's data (ctx.events spans in 10-span
// traces over a day). Beside it, in the same run: the same lookup in JSON,
// the bare SQL call from Node, and a request to /health (Node's HTTP server
// and client alone), so the time each layer adds can be read as a ratio.
import { createTokenVerifier, signToken } from '../server/auth/jwt.ts';
import { startHttpServer } from '../server/http-server.ts';
import { createTempoRoute } from '../server/tempo/route.ts';
import { summarize, type BenchContext } from './context.ts';
import { ORG, seedTraces, SPANS_PER_TRACE } from './search.ts';

const SAMPLES = 1000;
const WARMUP = 100;

async function measure(body: (i: number) => Promise<unknown>) {
  for (let i = 0; i < WARMUP; i++) await body(i);
  const durations: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await body(i + WARMUP);
    durations.push(performance.now() - started);
  }
  return summarize(durations);
}

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const db = await ctx.createDatabase();
  const { sql } = db;
  const secret = 'bench-secret-bench-secret-bench-secret';
  const pgSettingsFor = createTokenVerifier({ secret });
  const http = await startHttpServer({
    databaseUrl: db.url,
    port: 0,
    host: '127.0.0.1',
    pgSettingsFor,
    routes: [createTempoRoute({ sql, pgSettingsFor, statementTimeout: '10s', log: ctx.log })],
  });
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

    ctx.log('tempo: trace by id, protobuf and JSON');
    const protobuf = await measure(lookup('application/protobuf'));
    const json = await measure(lookup('application/json'));
    ctx.log('tempo: the parts beside it');
    const sqlAlone = await measure((i) =>
      sql.begin(async (tx) => {
        await tx`select set_config('role', 'tracegres_reader', true), set_config('jwt.claims.organization_id', ${ORG}, true)`;
        return tx`select * from tracing.otlp_trace_spans(array[tracing.hex_to_trace_id(${trace(i)})])`;
      }),
    );
    const health = await measure(async () => (await fetch(`${http.url}/health`)).text());
    return {
      spans: traces * SPANS_PER_TRACE,
      spans_per_trace: SPANS_PER_TRACE,
      trace_by_id_protobuf: protobuf,
      trace_by_id_json: json,
      sql_as_reader_round_trip: sqlAlone,
      http_round_trip: health,
      targets: { p50_ms: 2, p99_ms: 6 },
      met: { p50: protobuf.p50_ms <= 2, p99: protobuf.p99_ms <= 6 },
    };
  } finally {
    await http.close();
    await db.drop();
  }
}
