// A read-only transaction as a request's caller, for the query APIs that
// read through postgres.js (the Jaeger remote storage, the Tempo API): the
// caller's settings (role, organization claim) and the statement timeout
// are set local to the transaction, so row-level security keeps
// organizations apart as for GraphQL and each read's cost is bounded.
//
// sql.begin waits for its `begin` before the first read, a round trip a
// connection from sql.reserve() could save by sending `begin` with the
// read; but postgres.js 3.4 never finishes sql.end() called while a
// reserved connection is out (see porsager/postgres#925), so a server's
// shutdown would hang on an in-flight read. The test "lets its pool close
// while a read is under way" holds this.
import type postgres from 'postgres';
import type { PgSettings } from './auth/jwt.ts';

export function readAsCaller<T>(
  sql: postgres.Sql,
  settings: PgSettings,
  statementTimeout: string,
  read: (sql: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  return sql.begin('read only', async (tx) => {
    // Sent now, without waiting for its answer, so it travels with the
    // read's first statement in one round trip: the connection runs them in
    // order, and a failed setting aborts the transaction before anything is
    // read. Awaited last, so its failure is the one reported.
    const applied =
      tx`select set_config(key, value, true) from jsonb_each_text(${tx.json({ ...settings, statement_timeout: statementTimeout })})`.execute();
    try {
      return await read(tx);
    } finally {
      await applied;
    }
  }) as Promise<T>;
}
