/**
 * W3C Trace Context (Level 2) for edge functions: parse and emit the
 * `traceparent` / `tracestate` headers, carry the correlation and session
 * ids, and open and close spans.
 *
 * Web-standard APIs only (Headers, crypto, performance), so the same module
 * runs in Deno, Node and workers. The parsers are exported so the browser
 * client and the Temporal interceptors share one reading of the spec.
 *
 * Section names in comments refer to W3C Trace Context Level 2:
 * "traceparent Header", "Versioning of traceparent", "tracestate Header",
 * "tracestate Limits", "Mutating the tracestate Field" and the processing
 * model.
 */

/** trace-flags bit: the caller may have recorded trace data ("Sampled flag"). */
export const TRACE_FLAG_SAMPLED = 0x01;
/** trace-flags bit added by Level 2: the right-most 7 bytes of the trace-id are random. */
export const TRACE_FLAG_RANDOM_TRACE_ID = 0x02;
/** Flags this implementation understands; "Other Flags": vendors MUST set the rest to zero. */
const KNOWN_TRACE_FLAGS = TRACE_FLAG_SAMPLED | TRACE_FLAG_RANDOM_TRACE_ID;

/** "tracestate Header": a list holds at most 32 list-members. */
export const TRACESTATE_MAX_MEMBERS = 32;
/** "tracestate Limits": vendors SHOULD propagate at least 512 characters; we propagate exactly that. */
export const TRACESTATE_MAX_LENGTH = 512;
/**
 * The most header text we parse. The longest valid list is 32 members of a
 * 256-character key, "=" and a 256-character value, joined by commas; more
 * than twice that is refused unread, whatever optional whitespace it holds.
 */
export const TRACESTATE_MAX_HEADER = 32 * 1024;
/** "tracestate Limits": entries longer than this are the first to go when truncating. */
export const TRACESTATE_LONG_ENTRY = 128;

/** The length of a version 00 traceparent, and the minimum a higher version may have. */
const TRACEPARENT_V00_LENGTH = 55;

const HEX_LC = /^[0-9a-f]+$/;
const ALL_ZERO = /^0+$/;
/** The canonical 8-4-4-4-12 uuid spelling (either case), the same rule the database applies. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

// "tracestate Header", Key, as Trace Context Level 2 has it since it merged
// the simple and multi-tenant forms (the W3C test suite checks this form):
//   key     = ( lcalpha / DIGIT ) 0*255( keychar )
//   keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
// So "foo@", "foo@@bar" and "a@b@c" are keys, "@foo" is not, and a key has
// at most 256 characters.
const TRACESTATE_KEY = /^[a-z0-9][a-z0-9_\-*/@]{0,255}$/;
// Value: 0*255(chr) nblk-chr, chr = %x20 / nblk-chr,
//        nblk-chr = %x21-2B / %x2D-3C / %x3E-7E (printable ASCII without "," and "=").
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
export type SpanStatusCode = 'unset' | 'ok' | 'error';

export interface SpanStatus {
  code: SpanStatusCode;
  message?: string;
}

/** The trace position of an incoming request, as read from its headers. */
export interface TracingContext {
  /** 32 lowercase hex. */
  traceId: string;
  /** 16 lowercase hex of the caller's span; null when the trace was started here. */
  parentSpanId: string | null;
  traceFlags: number;
  /** Normalised tracestate list (members joined by ","), or null when there is none. */
  tracestate: string | null;
  /** Lowercase uuid. */
  correlationId: string;
  sessionId: string | null;
  /** True when no valid traceparent arrived and a new trace was started. */
  restarted: boolean;
  /** Why the trace was (re)started, when `restarted`. */
  restartReason?: string;
}

/** An open span. A Span is itself a valid parent for `createSpan`. */
export interface Span {
  traceId: string;
  /** 16 lowercase hex, new for this span. */
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: SpanKind;
  service: string;
  /** Mutable on purpose: handlers add attributes while the span is open. */
  attributes: Record<string, unknown>;
  traceFlags: number;
  tracestate: string | null;
  correlationId: string;
  sessionId: string | null;
  /** Wall clock at start. */
  startTime: Date;
  /** performance.now() at start; durations come from this, never from the wall clock. */
  startMonotonic: number;
}

export interface FinishedSpan extends Span {
  endTime: Date;
  durationMs: number;
  status: SpanStatus;
}

export interface Traceparent {
  /** The version received; emitted headers always use version 00. */
  version: number;
  traceId: string;
  parentId: string;
  /** Known bits only (sampled, random-trace-id); the rest are cleared. */
  traceFlags: number;
}

