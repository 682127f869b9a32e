// The alert rules' mutations as GraphQL clients see them: an admin token
// creates, mutes and deletes a rule; a reader token is refused and changes
// nothing; bad arguments come back naming the argument.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORG_A } from '../../db/tests/helpers/trace-fixtures.ts';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { createTokenVerifier, signToken } from '../auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';
import { postGraphQL } from '../testing/graphql-client.ts';

const db = useTestDatabase();
const SECRET = 'alert-mutation-test-secret-for-hs256!';
let http: HttpServer;
let admin: string;
let reader: string;

beforeAll(async () => {
  http = await startHttpServer({ databaseUrl: db.url, port: 0, host: '127.0.0.1', pgSettingsFor: createTokenVerifier({ secret: SECRET }) });
  admin = await signToken(SECRET, { role: 'admin', sub: 'ops' });
  reader = await signToken(SECRET, { role: 'reader', organization_id: ORG_A, sub: 'support' });
});
afterAll(() => http?.close());

const gql = (query: string, variables: Record<string, unknown>, token: string) => postGraphQL(http.url, query, variables, token);

const CREATE = `mutation($org: UUID, $target: String!) {
  createAlertRule(input: { pName: "Declined payments", pKind: "event", pChannel: "slack", pTarget: $target,
                           pOrganizationId: $org, pEventTypePattern: "payment.*" }) {
    result { rowId name kind channel eventTypePattern hasSecret enabled }
  }
}`;

describe('alert rule mutations', () => {
  it('let an admin create, mute and delete a rule, and readers list it', async () => {
    const created = await gql(CREATE, { org: ORG_A, target: 'https://hooks.slack.com/services/T/B/X' }, admin);
    expect(created.errors, JSON.stringify(created.errors)).toBeUndefined();
    const rule = created.data.createAlertRule.result;
    expect(rule).toMatchObject({
      name: 'Declined payments',
      kind: 'event',
      channel: 'slack',
      eventTypePattern: 'payment.*',
      hasSecret: false,
      enabled: true,
    });
    const muted = await gql(
      `mutation($id: BigInt!, $until: Datetime) { muteAlertRule(input: { pRuleId: $id, pUntil: $until }) { result { mutedUntil } } }`,
      { id: rule.rowId, until: '2099-01-01T00:00:00Z' },
      admin,
    );
    expect(muted.errors?.[0]?.message).toBe('p_until must be within a year (disable the rule instead)');
    const listed = await gql(`{ alertRules { nodes { name } } }`, {}, reader);
    expect(listed.data.alertRules.nodes).toEqual([{ name: 'Declined payments' }]);
    const deleted = await gql(
      `mutation($id: BigInt!) { deleteAlertRule(input: { pRuleId: $id }) { result { name } } }`,
      { id: rule.rowId },
      admin,
    );
    expect(deleted.data.deleteAlertRule.result).toEqual({ name: 'Declined payments' });
  });

  it('refuse a reader, who changes nothing', async () => {
    const refused = await gql(CREATE, { org: ORG_A, target: 'https://hooks.slack.com/services/T/B/X' }, reader);
    expect(refused.errors?.length).toBe(1);
    expect(refused.errors?.[0]).toMatchObject({
      message: 'permission denied for function create_alert_rule',
      extensions: { code: 'FORBIDDEN' },
    });
    expect(refused.data?.createAlertRule ?? null).toBeNull();
    expect(await db.sql`select count(*)::int as n from tracing.alert_rules`).toEqual([{ n: 0 }]);
  });

  it('name the bad argument', async () => {
    const bad = await gql(CREATE, { org: ORG_A, target: 'ftp://nope' }, admin);
    expect(bad.errors?.[0]).toMatchObject({
      message: 'p_target must be an http or https URL for the slack channel',
      extensions: { code: 'INVALID_ARGUMENT' },
    });
  });
});
