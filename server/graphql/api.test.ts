// The query API as GraphQL consumers see it: every api function as a query
// field, its SQL comment as its description, access decided by the token
// (tenant, admin, none), bad arguments as errors naming the argument. Over
// HTTP through the real server, and in process through grafast.
import { postgraphile } from 'postgraphile';
import { createWithPgClient } from 'postgraphile/adaptors/pg';
import { grafast } from 'postgraphile/grafast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEvent, ORG_A, ORG_B, recordFailedCheckout, span, spanId, traceId } from '../../db/tests/helpers/trace-fixtures.ts';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier } from '../auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';
import { postGraphQL } from '../testing/graphql-client.ts';
import { signTestTokens, type TestTokens } from '../testing/tokens.ts';
import { makePreset, releasePostGraphile } from './preset.ts';

const db = useTestDatabase();
const SECRET = 'api-test-secret-long-enough-for-hs256!';
const SESSION_A = '5e551010-0000-4000-8000-00000000000a';
const CORRELATION_A = 'c0441000-0000-4000-8000-00000000000a';
const CORRELATION_B = 'c0441000-0000-4000-8000-00000000000b';
let http: HttpServer;
let tokens: TestTokens;

beforeAll(async () => {
  // Tenant A: a failed checkout trace; tenant B: its own trace.
  await recordFailedCheckout(db.sql, { trace: 'ta', otherTrace: 'tb', session: SESSION_A, correlation: CORRELATION_A });
  await insertEvent(db.sql, {
    trace: 'tb',
    span: 'rootb',
    at: 5,
    type: 'orders.listed',
    correlation: CORRELATION_B,
    org: ORG_B,
    error: 'timeout',
  });

  http = await startHttpServer({ databaseUrl: db.url, port: 0, host: '127.0.0.1', pgSettingsFor: createTokenVerifier({ secret: SECRET }) });
  tokens = await signTestTokens(SECRET);
});
afterAll(() => http?.close());

const gql = (query: string, variables: Record<string, unknown> = {}, token?: string) => postGraphQL(http.url, query, variables, token);

const TIMELINE = `query($t: String!) { getTraceTimeline(pTraceId: $t) { nodes { spanId parentSpanId name depth status onCriticalPath isPlaceholder events } } }`;
const FAILED = `{ getFailedEvents { nodes { eventType processingError correlationId sessionId traceId } } }`;