export type TraceparentResult =
  | { ok: true; traceparent: Traceparent }
  | { ok: false; reason: string };

export interface TracestateEntry {
  key: string;
  value: string;
}

export type TracestateResult =
  | {
      ok: true;
      entries: TracestateEntry[];
      /** The normalised header value, or null when the list is empty. */
      header: string | null;
      /** How many entries were dropped to fit TRACESTATE_MAX_LENGTH. */
      truncated: number;
    }
  | { ok: false; reason: string };

export interface ExtractOptions {
  /**
   * Sampled flag for a trace started here. Defaults to true: every span is
   * recorded and the database samples afterwards, so the component that
   * starts the trace has made a definitive recording decision ("Sampled flag":
   * such a decision SHOULD be reflected in the flag).
   */
  sampled?: boolean;
}

export interface CreateSpanOptions {
  kind?: SpanKind;
  attributes?: Record<string, unknown>;
  /** Defaults to the parent span's service, else OpenTelemetry's "unknown_service". */
  service?: string;
}

export interface InjectOptions {
  /** This system's tracestate key; with vendorValue, written as the left-most entry. */
  vendorKey?: string;
  vendorValue?: string;
}

// ---------------------------------------------------------------------------
// ids

function randomHex(bytes: number): string {
  const buffer = new Uint8Array(bytes);
  // An all-zero id is invalid ("trace-id", "parent-id"); drawing again is the
  // only correct answer, and happens with probability 2^-64 or less.
  for (;;) {
    crypto.getRandomValues(buffer);
    if (buffer.some((b) => b !== 0)) break;
  }
  let out = '';
  for (const b of buffer) out += b.toString(16).padStart(2, '0');
  return out;
}

/** A new 32-hex trace id, uniformly random (so TRACE_FLAG_RANDOM_TRACE_ID may be set). */
export function generateTraceId(): string {
  return randomHex(16);
}

/** A new 16-hex span id. */
export function generateSpanId(): string {
  return randomHex(8);
}

export function isValidTraceId(value: unknown): value is string {
  return typeof value === 'string' && value.length === 32 && HEX_LC.test(value) && !ALL_ZERO.test(value);
}

export function isValidSpanId(value: unknown): value is string {
  return typeof value === 'string' && value.length === 16 && HEX_LC.test(value) && !ALL_ZERO.test(value);
}

/** Lowercased uuid when `value` is a uuid in canonical form and not the nil uuid, else null. */
export function normalizeUuid(value: string | null | undefined): string | null {
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  if (!UUID.test(trimmed)) return null;
  const lower = trimmed.toLowerCase();
  return lower === NIL_UUID ? null : lower;
}

// ---------------------------------------------------------------------------
// traceparent

function isHexLc(value: string): boolean {
  return HEX_LC.test(value);
}

/**
 * Parses one traceparent value. Returns the fields, or the reason the value
 * must be ignored (and the trace restarted).
 */
