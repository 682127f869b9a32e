// What each role may call over GraphQL, through the real server. The schema
// is one for every role; the grants decide who may call what. Replay and
// alerts are granted to readers and admins only, so a request without a
// token is refused them (FORBIDDEN), where the trace queries answer it with
// nothing; row-level security then gives a reader its organization's runs
// and rules, and an admin every one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { insertEvent, ORG_A, ORG_B } from '../../db/tests/helpers/trace-fixtures.ts';
import { createTokenVerifier } from '../auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';
import { postGraphQL } from '../testing/graphql-client.ts';
import { signTestTokens, type TestTokens } from '../testing/tokens.ts';

const db = useTestDatabase();
const SECRET = 'role-grants-test-secret-long-enough-for-hs256';
const CORRELATION: Record<string, string> = {
  [ORG_A]: 'c0ffee00-0000-4000-8000-00000000000a',
  [ORG_B]: 'c0ffee00-0000-4000-8000-00000000000b',
};
let http: HttpServer;
let tokens: TestTokens;

const gql = (query: string, variables: Record<string, unknown> = {}, token?: string) => postGraphQL(http.url, query, variables, token);

beforeAll(async () => {
  http = await startHttpServer({ databaseUrl: db.url, port: 0, host: '127.0.0.1', pgSettingsFor: createTokenVerifier({ secret: SECRET }) });
  tokens = await signTestTokens(SECRET, 'ops@example.com');
  // Each organization: a failed payment, a replay run of it and an alert rule.
  for (const org of [ORG_A, ORG_B]) {
    await insertEvent(db.sql, {
      trace: org === ORG_A ? 'pay-a' : 'pay-b',
      at: 5,
      type: 'payment.failed',
      correlation: CORRELATION[org],
      org,
      error: 'declined',
    });
    const run = await gql(
      `mutation($c: UUID!, $r: String!) { startReplay(input: { pCorrelationId: $c, pReason: $r }) { result { rowId } } }`,
      { c: CORRELATION[org], r: `replay of ${org}` },
      tokens.admin,
    );
    expect(run.errors, JSON.stringify(run.errors)).toBeUndefined();
    const rule = await gql(
      `mutation($org: UUID) { createAlertRule(input: { pName: "Declined", pKind: "event", pChannel: "webhook",
         pTarget: "https://hooks.example.com/a", pOrganizationId: $org, pEventTypePattern: "payment.*" }) { result { rowId } } }`,
      { org },
      tokens.admin,
    );
    expect(rule.errors, JSON.stringify(rule.errors)).toBeUndefined();
  }
});
afterAll(() => http?.close());

const RUNS = `{ getReplayRuns { nodes { reason organizationId } } }`;
const RULES = `{ alertRules { nodes { organizationId } } }`;
// Every query of replay and alerts, with the arguments it needs.
const GRANTED_TO_READERS = [
  RUNS,
  `{ getReplayRun(pRunId: "1") { rowId } }`,
  `{ getReplayItems(pRunId: "1") { nodes { position } } }`,
  `{ getReplaySet(pCorrelationId: "${CORRELATION[ORG_A]}") { nodes { position } } }`,
  `{ getReplaySetByTrace(pTraceId: "4bf92f3577b34da6a3ce929d0e0e4736") { nodes { position } } }`,
  `{ getFailedReplaySet(pFrom: "2025-03-01T00:00:00Z", pTo: "2025-03-02T00:00:00Z") { nodes { position } } }`,
  `{ getTraceReplays(pTraceId: "4bf92f3577b34da6a3ce929d0e0e4736") { nodes { runId } } }`,
  RULES,
  `{ recentAlerts { nodes { rowId } } }`,
];
const fieldOf = (query: string) => /\{\s*(\w+)/.exec(query)![1]!;

describe('grants over GraphQL', () => {
  it('gives every role the same schema, with the replay and alert fields in it', async () => {
    const SCHEMA = `{ __schema { queryType { fields { name } } mutationType { fields { name } } } }`;
    const [anonymous, reader, admin] = await Promise.all([gql(SCHEMA), gql(SCHEMA, {}, tokens.readerA), gql(SCHEMA, {}, tokens.admin)]);
    expect(reader.data).toEqual(anonymous.data);
    expect(admin.data).toEqual(anonymous.data);
    const queries = anonymous.data.__schema.queryType.fields.map((f: { name: string }) => f.name);
    expect(queries).toEqual(expect.arrayContaining([...GRANTED_TO_READERS.map(fieldOf), 'searchTraces', 'getFailedEvents']));
    const mutations = anonymous.data.__schema.mutationType.fields.map((f: { name: string }) => f.name);
    expect(mutations).toEqual(expect.arrayContaining(['startReplay', 'cancelReplay', 'createAlertRule', 'deleteAlertRule']));
  });

  it('refuses a request without a token every replay and alert query, and answers its trace queries with nothing', async () => {
    for (const query of GRANTED_TO_READERS) {
      const refused = await gql(query);
      expect(refused.errors?.[0], query).toMatchObject({
        message: expect.stringMatching(/^permission denied for/),
        extensions: { code: 'FORBIDDEN' },
      });
      expect(refused.data?.[fieldOf(query)] ?? null, query).toBeNull();
    }
    const traces = await gql(`{ searchTraces { nodes { traceId } } getFailedEvents { nodes { eventType } } }`);
    expect(traces.errors).toBeUndefined();
    expect(traces.data).toEqual({ searchTraces: { nodes: [] }, getFailedEvents: { nodes: [] } });
  });

  it("shows a reader its organization's replay runs and alert rules, and an admin every one", async () => {
    for (const query of GRANTED_TO_READERS) {
      const answered = await gql(query, {}, tokens.readerA);
      expect(answered.errors, query).toBeUndefined();
    }
    const organizations = async (query: string, token: string) =>
      (await gql(query, {}, token)).data[fieldOf(query)].nodes.map((n: { organizationId: string }) => n.organizationId).sort();
    expect(await organizations(RUNS, tokens.readerA)).toEqual([ORG_A]);
    expect(await organizations(RUNS, tokens.readerB)).toEqual([ORG_B]);
    expect(await organizations(RUNS, tokens.admin)).toEqual([ORG_A, ORG_B]);
    expect(await organizations(RULES, tokens.readerA)).toEqual([ORG_A]);
    expect(await organizations(RULES, tokens.admin)).toEqual([ORG_A, ORG_B]);
  });
});
