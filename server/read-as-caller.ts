// A read-only transaction as a request's caller, for the query APIs that
// read through postgres.js (the Jaeger remote storage, the Tempo API): the
// caller's settings (role, organization claim) and the statement timeout
// are set local to the transaction, so row-level security keeps
// organizations apart as for GraphQL and each read's cost is bounded.
//
// The transaction runs on a connection reserved for it, and its opening
// (`begin read only`, then the settings) is sent without waiting for its
// answers, so it travels with the read's first statement: one round trip
// where postgres.js's `sql.begin` takes two (it awaits its `begin` before
// the first read). Postgres runs them in order on the one connection. A
// failed setting aborts the transaction, so the read behind it fails
// (SQLSTATE 25P02) without reading, and the read's answer is handed on only
// once the opening has succeeded too; its error is the one reported.
import type postgres from 'postgres';
import type { PgSettings } from './auth/jwt.ts';

export function readAsCaller<T>(
  sql: postgres.Sql,
  settings: PgSettings,
  statementTimeout: string,
  read: (sql: postgres.Sql) => Promise<T>,
): Promise<T> {
  return sql.reserve().then(async (connection) => {
    try {
      const opening = Promise.all([
        connection`begin read only`.execute(),
        connection`select set_config(key, value, true) from jsonb_each_text(${connection.json({ ...settings, statement_timeout: statementTimeout })})`.execute(),
      ]);
      const [opened, result] = await Promise.allSettled([opening, read(connection)]);
      if (opened.status === 'rejected') throw opened.reason;
      if (result.status === 'rejected') throw result.reason;
      await connection`commit`;
      return result.value;
    } catch (error) {
      // A failed rollback means a broken connection, which postgres.js
      // replaces; the read's error is the one to report.
      await connection`rollback`.catch(() => {});
      throw error;
    } finally {
      connection.release();
    }
  });
}
