/**
 * The browser and the edge must agree on every header the browser sends:
 * whatever the access token, correlation id or traceparent a page hands the
 * client, the edge toolkit reads back the same trace, parent span,
 * correlation id and session id, and never has to restart the trace.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extractTracingContext } from '../trace-context/extract.ts';
import { tracedFetch } from './traced-fetch.ts';
import { buildTracingHeaders } from './tracing.ts';

const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const TRACEPARENT_FIELDS = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

/** A uuid in either case, or the nil uuid (which edge and database refuse). */
const uuidSpelling = fc.oneof(
  fc.uuid(),
  fc.uuid().map((id) => id.toUpperCase()),
  fc.constant(NIL_UUID),
);

const validSessionClaim = (claim: unknown): string | null =>
  typeof claim === 'string' && UUID.test(claim.toLowerCase()) && claim !== NIL_UUID ? claim.toLowerCase() : null;

/** Extra claims a real token has; `session_id` is added separately, last, so it is never shadowed. */
const otherClaims = fc.dictionary(
  fc.string().filter((key) => key !== 'session_id' && key !== '__proto__'),
  fc.jsonValue(),
  { maxKeys: 6 },
);

interface TokenCase {
  token: string | null | undefined;
  /** The session id the edge must read: the claim when it is a usable uuid. */
  expectedSessionId: string | null;
}

const signature = fc.uint8Array({ minLength: 32, maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('base64url'));

function jwt(payload: Record<string, unknown>, sig: string): string {
  return `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(payload))}.${sig}`;
}

const tokenCase: fc.Arbitrary<TokenCase> = fc.oneof(
  fc.constantFrom<TokenCase>({ token: undefined, expectedSessionId: null }, { token: null, expectedSessionId: null }),
  // A JWT with a session_id claim, usable or not.
  fc
    .tuple(otherClaims, fc.oneof(uuidSpelling, fc.string(), fc.integer(), fc.constant(null)), signature)
    .map(([claims, sessionId, sig]) => ({
      token: jwt({ ...claims, session_id: sessionId }, sig),
      expectedSessionId: validSessionClaim(sessionId),
    })),
  // A JWT without one.
  fc.tuple(otherClaims, signature).map(([claims, sig]) => ({ token: jwt(claims, sig), expectedSessionId: null })),
  // Not a JWT at all.
  fc.string().map((token) => ({ token, expectedSessionId: null })),
);

const correlationIdInput = fc.option(fc.oneof(uuidSpelling, fc.string()), { nil: undefined });

const hexId = (bytes: number) =>
  fc
    .uint8Array({ minLength: bytes, maxLength: bytes })
    .filter((id) => id.some((byte) => byte !== 0))
    .map((id) => Buffer.from(id).toString('hex'));

/** A traceparent a page may pass in: a valid one (e.g. from its own span), or junk. */
const traceparentInput = fc.option(
  fc.oneof(
    fc
      .tuple(hexId(16), hexId(8), fc.constantFrom('00', '01', '02', '03'))
      .map(([traceId, spanId, flags]) => `00-${traceId}-${spanId}-${flags}`),
    fc.string(),
  ),
  { nil: undefined },
);

const FUNCTION_URL = 'https://project.supabase.co/functions/v1/invite-user';

/** Checks what the edge reads from `request`, given what the page asked the client for. */
function expectAgreement(
  request: Request,
  input: { correlationId: string | undefined; traceparent: string | undefined; expectedSessionId: string | null },
): void {
  const context = extractTracingContext(request);
  const [, traceId, spanId] = TRACEPARENT_FIELDS.exec(request.headers.get('traceparent') ?? '') ?? [];
  expect(traceId).toBeDefined();

  expect(context.restarted).toBe(false);
  expect(context.traceId).toBe(traceId);
  expect(context.parentSpanId).toBe(spanId);
  expect(context.correlationId).toBe(request.headers.get('x-correlation-id'));
  expect(context.sessionId).toBe(input.expectedSessionId);
  expect(request.headers.get('x-session-id')).toBe(input.expectedSessionId);

  // A usable id or traceparent from the page is the one that arrives.
  const pageCorrelationId = input.correlationId?.trim().toLowerCase();
  if (pageCorrelationId !== undefined && UUID.test(pageCorrelationId) && pageCorrelationId !== NIL_UUID) {
    expect(context.correlationId).toBe(pageCorrelationId);
  }
  const pageTrace = input.traceparent === undefined ? null : TRACEPARENT_FIELDS.exec(input.traceparent);
  if (pageTrace) {
    expect(context.traceId).toBe(pageTrace[1]);
    expect(context.parentSpanId).toBe(pageTrace[2]);
  }
}

describe('client headers, read by the edge toolkit', () => {
  it('buildTracingHeaders: the edge reads the same trace, parent span, correlation id and session id', () => {
    fc.assert(
      fc.property(tokenCase, correlationIdInput, traceparentInput, ({ token, expectedSessionId }, correlationId, traceparent) => {
        const headers = buildTracingHeaders({ accessToken: token, correlationId, traceparent });
        expectAgreement(new Request(FUNCTION_URL, { headers }), { correlationId, traceparent, expectedSessionId });
      }),
      { numRuns: 500 },
    );
  });

  it('tracedFetch: the request it sends carries a context the edge reads back unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(tokenCase, correlationIdInput, fc.boolean(), async ({ token, expectedSessionId }, correlationId, sampled) => {
        let sent: Request | undefined;
        const capture: typeof fetch = async (input, init) => {
          sent = new Request(input, init);
          return new Response(null, { status: 204 });
        };
        await tracedFetch(
          FUNCTION_URL,
          { method: 'POST' },
          {
            accessToken: token,
            correlationId,
            sampled,
            fetch: capture,
          },
        );
        if (sent === undefined) throw new Error('tracedFetch did not send');
        expectAgreement(sent, { correlationId, traceparent: undefined, expectedSessionId });
        expect(extractTracingContext(sent).traceFlags & 1).toBe(sampled ? 1 : 0);
      }),
      { numRuns: 200 },
    );
  });
});
