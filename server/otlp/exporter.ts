// The OTLP exporter loop: claims queued spans in Postgres, sends them to the
// collector, and records the outcome, all in the claiming transaction.
//
// What is queued, which spans are ready (sampling), claim locks and the
// counters are SQL (db/functions/180-otlp-export.sql); this loop only moves
// bytes. Delivery is at-least-once: the claim's row locks are held while
// the batch is on the wire and the spans are dequeued in the same
// transaction once the collector accepted them, so a crash in between
// sends them again, and concurrent exporters never send the same span
// (`for update skip locked`).
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type postgres from 'postgres';
import { readBodyPrefix } from '../bounded-body.ts';
import type { OtlpExportConfig } from './config.ts';
import { spansToOtlpRequest, type QueuedSpan } from './mapping.ts';
import { decodeResponse, encodeRequest, errorMessageOf } from './protocol.ts';

const gzip = promisify(gzipCallback);

// Of the collector's answer, only this much is read: an export response or
// an error status is a few hundred bytes, and a success whose body is cut
// (so unreadable) still took the spans.
const RESPONSE_PREFIX_BYTES = 64 * 1024;

export type SendOutcome =
  | { kind: 'accepted'; rejected: number; message: string }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'rejected'; status: number; reason: string };

export type BatchResult =
  | { kind: 'empty' }
  | { kind: 'exported'; spans: number }
  | { kind: 'dead_lettered'; spans: number; reason: string }
  | { kind: 'retry'; spans: number; delayMs: number; reason: string };

export interface ExporterOptions {
  log?: (message: string) => void;
  /** Idle wait when nothing is ready (ms). */
  pollIntervalMs?: number;
  /** Backoff: first delay and ceiling (ms). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Random source for jitter (tests pin it). */
  random?: () => number;
  /** Batches in flight at once (default: the config's, else 2). */
  concurrency?: number;
}

export interface OtlpExporter {
  /** One claim-send-record cycle; what the loop runs. */
  exportBatch(): Promise<BatchResult>;
  /** Turns queueing on (and applies the configured queue bound); start() does it too. */
  enable(): Promise<void>;
  /** Starts the loop (and the periodic status log). */
  start(): void;
  /** Stops the loop after the batch in flight. */
  stop(): Promise<void>;
  /** Logs the status line now. */
  logStatus(): Promise<void>;
}

