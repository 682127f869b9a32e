/**
 * The W3C Trace Context (Level 2) `tracestate` header: parse, truncate,
 * format and upsert the vendor list.
 *
 * Section names in comments refer to W3C Trace Context Level 2:
 * "tracestate Header", "tracestate Limits", "Combined Header Value" and
 * "Mutating the tracestate Field".
 *
 * Web-standard only, so every runtime can import it.
 */

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
