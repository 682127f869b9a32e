/**
 * Head sampling for edge functions: the same keep-or-drop decision for a
 * trace id as the database's (db/functions/160-sampling.sql), checked against
 * the shared cases in sampling.vectors.json.
 *
 * Rule (OpenTelemetry consistent probability sampling): the randomness of
 * a trace is the least-significant 56 bits of its trace id, random by W3C
 * Trace Context Level 2 when the random flag is set; a trace is kept at rate
 * r when randomness >= floor((1 - r) * 2^56). Rates are handled as exact
 * decimals (BigInt), never floats, so "0.1" means exactly what Postgres's
 * numeric 0.1 means.
 *
 * Sampling decides span and timing detail only: domain events are always
 * emitted, whatever the decision.
 *
 * Web-standard APIs only (BigInt, Headers), so it runs in Deno, Node and workers.
 */

import { FORCE_SAMPLING_HEADER } from '../trace-context/headers.ts';

/** Span attribute marking a trace the client forced (OpenTracing's convention; the database keeps such traces where allowed). */
export const SAMPLING_PRIORITY_ATTRIBUTE = 'sampling.priority';

/** Span attribute carrying the rate a kept span was sampled at, for re-weighting counts. */
export const SAMPLE_RATE_ATTRIBUTE = 'tracegres.sample_rate';

const RANDOMNESS_BITS = 56n;
const RANDOMNESS_RANGE = 1n << RANDOMNESS_BITS;

export type Rate = number | string;

export interface SamplingOverride {
  /** operation: the root span's name; event_type: a domain event type of the trace. */
  kind: 'operation' | 'event_type';
  /** An exact name, or a prefix ending in '*'. */
  pattern: string;
  rate: Rate;
}

/** Mirrors a row of tracing.sampling_environments and its overrides. */
export interface SamplingConfig {
  environment: string;
  rate: Rate;
  /** Whether a client may force its trace to be kept (W3C sampled flag from an untrusted caller, or FORCE_SAMPLING_HEADER). */
  honorForced: boolean;
  overrides: SamplingOverride[];
  /** How long spans of a trace not kept up front wait in the database for a reason to keep it; 0: they are dropped. */
  tailWindowMs: number;
  /** A trace slower than this is kept whole by the tail decision; null: latency keeps nothing. */
  tailLatencyMs: number | null;
}

/**
 * The configuration used when the database's cannot be had (unreachable, or
 * no such environment): every trace is kept, so the database's own sampling
 * run decides what stays. Dropping here would be final; keeping is not.
 */
export const KEEP_EVERY_TRACE: Readonly<SamplingConfig> = Object.freeze({
  environment: 'unknown',
  rate: '1',
  honorForced: false,
  overrides: [],
  tailWindowMs: 0,
  tailLatencyMs: null,
});

/** The trace id's lower 56 bits. */
export function traceRandomness(traceId: string): bigint {
  if (!/^[0-9a-f]{32}$/.test(traceId)) throw new TypeError(`traceId must be 32 lowercase hex characters, got ${JSON.stringify(traceId)}`);
  return BigInt(`0x${traceId.slice(18)}`);
}

/** A rate as an exact fraction numerator/denominator, from its decimal spelling. */
function exactRate(rate: Rate): { numerator: bigint; denominator: bigint } {
  const text = typeof rate === 'number' ? decimalString(rate) : rate.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new RangeError(`a sampling rate must be a decimal between 0 and 1, got ${JSON.stringify(rate)}`);
  const fraction = match[2] ?? '';
  const numerator = BigInt(match[1]! + fraction);
  const denominator = 10n ** BigInt(fraction.length);
  if (numerator > denominator) throw new RangeError(`a sampling rate must be between 0 and 1, got ${JSON.stringify(rate)}`);
  return { numerator, denominator };
}

/** The shortest decimal spelling of a number (String(1e-7) is "1e-7"). */
function decimalString(value: number): string {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`a sampling rate must be a decimal between 0 and 1, got ${value}`);
  const text = String(value);
  const exponent = /^(\d)(?:\.(\d+))?e-(\d+)$/.exec(text);
  if (!exponent) return text;
  return `0.${'0'.repeat(Number(exponent[3]) - 1)}${exponent[1]}${exponent[2] ?? ''}`;
}

/** Rejection threshold: floor((1 - rate) * 2^56), exactly. */
export function samplingThreshold(rate: Rate): bigint {
  const { numerator, denominator } = exactRate(rate);
  return ((denominator - numerator) * RANDOMNESS_RANGE) / denominator;
}

/** The head decision for a trace at a rate. */
export function keepsTrace(traceId: string, rate: Rate): boolean {
  return traceRandomness(traceId) >= samplingThreshold(rate);
}

export function patternMatches(pattern: string, value: string | null | undefined): boolean {
  if (value === null || value === undefined) return false;
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : value === pattern;
}

function compareRates(a: Rate, b: Rate): number {
  const x = exactRate(a);
  const y = exactRate(b);
  const diff = x.numerator * y.denominator - y.numerator * x.denominator;
  return diff === 0n ? 0 : diff > 0n ? 1 : -1;
}

/**
 * The rate for a trace: the highest matching override (by operation or by
 * one of its event types), else the environment's rate.
 */
