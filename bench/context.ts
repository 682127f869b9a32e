// What every benchmark suite gets: a Postgres server of its own and the
// run's settings. Suites live in bench/<topic>.ts and export
// `run(ctx): Promise<Record<string, unknown>>`; bench/main.ts prints their
// figures as one JSON document.
import { readFileSync } from 'node:fs';
import type postgres from 'postgres';

export interface BenchDatabase {
  url: string;
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export interface BenchContext {
  /** Connection string of the server's maintenance database (superuser). */
  serverUrl: string;
  /** A fresh database migrated to the current schema. */
  createDatabase(): Promise<BenchDatabase>;
  /** Number of events to seed (--events, default 1,000,000). */
  events: number;
  /** Progress lines go to stderr, so stdout stays pure JSON. */
  log(message: string): void;
}

export type BenchSuite = (ctx: BenchContext) => Promise<Record<string, unknown>>;

/** p50/p99 and mean, in milliseconds, of a list of durations in ms. */
export function summarize(durationsMs: number[]): { p50_ms: number; p99_ms: number; mean_ms: number; samples: number } {
  const sorted = [...durationsMs].sort((a, b) => a - b);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    p50_ms: round(pick(0.5)),
    p99_ms: round(pick(0.99)),
    mean_ms: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
    samples: sorted.length,
  };
}

/**
 * Milliseconds the Postgres process `pid` has been on a CPU, or undefined
 * when it cannot be read here (/proc/<pid>/schedstat: the server runs on
 * this Linux machine). On a machine shared with other work, wall time
 * mostly measures the others; this measures what the statements cost.
 * A server elsewhere (BENCH_DATABASE_URL) has backend pids that may name
 * some other local process, so the process must be a postgres one.
 */
export function backendClock(pid: number): () => number | undefined {
  const read = () => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return () => undefined;
    read();
    return read;
  } catch {
    return () => undefined;
  }
}

/**
 * A clock of the CPU milliseconds the whole local Postgres server spends:
 * every process pg_stat_activity lists (backends, and the background
 * processes such as the WAL writer), read from /proc/<pid>/schedstat. Call
 * the answer to read how much since this call; a process started meanwhile
 * counts whole. Undefined when the server is not a postgres on this machine.
 */
export async function serverCpuClock(sql: postgres.Sql): Promise<() => Promise<number | undefined>> {
  const read = async () => {
    const rows = await sql<{ pid: number }[]>`select pid from pg_stat_activity`;
    const times = new Map<number, number>();
    for (const { pid } of rows) {
      const clock = backendClock(pid);
      const ms = clock();
      if (ms !== undefined) times.set(pid, ms);
    }
    return times;
  };
  const before = await read();
  return async () => {
    const after = await read();
    if (after.size === 0) return undefined;
    let total = 0;
    for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
    return total;
  };
}

/**
 * Durations in ms of `read` on a partitioned table and on its unpartitioned
 * copy, `rounds` times, the one read first alternating each round so the
 * machine's load and the caches fall on both alike.
 */
export async function timeInTurns(
  rounds: number,
  read: (table: 'partitioned' | 'unpartitioned', round: number) => Promise<unknown>,
): Promise<{ partitioned: number[]; unpartitioned: number[] }> {
  const times = { partitioned: [] as number[], unpartitioned: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    for (const table of round % 2 ? (['partitioned', 'unpartitioned'] as const) : (['unpartitioned', 'partitioned'] as const)) {
      const began = performance.now();
      await read(table, round);
      times[table].push(performance.now() - began);
    }
  }
  return times;
}
