/**
 * The W3C Trace Context (Level 2) `traceparent` header: parse and format,
 * versions and trace-flags. Shared by the browser client, edge functions and
 * the Temporal interceptors, so all of them read the spec one way.
 *
 * Section names in comments refer to W3C Trace Context Level 2:
 * "traceparent Header", "Versioning of traceparent" and its field
 * definitions ("version", "trace-id", "parent-id", "trace-flags").
 *
 * Web-standard only, so every runtime can import it.
 */
import { ALL_ZERO, HEX_LC, isValidSpanId, isValidTraceId } from './ids.ts';

/** trace-flags bit: the caller may have recorded trace data ("Sampled flag"). */
export const TRACE_FLAG_SAMPLED = 0x01;
/** trace-flags bit added by Level 2: the right-most 7 bytes of the trace-id are random. */
export const TRACE_FLAG_RANDOM_TRACE_ID = 0x02;
/** Flags this implementation understands; "Other Flags": vendors MUST set the rest to zero. */
const KNOWN_TRACE_FLAGS = TRACE_FLAG_SAMPLED | TRACE_FLAG_RANDOM_TRACE_ID;

/** The length of a version 00 traceparent, and the minimum a higher version may have. */
const TRACEPARENT_V00_LENGTH = 55;

export interface Traceparent {
  /** The version received; emitted headers always use version 00. */
  version: number;
  traceId: string;
  parentId: string;
  /** Known bits only (sampled, random-trace-id); the rest are cleared. */
  traceFlags: number;
}

export type TraceparentResult = { ok: true; traceparent: Traceparent } | { ok: false; reason: string };

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