export function parseTraceparent(value: string | null | undefined): TraceparentResult {
  if (value === null || value === undefined) return { ok: false, reason: 'missing traceparent' };
  // Headers joins repeated fields with ", "; a single traceparent never holds a
  // comma, so this is two or more headers, and there is no telling which one
  // is right ("traceparent Header": one header identifies the request).
  if (value.includes(',')) return { ok: false, reason: 'duplicate traceparent headers' };
  // HTTP strips surrounding whitespace from field values; do the same for
  // values that arrive by other carriers (Temporal headers, message props).
  const header = value.trim();

  // "Versioning of traceparent": the version prefix must be 2 hex characters
  // followed by a dash, or the trace restarts.
  const versionHex = header.slice(0, 2);
  if (header.length < 3 || !isHexLc(versionHex) || header[2] !== '-') {
    return { ok: false, reason: 'version is not two lowercase hex digits followed by "-"' };
  }
  // "version": version ff is invalid.
  if (versionHex === 'ff') return { ok: false, reason: 'version ff is forbidden' };
  const version = Number.parseInt(versionHex, 16);

  if (version === 0) {
    // version-format for 00 is exactly version "-" trace-id "-" parent-id "-"
    // trace-flags: 55 characters, nothing after the flags.
    if (header.length !== TRACEPARENT_V00_LENGTH) {
      return {
        ok: false,
        reason:
          header.length > TRACEPARENT_V00_LENGTH
            ? 'version 00 traceparent has trailing data'
            : `version 00 traceparent must be ${TRACEPARENT_V00_LENGTH} characters, got ${header.length}`,
      };
    }
  } else if (header.length < TRACEPARENT_V00_LENGTH) {
    // "Versioning of traceparent": a higher version shorter than 55
    // characters is not parsed.
    return { ok: false, reason: `traceparent of version ${versionHex} is shorter than ${TRACEPARENT_V00_LENGTH} characters` };
  } else if (header.length > TRACEPARENT_V00_LENGTH && header[TRACEPARENT_V00_LENGTH] !== '-') {
    // "Versioning of traceparent": the flags must be at the end of the string
    // or followed by a dash. Fields after that are not ours to read.
    return { ok: false, reason: `trace-flags of version ${versionHex} traceparent are not followed by "-" or the end` };
  }

  // Fields are read by position, which for version 00 is the whole format and
  // for higher versions is what "Versioning of traceparent" prescribes.
  const traceId = header.slice(3, 35);
  const parentId = header.slice(36, 52);
  const flagsHex = header.slice(53, 55);
  if (header[35] !== '-' || header[52] !== '-') {
    return { ok: false, reason: 'fields are not separated by "-" at positions 35 and 52' };
  }
  // "trace-id": 32 HEXDIGLC, all zeroes forbidden; an invalid trace-id means
  // the traceparent MUST be ignored. Uppercase hex is not HEXDIGLC.
  if (!isHexLc(traceId)) return { ok: false, reason: 'trace-id is not 32 lowercase hex digits' };
  if (ALL_ZERO.test(traceId)) return { ok: false, reason: 'trace-id is all zeros' };
  // "parent-id": 16 HEXDIGLC, all zeroes forbidden.
  if (!isHexLc(parentId)) return { ok: false, reason: 'parent-id is not 16 lowercase hex digits' };
  if (ALL_ZERO.test(parentId)) return { ok: false, reason: 'parent-id is all zeros' };
  // "trace-flags": 2 HEXDIGLC.
  if (!isHexLc(flagsHex)) return { ok: false, reason: 'trace-flags are not two lowercase hex digits' };

  // "Other Flags": bits this version does not define MUST be set to zero;
  // sampled and (Level 2) random-trace-id are kept.
  const traceFlags = Number.parseInt(flagsHex, 16) & KNOWN_TRACE_FLAGS;
  return { ok: true, traceparent: { version, traceId, parentId, traceFlags } };
}

/**
 * Formats a version 00 traceparent (also the `traceresponse` format). Always
 * version 00: "Versioning of traceparent" says to build outgoing headers with
 * the highest version this implementation knows. Unknown flag bits are
 * cleared. Throws on ids that are not valid, since emitting them would hand
 * the next hop a header it must reject.
 */
export function formatTraceparent(traceId: string, spanId: string, traceFlags: number): string {
  if (!isValidTraceId(traceId)) throw new RangeError('formatTraceparent: traceId must be 32 lowercase hex digits, not all zeros');
  if (!isValidSpanId(spanId)) throw new RangeError('formatTraceparent: spanId must be 16 lowercase hex digits, not all zeros');
  const flags = (traceFlags & KNOWN_TRACE_FLAGS).toString(16).padStart(2, '0');
  return `00-${traceId}-${spanId}-${flags}`;
}

// ---------------------------------------------------------------------------
// tracestate

export function isValidTracestateKey(key: string): boolean {
  return TRACESTATE_KEY.test(key);
}

export function isValidTracestateValue(value: string): boolean {
  return TRACESTATE_VALUE.test(value);
}

function entryText(entry: TracestateEntry): string {
  return `${entry.key}=${entry.value}`;
}

function joinedLength(entries: readonly TracestateEntry[]): number {
  if (entries.length === 0) return 0;
  let length = entries.length - 1; // the commas
  for (const entry of entries) length += entry.key.length + 1 + entry.value.length;
  return length;
}

/**
 * "tracestate Limits": when the list is longer than TRACESTATE_MAX_LENGTH,
 * whole entries are removed, never cut. Entries longer than 128 characters
 * go first (from the right), then entries from the end of the list, until it
 * fits. Returns the kept entries, in order.
 */
