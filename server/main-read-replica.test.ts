// `npm start` with TRACEGRES_READ_DATABASE_URL: a real streaming replica of
// its own embedded Postgres serves GraphQL queries and the Tempo and Jaeger
// reads, while mutations and writes go to the primary. Shown by pausing the
// standby's replay: a trace written to the primary meanwhile is not read.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import postgres from 'postgres';
import { afterAll, expect, it } from 'vitest';
import { ReplicaUnavailableError, startStreamingReplica, type StreamingReplica } from '../db/tests/helpers/streaming-replica.ts';
import { recordSpans, span, traceId } from '../db/tests/helpers/trace-fixtures.ts';
import { embeddedDatabaseUrl, readConfig } from './config.ts';
import { freePort } from './database/embedded-postgres.ts';
import { createStorageClient } from './jaeger/test-client.ts';
import { startNpmStart, type NpmStart } from './testing/npm-start.ts';

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-start-replica-'));
let replica: StreamingReplica | undefined;
let running: NpmStart | undefined;
afterAll(async () => {
  // The replica first: stopping it drops its slot on the primary.
  await replica?.stop();
  await running?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

it('npm start reads from the replica TRACEGRES_READ_DATABASE_URL names and writes to the primary', async (ctx) => {
  const pgPort = await freePort();
  // A first start creates and migrates the embedded primary; the replica is
  // a copy of it; the second start gets the replica as its read side.
  const first = await startNpmStart({ dataDir, pgPort });
  const databaseUrl = embeddedDatabaseUrl(readConfig({ TRACEGRES_DATA_DIR: dataDir, TRACEGRES_EMBEDDED_PG_PORT: String(pgPort) }));
  try {
    replica = await startStreamingReplica(databaseUrl);
  } catch (error) {
    await first.stop();
    if (!(error instanceof ReplicaUnavailableError) || process.env.CI) throw error;
    console.warn(`npm start with a read replica skipped: ${error.message}`);
    return ctx.skip();
  }
  expect(await first.stop()).toBe(0);
  const readUrl = replica.urlFor(databaseUrl);
  running = await startNpmStart({ dataDir, pgPort, env: { TRACEGRES_READ_DATABASE_URL: readUrl } });
  const output = running.output();
  expect(output).toMatch(/read replica: postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/tracegres \(TRACEGRES_READ_DATABASE_URL\)/);
  const graphqlUrl = /GraphQL:\s+(\S+)/.exec(output)![1]!;
  const token = /development token[^\n]*\n(\S+)/.exec(output)![1]!;
  const gql = async (query: string) =>
    (
      await fetch(graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query }),
      })
    ).json() as Promise<any>;
  const tempoStatus = async (trace: string) =>
    (await fetch(new URL(`/api/v2/traces/${trace}`, graphqlUrl), { headers: { authorization: `Bearer ${token}` } })).status;
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const jaeger = createStorageClient(/Jaeger remote storage \(gRPC\): (\S+)/.exec(output)![1]!);
  const timeline = (trace: string) => gql(`{ getTraceTimeline(pTraceId: "${traceId(trace)}") { nodes { name } } }`);

  const primary = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const standby = postgres(readUrl, { max: 1, onnotice: () => {} });
  try {
    await recordSpans(primary, [span('seen', { trace: 'replicated', start: 0, end: 10, name: 'GET /seen', org: null })]);
    await replica.caughtUp();
    expect((await timeline('replicated')).data.getTraceTimeline.nodes).toEqual([{ name: 'GET /seen' }]);

    await standby`select pg_wal_replay_pause()`;
    try {
      await recordSpans(primary, [span('unseen', { trace: 'paused', start: 0, end: 10, name: 'GET /unseen', org: null })]);
      expect((await timeline('paused')).data.getTraceTimeline.nodes).toEqual([]);
      expect(await tempoStatus(traceId('paused'))).toBe(404);
      expect(await jaeger.getTraces([traceId('paused')], metadata)).toMatchObject({ code: status.OK, value: [] });
      // A mutation is a write: it goes to the primary, replay paused or not.
      const created = await gql(`mutation { createAlertRule(input: { pName: "Via the primary", pKind: "event", pChannel: "slack",
        pTarget: "https://hooks.slack.com/services/T/B/P", pEventTypePattern: "payment.*" }) { result { name } } }`);
      expect(created.errors, JSON.stringify(created.errors)).toBeUndefined();
    } finally {
      await standby`select pg_wal_replay_resume()`;
    }
    await replica.caughtUp();
    expect((await timeline('paused')).data.getTraceTimeline.nodes).toEqual([{ name: 'GET /unseen' }]);
    expect(await tempoStatus(traceId('paused'))).toBe(200);
    const traces = await jaeger.getTraces([traceId('paused')], metadata);
    expect(JSON.stringify(traces.value)).toContain('GET /unseen');
  } finally {
    jaeger.close();
    await primary.end();
    await standby.end();
  }
}, 240_000);
