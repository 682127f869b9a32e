// Which real Postgres errors reach a GraphQL client: the api functions' own
// argument errors, not any other data exception.
import { GraphQLError } from 'postgraphile/graphql';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { maskError } from './mask-error.ts';

const db = useTestDatabase();
// postgres.js reports the same fields (code, routine) as the pg driver
// PostGraphile uses: both carry Postgres's own error fields.
async function failure(sql: string): Promise<Error> {
  try {
    await db.sql.unsafe(sql);
  } catch (error) {
    return error as Error;
  }
  throw new Error(`expected ${sql} to fail`);
}

const masked = async (sql: string) => maskError(new GraphQLError('wrapped', { originalError: await failure(sql) }));

describe('maskError', () => {
  it("passes an api function's argument error through, naming the argument", async () => {
    const error = await masked(`select * from api.get_trace_timeline('nope')`);
    expect(error.message).toMatch(/^p_trace_id must be/);
    expect(error.extensions).toMatchObject({ code: 'INVALID_ARGUMENT', sqlstate: '22023' });
  });

  it('tells a role refused a function that it lacks the permission', async () => {
    const error = await masked(`set local role tracegres_reader; select api.delete_alert_rule(1)`);
    expect(error.message).toBe('permission denied for function delete_alert_rule');
    expect(error.extensions).toMatchObject({ code: 'FORBIDDEN', sqlstate: '42501' });
  });

  it('masks other data exceptions, which may quote stored values', async () => {
    for (const sql of [
      `select 'secret-value'::uuid`,
      `select 1/0`,
      `select make_interval(secs => 'Infinity'::float8)`,
      `do $$ begin raise exception 'secret %', 42 using errcode = '22023'; end $$`,
    ]) {
      const error = await masked(sql);
      expect(error.message, sql).toMatch(/^An error occurred/);
    }
  });
});
