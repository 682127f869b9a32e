// The request transaction opened in one message: settings arrive exactly as
// given, last only as long as the request, and a failed request leaves a
// clean connection behind.
import { makePgService } from 'postgraphile/adaptors/pg';
import { parse } from 'postgraphile/graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { makePreset } from './preset.ts';
import { makeSettingsTransactionPgService, withSettingsTransaction } from './settings-transaction.ts';

const db = useTestDatabase();
let service: ReturnType<typeof makePgService>;
let withPgClient: ReturnType<typeof withSettingsTransaction>;

beforeAll(() => {
  // One connection, so every call below reuses the one the previous left;
  // pipelined, as the server's (makeSettingsTransactionPgService).
  service = makePgService({ connectionString: db.url, schemas: ['api'], pubsub: false, poolConfig: { max: 1, pipeline: true } });
  withPgClient = withSettingsTransaction((service.adaptorSettings as { pool: Parameters<typeof withSettingsTransaction>[0] }).pool);
});
afterAll(() => service?.release?.());

type Client = Parameters<Parameters<typeof withPgClient>[1]>[0];
const one = async (client: Client, text: string) => (await client.query<Record<string, unknown>>({ text })).rows[0]!;

describe('withSettingsTransaction', () => {
  it('passes values with quotes, backslashes and other scripts through unchanged', async () => {
    const value = `o'brien \\ "x" ; select 1; -- é ✓`;
    const row = await withPgClient({ 'jwt.claims.user_id': value, 'jwt.claims.role': 'reader' }, (client) =>
      one(client, `select current_setting('jwt.claims.user_id') as user_id, current_setting('jwt.claims.role') as role`),
    );
    expect(row).toEqual({ user_id: value, role: 'reader' });
  });

  it('switches role and statement_timeout for the request only', async () => {
    const [login] = await db.sql`select current_user as user`;
    const inside = await withPgClient({ role: 'tracegres_reader', statement_timeout: '1234ms' }, (client) =>
      one(
        client,
        `select current_user as role, current_setting('statement_timeout') as timeout, current_setting('jit_optimize_above_cost') as jit`,
      ),
    );
    // JIT optimization off, as @dataplan/pg has it.
    expect(inside).toEqual({ role: 'tracegres_reader', timeout: '1234ms', jit: '-1' });
    const after = await withPgClient(null, (client) =>
      one(
        client,
        `select current_user as role, current_setting('statement_timeout') as timeout, current_setting('jwt.claims.user_id', true) as claim`,
      ),
    );
    expect(after.role).toBe(login!.user);
    expect(after.timeout).not.toBe('1234ms');
    expect(after.claim ?? '').toBe('');
  });

  it('rolls back a failed request and leaves the connection clean', async () => {
    await expect(
      withPgClient({ role: 'tracegres_reader' }, async (client) => {
        await client.query({ text: 'select 1/0' });
      }),
    ).rejects.toThrow(/division by zero/);
    await expect(withPgClient({ role: 'no_such_role_here' }, (client) => one(client, 'select 1'))).rejects.toThrow(/no_such_role_here/);
    const after = await withPgClient(null, (client) =>
      one(client, `select current_user as role, pg_current_xact_id_if_assigned() is null as fresh`),
    );
    expect(after.role).not.toBe('tracegres_reader');
    const status = await withPgClient({ role: 'tracegres_reader' }, (client) => one(client, `select current_user as role`));
    expect(status.role).toBe('tracegres_reader');
  });

  it('runs a nested transaction as a savepoint inside the request transaction', async () => {
    const rows = await withPgClient({ 'jwt.claims.role': 'admin' }, async (client) => {
      await expect(client.withTransaction((inner) => inner.query({ text: 'select 1/0' }))).rejects.toThrow(/division by zero/);
      // The outer transaction survived the inner failure, settings and all.
      return one(client, `select current_setting('jwt.claims.role') as role`);
    });
    expect(rows).toEqual({ role: 'admin' });
  });

  it('refuses writes in a read-only request and hands the connection on once its commit is back', async () => {
    await expect(
      withPgClient({ transaction_read_only: 'on' }, (client) => client.query({ text: 'create temporary table read_only_probe (a int)' })),
    ).rejects.toThrow(/read-only transaction/);
    // Answered before the commit came back; the one connection still serves
    // the next request, outside that transaction.
    for (let i = 0; i < 5; i++) {
      const row = await withPgClient({ transaction_read_only: 'on', 'jwt.claims.role': `r${i}` }, (client) =>
        one(client, `select current_setting('jwt.claims.role') as role, current_setting('transaction_read_only') as read_only`),
      );
      expect(row).toEqual({ role: `r${i}`, read_only: 'on' });
    }
    const after = await withPgClient({ 'jwt.claims.role': 'writer' }, (client) =>
      one(client, `select current_setting('transaction_read_only') as read_only`),
    );
    expect(after).toEqual({ read_only: 'off' });
  });
  it('sends a read-only opening with its first query, and reports the opening when it fails', async () => {
    // The setting fails, so the transaction is aborted before the query
    // behind it, which Postgres then refuses (25P02) without reading.
    await expect(
      withPgClient({ transaction_read_only: 'on', statement_timeout: 'soon' }, (client) => one(client, 'select 1 as one')),
    ).rejects.toThrow(/statement_timeout/);
    await expect(
      withPgClient({ transaction_read_only: 'on', role: 'no_such_role_here' }, (client) => one(client, 'select 1')),
    ).rejects.toThrow(/no_such_role_here/);
    // The connection is clean for the next request.
    const after = await withPgClient({ transaction_read_only: 'on', role: 'tracegres_reader' }, (client) =>
      one(client, `select current_user as role, current_setting('statement_timeout') as timeout`),
    );
    expect(after).toEqual({ role: 'tracegres_reader', timeout: '0' });
  });

  it('runs every statement of a read-only request in its one transaction', async () => {
    const rows = await withPgClient({ transaction_read_only: 'on', 'jwt.claims.role': 'reader' }, async (client) => {
      const first = await one(client, `select now() as at`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const second = await one(client, `select now() as at, current_setting('jwt.claims.role') as role`);
      return { first, second };
    });
    // now() is the transaction's start: the same for both statements.
    expect(rows.second.at).toEqual(rows.first.at);
    expect(rows.second.role).toBe('reader');
  });

  it('opens no transaction for a read-only request that reads nothing', async () => {
    expect(await withPgClient({ transaction_read_only: 'on', role: 'tracegres_reader' }, async () => 'nothing read')).toBe('nothing read');
    const after = await withPgClient(null, (client) =>
      one(client, `select current_user as role, current_setting('transaction_read_only') as read_only`),
    );
    expect(after.role).not.toBe('tracegres_reader');
    expect(after.read_only).toBe('off');
  });
});

describe('the preset', () => {
  const context = makePreset('postgres://unused').grafast!.context as (
    requestContext: object,
    args: { document: ReturnType<typeof parse>; operationName?: string },
  ) => { pgSettings: Record<string, string> };

  it('pipelines its connections, so a read sends its opening and first query together', async () => {
    const own = makeSettingsTransactionPgService({ connectionString: db.url, schemas: ['api'], pubsub: false });
    const client = await (own.adaptorSettings as { pool: Parameters<typeof withSettingsTransaction>[0] }).pool.connect();
    try {
      expect(client.pipeline).toBe(true);
    } finally {
      client.release();
      await own.release?.();
    }
  });

  it("keeps idle connections open past pg's 10 s, so a lookup after a quiet spell neither connects nor plans again", async () => {
    const own = makeSettingsTransactionPgService({ connectionString: db.url, schemas: ['api'], pubsub: false });
    const pool = (own.adaptorSettings as { pool: Parameters<typeof withSettingsTransaction>[0] & { idleCount: number } }).pool;
    const backend = async () => {
      const client = await pool.connect();
      try {
        return (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      } finally {
        client.release();
      }
    };
    // The pool's timers only: its idle timeout is a setTimeout.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const first = await backend();
      vi.advanceTimersByTime(10 * 60_000);
      expect(pool.idleCount).toBe(1);
      expect(await backend()).toBe(first);
    } finally {
      vi.useRealTimers();
      await own.release?.();
    }
  });

  it('runs queries read-only and mutations read-write, each with the statement timeout', () => {
    const document = parse('query Q { __typename } mutation M { __typename }');
    expect(context({}, { document, operationName: 'Q' }).pgSettings).toMatchObject({
      transaction_read_only: 'on',
      statement_timeout: '10s',
    });
    const mutation = context({}, { document, operationName: 'M' }).pgSettings;
    expect(mutation.transaction_read_only).toBeUndefined();
    expect(mutation.statement_timeout).toBe('10s');
  });
});
