// What search costs ingest (issue: find any trace by what you know; target
// with the search indexes >= 0.85x without them), measured in one run on
// three databases: one as migrated, one with a declared search key
// (orderId) too, and a scratch copy without the indexes search added
// (domain_events_stream_idx of migration 000013; span search reads the
// indexes spans already had, so it adds none to the spans).
//
//   spans: spans/s through POST /v1/traces of a real server, 4 clients
//     sending pre-encoded 1,000-span protobuf requests;
//   events: domain events/s through the promotion trigger in 1,000-row
//     inserts, each event with a trace and an order aggregate, which is the
//     write the search indexes sit on.
//
// The databases take turns, six rounds each, each first twice, and the
// best round of each counts, so neither the order nor a burst of load on
// the shared machine decides the ratio.
import postgres from 'postgres';
import { startHttpServer } from '../server/http-server.ts';
import { createOtlpIngestRoute } from '../server/otlp/ingest-http.ts';
import { encodeRequestProtobuf } from '../server/otlp/protocol.ts';
import type { BenchContext, BenchDatabase } from './context.ts';
import { otlpRequest } from './otlp.ts';

const BATCH = 1000;
const CLIENTS = 4;
const ROUNDS = 6;
const TOKEN = 'bench-search-ingest-token';
const ORG = '0a000000-0000-4000-8000-00000000000b';

/** The indexes search added to the write path, dropped for the baseline. */
export const SEARCH_INDEXES = ['domain_events_stream_idx'];
/** A declared event_data key, as a DBA would add one. */
export const DECLARED_KEY = 'orderId';

export async function measureIngestCost(ctx: BenchContext): Promise<Record<string, unknown>> {
  const spans = Math.max(20_000, Math.min(100_000, Math.round(ctx.events / 20 / BATCH) * BATCH));
  const events = spans / 2;
  // As migrated; the same plus a declared key; the baseline without either.
  const sides = [
    { name: 'migrated', db: await ctx.createDatabase() },
    { name: 'declared_key', db: await ctx.createDatabase() },
    { name: 'without', db: await ctx.createDatabase() },
  ];
  try {
    await sides[1]!.db.sql`select tracing.add_search_key(${DECLARED_KEY})`;
    for (const index of SEARCH_INDEXES) await sides[2]!.db.sql.unsafe(`drop index tracing.${index}`);
    const best = Object.fromEntries(sides.map((side) => [side.name, { spans: 0, events: 0 }]));
    for (let round = 0; round < ROUNDS; round++) {
      // Each side goes first in turn.
      for (const { name, db } of [...sides.slice(round % sides.length), ...sides.slice(0, round % sides.length)]) {
        const spansPerS = await ingestSpans(db, spans);
        const eventsPerS = await insertEvents(db, events, round);
        best[name]!.spans = Math.max(best[name]!.spans, spansPerS);
        best[name]!.events = Math.max(best[name]!.events, eventsPerS);
        ctx.log(`search: ingest ${name}, round ${round + 1}: ${spansPerS} spans/s, ${eventsPerS} events/s`);
      }
    }
    const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
    return {
      spans_per_round: spans,
      events_per_round: events,
      rounds: ROUNDS,
      spans_per_s: Object.fromEntries(sides.map((side) => [side.name, best[side.name]!.spans])),
      events_per_s: Object.fromEntries(sides.map((side) => [side.name, best[side.name]!.events])),
      spans_ratio: ratio(best.migrated!.spans, best.without!.spans),
      spans_ratio_with_declared_key: ratio(best.declared_key!.spans, best.without!.spans),
      events_ratio: ratio(best.migrated!.events, best.without!.events),
      events_ratio_with_declared_key: ratio(best.declared_key!.events, best.without!.events),
      target_ratio: 0.85,
      dropped_for_baseline: SEARCH_INDEXES,
      declared_key: DECLARED_KEY,
    };
  } finally {
    for (const side of sides) await side.db.drop();
  }
}

/** Spans/s of `count` spans through POST /v1/traces, from CLIENTS concurrent clients. */
async function ingestSpans(db: BenchDatabase, count: number): Promise<number> {
  const sql = postgres(db.url, { max: CLIENTS + 1, onnotice: () => {} });
  const http = await startHttpServer({
    databaseUrl: db.url,
    port: 0,
    host: '127.0.0.1',
    pgSettingsFor: async () => ({ role: 'tracegres_anonymous' }),
    routes: [createOtlpIngestRoute({ sql, token: TOKEN, organizationId: ORG, maxBodyBytes: 64 * 1024 * 1024, log: () => {} })],
  });
  try {
    const bodies = Array.from({ length: count / BATCH }, () => encodeRequestProtobuf(otlpRequest(BATCH)));
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < bodies.length) {
          const response = await fetch(`${http.url}/v1/traces`, {
            method: 'POST',
            body: new Uint8Array(bodies[next++]!),
            headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TOKEN}` },
          });
          await response.arrayBuffer();
          if (response.status !== 200) throw new Error(`search ingest bench: HTTP ${response.status}`);
        }
      }),
    );
    return Math.round(count / ((performance.now() - started) / 1000));
  } finally {
    await http.close();
    await sql.end();
  }
}

/** Events/s of `count` domain events with a trace and an order aggregate, in 1,000-row inserts. */
async function insertEvents(db: BenchDatabase, count: number, round: number): Promise<number> {
  let elapsed = 0;
  for (let from = 0; from < count; from += BATCH) {
    const started = performance.now();
    await db.sql.unsafe(
      `insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, event_metadata, organization_id)
       select 'order', 'ord-' || $1::int || '-' || n, 'order.placed', jsonb_build_object('orderId', 'ord-' || $1::int || '-' || n),
              jsonb_build_object('trace_id', md5(random()::text), 'span_id', left(md5(random()::text), 16)), '${ORG}'
         from generate_series($2::int, $3::int) n`,
      [round, from, from + BATCH - 1],
    );
    elapsed += performance.now() - started;
  }
  return Math.round(count / (elapsed / 1000));
}