export function samplingRate(config: SamplingConfig, trace: { operation?: string | null; eventTypes?: readonly string[] }): Rate {
  let best: Rate | undefined;
  for (const o of config.overrides) {
    const matches =
      o.kind === 'operation'
        ? patternMatches(o.pattern, trace.operation)
        : (trace.eventTypes ?? []).some((eventType) => patternMatches(o.pattern, eventType));
    if (matches && (best === undefined || compareRates(o.rate, best) > 0)) best = o.rate;
  }
  return best ?? config.rate;
}

export interface SamplingInput {
  traceId: string;
  /** The operation (root span name, e.g. the route). */
  operation?: string | null;
  eventTypes?: readonly string[];
  /** The incoming traceparent's sampled flag, if there was one. */
  parentSampled?: boolean;
  /** The caller is one of ours (a workflow started by our edge function): follow its decision. A browser is not. */
  trustParent?: boolean;
  /** The client asked for the trace to be kept (FORCE_SAMPLING_HEADER). */
  forceRequested?: boolean;
  /** The operation already failed. */
  hasError?: boolean;
}

export interface SamplingDecision {
  /** Keep span detail for this trace; also the W3C sampled flag to propagate. */
  sampled: boolean;
  /** Record spans anyway: the database's tail decision may still keep the trace (an error, or slow). */
  recordSpans: boolean;
  /** The rate the trace is kept at (1 when kept for an error or a forced request). */
  rate: number;
  reason: 'error' | 'parent' | 'forced' | 'head' | 'not_sampled';
  /** Attributes for the spans of this trace. */
  attributes: Record<string, number>;
}

export function decideSampling(config: SamplingConfig, input: SamplingInput): SamplingDecision {
  const rate = samplingRate(config, input);
  const headKeeps = keepsTrace(input.traceId, rate);
  const kept = (reason: SamplingDecision['reason'], at: Rate, extra: Record<string, number> = {}): SamplingDecision => ({
    sampled: true,
    recordSpans: true,
    rate: Number(at),
    reason,
    attributes: { [SAMPLE_RATE_ATTRIBUTE]: Number(at), ...extra },
  });
  // Errors are always kept.
  if (input.hasError) return kept('error', 1);
  // A trusted parent decided for the whole trace (OpenTelemetry's
  // parent-based sampling); with the same rule its head decision is ours,
  // so a sampled parent that our rule would drop was forced upstream.
  if (input.trustParent && input.parentSampled !== undefined) {
    if (input.parentSampled) return headKeeps ? kept('parent', rate) : kept('parent', 1, { [SAMPLING_PRIORITY_ATTRIBUTE]: 1 });
  } else if (config.honorForced && (input.forceRequested || input.parentSampled)) {
    // An untrusted caller's sampled flag or header is a request, granted
    // only where the configuration allows (development by default).
    return kept('forced', 1, { [SAMPLING_PRIORITY_ATTRIBUTE]: 1 });
  }
  if (headKeeps && !(input.trustParent && input.parentSampled === false)) return kept('head', rate);
  return { sampled: false, recordSpans: config.tailWindowMs > 0, rate: Number(rate), reason: 'not_sampled', attributes: {} };
}

/** Whether a request asks for its trace to be kept (header value 1, true or force). */
export function forceRequested(headers: Headers): boolean {
  const value = headers.get(FORCE_SAMPLING_HEADER)?.trim().toLowerCase();
  return value === '1' || value === 'true' || value === 'force';
}

/**
 * Configuration as the database gives it (`select tracing.sampling_config()`,
 * read by databaseSampling in sampling-source.ts). Every field is required:
 * the database is the only source of the settings, so a missing one is an
 * error naming it, not a default of our own.
 */
export function samplingConfigFromJson(json: unknown): SamplingConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new TypeError('sampling config must be a JSON object');
  const o = json as Record<string, unknown>;
  if (typeof o.environment !== 'string') throw new TypeError('sampling config: environment must be a string');
  if (typeof o.honor_forced !== 'boolean') throw new TypeError('sampling config: honor_forced must be a boolean');
  if (typeof o.tail_window_ms !== 'number' || !(o.tail_window_ms >= 0))
    throw new TypeError('sampling config: tail_window_ms must be a number >= 0');
  if (o.tail_latency_ms !== null && typeof o.tail_latency_ms !== 'number')
    throw new TypeError('sampling config: tail_latency_ms must be a number or null');
  if (!Array.isArray(o.overrides)) throw new TypeError('sampling config: overrides must be an array');
  const overrides = o.overrides.map((raw): SamplingOverride => {
    const r = (raw ?? {}) as Record<string, unknown>;
    if (r.kind !== 'operation' && r.kind !== 'event_type')
      throw new TypeError(`sampling override kind must be operation or event_type, got ${JSON.stringify(r.kind)}`);
    if (typeof r.pattern !== 'string' || r.pattern === '') throw new TypeError('sampling override pattern must be a non-empty string');
    const rate = String(r.rate);
    exactRate(rate);
    return { kind: r.kind, pattern: r.pattern, rate };
  });
  const rate = String(o.rate);
  exactRate(rate);
  return {
    environment: o.environment,
    rate,
    honorForced: o.honor_forced,
    overrides,
    tailWindowMs: o.tail_window_ms,
    tailLatencyMs: o.tail_latency_ms,
  };
}
