/**
 * Deterministic trace and span ids for Temporal workflows.
 *
 * Workflow code is replayed: after a worker restart or a cache eviction the
 * SDK runs the workflow function again from its history, and every command
 * it produces must match the first run. An id drawn from a random source
 * would differ on replay, so an activity rescheduled during a replay would
 * claim a different span than the one its first attempt recorded. The ids
 * here are a pure function of facts the history fixes (workflow id, run id,
 * and the command sequence number the SDK assigns to each activity), so any
 * replay, on any worker, derives the same ids, and anyone holding the
 * history can recompute them.
 *
 * The hash is FNV-1a 64 over the UTF-16 code units of the input, followed by
 * the 64-bit finalizer of MurmurHash3 so that inputs differing only in their
 * last characters (activity 1 vs activity 2) still differ in every bit.
 * W3C Trace Context asks span ids to be unique within a trace, not random;
 * only the trace id has a randomness flag, and a trace id made here never
 * sets it. Only BigInt arithmetic is used, which the workflow sandbox allows.
 */

const MASK_64 = (1n << 64n) - 1n;
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;

function fnv1a64(text: string): bigint {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    hash ^= BigInt(unit & 0xff);
    hash = (hash * FNV_PRIME) & MASK_64;
    hash ^= BigInt(unit >>> 8);
    hash = (hash * FNV_PRIME) & MASK_64;
  }
  return hash;
}

function fmix64(value: bigint): bigint {
  let h = value;
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK_64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK_64;
  h ^= h >> 33n;
  return h;
}

function hash64Hex(parts: readonly string[]): string {
  // The unit separator cannot be confused with text inside the parts, so
  // ("a", "bc") and ("ab", "c") hash differently.
  let h = fmix64(fnv1a64(parts.join('\u001f')));
  // An all-zero id is invalid in W3C Trace Context; the chance is 2^-64, but
  // the answer must still be a valid id.
  if (h === 0n) h = 1n;
  return h.toString(16).padStart(16, '0');
}

/** The span id of a workflow run's own span. */
export function workflowSpanId(workflowId: string, runId: string): string {
  return hash64Hex(['tracegres', 'workflow', workflowId, runId]);
}

/**
 * The span id of an activity scheduled by a workflow run. `seq` is the
 * sequence number the SDK gives the schedule command (the same number every
 * replay), which by default is also the activity id.
 */
export function activitySpanId(workflowId: string, runId: string, seq: number | string): string {
  return hash64Hex(['tracegres', 'activity', workflowId, runId, String(seq)]);
}

/**
 * A trace id for a workflow started with no trace context at all, so its
 * spans still form one trace and replays agree on it.
 */
export function workflowTraceId(workflowId: string, runId: string): string {
  return hash64Hex(['tracegres', 'trace', 'high', workflowId, runId]) + hash64Hex(['tracegres', 'trace', 'low', workflowId, runId]);
}

/**
 * The fallback for an activity whose headers carry no span id (scheduled by
 * a workflow that runs without the tracing interceptors): keyed by the
 * activity id, so every retry of that activity still shares one span.
 */
export function fallbackActivitySpanId(workflowId: string, runId: string, activityId: string): string {
  return hash64Hex(['tracegres', 'activity-id', workflowId, runId, activityId]);
}

/**
 * A uuid derived from `parts` (RFC 9562 version 8, "custom"), for a
 * correlation id the workflow has to make up when its starter sent none:
 * replays must agree on it like on the span ids.
 */
export function derivedUuid(parts: readonly string[]): string {
  const hex = hash64Hex(['tracegres', 'uuid', 'high', ...parts]) + hash64Hex(['tracegres', 'uuid', 'low', ...parts]);
  const variant = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