export function createOtlpExporter(sql: postgres.Sql, config: OtlpExportConfig, options: ExporterOptions = {}): OtlpExporter {
  const log = options.log ?? ((message: string) => console.log(`[tracegres otlp] ${message}`));
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const initialBackoffMs = options.initialBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  const random = options.random ?? Math.random;
  const concurrency = options.concurrency ?? config.concurrency ?? 2;
  let failures = 0;
  let running: Promise<void> | undefined;
  let stopped = false;
  const sleepers = new Set<() => void>();
  let statsTimer: NodeJS.Timeout | undefined;
  let lastOverflow = -1n;

  /** Exponential backoff with "equal jitter": half fixed, half random, so many exporters do not retry in step. */
  function backoffMs(): number {
    const ceiling = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(failures, 30));
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
  }

  async function send(body: Uint8Array): Promise<SendOutcome> {
    const headers: Record<string, string> = {
      ...config.headers,
      'content-type': config.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
    };
    let payload = body;
    if (config.gzip) {
      payload = await gzip(body);
      headers['content-encoding'] = 'gzip';
    }
    let response: Response;
    let responseBody: Uint8Array;
    try {
      response = await fetch(config.endpoint, {
        method: 'POST',
        headers,
        body: payload as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      responseBody = await readBodyPrefix(response, RESPONSE_PREFIX_BYTES);
    } catch (error) {
      // Refused, reset, DNS, timeout: the collector may come back.
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return {
        kind: 'retry',
        reason: `network error: ${(error as Error).name === 'TimeoutError' ? `no answer within ${config.timeoutMs} ms` : `${(error as Error).message}${cause ? ` (${cause})` : ''}`}`,
      };
    }
    const status = response.status;
    if (status >= 200 && status < 300) {
      try {
        const decoded = decodeResponse(responseBody, config.protocol);
        const rejected = Number(decoded.partialSuccess?.rejectedSpans ?? 0);
        return { kind: 'accepted', rejected, message: decoded.partialSuccess?.errorMessage ?? '' };
      } catch {
        // A success with an unreadable body still took the spans.
        return { kind: 'accepted', rejected: 0, message: '' };
      }
    }
    const reason = `HTTP ${status}${errorMessage(responseBody, response.headers.get('content-type'))}`;
    // The specification's retryable answers, and every 5xx as the issue asks.
    if (status === 429 || status >= 500) {
      return { kind: 'retry', reason, retryAfterMs: retryAfterMs(response.headers.get('retry-after')) };
    }
    return { kind: 'rejected', status, reason };
  }

  async function exportBatch(): Promise<BatchResult> {
    return sql.begin(async (tx) => {
      const claimed = (await tx`
        select c.outbox_id, c.attempts, (c.span).* from tracing.otlp_claim_spans(${config.batchSize}) c`) as unknown as QueuedSpan[];
      if (claimed.length === 0) return { kind: 'empty' } as const;
      const { rows, body, unencodable } = encodeBatch(claimed);
      // A span OTLP cannot carry (e.g. nested beyond protobuf's depth limit)
      // would fail its batch on every claim and block the queue behind it:
      // it alone is dead-lettered, with the reason, and the rest go out.
      for (const { row, reason } of unencodable) {
        await tx`select tracing.otlp_finish_batch(${[String(row.outbox_id)]}::bigint[], 'dead_letter', ${reason})`;
      }
      if (rows.length === 0) {
        return { kind: 'dead_lettered', spans: unencodable.length, reason: unencodable[0]!.reason } as const;
      }
      const ids = rows.map((row) => String(row.outbox_id));
      const outcome = await send(body);
      if (outcome.kind === 'accepted' && outcome.rejected === 0) {
        // OTLP: a partial success with nothing rejected but a message is a
        // warning from the collector, worth a log line.
        if (outcome.message) log(`collector warning: ${outcome.message}`);
        await tx`select tracing.otlp_finish_batch(${ids}::bigint[], 'exported')`;
        return { kind: 'exported', spans: rows.length } as const;
      }
      if (outcome.kind === 'retry') {
        failures += 1;
        // Retry-After is the collector's own wish; capped so a bogus value
        // cannot park the queue for days.
        const delayMs = outcome.retryAfterMs !== undefined ? Math.min(outcome.retryAfterMs, Math.max(maxBackoffMs, 300_000)) : backoffMs();
        await tx`select tracing.otlp_finish_batch(${ids}::bigint[], 'retry', ${outcome.reason}, p_retry_after => ${`${delayMs} milliseconds`}::interval)`;
        return { kind: 'retry', spans: rows.length, delayMs, reason: outcome.reason } as const;
      }
      const reason =
        outcome.kind === 'accepted'
          ? `partial success: the collector rejected ${outcome.rejected} of ${rows.length} spans of this batch${outcome.message ? `: ${outcome.message}` : ''}`
          : outcome.reason;
      const accepted = outcome.kind === 'accepted' ? Math.max(rows.length - outcome.rejected, 0) : 0;
      await tx`select tracing.otlp_finish_batch(${ids}::bigint[], 'dead_letter', ${reason},
        ${outcome.kind === 'rejected' ? outcome.status : null}::integer, ${config.endpoint}, null, ${accepted}::bigint)`;
      return { kind: 'dead_lettered', spans: rows.length, reason } as const;
    });
  }

  /** The batch's request body; when it cannot be encoded, the spans that cannot, set apart with the reason. */
  function encodeBatch(claimed: QueuedSpan[]): {
    rows: QueuedSpan[];
    body: Uint8Array;
    unencodable: Array<{ row: QueuedSpan; reason: string }>;
  } {
    const encode = (rows: QueuedSpan[]) => encodeRequest(spansToOtlpRequest(rows, config.resource), config.protocol);
    try {
      return { rows: claimed, body: encode(claimed), unencodable: [] };
    } catch (error) {
      const rows: QueuedSpan[] = [];
      const unencodable: Array<{ row: QueuedSpan; reason: string }> = [];
      for (const row of claimed) {
        try {
          encode([row]);
          rows.push(row);
        } catch (spanError) {
          unencodable.push({ row, reason: `the span cannot be encoded as OTLP (${config.protocol}): ${(spanError as Error).message}` });
        }
      }
      // Not one span's fault: the batch is retried as a database or code error.
      if (unencodable.length === 0) throw error;
      return { rows, body: rows.length ? encode(rows) : new Uint8Array(), unencodable };
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      let result: BatchResult;
      try {
        result = await exportBatch();
      } catch (error) {
        // The database, not the collector: wait and try again. Never thrown
        // out of the loop: export must not take the server down.
        failures += 1;
        const delay = backoffMs();
        log(`error: ${(error as Error).message}; retrying in ${delay} ms`);
        await sleep(delay);
        continue;
      }
      switch (result.kind) {
        case 'empty':
          await sleep(pollIntervalMs);
          break;
        case 'exported':
          failures = 0;
          break;
        case 'dead_lettered':
          failures = 0;
          log(`warning: ${result.spans} spans moved to tracing.otlp_dead_letters: ${result.reason}`);
          break;
        case 'retry':
          log(`retrying ${result.spans} spans in ${result.delayMs} ms: ${result.reason}`);
          await sleep(result.delayMs);
          break;
      }
    }
  }

  async function logStatus(): Promise<void> {
    try {
      const [s] = await sql`
        select queue_depth, queue_limit, extract(epoch from oldest_waiting)::float8 as oldest_waiting_s,
               exported_spans, retried_spans, dead_lettered_spans, spans_not_queued, last_error
          from tracing.otlp_export_status`;
      if (!s) return;
      log(
        `queue ${s.queue_depth}/${s.queue_limit}, oldest waiting ${s.oldest_waiting_s === null ? '-' : `${Math.round(s.oldest_waiting_s)} s`}, exported ${s.exported_spans}, retried ${s.retried_spans}, dead-lettered ${s.dead_lettered_spans}${s.last_error ? `, last error: ${s.last_error}` : ''}`,
      );
      const overflow = BigInt(s.spans_not_queued);
      if (lastOverflow >= 0n && overflow > lastOverflow) {
        log(
          `WARNING: the export queue reached its limit (${s.queue_limit} spans): ${overflow - lastOverflow} spans were recorded but will not be exported; raise tracing.otlp_export_settings.max_queued_spans or fix the collector`,
        );
      }
      lastOverflow = overflow;
    } catch (error) {
      log(`status unavailable: ${(error as Error).message}`);
    }
  }

  async function enable(): Promise<void> {
    // Queueing starts with the first configured exporter and stays on:
    // spans recorded while every exporter is down wait for it.
    await sql`select tracing.otlp_enable_export(true)`;
    if (config.maxQueuedSpans) await sql`update tracing.otlp_export_settings set max_queued_spans = ${config.maxQueuedSpans}`;
  }

  return {
    exportBatch,
    logStatus,
    enable,
    start() {
      if (running) return;
      stopped = false;
      running = (async () => {
        await enable();
        log(`exporting to ${config.endpoint} (${config.protocol}), batches of ${config.batchSize}, ${concurrency} in flight`);
        await logStatus();
        statsTimer = setInterval(() => void logStatus(), config.statsIntervalMs);
        statsTimer.unref();
        // Several batches in flight: while one waits for the collector,
        // another is claimed and encoded (skip locked keeps them apart).
        await Promise.all(Array.from({ length: concurrency }, () => loop()));
      })().catch((error) => log(`stopped by an error: ${(error as Error).message}`));
    },
    async stop() {
      stopped = true;
      for (const wake of [...sleepers]) wake();
      if (statsTimer) clearInterval(statsTimer);
      await running;
      running = undefined;
    },
  };
}

function errorMessage(body: Uint8Array, contentType: string | null): string {
  const message = errorMessageOf(body, contentType).trim();
  return message ? `: ${message.slice(0, 500)}` : '';
}

/** Retry-After as seconds or an HTTP date (RFC 9110), in ms from now. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(at - now, 0);
}
