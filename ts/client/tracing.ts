/**
 * Browser-side trace context: the ids a user action carries from the browser
 * into the edge functions.
 *
 * - the correlation id names one user action (a click, a form submit) and is
 *   the "reference id" a user can quote to support;
 * - the session id comes from the Supabase Auth JWT so every request of one
 *   login session can be found together;
 * - `traceparent` follows W3C Trace Context Level 2, so the edge function
 *   continues the browser's trace instead of starting its own.
 *
 * Web-standard APIs only (crypto, atob, TextDecoder): this file runs in every
 * browser and in Node 22 for the tests. Ids, uuids, header names and
 * traceparent values come from the shared trace-context core
 * (ts/trace-context), so the browser sends exactly what the edge accepts.
 */

import { CORRELATION_ID_HEADER, SESSION_ID_HEADER, TRACEPARENT_HEADER } from '../trace-context/headers.ts';
import { generateSpanId, generateTraceId, normalizeUuid } from '../trace-context/ids.ts';
import { TRACE_FLAG_SAMPLED, formatTraceparent, parseTraceparent } from '../trace-context/traceparent.ts';

/**
 * A fresh UUID v4 for one user action.
 *
 * `crypto.randomUUID` exists only in secure contexts (https, localhost), so a
 * page served over plain http on a LAN address still needs the
 * `getRandomValues` path, which every browser offers everywhere.
 */
export function generateCorrelationId(): string {
  const cryptoApi = globalThis.crypto;
  if (typeof cryptoApi.randomUUID === 'function') return cryptoApi.randomUUID();

  const bytes = new Uint8Array(16);
  cryptoApi.getRandomValues(bytes);
  // RFC 9562 section 5.4: version 4 in the high nibble of byte 6, variant 10xx in byte 8.
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const BASE64URL_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Decodes one base64url JWT segment to text, or null when it is not base64url. */
function decodeBase64Url(segment: string): string | null {
  // A base64 string never has length 1 mod 4; atob would reject it anyway,
  // but checking here keeps the reason explicit.
  if (!BASE64URL_PATTERN.test(segment) || segment.length % 4 === 1) return null;
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  try {
    const binary = atob(padded);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    // fatal: a payload that is not UTF-8 is not a JWT, not something to guess at.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The `session_id` claim of a Supabase Auth access token, lower-cased, or
 * null when there is no token, the token is not a JWT, or the claim is
 * missing or not a uuid (the nil uuid included, as the edge and the database
 * refuse it too).
 *
 * The signature is deliberately not verified: the browser cannot hold the
 * signing secret, and the id is only a tracing label. The edge function
 * verifies the token before trusting anything in it.
 */
export function getSessionId(accessToken?: string | null): string | null {
  if (typeof accessToken !== 'string') return null;
  const parts = accessToken.trim().split('.');
  // JWS compact serialisation: header.payload.signature.
  if (parts.length !== 3) return null;
  const payloadText = decodeBase64Url(parts[1] ?? '');
  if (payloadText === null) return null;
  let payload: unknown;
  try {
    payload = JSON.parse(payloadText);
  } catch {
    return null;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const sessionId: unknown = (payload as Record<string, unknown>)['session_id'];
  return typeof sessionId === 'string' ? normalizeUuid(sessionId) : null;
}

export interface TraceparentOptions {
  /**
   * The W3C `sampled` flag: whether the browser asks the backend to record
   * this trace. Defaults to true; a page that samples on its own side can
   * pass false and still propagate ids for log correlation.
   */
  sampled?: boolean;
}

/**
 * A fresh `traceparent` value: version 00, a random trace id, a random
 * parent (span) id, neither all zeros, and the flags byte with only
 * `sampled`. Each request gets its own, so every request is one trace whose
 * root is the browser.
 */
export function generateTraceparent(options: TraceparentOptions = {}): string {
  return formatTraceparent(generateTraceId(), generateSpanId(), options.sampled === false ? 0 : TRACE_FLAG_SAMPLED);
}

/** The trace id of a `traceparent` or `traceresponse` value, or null when the value is not valid. */
export function traceIdOf(value: string | null | undefined): string | null {
  const parsed = parseTraceparent(value);
  return parsed.ok ? parsed.traceparent.traceId : null;
}

export interface TracingHeaderInput {
  /** The Supabase access token; only its `session_id` claim is used here. */
  accessToken?: string | null;
  /** The current user action's correlation id (a uuid); a new one when absent or not a uuid. */
  correlationId?: string;
  /** A traceparent to send; a new one when absent or not valid. */
  traceparent?: string;
}

export type TracingHeaders = {
  [TRACEPARENT_HEADER]: string;
  [CORRELATION_ID_HEADER]: string;
  [SESSION_ID_HEADER]?: string;
};

/**
 * The headers that carry the browser's trace context to an edge function.
 *
 * A supplied correlation id or traceparent that the edge would reject is
 * replaced here rather than thrown over: the edge would replace it anyway
 * (a bad trace field never fails a request), and replacing it in the browser
 * means the ids the page shows and logs are the ones the server records.
 * `x-session-id` is left out rather than sent empty when the session is
 * unknown, so the server never has to tell "absent" from "blank".
 */
export function buildTracingHeaders(input: TracingHeaderInput = {}): TracingHeaders {
  const traceparent = input.traceparent !== undefined && traceIdOf(input.traceparent) !== null ? input.traceparent.trim() : undefined;
  const headers: TracingHeaders = {
    [TRACEPARENT_HEADER]: traceparent ?? generateTraceparent(),
    [CORRELATION_ID_HEADER]: normalizeUuid(input.correlationId) ?? generateCorrelationId(),
  };
  const sessionId = getSessionId(input.accessToken);
  if (sessionId !== null) headers[SESSION_ID_HEADER] = sessionId;
  return headers;
}
