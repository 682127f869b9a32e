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
  return {
    status: response.status,
    body: (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: any }> },
  };
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
    const superuser = await new SignJWT({ role: 'postgres' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
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
    for (const claims of [
      {},
      { audience: 'other', issuer: 'https://auth.example' },
      { audience: 'tracegres', issuer: 'https://evil.example' },
    ]) {
      const token = await signToken(SECRET, { role: 'admin' }, '1h', claims);
      await expect(verify(`Bearer ${token}`)).rejects.toThrow(/invalid or expired token/);
    }
  });

  it('accepts a valid token', async () => {
    const token = await signToken(SECRET, { role: 'reader', organization_id: '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d' });
    expect(await post({ query: '{ __typename }' }, { authorization: `Bearer ${token}` })).toEqual({
      status: 200,
      body: { data: { __typename: 'Query' } },
    });
  });
});

describe('bounds', () => {
  it('refuses queries nested deeper than the limit, with a message saying so', async () => {
    const deep = '{ ' + 'node(id: "query") { ... on Query { '.repeat(9) + '__typename' + ' } }'.repeat(9) + ' }';
    const { status, body } = await post({ query: deep });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.message).toMatch(/query depth 10 exceeds the limit of 8/);
    const shallow = '{ ' + 'node(id: "query") { ... on Query { '.repeat(3) + '__typename' + ' } }'.repeat(3) + ' }';
    expect((await post({ query: shallow })).status).toBe(200);
  });

  it('has no Query.query field to re-enter the root through', async () => {
    const { status, body } = await post({ query: '{ query { __typename } }' });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.message).toMatch(/Cannot query field "query"/);
  });

  it('refuses fragments x aliases x root re-entry with a quick 400 naming the limit, and /health stays responsive', async () => {
    // The reported attack: 20 x 20 x 20 aliases through fragments, here
    // re-entering the root through node(id: "query") since Query.query is gone.
    const level = (name: string, next: string) =>
      `fragment ${name} on Query { ${Array.from({ length: 20 }, (_, i) => `a${i}: node(id: "query") { ... on Query { ...${next} } }`).join(' ')} }`;
    const timelines = Array.from(
      { length: 20 },
      (_, i) => `t${i}: getTraceTimeline(pTraceId: "4bf92f3577b34da6a3ce929d0e0e4736") { nodes { spanId name events } }`,
    ).join(' ');
    const attack = `query { ...F1 } ${level('F1', 'F2')} ${level('F2', 'F3')} fragment F3 on Query { ${timelines} }`;
    const started = Date.now();
    const health = (async () => {
      const t = Date.now();
      await (await fetch(`${http.url}/health`)).json();
      return Date.now() - t;
    })();
    const { status, body } = await post({ query: attack });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.message).toMatch(/query cost \d+ exceeds the limit of 50000/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await health).toBeLessThan(1_000);
  });

  it('weighs list fields by their page size', async () => {
    const fields = 'rowId eventType createdAt traceId spanId';
    expect((await post({ query: `{ getFailedEvents(pFirst: 500) { nodes { ${fields} } } }` })).status).toBe(200);
    const many = Array.from({ length: 25 }, (_, i) => `a${i}: getFailedEvents(pFirst: 500) { nodes { ${fields} } }`).join(' ');
    const { status, body } = await post({ query: `{ ${many} }` });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.message).toMatch(/query cost 62550 exceeds the limit of 50000/);
    // Variables count as their values.
    const vars = await post({ query: `query($n: Int) { ${many.replaceAll('pFirst: 500', 'pFirst: $n')} }`, variables: { n: 10 } });
    expect(vars.status).toBe(200);
  });

  it('answers the standard introspection query, which is deeper than the data limit', async () => {
    const { getIntrospectionQuery } = await import('postgraphile/graphql');
    const { status, body } = await post({ query: getIntrospectionQuery() });
    expect(status).toBe(200);
    expect(body.data.__schema.queryType.name).toBe('Query');
    const nested = '{ __schema { types { fields { args { type { enumValues { name } } } } } } }';
    const refused = await post({ query: nested });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]?.message).toMatch(/introspection nests 4 lists, more than the limit of 3/);
  });

  it('refuses oversized request bodies', async () => {
    const { status } = await post({ query: `{ __typename }`, variables: { pad: 'x'.repeat(200_000) } });
    expect(status).toBe(413);
  });
});

