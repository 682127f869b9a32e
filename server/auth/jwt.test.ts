// Token verification: what a verified token maps to, and that remembering
// verified tokens changes no answer (expiry, exact text, shared settings).
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ANONYMOUS_SETTINGS, createTokenVerifier, InvalidTokenError, signToken, VERIFIED_TOKEN_CACHE_SIZE } from './jwt.ts';

const SECRET = 'jwt-test-secret-long-enough-for-hs256!';
const ORG = '0a000000-0000-4000-8000-000000000001';

afterEach(() => {
  vi.useRealTimers();
});

describe('createTokenVerifier', () => {
  it('maps a reader token to its role and organization, and no token to the anonymous role', async () => {
    const verify = createTokenVerifier({ secret: SECRET });
    const token = await signToken(SECRET, { role: 'reader', organization_id: ORG, sub: 'support' });
    expect(await verify(`Bearer ${token}`)).toEqual({
      role: 'tracegres_reader',
      'jwt.claims.role': 'reader',
      'jwt.claims.organization_id': ORG,
      'jwt.claims.user_id': 'support',
    });
    expect(await verify(undefined)).toBe(ANONYMOUS_SETTINGS);
  });

  it('refuses a remembered token once it has expired', async () => {
    const verify = createTokenVerifier({ secret: SECRET });
    const token = await signToken(SECRET, { role: 'admin' }, '10s');
    expect((await verify(`Bearer ${token}`)).role).toBe('tracegres_admin');
    expect((await verify(`Bearer ${token}`)).role).toBe('tracegres_admin');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 11_000);
    await expect(verify(`Bearer ${token}`)).rejects.toThrow(InvalidTokenError);
    // Still refused on the next try: the expired entry did not come back.
    await expect(verify(`Bearer ${token}`)).rejects.toThrow(/invalid or expired/);
  });

  it('refuses the expiry second itself, as jose does', async () => {
    const verify = createTokenVerifier({ secret: SECRET });
    const exp = Math.floor(Date.now() / 1000) + 5;
    const token = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(SECRET));
    await verify(`Bearer ${token}`);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(exp * 1000);
    await expect(verify(`Bearer ${token}`)).rejects.toThrow(InvalidTokenError);
  });

  it('checks a token that differs from a remembered one by a single character', async () => {
    const verify = createTokenVerifier({ secret: SECRET });
    const token = await signToken(SECRET, { role: 'admin' });
    await verify(`Bearer ${token}`);
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    await expect(verify(`Bearer ${token.slice(0, -1)}${last}`)).rejects.toThrow(InvalidTokenError);
    // The same payload signed with another secret, sent after the real one.
    const forged = await signToken('another-secret-another-secret-another!', { role: 'admin' });
    await expect(verify(`Bearer ${forged}`)).rejects.toThrow(InvalidTokenError);
  });

  it('hands out settings nobody can change for the next request with the same token', async () => {
    const verify = createTokenVerifier({ secret: SECRET });
    const token = await signToken(SECRET, { role: 'reader', organization_id: ORG });
    const first = await verify(`Bearer ${token}`);
    expect(() => {
      first.role = 'tracegres_admin';
    }).toThrow(TypeError);
    expect(() => {
      ANONYMOUS_SETTINGS.role = 'tracegres_admin';
    }).toThrow(TypeError);
    expect((await verify(`Bearer ${token}`)).role).toBe('tracegres_reader');
  });

  it('keeps answering correctly past the number of tokens it remembers', async () => {
    const verify = createTokenVerifier({ secret: SECRET });
    const tokens = await Promise.all(
      Array.from({ length: VERIFIED_TOKEN_CACHE_SIZE + 5 }, (_, i) =>
        signToken(SECRET, { role: 'reader', organization_id: ORG, sub: `user-${i}` }),
      ),
    );
    for (const token of tokens) await verify(`Bearer ${token}`);
    // The first ones were pushed out and are verified again, with the same answer.
    for (const [i, token] of tokens.slice(0, 5).entries()) {
      expect((await verify(`Bearer ${token}`))['jwt.claims.user_id']).toBe(`user-${i}`);
    }
  });
});
