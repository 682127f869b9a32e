// The HTTP layer in front of PostGraphile: token checks, query bounds,
// read-only schema.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';
import { createTokenVerifier, signToken } from './auth/jwt.ts';
import { startHttpServer, type HttpServer } from './http-server.ts';

const db = useTestDatabase();
const SECRET = 'test-secret-with-enough-length-for-hs256';
let http: HttpServer;

beforeAll(async () => {
  http = await startHttpServer({
    databaseUrl: db.url,
    port: 0,
    host: '127.0.0.1',
    pgSettingsFor: createTokenVerifier({ secret: SECRET }),
  });
});
afterAll(() => http?.close());

async function post(body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${http.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: any }> } };
}

describe('tokens', () => {
  it('answers 401 naming the problem for a token that does not verify', async () => {
    const wrong = await signToken('another-secret-another-secret-another', { role: 'admin' });
    for (const authorization of [`Bearer ${wrong}`, 'Bearer not.a.jwt', 'Basic dXNlcjpwYXNz']) {
      const { status, body } = await post({ query: '{ __typename }' }, { authorization });
      expect(status).toBe(401);
      expect(body.errors?.[0]?.extensions?.code).toBe('INVALID_TOKEN');
    }
  });

  it('refuses an expired token and one with an unknown role', async () => {
    const expired = await signToken(SECRET, { role: 'admin' }, '-1m');
    expect((await post({ query: '{ __typename }' }, { authorization: `Bearer ${expired}` })).status).toBe(401);
    const { SignJWT } = await import('jose');
    const superuser = await new SignJWT({ role: 'postgres' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    const { status, body } = await post({ query: '{ __typename }' }, { authorization: `Bearer ${superuser}` });
    expect(status).toBe(401);
    expect(body.errors?.[0]?.message).toMatch(/role must be one of/);
  });

  it('refuses a token without an expiry, and one whose role is an Object.prototype key', async () => {
    const { SignJWT } = await import('jose');
    const key = new TextEncoder().encode(SECRET);
    const forever = await new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    expect((await post({ query: '{ __typename }' }, { authorization: `Bearer ${forever}` })).status).toBe(401);
    for (const role of ['constructor', '__proto__', 'toString']) {
      const token = await new SignJWT({ role }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key);
      const { status, body } = await post({ query: '{ __typename }' }, { authorization: `Bearer ${token}` });
      expect(status, role).toBe(401);
      expect(body.errors?.[0]?.message).toMatch(/role must be one of/);
    }
  });

  it('checks audience and issuer when they are configured', async () => {
    const verify = createTokenVerifier({ secret: SECRET, audience: 'tracegres', issuer: 'https://auth.example' });
    const good = await signToken(SECRET, { role: 'admin' }, '1h', { audience: 'tracegres', issuer: 'https://auth.example' });
    expect((await verify(`Bearer ${good}`)).role).toBe('tracegres_admin');
    for (const claims of [{}, { audience: 'other', issuer: 'https://auth.example' }, { audience: 'tracegres', issuer: 'https://evil.example' }]) {
      const token = await signToken(SECRET, { role: 'admin' }, '1h', claims);
      await expect(verify(`Bearer ${token}`)).rejects.toThrow(/invalid or expired token/);
    }
  });

  it('accepts a valid token', async () => {
    const token = await signToken(SECRET, { role: 'reader', organization_id: '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d' });
    expect(await post({ query: '{ __typename }' }, { authorization: `Bearer ${token}` })).toEqual({ status: 200, body: { data: { __typename: 'Query' } } });
  });
});

describe('bounds', () => {
  it('refuses queries nested deeper than the limit, with a message saying so', async () => {
    const deep = '{ ' + 'a: query { '.repeat(9) + '__typename' + ' }'.repeat(9) + ' }';
    const { status, body } = await post({ query: deep });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.message).toMatch(/query depth 10 exceeds the limit of 8/);
    const shallow = '{ ' + 'a: query { '.repeat(3) + '__typename' + ' }'.repeat(3) + ' }';
    expect((await post({ query: shallow })).status).toBe(200);
  });

  it('refuses oversized request bodies', async () => {
    const { status } = await post({ query: `{ __typename }`, variables: { pad: 'x'.repeat(200_000) } });
    expect(status).toBe(413);
  });
});

describe('the schema', () => {
  it('has no mutations: events and spans are read-only over GraphQL', async () => {
    const { body } = await post({ query: '{ __schema { mutationType { name } } }' });
    expect(body.data.__schema.mutationType).toBeNull();
  });

  it('answers health checks and 404s unknown paths without a stack', async () => {
    expect(await (await fetch(`${http.url}/health`)).json()).toEqual({ status: 'ok' });
    const missing = await fetch(`${http.url}/nope`);
    expect(missing.status).toBe(404);
  });
});