describe('access control over GraphQL', () => {
  it("a tenant reader sees its own trace, and nothing of another tenant's", async () => {
    const own = await gql(TIMELINE, { t: traceId('ta') }, tokens.readerA);
    expect(own.errors).toBeUndefined();
    expect(own.data.getTraceTimeline.nodes.map((n: any) => n.name)).toEqual([
      'POST /checkout',
      'RunWorkflow:checkout',
      'RunActivity:charge',
    ]);

    // Tenant A asking for tenant B's trace id: no rows, not an error.
    const other = await gql(TIMELINE, { t: traceId('tb') }, tokens.readerA);
    expect(other.errors).toBeUndefined();
    expect(other.data.getTraceTimeline.nodes).toEqual([]);
    const summary = await gql(`query($t: String!) { getTraceSummary(pTraceId: $t) { traceId } }`, { t: traceId('tb') }, tokens.readerA);
    expect(summary.data.getTraceSummary).toBeNull();
  });

  it('failed events are filtered by tenant; an admin sees all', async () => {
    const a = await gql(FAILED, {}, tokens.readerA);
    expect(a.data.getFailedEvents.nodes).toEqual([
      {
        eventType: 'payment.failed',
        processingError: 'card declined',
        correlationId: CORRELATION_A,
        sessionId: SESSION_A,
        traceId: traceId('ta'),
      },
    ]);
    const b = await gql(FAILED, {}, tokens.readerB);
    expect(b.data.getFailedEvents.nodes.map((n: any) => n.eventType)).toEqual(['orders.listed']);
    const admin = await gql(FAILED, {}, tokens.admin);
    expect(admin.data.getFailedEvents.nodes.map((n: any) => n.eventType).sort()).toEqual(['orders.listed', 'payment.failed']);
  });

  it('a request without a token sees nothing', async () => {
    expect((await gql(FAILED)).data.getFailedEvents.nodes).toEqual([]);
    expect((await gql(TIMELINE, { t: traceId('ta') })).data.getTraceTimeline.nodes).toEqual([]);
    const search = await gql(`{ searchTraces { nodes { traceId } } }`);
    expect(search.data.searchTraces.nodes).toEqual([]);
  });

  it('lookups by correlation and session id, and trace search, work for the tenant', async () => {
    const byCorrelation = await gql(
      `query($c: UUID!) { getEventsByCorrelation(pCorrelationId: $c) { nodes { eventType } } }`,
      { c: CORRELATION_A },
      tokens.readerA,
    );
    expect(byCorrelation.data.getEventsByCorrelation.nodes.map((n: any) => n.eventType)).toEqual(['payment.failed', 'checkout.started']);
    const bySession = await gql(
      `query($s: UUID!) { getEventsBySession(pSessionId: $s) { nodes { eventType } } }`,
      { s: SESSION_A },
      tokens.readerA,
    );
    expect(bySession.data.getEventsBySession.nodes).toHaveLength(2);
    const slow = await gql(
      `{ searchTraces(pMinDurationMs: 100) { nodes { traceId rootName durationMs errorCount services } } }`,
      {},
      tokens.admin,
    );
    expect(slow.data.searchTraces.nodes).toEqual([
      { traceId: traceId('ta'), rootName: 'POST /checkout', durationMs: 120, errorCount: 1, services: ['edge', 'worker'] },
    ]);
  });

  it('finds traces by a structured filter, for the tenant only', async () => {
    const query = `query($f: JSON!) { findTraces(pFilter: $f) { nodes { traceId rootName matchedSpans } } }`;
    const filter = {
      from: '2025-02-28T00:00:00Z',
      to: '2025-03-03T00:00:00Z',
      traces: {
        relation: 'descendant',
        left: { field: 'service', op: '=', value: 'edge' },
        right: { field: 'status', op: '=', value: 'error' },
      },
    };
    const own = await gql(query, { f: filter }, tokens.readerA);
    expect(own.errors).toBeUndefined();
    expect(own.data.findTraces.nodes.map((n: any) => [n.traceId, n.rootName])).toEqual([[traceId('ta'), 'POST /checkout']]);
    expect(own.data.findTraces.nodes[0].matchedSpans.map((s: any) => s.name)).toContain('RunActivity:charge');
    const other = await gql(query, { f: filter }, tokens.readerB);
    expect(other.data.findTraces.nodes).toEqual([]);
    const bad = await gql(query, { f: { ...filter, traces: { spans: { field: 'colour', op: '=', value: 'x' } } } }, tokens.readerA);
    expect(bad.errors?.[0]).toMatchObject({ extensions: { code: 'INVALID_ARGUMENT' } });
    expect(bad.errors?.[0]?.message).toMatch(/^p_filter.traces.spans.field must be/);
  });

  it('the timeline marks the critical path and carries the events of each span', async () => {
    const { data } = await gql(TIMELINE, { t: traceId('ta') }, tokens.admin);
    const pay = data.getTraceTimeline.nodes.find((n: any) => n.spanId === spanId('pay'));
    expect(pay).toMatchObject({ status: 'error', onCriticalPath: true, depth: 2, parentSpanId: spanId('wf') });
    expect(pay.events.map((e: any) => e.event_type)).toEqual(['payment.failed']);
  });
});

