// What `npm start` runs for the Tempo query API: its route on the HTTP
// server and the connection pool it reads through, as the role GraphQL uses.
import postgres from 'postgres';
import type { PgSettings } from '../auth/jwt.ts';
import { DEFAULT_STATEMENT_TIMEOUT } from '../graphql/preset.ts';
import { createTempoRoute } from './route.ts';

export interface TempoApiParts {
  route: ReturnType<typeof createTempoRoute>;
  stop(): Promise<void>;
}

export function startTempoApi(options: {
  /** Where GraphQL connects (TRACEGRES_GRAPHQL_DATABASE_URL, else the owner's). */
  databaseUrl: string;
  pgSettingsFor: (authorization: string | undefined) => Promise<PgSettings>;
  /** TRACEGRES_GRAPHQL_STATEMENT_TIMEOUT: the same bound as a GraphQL request. */
  statementTimeout?: string;
  log: (message: string) => void;
}): TempoApiParts {
  const sql = postgres(options.databaseUrl, { max: 4, onnotice: () => {} });
  const route = createTempoRoute({
    sql,
    pgSettingsFor: options.pgSettingsFor,
    statementTimeout: options.statementTimeout ?? DEFAULT_STATEMENT_TIMEOUT,
    log: (message) => options.log(`tempo: ${message}`),
  });
  return { route, stop: () => sql.end() };
}