export function truncateTracestate(entries: readonly TracestateEntry[], maxLength = TRACESTATE_MAX_LENGTH): TracestateEntry[] {
  const kept = [...entries];
  let length = joinedLength(kept);
  for (let i = kept.length - 1; i >= 0 && length > maxLength; i--) {
    const entry = kept[i];
    if (entry !== undefined && entryText(entry).length > TRACESTATE_LONG_ENTRY) {
      kept.splice(i, 1);
      length = joinedLength(kept);
    }
  }
  while (length > maxLength && kept.length > 0) {
    kept.pop();
    length = joinedLength(kept);
  }
  return kept;
}

/** Renders entries as a tracestate header value, or null for an empty list (vendors SHOULD avoid sending empty headers). */
export function formatTracestate(entries: readonly TracestateEntry[]): string | null {
  return entries.length === 0 ? null : entries.map(entryText).join(',');
}

/**
 * Parses a tracestate value. Several header fields are combined first, in
 * order, by joining them with commas (RFC 7230 field order), which is what
 * Headers.get already does; an array of field values is accepted too.
 *
 * The whole list is refused (ok: false) when a member is malformed or it
 * holds more than 32 members: "tracestate Header" allows the vendor to
 * discard a list it cannot parse, and keeping part of it would forward a
 * state no upstream vendor wrote. A repeated key is not a parse failure: the
 * first (left-most, so most recently written) entry is kept and later ones
 * are dropped, since "Combined Header Value" allows one entry per key and the
 * W3C test suite expects such a list to be propagated. Empty and
 * whitespace-only members are allowed and dropped; they do not count toward
 * the 32, since they carry no state and arise from combining header fields.
 * An overlong list is truncated, not refused.
 */
export function parseTracestate(value: string | readonly string[] | null | undefined): TracestateResult {
  if (value === null || value === undefined) return { ok: true, entries: [], header: null, truncated: 0 };
  const combined = typeof value === 'string' ? value : value.join(',');
  if (combined.length > TRACESTATE_MAX_HEADER) {
    return { ok: false, reason: `tracestate is longer than ${TRACESTATE_MAX_HEADER} characters` };
  }
  const entries: TracestateEntry[] = [];
  const seen = new Set<string>();
  for (const rawMember of combined.split(',')) {
    // "Spaces and horizontal tabs surrounding list-members are ignored".
    const member = trimOws(rawMember);
    if (member === '') continue; // list-member = OWS
    const eq = member.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `tracestate member "${clip(member)}" is not key=value` };
    const key = member.slice(0, eq);
    const entryValue = member.slice(eq + 1);
    if (!isValidTracestateKey(key)) return { ok: false, reason: `tracestate key "${clip(key)}" is invalid` };
    // The value may not hold "=", so a second "=" also fails here.
    if (!isValidTracestateValue(entryValue)) {
      return { ok: false, reason: `tracestate value for key "${clip(key)}" is invalid` };
    }
    // "Combined Header Value": one entry per key; the left-most one wins.
    if (seen.has(key)) continue;
    seen.add(key);
    entries.push({ key, value: entryValue });
    if (entries.length > TRACESTATE_MAX_MEMBERS) {
      return { ok: false, reason: `tracestate has more than ${TRACESTATE_MAX_MEMBERS} list-members` };
    }
  }
  const kept = truncateTracestate(entries);
  return { ok: true, entries: kept, header: formatTracestate(kept), truncated: entries.length - kept.length };
}

/**
 * "Mutating the tracestate Field": an updated or added key moves to the
 * beginning (left) of the list, replacing its old value; the order of the
 * other entries is preserved. The result is truncated to the length limit;
 * the new entry, being first, survives unless it alone is too long.
 */
export function upsertTracestate(tracestate: string | null, key: string, value: string): string | null {
  const parsed = parseTracestate(tracestate);
  const others = parsed.ok ? parsed.entries.filter((e) => e.key !== key) : [];
  if (!isValidTracestateKey(key) || !isValidTracestateValue(value)) {
    return formatTracestate(others);
  }
  // Adding to the left may make 33 members; the right-most goes, as in
  // truncation ("entries SHOULD be removed starting from the end").
  const entries = [{ key, value }, ...others].slice(0, TRACESTATE_MAX_MEMBERS);
  return formatTracestate(truncateTracestate(entries));
}

