import { webcrypto } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildTracingHeaders, generateCorrelationId, generateTraceparent, getSessionId, traceIdOf } from './tracing.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
const SESSION_ID = '8a3c1f9e-2b7d-4e61-9c05-3f1d2a6b7c80';

/** A token shaped like the access tokens Supabase Auth issues, signed with HS256. */
async function supabaseAccessToken(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({
    aud: 'authenticated',
    role: 'authenticated',
    email: 'ada@example.com',
    aal: 'aal1',
    is_anonymous: false,
    ...claims,
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('5b0e8f2c-1d3a-4c6e-8f90-a1b2c3d4e5f6')
    .setIssuedAt()
    .setExpirationTime('1h')
    .setIssuer('https://example.supabase.co/auth/v1')
    .sign(new TextEncoder().encode('super-secret-jwt-token-with-at-least-32-characters'));
}

function base64url(text: string | Uint8Array): string {
  return Buffer.from(text).toString('base64url');
}

/** A JWT with an arbitrary payload segment and a fake signature. */
function tokenWithPayload(payload: string | Uint8Array): string {
  return `${base64url('{"alg":"HS256","typ":"JWT"}')}.${base64url(payload)}.c2lnbmF0dXJl`;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('generateCorrelationId', () => {
  it('returns a UUID v4', () => {
    expect(generateCorrelationId()).toMatch(UUID_V4);
  });

  it('returns a new id each call', () => {
    const ids = new Set(Array.from({ length: 1000 }, generateCorrelationId));
    expect(ids.size).toBe(1000);
  });

  it('builds a UUID v4 from getRandomValues where randomUUID is missing (insecure contexts)', () => {
    const getRandomValues = vi.fn((array: Uint8Array) => webcrypto.getRandomValues(array));
    vi.stubGlobal('crypto', { getRandomValues });
    const ids = Array.from({ length: 200 }, generateCorrelationId);
    expect(getRandomValues).toHaveBeenCalledTimes(200);
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect(new Set(ids).size).toBe(200);
  });

  it('sets the version and variant bits even when every random byte is 0xff or 0x00', () => {
    for (const fill of [0x00, 0xff]) {
      vi.stubGlobal('crypto', { getRandomValues: (array: Uint8Array) => array.fill(fill) });
      expect(generateCorrelationId()).toMatch(UUID_V4);
    }
  });
});

describe('getSessionId', () => {
  it('reads session_id from a signed Supabase access token', async () => {
    const token = await supabaseAccessToken({ session_id: SESSION_ID });
    expect(getSessionId(token)).toBe(SESSION_ID);
  });

  it('lower-cases the claim, as the edge and the database store uuids', async () => {
    const token = await supabaseAccessToken({ session_id: SESSION_ID.toUpperCase() });
    expect(getSessionId(token)).toBe(SESSION_ID);
  });

  it('ignores whitespace around the token', async () => {
    const token = await supabaseAccessToken({ session_id: SESSION_ID });
    expect(getSessionId(` ${token}\n`)).toBe(SESSION_ID);
  });

  it('decodes payloads that use the base64url-only characters and multibyte UTF-8', () => {
    // "?>" and "\u00ff" encode to "-" and "_" in base64url, which plain atob rejects.
    const payload = JSON.stringify({ name: 'Zoë ?>?> \u00ff\u00ff 名前', session_id: SESSION_ID });
    const token = tokenWithPayload(payload);
    expect(token.split('.')[1]).toMatch(/[-_]/);
    expect(getSessionId(token)).toBe(SESSION_ID);
  });

  it('returns null without a token', () => {
    expect(getSessionId()).toBeNull();
    expect(getSessionId(null)).toBeNull();
    expect(getSessionId('')).toBeNull();
  });

  it('returns null when the token has no session_id claim', async () => {
    expect(getSessionId(await supabaseAccessToken({}))).toBeNull();
  });

  it.each([
    ['a number', 42],
    ['not a uuid', 'session-1'],
    ['a uuid without dashes', SESSION_ID.replace(/-/g, '')],
    ['the nil uuid', '00000000-0000-0000-0000-000000000000'],
    ['null', null],
    ['an object', { id: SESSION_ID }],
  ])('returns null when session_id is %s', async (_label, sessionId) => {
    expect(getSessionId(await supabaseAccessToken({ session_id: sessionId }))).toBeNull();
  });

  it.each([
    ['a single word', 'not-a-jwt'],
    ['two segments', `${base64url('{}')}.${base64url(`{"session_id":"${SESSION_ID}"}`)}`],
    ['four segments', `${tokenWithPayload(`{"session_id":"${SESSION_ID}"}`)}.extra`],
    ['five segments (an encrypted JWE)', 'a.b.c.d.e'],
    ['an empty payload', 'aGVhZGVy..c2ln'],
    ['a payload with characters outside base64url', 'aGVhZGVy.eyJzZXNzaW9uX2lkIjoi+/=.c2ln'],
    ['a payload whose length is 1 mod 4', 'aGVhZGVy.eyJzZ.c2ln'],
    ['a payload that is not JSON', tokenWithPayload(`session_id=${SESSION_ID}`)],
    ['a payload that is truncated JSON', tokenWithPayload(`{"session_id":"${SESSION_ID}"`)],
    ['a payload that is a JSON array', tokenWithPayload(`["${SESSION_ID}"]`)],
    ['a payload that is a JSON string', tokenWithPayload(`"${SESSION_ID}"`)],
    ['a payload that is JSON null', tokenWithPayload('null')],
    ['a payload that is not UTF-8', tokenWithPayload(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))],
  ])('returns null for a malformed token: %s', (_label, token) => {
    expect(getSessionId(token)).toBeNull();
  });

  it('does not throw for values a caller may pass by mistake', () => {
    for (const value of [undefined, null, 42, {}, [], '...', 'a.b.c']) {
      expect(() => getSessionId(value as string)).not.toThrow();
      expect(getSessionId(value as string)).toBeNull();
    }
  });
});

describe('generateTraceparent', () => {
  it('is a version 00 traceparent with the sampled flag set', () => {
    const value = generateTraceparent();
    expect(value).toMatch(TRACEPARENT);
    expect(value.endsWith('-01')).toBe(true);
  });

  it('clears the sampled flag on request', () => {
    expect(generateTraceparent({ sampled: false })).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(generateTraceparent({ sampled: true }).endsWith('-01')).toBe(true);
  });

  it('draws new trace and span ids every call', () => {
    const values = Array.from({ length: 1000 }, () => generateTraceparent());
    const traceIds = new Set(values.map((value) => TRACEPARENT.exec(value)?.[1]));
    const spanIds = new Set(values.map((value) => TRACEPARENT.exec(value)?.[2]));
    expect(traceIds.size).toBe(1000);
    expect(spanIds.size).toBe(1000);
  });

  it('uses every hex digit in every position over many draws (the ids are random, not counters)', () => {
    const seen = Array.from({ length: 48 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) {
      const match = TRACEPARENT.exec(generateTraceparent());
      const hex = `${match?.[1]}${match?.[2]}`;
      for (let position = 0; position < 48; position++) seen[position]?.add(hex[position] ?? '');
    }
    // Missing one digit of 16 in 2000 uniform draws has probability about 16 * (15/16)^2000, ~1e-55.
    for (const digits of seen) expect(digits.size).toBe(16);
  });

  it('never returns an all-zero trace id or span id, even when the random source yields zeros', () => {
    let calls = 0;
    vi.stubGlobal('crypto', {
      getRandomValues: (array: Uint8Array) => {
        calls += 1;
        // The first draw of each id is all zeros; the second is random.
        return calls % 2 === 1 ? array.fill(0) : webcrypto.getRandomValues(array);
      },
    });
    const value = generateTraceparent();
    const match = TRACEPARENT.exec(value);
    expect(match?.[1]).not.toMatch(/^0+$/);
    expect(match?.[2]).not.toMatch(/^0+$/);
    expect(calls).toBe(4);
  });
});

describe('traceIdOf', () => {
  it('reads the trace id of a valid traceparent and rejects invalid ones', () => {
    const value = generateTraceparent();
    expect(traceIdOf(value)).toBe(TRACEPARENT.exec(value)?.[1]);
    expect(traceIdOf(null)).toBeNull();
    expect(traceIdOf('')).toBeNull();
    expect(traceIdOf(`00-${'0'.repeat(32)}-${'1'.repeat(16)}-01`)).toBeNull();
    expect(traceIdOf(value.toUpperCase())).toBeNull();
  });
});

describe('buildTracingHeaders', () => {
  it('sends traceparent, correlation id and session id when all are known', async () => {
    const accessToken = await supabaseAccessToken({ session_id: SESSION_ID });
    const correlationId = generateCorrelationId();
    const traceparent = generateTraceparent();
    expect(buildTracingHeaders({ accessToken, correlationId, traceparent })).toEqual({
      traceparent,
      'x-correlation-id': correlationId,
      'x-session-id': SESSION_ID,
    });
  });

  it('leaves x-session-id out when the session is unknown', async () => {
    for (const accessToken of [undefined, null, 'garbage', await supabaseAccessToken({})]) {
      const headers = buildTracingHeaders({ accessToken });
      expect(Object.keys(headers).sort()).toEqual(['traceparent', 'x-correlation-id']);
    }
  });

  it('makes a correlation id and a traceparent when none is given', () => {
    const headers = buildTracingHeaders();
    expect(headers['x-correlation-id']).toMatch(UUID_V4);
    expect(headers.traceparent).toMatch(TRACEPARENT);
    expect(buildTracingHeaders().traceparent).not.toBe(headers.traceparent);
  });

  it('lower-cases a correlation id given in upper case', () => {
    const correlationId = generateCorrelationId();
    expect(buildTracingHeaders({ correlationId: correlationId.toUpperCase() })['x-correlation-id']).toBe(correlationId);
  });

  it('replaces a correlation id or traceparent the edge would reject, instead of failing the request', () => {
    const headers = buildTracingHeaders({ correlationId: 'order-42', traceparent: '00-nonsense' });
    expect(headers['x-correlation-id']).toMatch(UUID_V4);
    expect(headers.traceparent).toMatch(TRACEPARENT);
  });

  it('produces values that are valid HTTP headers', async () => {
    const accessToken = await supabaseAccessToken({ session_id: SESSION_ID });
    const headers = new Headers(buildTracingHeaders({ accessToken }));
    expect([...headers.keys()].sort()).toEqual(['traceparent', 'x-correlation-id', 'x-session-id']);
  });
});
