// What alerting costs and how fast it is (issue 16's targets):
//
//   insert cost: failed and non-failed event inserts with the alert
//     triggers on (an event rule matching every failed event) against the
//     same inserts with the triggers off, as ratios measured in alternating
//     rounds of the same run; single-row transactions (as processors write)
//     and one bulk statement, for failed events that repeat one of 20
//     errors (grouped into existing alerts) and for failed events that are
//     each new (an alert, a delivery and a NOTIFY each);
//   delivery latency: from a failed event's commit to its webhook arriving
//     at a local receiver, through the delivery loop with its default poll
//     and NOTIFY wake-up.
//
// The inserts run on one connection, and besides the wall time each round
// reads how long that connection's Postgres process was on a CPU
// (/proc/<pid>/schedstat, when the server runs on this Linux machine): on
// a machine shared with other work the wall time mostly measures the
// others, the CPU time what the triggers cost.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type postgres from 'postgres';
import { readAlertConfig } from '../server/alerts/config.ts';
import { createAlertDelivery } from '../server/alerts/delivery-loop.ts';
import { backendClock, summarize, type BenchContext } from './context.ts';

const ROUNDS = 8;
const SINGLE_PER_ROUND = 300;
const BULK_ROWS = 10_000;
const LATENCY_SAMPLES = 200;

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  const db = await ctx.createDatabase();
  const { sql } = db;
  try {
    // The defaults: grouped per 300 s, at most 20 alerts an hour sent (the
    // rest of a storm of new errors is recorded as rate_limited).
    await sql`
      insert into tracing.alert_rules (name, kind, event_type_pattern, channel, target)
      values ('every failure', 'event', '*', 'webhook', 'http://127.0.0.1:9/unused')`;
    ctx.log('alerts: insert cost, triggers on vs off in alternating rounds');
    const conn = await sql.reserve();
    let single, bulk;
    try {
      const [{ pid }] = (await conn`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      const clock = backendClock(pid);
      single = {
        not_failed: await singleRatio(conn, clock, () => null),
        failed_repeating: await singleRatio(conn, clock, (i) => `error ${i % 20}`),
        failed_each_new: await singleRatio(conn, clock, (i) => `unique error ${i} ${Math.random()}`),
      };
      bulk = {
        not_failed: await bulkRatio(conn, clock, 'null'),
        failed_repeating: await bulkRatio(conn, clock, `'error ' || (g % 20)`),
        failed_each_new: await bulkRatio(conn, clock, `'bulk error ' || g || ' ' || random()`),
      };
    } finally {
      conn.release();
    }
    ctx.log('alerts: commit-to-webhook latency');
    // Start the latency run clean, with room for every sample under the hourly limit.
    await sql`delete from tracing.alerts`;
    await sql`update tracing.alert_rules set max_alerts_per_hour = ${LATENCY_SAMPLES}`;
    const latency = await deliveryLatency(sql);
    return {
      insert_cost: {
        note: 'medians of alternating rounds (300 single-row transactions, or one insert of 10,000 rows); ratio = with the alert trigger / without it, 1.0 is free; added_us = per event; wall time, and cpu_ = time the Postgres process was on a CPU',
        single_row_transactions: single,
        bulk_insert_of_10000: bulk,
      },
      commit_to_webhook: latency,
    };
  } finally {
    await db.drop();
  }
}

type Connection = postgres.ReservedSql;

async function setTriggers(sql: Connection, on: boolean) {
  const how = on ? 'enable' : 'disable';
  await sql.unsafe(`alter table tracing.domain_events ${how} trigger _600_raise_alerts_on_insert`);
}

interface Rounds {
  on: number[];
  off: number[];
  cpuOn: number[];
  cpuOff: number[];
}

async function timed(rounds: Rounds, enabled: boolean, clock: () => number | undefined, body: () => Promise<unknown>) {
  const cpu = clock();
  const started = performance.now();
  await body();
  (enabled ? rounds.on : rounds.off).push(performance.now() - started);
  const cpuAfter = clock();
  if (cpu !== undefined && cpuAfter !== undefined) (enabled ? rounds.cpuOn : rounds.cpuOff).push(cpuAfter - cpu);
}

/** Per-insert time with triggers on / off, over alternating rounds of single-row transactions. */
async function singleRatio(sql: Connection, clock: () => number | undefined, error: (i: number) => string | null) {
  const rounds: Rounds = { on: [], off: [], cpuOn: [], cpuOff: [] };
  let n = 0;
  for (let round = 0; round < ROUNDS * 2; round++) {
    const enabled = round % 2 === 0;
    await setTriggers(sql, enabled);
    await timed(rounds, enabled, clock, async () => {
      for (let i = 0; i < SINGLE_PER_ROUND; i++) {
        await sql`insert into tracing.domain_events (stream_type, stream_id, event_type, processing_error)
                  values ('order', ${String(n)}, 'payment.failed', ${error(n)})`;
        n++;
      }
    });
  }
  await setTriggers(sql, true);
  return ratio(rounds, SINGLE_PER_ROUND);
}

async function bulkRatio(sql: Connection, clock: () => number | undefined, errorExpression: string) {
  const rounds: Rounds = { on: [], off: [], cpuOn: [], cpuOff: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const enabled = round % 2 === 0;
    await setTriggers(sql, enabled);
    await timed(rounds, enabled, clock, () =>
      sql.unsafe(`
        insert into tracing.domain_events (stream_type, stream_id, event_type, processing_error)
        select 'order', g::text, 'payment.failed', ${errorExpression} from generate_series(1, ${BULK_ROWS}) g`),
    );
  }
  await setTriggers(sql, true);
  return ratio(rounds, BULK_ROWS);
}

/** Medians of the rounds: milliseconds per round, the ratio on / off, and the microseconds added per row. */
function ratio(rounds: Rounds, rows: number) {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const figures = (on: number[], off: number[], prefix: string) => ({
    [`${prefix}on_ms`]: round(median(on)),
    [`${prefix}off_ms`]: round(median(off)),
    [`${prefix}ratio`]: round(median(on) / median(off)),
    [`${prefix}added_us`]: round(((median(on) - median(off)) * 1000) / rows),
  });
  return {
    ...figures(rounds.on, rounds.off, ''),
    ...(rounds.cpuOn.length ? figures(rounds.cpuOn, rounds.cpuOff, 'cpu_') : {}),
  };
}

export async function deliveryLatency(sql: postgres.Sql) {
  const arrived = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      arrived.set(body.alert.details.error, performance.now());
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  await sql`update tracing.alert_rules set target = ${url}`;
  // The defaults of npm start: poll every second, woken by NOTIFY (and the
  // receiver on 127.0.0.1 allowed).
  const config = readAlertConfig({ TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS: 'true' });
  const loop = createAlertDelivery(sql, config, { log: () => {} });
  await loop.start();
  const committed = new Map<string, number>();
  try {
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const error = `latency ${i}`;
      await sql`insert into tracing.domain_events (stream_type, stream_id, event_type, processing_error)
                values ('order', ${String(i)}, 'payment.failed', ${error})`;
      committed.set(error, performance.now());
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20));
    }
    const until = Date.now() + 30_000;
    while (arrived.size < LATENCY_SAMPLES && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    await loop.stop();
    server.closeAllConnections();
    server.close();
  }
  const durations = [...committed].filter(([error]) => arrived.has(error)).map(([error, at]) => arrived.get(error)! - at);
  return { ...summarize(durations), delivered: arrived.size, sent: LATENCY_SAMPLES, poll_interval_ms: config.pollIntervalMs };
}
