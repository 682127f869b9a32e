/**
 * Where an edge function's sampling settings come from: the database's
 * `tracing.sampling_config()`, the same settings tracing.run_sampling
 * applies, so the edge never flags a trace sampled that the database then
 * deletes, or the other way round.
 *
 * The settings are cached for a short time (they change rarely, and a
 * request should not wait on a query for them). A stale entry is served
 * while one refresh runs in the background. When the database cannot be
 * reached, or its answer cannot be read, every trace is kept
 * (KEEP_EVERY_TRACE): the database decides later, and nothing is lost.
 *
 * Web-standard APIs only (setTimeout, Date), so it runs in Deno and Node.
 */
import type { Sql } from 'postgres';
import { KEEP_EVERY_TRACE, samplingConfigFromJson, type SamplingConfig } from './sampling.ts';

/** Gives the sampling settings for the next decision; never rejects. */
export type SamplingSource = () => Promise<SamplingConfig>;

export interface DatabaseSamplingOptions {
  /** How long settings read from the database are used before they are read again. Default 30 s. */
  ttlMs?: number;
  /** How long to wait before asking again after a failed read. Default 5 s. */
  retryMs?: number;
  /** How long a request waits for the first read before it goes on with KEEP_EVERY_TRACE. Default 2 s. */
  timeoutMs?: number;
  /** Called once per failed read, with the reason. Default: a JSON line on stderr. */
  onError?: (error: unknown) => void;
  /** The clock, in milliseconds (tests pass their own). */
  now?: () => number;
}

interface Cached {
  config: SamplingConfig;
  /** When the config should be read again. */
  freshUntil: number;
}

/** A SamplingSource that reads `tracing.sampling_config()` through `sql`. */
export function databaseSampling(sql: Sql, options: DatabaseSamplingOptions = {}): SamplingSource {
  const ttlMs = options.ttlMs ?? 30_000;
  const retryMs = options.retryMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const now = options.now ?? Date.now;
  const onError = options.onError ?? logError;
  let cached: Cached | undefined;
  let reading: Promise<SamplingConfig> | undefined;

  async function read(): Promise<SamplingConfig> {
    try {
      const rows = await sql`select tracing.sampling_config() as config`;
      const config = samplingConfigFromJson(rows[0]?.config ?? null);
      cached = { config, freshUntil: now() + ttlMs };
      return config;
    } catch (error) {
      onError(error);
      cached = { config: KEEP_EVERY_TRACE, freshUntil: now() + retryMs };
      return KEEP_EVERY_TRACE;
    } finally {
      reading = undefined;
    }
  }

  /** One read at a time, however many requests arrive while it runs. */
  function refresh(): Promise<SamplingConfig> {
    reading ??= read();
    return reading;
  }

  return async () => {
    if (cached !== undefined) {
      if (now() >= cached.freshUntil) void refresh();
      return cached.config;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<SamplingConfig>((resolve) => {
      timer = setTimeout(() => {
        // Requests after this one do not wait again while the read hangs.
        cached ??= { config: KEEP_EVERY_TRACE, freshUntil: now() + retryMs };
        resolve(KEEP_EVERY_TRACE);
      }, timeoutMs);
    });
    try {
      return await Promise.race([refresh(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
}

function logError(error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  console.error(
    JSON.stringify({
      level: 'error',
      message: 'sampling settings could not be read from the database; keeping every trace until they can',
      error_name: err.name,
      error_message: err.message,
    }),
  );
}
