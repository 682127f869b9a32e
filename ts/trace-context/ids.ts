/**
 * Trace and span ids (W3C Trace Context Level 2, "trace-id" and
 * "parent-id"), and the uuid rule for correlation, session and organization
 * ids.
 *
 * Web-standard APIs only (crypto), so every runtime can import it.
 */
import { NIL_UUID, UUID_PATTERN } from './headers.ts';

/** HEXDIGLC: lowercase hex only ("trace-id", "parent-id", "trace-flags"). */
export const HEX_LC = /^[0-9a-f]+$/;
/** "trace-id", "parent-id": an id of all zeroes is forbidden. */
export const ALL_ZERO = /^0+$/;

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
  if (!UUID_PATTERN.test(trimmed)) return null;
  const lower = trimmed.toLowerCase();
  return lower === NIL_UUID ? null : lower;
}
