// Replay over GraphQL, through the real server: the replay set as a query
// (the dry run), startReplay and cancelReplay as the admins' mutations, the
// run's items with original and replayed outcomes; tenants apart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { insertEvent, ORG_B, recordSpans, span } from '../../db/tests/helpers/trace-fixtures.ts';
import { createTokenVerifier } from '../auth/jwt.ts';
import { startHttpServer, type HttpServer } from '../http-server.ts';
import { postGraphQL } from '../testing/graphql-client.ts';
import { signTestTokens, type TestTokens } from '../testing/tokens.ts';

const db = useTestDatabase();
const SECRET = 'replay-test-secret-long-enough-for-hs256!';
const CORRELATION_A = 'c0441000-0000-4000-8000-00000000000a';
const CORRELATION_B = 'c0441000-0000-4000-8000-00000000000b';
let http: HttpServer;
let tokens: TestTokens;

beforeAll(async () => {
  await recordSpans(db.sql, [
    span('root', { trace: 'ta', start: 0, end: 120, name: 'POST /checkout' }),
    span('pay', { trace: 'ta', parent: 'root', start: 20, end: 100, name: 'RunActivity:charge', service: 'worker', status: 'error' }),
  ]);
  await insertEvent(db.sql, { trace: 'ta', span: 'root', at: 5, type: 'checkout.started', correlation: CORRELATION_A });
  await insertEvent(db.sql, {
    trace: 'ta',
    span: 'pay',
    at: 30,
    type: 'payment.failed',
    correlation: CORRELATION_A,
    error: 'card declined',
  });
  await insertEvent(db.sql, { trace: 'tb', at: 5, type: 'orders.listed', correlation: CORRELATION_B, org: ORG_B, error: 'timeout' });
  http = await startHttpServer({ databaseUrl: db.url, port: 0, host: '127.0.0.1', pgSettingsFor: createTokenVerifier({ secret: SECRET }) });
  tokens = await signTestTokens(SECRET, 'ops@example.com');
});
afterAll(() => http?.close());

const gql = (query: string, variables: Record<string, unknown>, token: string) => postGraphQL(http.url, query, variables, token);

const SET = `query($c: UUID!) { getReplaySet(pCorrelationId: $c) { nodes { position eventType processingState processingError spanName spanService willReplay } } }`;
const START = `mutation($c: UUID!, $reason: String!) {
  startReplay(input: { pCorrelationId: $c, pReason: $reason }) { result { rowId status reason startedBy eventCount pendingCount traceId } }
}`;
const ITEMS = `query($id: BigInt!) { getReplayItems(pRunId: $id) { nodes { position eventType originalState originalError state } } }`;
const CANCEL = `mutation($id: BigInt!) { cancelReplay(input: { pRunId: $id }) { result { status cancelledBy cancelledCount } } }`;

describe('replay over GraphQL', () => {
  it('shows the dry run, starts a run as an admin, lists its items and cancels it', async () => {
    const set = await gql(SET, { c: CORRELATION_A }, tokens.readerA);
    expect(set.data.getReplaySet.nodes).toEqual([
      {
        position: 1,
        eventType: 'checkout.started',
        processingState: 'never_processed',
        processingError: null,
        spanName: 'POST /checkout',
        spanService: 'edge',
        willReplay: true,
      },
      {
        position: 2,
        eventType: 'payment.failed',
        processingState: 'failed',
        processingError: 'card declined',
        spanName: 'RunActivity:charge',
        spanService: 'worker',
        willReplay: true,
      },
    ]);

    const started = await gql(START, { c: CORRELATION_A, reason: 'charge bug fixed' }, tokens.admin);
    expect(started.errors).toBeUndefined();
    const run = started.data.startReplay.result;
    expect(run).toMatchObject({
      status: 'running',
      reason: 'charge bug fixed',
      startedBy: 'ops@example.com',
      eventCount: 2,
      pendingCount: 2,
    });
    expect(run.traceId).toMatch(/^[0-9a-f]{32}$/);

    const items = await gql(ITEMS, { id: run.rowId }, tokens.readerA);
    expect(items.data.getReplayItems.nodes.map((n: any) => [n.eventType, n.originalState, n.state])).toEqual([
      ['checkout.started', 'never_processed', 'pending'],
      ['payment.failed', 'failed', 'pending'],
    ]);
    const otherTenant = await gql(ITEMS, { id: run.rowId }, tokens.readerB);
    expect(otherTenant.data.getReplayItems.nodes).toEqual([]);

    const cancelled = await gql(CANCEL, { id: run.rowId }, tokens.admin);
    expect(cancelled.data.cancelReplay.result).toEqual({ status: 'cancelled', cancelledBy: 'ops@example.com', cancelledCount: 2 });
  });

  it('refuses a reader that tries to start a run, and names bad arguments', async () => {
    const refused = await gql(START, { c: CORRELATION_A, reason: 'x' }, tokens.readerA);
    expect(refused.data?.startReplay ?? null).toBeNull();
    expect(refused.errors?.length).toBe(1);
    const [before] = await db.sql`select count(*)::int as n from tracing.replay_runs where reason = 'x'`;
    expect(before!.n).toBe(0);

    const blank = await gql(START, { c: CORRELATION_A, reason: ' ' }, tokens.admin);
    expect(blank.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/^p_reason is required/),
      extensions: { code: 'INVALID_ARGUMENT' },
    });
    const nothing = await gql(START, { c: 'c0441000-0000-4000-8000-0000000000ff', reason: 'x' }, tokens.admin);
    expect(nothing.errors?.[0]?.message).toMatch(/^p_correlation_id selects no failed or never-processed event/);
  });
});