/** Strips spaces and tabs at both ends in one pass (a regex alternation here backtracks quadratically). */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === ' ' || text[start] === '\t')) start++;
  while (end > start && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  return text.slice(start, end);
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

// ---------------------------------------------------------------------------
// context extraction

function restartedContext(
  reason: string,
  correlationId: string,
  sessionId: string | null,
  options: ExtractOptions | undefined,
): TracingContext {
  // "Processing model for starting or restarting a trace": all of trace-id,
  // parent-id and trace-flags are generated, and tracestate starts empty.
  // Our ids are uniformly random, so the Level 2 random-trace-id flag is set.
  const sampled = options?.sampled ?? true;
  return {
    traceId: generateTraceId(),
    parentSpanId: null,
    traceFlags: TRACE_FLAG_RANDOM_TRACE_ID | (sampled ? TRACE_FLAG_SAMPLED : 0),
    tracestate: null,
    correlationId,
    sessionId,
    restarted: true,
    restartReason: reason,
  };
}

/**
 * Reads the trace context of an incoming request. Never throws: a missing or
 * invalid traceparent restarts the trace (design principle 3), and its
 * tracestate is then not parsed ("tracestate Header": if the vendor failed to
 * parse traceparent, it MUST NOT attempt to parse tracestate).
 */
export function extractTracingContext(request: Request | { headers: Headers }, options?: ExtractOptions): TracingContext {
  const headers = request.headers;
  // Header names are case-insensitive in Headers ("Header Name": vendors MUST
  // expect the name in any case).
  const correlationId = normalizeUuid(headers.get('x-correlation-id')) ?? crypto.randomUUID();
  const sessionId = normalizeUuid(headers.get('x-session-id'));

  const parsed = parseTraceparent(headers.get('traceparent'));
  if (!parsed.ok) return restartedContext(parsed.reason, correlationId, sessionId, options);

  // A bad tracestate does not affect the traceparent; it is dropped whole.
  const state = parseTracestate(headers.get('tracestate'));
  return {
    traceId: parsed.traceparent.traceId,
    parentSpanId: parsed.traceparent.parentId,
    traceFlags: parsed.traceparent.traceFlags,
    tracestate: state.ok ? state.header : null,
    correlationId,
    sessionId,
    restarted: false,
  };
}

// ---------------------------------------------------------------------------
// spans

function isSpan(parent: TracingContext | Span): parent is Span {
  return typeof (parent as Partial<Span>).spanId === 'string';
}

/**
 * Opens a span. Given a TracingContext (an incoming request) the span's parent
 * is the caller's span; given a Span it is a child of that span.
 */
export function createSpan(parent: TracingContext | Span, name: string, options?: CreateSpanOptions): Span {
  const childOfSpan = isSpan(parent);
  return {
    traceId: parent.traceId,
    spanId: generateSpanId(),
    parentSpanId: childOfSpan ? parent.spanId : parent.parentSpanId,
    name,
    kind: options?.kind ?? 'internal',
    service: options?.service ?? (childOfSpan ? parent.service : 'unknown_service'),
    attributes: { ...options?.attributes },
    traceFlags: parent.traceFlags,
    tracestate: parent.tracestate,
    correlationId: parent.correlationId,
    sessionId: parent.sessionId,
    startTime: new Date(),
    startMonotonic: performance.now(),
  };
}

/**
 * Closes a span. The duration comes from the monotonic clock, so a wall-clock
 * step during the request cannot make it negative or wrong; endTime is
 * derived from it so that endTime - startTime equals the duration.
 */
export function endSpan(span: Span, status?: SpanStatus): FinishedSpan {
  const durationMs = Math.max(0, performance.now() - span.startMonotonic);
  return {
    ...span,
    attributes: { ...span.attributes },
    endTime: new Date(span.startTime.getTime() + durationMs),
    durationMs,
    status: status ? { ...status } : { code: 'unset' },
  };
}

/**
 * Headers for an outgoing request made inside `span`: traceparent with the
 * span as parent-id ("Mutating the traceparent Field": update parent-id), the
 * tracestate carried on (with this system's entry moved or added to the left
 * when configured), and the correlation and session ids.
 */
export function injectTracingHeaders(span: Span, headers?: HeadersInit, options?: InjectOptions): Headers {
  const out = new Headers(headers);
  out.set('traceparent', formatTraceparent(span.traceId, span.spanId, span.traceFlags));
  const tracestate =
    options?.vendorKey !== undefined && options.vendorValue !== undefined
      ? upsertTracestate(span.tracestate, options.vendorKey, options.vendorValue)
      : span.tracestate;
  // A tracestate the caller left in `headers` belongs to some other traceparent.
  if (tracestate === null) out.delete('tracestate');
  else out.set('tracestate', tracestate);
  out.set('x-correlation-id', span.correlationId);
  if (span.sessionId !== null) out.set('x-session-id', span.sessionId);
  return out;
}
