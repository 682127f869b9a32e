// What every benchmark suite gets: a Postgres server of its own and the
// run's settings. Suites live in bench/<topic>.ts and export
// `run(ctx): Promise<Record<string, unknown>>`; bench/main.ts prints their
// figures as one JSON document.
import { readdirSync, readFileSync } from 'node:fs';
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
 * the postmaster and every process it started (backends, the WAL writer,
 * autovacuum workers), including those that ended meanwhile, as the kernel
 * adds a reaped child's time to its parent's (/proc/<pid>/stat: utime and
 * stime, cutime and cstime). Call the answer to read how much since this
 * call. Undefined when the server is not a postgres on this machine.
 */
export async function serverCpuClock(sql: postgres.Sql): Promise<() => number | undefined> {
  const [{ pid }] = await sql<[{ pid: number }]>`select pg_backend_pid() as pid`;
  if (backendClock(pid)() === undefined) return () => undefined;
  const postmaster = procStat(pid)?.parent;
  if (postmaster === undefined) return () => undefined;
  const read = () => {
    let ticks = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = procStat(Number(entry));
      if (!stat) continue;
      if (Number(entry) === postmaster) ticks += stat.ownTicks + stat.reapedChildrenTicks;
      else if (stat.parent === postmaster) ticks += stat.ownTicks;
    }
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  };
  const before = read();
  return () => read() - before;
}

// USER_HZ: Linux reports process times in hundredths of a second.
const CLOCK_TICKS_PER_SECOND = 100;

/** Parent pid and CPU clock ticks of a process (proc(5): fields 4, 14-17), or undefined when it is gone. */
function procStat(pid: number): { parent: number; ownTicks: number; reapedChildrenTicks: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces; the fields after it start after its ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    parent: Number(fields[1]),
    ownTicks: Number(fields[11]) + Number(fields[12]),
    reapedChildrenTicks: Number(fields[13]) + Number(fields[14]),
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
