// `npm start` end to end: an embedded Postgres whose data survives a
// restart, migrated, GraphQL answering, Ctrl-C stopping both cleanly.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedDatabaseUrl, readConfig } from './config.ts';
import { freePort } from './database/embedded-postgres.ts';
import { createStorageClient } from './jaeger/test-client.ts';
import { startNpmStart, type NpmStart } from './testing/npm-start.ts';

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-start-'));
afterAll(() => rm(dataDir, { recursive: true, force: true }));

interface Started extends NpmStart {
  graphqlUrl: string;
  databaseUrl: string;
  token: string;
}

async function start(pgPort: number): Promise<Started> {
  const started = await startNpmStart({ dataDir, pgPort });
  const output = started.output();
  const graphqlUrl = /GraphQL:\s+(\S+)/.exec(output)![1]!;
  const token = /development token[^\n]*\n(\S+)/.exec(output)![1]!;
  const databaseUrl = embeddedDatabaseUrl(readConfig({ TRACEGRES_DATA_DIR: dataDir, TRACEGRES_EMBEDDED_PG_PORT: String(pgPort) }));
  return { ...started, graphqlUrl, databaseUrl, token };
}

async function query(url: string, body: string, token?: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });
  return { status: response.status, body: await response.json() };
}

describe('npm start with the embedded database', () => {
  it('serves GraphQL, stops on Ctrl-C, and finds its data again on the next start', async () => {
    const pgPort = await freePort();
    const first = await start(pgPort);
    expect(first.output()).toContain('(embedded, data in');
    expect(first.output()).toMatch(/database: postgres:\/\/postgres:\*\*\*@/);

    const typename = await query(first.graphqlUrl, JSON.stringify({ query: '{ __typename }' }), first.token);
    expect(typename).toEqual({ status: 200, body: { data: { __typename: 'Query' } } });
    // The Tempo query API answers on the same port, to the same token.
    const tempo = await fetch(new URL(`/api/v2/traces/${'e'.repeat(32)}`, first.graphqlUrl), {
      headers: { authorization: `Bearer ${first.token}` },
    });
    expect([tempo.status, await tempo.text()]).toEqual([404, `trace ${'e'.repeat(32)} not found`]);
    // The Jaeger remote storage is logged with its address and reads as the token's caller.
    const jaegerAddress = /Jaeger remote storage \(gRPC\): (\S+)/.exec(first.output())![1]!;
    const storage = createStorageClient(jaegerAddress);
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${first.token}`);
    expect(await storage.getServices(metadata)).toMatchObject({ code: status.OK });
    expect((await storage.getServices(new Metadata())).code).toBe(status.UNAUTHENTICATED);
    storage.close();

    // A row written now must be there after the restart.
    const sql = postgres(first.databaseUrl, { max: 1, onnotice: () => {} });
    await sql`insert into tracing.domain_events (stream_type, stream_id, event_type) values ('probe', 'p-1', 'probe.written')`;
    await sql.end();

    expect(await first.stop()).toBe(0);
    expect(first.output()).toContain('stopping...');
    // Postgres is down: the port refuses connections.
    const down = postgres(first.databaseUrl, { max: 1, connect_timeout: 2, onnotice: () => {} });
    await expect(down`select 1`).rejects.toThrow();
    await down.end();

    const second = await start(pgPort);
    try {
      expect(second.output()).not.toContain('initialised');
      const again = postgres(second.databaseUrl, { max: 1, onnotice: () => {} });
      const [row] = await again`select count(*)::int as n from tracing.domain_events where event_type = 'probe.written'`;
      await again.end();
      expect(row!.n).toBe(1);
      // The local signing secret survived too: the first start's token still verifies.
      const reused = await query(second.graphqlUrl, JSON.stringify({ query: '{ __typename }' }), first.token);
      expect(reused.status).toBe(200);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 180_000);
});
