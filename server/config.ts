// Server settings, all from the environment.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './database/migrate.ts';

export interface ServerConfig {
  /** Postgres to migrate and serve; when unset, an embedded Postgres is started. */
  databaseUrl?: string;
  /**
   * Where GraphQL connects, when it should not use the owner's connection:
   * as `tracegres_authenticator`, which can do nothing but switch to the
   * role a request's token grants.
   */
  graphqlDatabaseUrl?: string;
  /**
   * A streaming replica for the read path (GraphQL queries, the Jaeger and
   * Tempo read APIs), as the same role as graphqlDatabaseUrl; writes, ingest,
   * migrations, retention, export and alerts stay on the primary.
   */
  readDatabaseUrl?: string;
  /** Where the embedded Postgres keeps its data (survives restarts). */
  dataDir: string;
  /** Port of the embedded Postgres. */
  embeddedPort: number;
  /** The embedded Postgres's generated superuser password (0600). */
  embeddedPasswordFile: string;
  /** HTTP port of GraphQL and the explorer. */
  port: number;
  host: string;
  jwtSecret?: string;
  jwtPublicKey?: string;
  /** `aud` and `iss` every token must carry, when set. */
  jwtAudience?: string;
  jwtIssuer?: string;
  /** Introspection, Ruru and "Did you mean" suggestions: on for the embedded default, off with DATABASE_URL. */
  graphqlIntrospection: boolean;
  /** Postgres statement_timeout of each GraphQL request. */
  graphqlStatementTimeout?: string;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const dataDir = path.resolve(projectRoot, env.TRACEGRES_DATA_DIR ?? '.data');
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    graphqlDatabaseUrl: env.TRACEGRES_GRAPHQL_DATABASE_URL || undefined,
    readDatabaseUrl: env.TRACEGRES_READ_DATABASE_URL || undefined,
    dataDir,
    embeddedPasswordFile: path.join(dataDir, 'postgres-password'),
    embeddedPort: Number(env.TRACEGRES_EMBEDDED_PG_PORT ?? 5679),
    port: Number(env.PORT ?? 5678),
    host: env.HOST ?? '127.0.0.1',
    jwtSecret: env.TRACEGRES_JWT_SECRET || undefined,
    jwtPublicKey: env.TRACEGRES_JWT_PUBLIC_KEY || undefined,
    jwtAudience: env.TRACEGRES_JWT_AUDIENCE || undefined,
    jwtIssuer: env.TRACEGRES_JWT_ISSUER || undefined,
    graphqlIntrospection: env.TRACEGRES_GRAPHQL_INTROSPECTION
      ? /^(1|true|on|yes)$/i.test(env.TRACEGRES_GRAPHQL_INTROSPECTION)
      : !env.DATABASE_URL,
    graphqlStatementTimeout: env.TRACEGRES_GRAPHQL_STATEMENT_TIMEOUT || undefined,
  };
}

/**
 * The `tracegres` database of the embedded Postgres that `npm start` runs
 * (for the CLI): its port and the password it generated on first start.
 */
export function embeddedDatabaseUrl(config: ServerConfig): string {
  let password: string;
  try {
    password = readFileSync(config.embeddedPasswordFile, 'utf8').trim();
  } catch {
    throw new Error(`no embedded database yet (${config.embeddedPasswordFile} is missing): run \`npm start\` once, or pass DATABASE_URL`);
  }
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${config.embeddedPort}/tracegres`;
}
