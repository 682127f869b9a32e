// The transaction each GraphQL request runs in, opened without a round trip
// of its own.
//
// @dataplan/pg's own adaptor opens a request's transaction in two round
// trips (`begin`, then `select set_config(...)` with the settings as a JSON
// parameter) before the request's query and `commit`. On a 10-span trace
// lookup those round trips were a quarter of the time outside the database.
// Here `begin` and every set_config go to Postgres as one simple-protocol
// message, with the settings written as quoted literals.
//
// A read-only transaction (the setting transaction_read_only, which the
// preset gives every GraphQL query) sends that message together with its
// first query, in one write, on a pipelined connection (pg's `pipeline`
// option): Postgres runs them in order, so the query runs in the
// transaction, as the caller. The query's rows are handed on only once the
// opening has succeeded too. A failed set_config aborts the transaction, so
// the query behind it fails (SQLSTATE 25P02) and nothing is read; and were
// the opening ever refused whole, the query's answer would still be thrown
// away with the opening's error. A query operation calls only `stable` api
// functions, which cannot write. Mutations still wait for their opening
// before their first statement.
//
// Nothing else changes: the settings are still `set_config(..., true)`, local
// to the transaction, so they end at its commit or rollback and cannot leak
// to the next request on the pooled connection; queries and savepoints run
// through @dataplan/pg's own client wrapper.
//
// A read-only transaction has nothing to commit, so its result is handed
// back at once and the connection returns to the pool when `commit` has
// come back: the commit's round trip is off the response's path. A
// mutation's commit is awaited before its answer, as before.
//
// With a read pool (a streaming replica, TRACEGRES_READ_DATABASE_URL), a
// read-only transaction takes its connection there; mutations, and
// requests without settings, stay on the primary.
import {
  createWithPgClient,
  makePgService,
  makeWithPgClientViaPgClientAlreadyInTransaction,
  type PgAdaptorMakePgServiceOptions,
  type PgAdaptorSettings,
} from 'postgraphile/adaptors/pg';

// The `pg` driver's types, as @dataplan/pg uses them.
type WithPgClient = ReturnType<typeof createWithPgClient>;
type Pool = NonNullable<PgAdaptorSettings['pool']>;
type PoolClient = Parameters<typeof makeWithPgClientViaPgClientAlreadyInTransaction>[0];

/** `begin` and the settings as one statement list; values are quoted by the driver's own escaping. */
function openingStatement(client: Pick<PoolClient, 'escapeLiteral'>, pgSettings: Record<string, string | null | undefined>): string {
  const calls: string[] = [];
  for (const [key, value] of Object.entries(pgSettings)) {
    if (value == null) continue;
    calls.push(`set_config(${client.escapeLiteral(key)}, ${client.escapeLiteral(String(value))}, true)`);
  }
  return calls.length ? `begin; select ${calls.join(', ')}` : 'begin';
}

/**
 * A client whose first query carries `opening` with it, in one write, and
 * answers only when both have succeeded; `opened()` tells whether that
 * query was sent (a request that reads nothing opens no transaction).
 */
function openingWithFirstQuery(client: PoolClient, opening: string): { client: PoolClient; opened(): boolean } {
  let opened = false;
  // pg's connection socket, corked so the two messages leave as one write.
  const stream = (client as unknown as { connection?: { stream?: { cork(): void; uncork(): void } } }).connection?.stream;
  const query = (config: unknown) => {
    if (opened) return client.query(config as never);
    opened = true;
    stream?.cork();
    try {
      return Promise.allSettled([client.query(opening), client.query(config as never)]).then(([opened, result]) => {
        if (opened.status === 'rejected') throw opened.reason;
        if (result.status === 'rejected') throw result.reason;
        return result.value;
      });
    } finally {
      stream?.uncork();
    }
  };
  const wrapped = new Proxy(client, { get: (target, key) => (key === 'query' ? query : Reflect.get(target, key)) });
  return { client: wrapped, opened: () => opened };
}

/**
 * A withPgClient over `pool` that opens each settings transaction without
 * a round trip of its own for reads (with the first query) and in one for
 * writes; read-only transactions use `readPool` (by default `pool`). Both
 * pools must be pipelined (see makeSettingsTransactionPgService), or a
 * read's first query waits for its opening's answer.
 */