describe('with introspection off (the DATABASE_URL default)', () => {
  let closed: HttpServer;
  beforeAll(async () => {
    closed = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor: createTokenVerifier({ secret: SECRET }),
      graphql: { introspection: false },
    });
  });
  afterAll(() => closed?.close());
  const postTo = async (body: unknown) => {
    const response = await fetch(`${closed.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as { data?: any; errors?: Array<{ message: string }> } };
  };

  it('refuses introspection, serves no explorer and suggests no field names', async () => {
    const intro = await postTo({ query: '{ __schema { queryType { name } } }' });
    expect(intro.body.errors?.[0]?.message).toMatch(/introspection/i);
    const typo = await postTo({ query: '{ getTraceTimelin(pTraceId: "x") { nodes { spanId } } }' });
    expect(typo.body.errors?.[0]?.message).toMatch(/Cannot query field "getTraceTimelin"/);
    expect(typo.body.errors?.[0]?.message).not.toMatch(/Did you mean/);
    expect((await fetch(`${closed.url}/graphiql`, { headers: { accept: 'text/html' } })).status).toBe(404);
    expect((await postTo({ query: '{ __typename }' })).body).toEqual({ data: { __typename: 'Query' } });
  });

  it('suggests field names when introspection is on', async () => {
    const { body } = await post({ query: '{ getTraceTimelin(pTraceId: "x") { nodes { spanId } } }' });
    expect(body.errors?.[0]?.message).toMatch(/Did you mean "getTraceTimeline"/);
  });
});

describe('statement timeout', () => {
  it('cancels a GraphQL statement that runs past it, and says so', async () => {
    const slow = await startHttpServer({
      databaseUrl: db.url,
      port: 0,
      host: '127.0.0.1',
      pgSettingsFor: createTokenVerifier({ secret: SECRET }),
      graphql: { statementTimeout: '300ms' },
    });
    const admin = await signToken(SECRET, { role: 'admin' });
    // The schema is built first: building it would wait for the lock too.
    await fetch(`${slow.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{ __typename }"}',
    });
    // A lock held elsewhere makes the api function wait; the timeout ends the wait.
    const reserved = await db.sql.reserve();
    try {
      await reserved`begin`;
      await reserved`lock table tracing.spans in access exclusive mode`;
      const started = Date.now();
      const response = await fetch(`${slow.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query: '{ getTraceTimeline(pTraceId: "4bf92f3577b34da6a3ce929d0e0e4736") { nodes { spanId } } }' }),
      });
      const body = (await response.json()) as { errors?: Array<{ message: string; extensions?: any }> };
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(body.errors?.[0]?.message).toMatch(/statement timeout/);
      expect(body.errors?.[0]?.extensions?.code).toBe('STATEMENT_TIMEOUT');
    } finally {
      await reserved`rollback`;
      reserved.release();
      await slow.close();
    }
  });
});

describe('the schema', () => {
  it('has no table mutations: events and spans are read-only over GraphQL; mutations are volatile api functions only', async () => {
    const { body } = await post({ query: '{ __schema { mutationType { fields { name } } } }' });
    const mutations: string[] = (body.data.__schema.mutationType?.fields ?? []).map((f: { name: string }) => f.name);
    const volatile = await db.sql<{ name: string }[]>`
      select p.proname as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'api' and p.provolatile = 'v'`;
    const fromFunctions = volatile.map(({ name }) => name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()));
    // Exactly the volatile api functions: no table gets a create, update or delete.
    expect(mutations.sort()).toEqual(fromFunctions.sort());
  });

  it('answers health checks and 404s unknown paths without a stack', async () => {
    expect(await (await fetch(`${http.url}/health`)).json()).toEqual({ status: 'ok' });
    const missing = await fetch(`${http.url}/nope`);
    expect(missing.status).toBe(404);
  });
});
