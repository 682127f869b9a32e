// readAsCaller: the read runs in one read-only transaction with the caller's
// settings, a failed setting is what the caller hears (and nothing is read),
// the connection goes back clean, and the pool still closes mid-read.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';
import { readAsCaller } from './read-as-caller.ts';

const db = useTestDatabase();
let sql: postgres.Sql;

beforeAll(() => {
  // One connection, so every call below reuses the one the previous left.
  sql = postgres(db.url, { max: 1, onnotice: () => {} });
});
afterAll(() => sql?.end());

const reader = { role: 'tracegres_reader', 'jwt.claims.organization_id': '0a000000-0000-4000-8000-0000000000c1' };

describe('readAsCaller', () => {
  it('reads as the caller, read-only, with the statement timeout, in one transaction', async () => {
    const { first, second } = await readAsCaller(sql, reader, '1234ms', async (tx) => {
      const [first] = await tx`select current_user as role, current_setting('jwt.claims.organization_id') as organization,
        current_setting('statement_timeout') as timeout, current_setting('transaction_read_only') as read_only, now() as at`;
      await new Promise((resolve) => setTimeout(resolve, 20));
      const [second] = await tx`select now() as at`;
      return { first: first!, second: second! };
    });
    expect(first).toMatchObject({
      role: 'tracegres_reader',
      organization: reader['jwt.claims.organization_id'],
      timeout: '1234ms',
      read_only: 'on',
    });
    // now() is the transaction's start: both statements ran in the one transaction.
    expect(second.at).toEqual(first.at);
  });

  it('refuses a write', async () => {
    await expect(readAsCaller(sql, {}, '1s', (tx) => tx`create temporary table read_as_caller_probe (a int)`)).rejects.toThrow(
      /read-only transaction/,
    );
  });

  it('reports a failed setting, reads nothing, and leaves the connection clean', async () => {
    let answered = false;
    await expect(
      readAsCaller(sql, { role: 'no_such_role_here' }, '1s', async (tx) => {
        const rows = await tx`select 1 as one`;
        answered = true;
        return rows;
      }),
    ).rejects.toThrow(/no_such_role_here/);
    expect(answered).toBe(false);
    await expect(readAsCaller(sql, reader, 'soon', (tx) => tx`select 1`)).rejects.toThrow(/statement_timeout/);
    const [after] = await sql`select current_user as role, current_setting('statement_timeout') as timeout,
      current_setting('jwt.claims.organization_id', true) as organization`;
    expect(after!.role).not.toBe('tracegres_reader');
    expect(after!.timeout).toBe('0');
    expect(after!.organization ?? '').toBe('');
  });

  it('reports a failed read and leaves the connection clean', async () => {
    await expect(readAsCaller(sql, reader, '1s', (tx) => tx`select 1 / 0`)).rejects.toThrow(/division by zero/);
    const [after] = await readAsCaller(sql, reader, '1s', (tx) => tx`select current_user as role`);
    expect(after!.role).toBe('tracegres_reader');
  });

  it('lets its pool close while a read is under way', async () => {
    // A server's shutdown ends its pool while requests may still read.
    const own = postgres(db.url, { max: 1, onnotice: () => {} });
    const reading = readAsCaller(own, reader, '5s', (tx) => tx`select pg_sleep(0.2), 1 as one`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = own.end();
    const closed = await Promise.race([
      closing.then(() => 'closed'),
      new Promise((resolve) => setTimeout(resolve, 5_000, 'still open after 5 s')),
    ]);
    expect(closed).toBe('closed');
    expect(await reading).toHaveLength(1);
  });
});