export function withSettingsTransaction(pool: Pool, readPool: Pool = pool): WithPgClient {
  // @dataplan/pg turns JIT optimization off on each connection it uses
  // (short queries pay more for it than they save); so do we, once a
  // connection, awaited, so it ends before the request's statements.
  const jitOff = new WeakSet<PoolClient>();
  const withPgClient = (async (pgSettings, callback) => {
    const readOnly = pgSettings?.transaction_read_only === 'on';
    const client = await (readOnly ? readPool : pool).connect();
    let unusable: Error | undefined;
    let released = false;
    try {
      if (!jitOff.has(client)) {
        await client.query('set jit_optimize_above_cost = -1');
        jitOff.add(client);
      }
      if (!pgSettings || !Object.values(pgSettings).some((v) => v != null)) {
        // No settings, no transaction: as @dataplan/pg does.
        return await makeWithPgClientViaPgClientAlreadyInTransaction(client, false)(null, callback);
      }
      const opening = openingStatement(client, pgSettings);
      const transaction = readOnly ? openingWithFirstQuery(client, opening) : { client, opened: () => true };
      try {
        if (!readOnly) await client.query(opening);
        // This client serves this request alone (the warning on this
        // function is about one client shared by concurrent requests), and
        // its transaction is open, so nested transactions become savepoints.
        const result = await makeWithPgClientViaPgClientAlreadyInTransaction(transaction.client, true)(null, callback);
        if (!transaction.opened()) return result;
        if (readOnly) {
          releaseAfterCommit(client);
          released = true;
          return result;
        }
        await client.query('commit');
        return result;
      } catch (error) {
        if (transaction.opened()) {
          await client.query('rollback').catch((rollbackError: Error) => {
            // A connection that cannot roll back must not serve another request.
            unusable = rollbackError;
          });
        }
        throw error;
      }
    } finally {
      if (!released) client.release(unusable);
    }
  }) as WithPgClient;
  withPgClient.release = () => {};
  return withPgClient;
}

function releaseAfterCommit(client: PoolClient): void {
  client.query('commit').then(
    () => client.release(),
    (error: Error) => {
      // Nothing was written, so nothing is lost; the connection is not reused.
      console.error(JSON.stringify({ level: 'error', message: 'commit of a read-only request failed', error: String(error) }));
      client.release(error);
    },
  );
}

/**
 * makePgService, with the request transaction above for requests; the
 * superuser variant (introspection) and everything else stay @dataplan/pg's.
 * With `readConnectionString`, read-only requests connect there.
 */
export function makeSettingsTransactionPgService(options: PgAdaptorMakePgServiceOptions, readConnectionString?: string) {
  // Pipelined connections: a read's opening and first query go out together.
  // Idle connections stay open (pg's pool closes them after 10 s): a new
  // connection pays for connecting and then for compiling and planning the
  // api functions again: a 10-span trace lookup after 11 s of quiet took
  // 39-89 ms on a new connection, 1.9-4.2 ms on a kept one (side by side,
  // load average 7-8). They are replaced after 30 minutes instead, as
  // postgres.js replaces those of the Tempo and Jaeger APIs after 30 to 60.
  options = { ...options, poolConfig: { idleTimeoutMillis: 0, maxLifetimeSeconds: 1800, ...options.poolConfig, pipeline: true } };
  const service = makePgService(options);
  const pool = (service.adaptorSettings as { pool: Pool }).pool;
  // The read side is a service of its own only for its pool and its release.
  const readService = readConnectionString ? makePgService({ ...options, connectionString: readConnectionString }) : undefined;
  const readPool = readService ? (readService.adaptorSettings as { pool: Pool }).pool : pool;
  const ownWithPgClient = withSettingsTransaction(pool, readPool);
  service.adaptor = {
    ...service.adaptor,
    createWithPgClient: (settings, variant) => (variant ? createWithPgClient(settings, variant) : ownWithPgClient),
  } as typeof service.adaptor;
  if (readService) {
    const release = service.release;
    service.release = async () => {
      await release?.call(service);
      await readService.release?.();
    };
  }
  return service;
}
