// What `npm start` runs for Jaeger: the remote storage server on its own
// port (TRACEGRES_JAEGER_STORAGE_PORT), unless turned off.
import postgres from 'postgres';
import type { PgSettings } from '../auth/jwt.ts';
import { createJaegerCallers } from './callers.ts';
import { readJaegerStorageConfig } from './config.ts';
import { startJaegerStorageServer, type JaegerStorageServer } from './storage-server.ts';

export interface JaegerStorageParts {
  /** Undefined when the port setting is `off`. */
  server?: JaegerStorageServer;
  stop(): Promise<void>;
}

export async function startJaegerStorage(options: {
  /** The connection GraphQL uses: calls switch to the caller's role in it. */
  databaseUrl: string;
  host: string;
  pgSettingsFor: (authorization: string | undefined) => Promise<PgSettings>;
  log: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}): Promise<JaegerStorageParts> {
  const config = readJaegerStorageConfig(options.env ?? process.env);
  if (config.port === undefined) return { stop: async () => {} };
  const sql = postgres(options.databaseUrl, { max: 4, onnotice: () => {} });
  const server = await startJaegerStorageServer({
    callers: createJaegerCallers({
      sql,
      pgSettingsFor: options.pgSettingsFor,
      anonymous: config.anonymous,
      statementTimeout: config.statementTimeout,
    }),
    host: options.host,
    port: config.port,
    log: options.log,
  });
  return {
    server,
    async stop() {
      await server.close();
      await sql.end();
    },
  };
}