describe('bad input', () => {
  it.each([
    ['a malformed trace id', TIMELINE, { t: 'NOT-A-TRACE' }, /p_trace_id/],
    ['an all-zero trace id', TIMELINE, { t: '0'.repeat(32) }, /p_trace_id/],
    ['a negative page size', `{ getFailedEvents(pFirst: -1) { nodes { eventType } } }`, {}, /p_first/],
    ['a huge page size', `{ getFailedEvents(pFirst: 100000) { nodes { eventType } } }`, {}, /p_first/],
    ['half a cursor', `{ getFailedEvents(pAfterCreatedAt: "2025-01-01T00:00:00Z") { nodes { eventType } } }`, {}, /p_after_id/],
  ])('%s gets an error naming the argument, never a 500', async (_name, query, variables, argument) => {
    const result = await gql(query, variables, tokens.admin);
    expect(result.status).toBe(200);
    expect(result.errors?.[0]?.message).toMatch(argument);
    expect(result.errors?.[0]).toMatchObject({ extensions: { code: 'INVALID_ARGUMENT' } });
  });

  it('a malformed uuid is refused by GraphQL itself (400), naming the variable', async () => {
    const result = await gql(
      `query($c: UUID!) { getEventsByCorrelation(pCorrelationId: $c) { nodes { eventType } } }`,
      { c: 'nope' },
      tokens.admin,
    );
    expect(result.status).toBe(400);
    expect(result.errors?.[0]?.message).toMatch(/\$c/);
  });
});

describe('the schema', () => {
  it('describes every api function with its SQL comment', async () => {
    // Stable functions are queries, volatile ones mutations.
    const { data } = await gql(`{ __schema { queryType { fields { name description } } mutationType { fields { name description } } } }`);
    const fields = new Map<string, string | null>(
      [...data.__schema.queryType.fields, ...(data.__schema.mutationType?.fields ?? [])].map((f: any) => [f.name, f.description]),
    );
    const functions = await db.sql<{ name: string }[]>`
      select p.proname as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'api' and p.prokind = 'f'`;
    expect(functions.length).toBeGreaterThan(10);
    for (const { name } of functions) {
      const field = name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
      expect(fields.get(field), field).toMatch(/\w{4,}/);
    }
  });
});

describe('in process (grafast, no HTTP)', () => {
  it('runs the same queries with the settings a token would give', async () => {
    const pgl = postgraphile(makePreset(db.url));
    try {
      const { schema } = await pgl.getSchemaResult();
      const withPgClient = createWithPgClient({ connectionString: db.url });
      try {
        const run = (pgSettings: Record<string, string>) =>
          grafast({ schema, source: FAILED, contextValue: { withPgClient, pgSettings } }) as Promise<any>;
        const tenantA = await run({ role: 'tracegres_reader', 'jwt.claims.organization_id': ORG_A });
        expect(tenantA.data.getFailedEvents.nodes.map((n: any) => n.eventType)).toEqual(['payment.failed']);
        const anonymous = await run({ role: 'tracegres_anonymous' });
        expect(anonymous.data.getFailedEvents.nodes).toEqual([]);
      } finally {
        withPgClient.release?.();
      }
    } finally {
      await releasePostGraphile(pgl);
    }
  });
});

describe('the documented queries', () => {
  it('every GraphQL example in docs/event-observability.md is valid against the schema', async () => {
    const { readFile } = await import('node:fs/promises');
    const { parse, validate } = await import('postgraphile/graphql');
    const text = await readFile(new URL('../../docs/event-observability.md', import.meta.url), 'utf8');
    const examples = [...text.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(examples.length).toBeGreaterThanOrEqual(5);
    const pgl = postgraphile(makePreset(db.url));
    try {
      const { schema } = await pgl.getSchemaResult();
      for (const example of examples) {
        expect(
          validate(schema, parse(example)).map((e) => e.message),
          example,
        ).toEqual([]);
      }
    } finally {
      await releasePostGraphile(pgl);
    }
  });
});
