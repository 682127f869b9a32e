// `npm start`: a Postgres (yours via DATABASE_URL, or an embedded one whose
// data survives restarts), migrated, served as GraphQL on :5678.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { createTokenVerifier, signToken } from './auth/jwt.ts';
import { readConfig } from './config.ts';
import { redactPassword, withDatabase } from './database/connection-strings.ts';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from './database/embedded-postgres.ts';
import { migrateDatabase } from './database/migrate.ts';
import { startRetentionScheduler, type RetentionScheduler } from './retention-scheduler.ts';
import { startOtlp, type OtlpServerParts } from './otlp/server.ts';
import { startJaegerStorage, type JaegerStorageParts } from './jaeger/server.ts';
import { startAlerts, type AlertParts } from './alerts/server.ts';
import { startTempoApi, type TempoApiParts } from './tempo/server.ts';

const log = (message: string) => console.log(`[tracegres] ${message}`);

async function main(): Promise<void> {
  const config = readConfig();
  let embedded: RunningEmbeddedPostgres | undefined;
  let databaseUrl: string;
  if (config.databaseUrl) {
    databaseUrl = config.databaseUrl;
    log(`database: ${redactPassword(databaseUrl)} (DATABASE_URL)`);
  } else {
    const dataDir = path.join(config.dataDir, 'postgres');
    embedded = await startEmbeddedPostgres({
      dataDir,
      port: config.embeddedPort,
      persistent: true,
      passwordFile: config.embeddedPasswordFile,
      log,
    });
    databaseUrl = await ensureDatabase(embedded.url, 'tracegres');
    log(
      `database: ${redactPassword(databaseUrl)} (embedded, data in ${path.relative(process.cwd(), embedded.dataDir) || embedded.dataDir})`,
    );
  }

  let stopping = false;
  const stop = async (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping...');
    // A connection that notices the database going away mid-shutdown must
    // not turn a clean Ctrl-C into a crash: log it and carry on stopping.
    const duringShutdown = (error: unknown) => console.error(`[tracegres] during shutdown: ${String(error)}`);
    process.on('uncaughtException', duringShutdown);
    process.on('unhandledRejection', duringShutdown);
    await scheduler?.stop().catch((e) => console.error(e));
    await schedulerSql?.end().catch((e) => console.error(e));
    await http?.close().catch((e) => console.error(e));
    await otlp?.stop().catch((e) => console.error(e));
    await alerts?.stop().catch((e) => console.error(e));
    await jaeger?.stop().catch((e) => console.error(e));
    await tempo?.stop().catch((e) => console.error(e));
    await embedded?.stop().catch((e) => console.error(e));
    process.exit(exitCode);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  let scheduler: RetentionScheduler | undefined;
  let schedulerSql: postgres.Sql | undefined;
  let otlp: OtlpServerParts | undefined;
  let jaeger: JaegerStorageParts | undefined;
  let alerts: AlertParts | undefined;
  let tempo: TempoApiParts | undefined;
  let http: Awaited<ReturnType<typeof import('./http-server.ts').startHttpServer>> | undefined;
  try {
    await migrateDatabase(databaseUrl);
    log('migrated: committed migrations and db/functions applied');

    // Retention and sampling run where pg_cron is absent (the embedded
    // default): the same SQL jobs on the same schedule. A run holds a
    // connection of its own, hence the small pool.
    schedulerSql = postgres(databaseUrl, { max: 3, onnotice: () => {} });
    scheduler = startRetentionScheduler(schedulerSql, { log });

    // The embedded default gets a local signing secret and an admin token,
    // so the explorer works on first start; real deployments configure
    // TRACEGRES_JWT_SECRET or TRACEGRES_JWT_PUBLIC_KEY.
    const jwtSecret = config.jwtSecret ?? (embedded ? await localJwtSecret(config.dataDir) : undefined);
    const pgSettingsFor = createTokenVerifier({
      secret: jwtSecret,
      publicKey: config.jwtPublicKey,
      audience: config.jwtAudience,
      issuer: config.jwtIssuer,
    });
    const claimsOf = { audience: config.jwtAudience, issuer: config.jwtIssuer };
    // Grafast reads GRAPHILE_ENV when it loads: development mode (richer
    // errors) for the embedded default unless the environment says otherwise.
    process.env.GRAPHILE_ENV ??= embedded ? 'development' : 'production';
    const { startHttpServer } = await import('./http-server.ts');
    const { createDashboardRoute } = await import('./dashboard-route.ts');
    // The page's development token and demo button exist only in the
    // embedded default with its generated secret, never with a configured one.
    const devSecret = embedded && !config.jwtSecret ? jwtSecret : undefined;
    const demoSql = schedulerSql;
    const dashboard = createDashboardRoute({
      log,
      bindHost: config.host,
      sourceMaps: Boolean(embedded),
      dev: devSecret
        ? {
            devToken: () => signToken(devSecret, { role: 'admin', sub: 'local-developer' }, '12h', claimsOf),
            loadDemo: async () => (await import('../cli/demo.ts')).seedDemo(demoSql),
          }
        : undefined,
    });
    // Built in the background, so the first page view rarely waits for it.
    dashboard.ready().catch((error) => console.error('dashboard build failed (retried on the next page view):', error));
    // OTLP ingest at /v1/traces and over gRPC (as the owner: record_span_columns),
    // and the exporter loop when OTEL_EXPORTER_OTLP_* is set.
    otlp = await startOtlp({ databaseUrl, host: config.host, pgSettingsFor, log });
    // Jaeger's remote storage reads as each call's caller, like GraphQL, on
    // the read replica when one is set (docs/scaling.md).
    const readDatabaseUrl = config.readDatabaseUrl ?? config.graphqlDatabaseUrl ?? databaseUrl;
    if (config.readDatabaseUrl) log(`read replica: ${redactPassword(config.readDatabaseUrl)} (TRACEGRES_READ_DATABASE_URL)`);
    jaeger = await startJaegerStorage({ databaseUrl: readDatabaseUrl, host: config.host, pgSettingsFor, log });
    // The Tempo query API (Grafana's Tempo data source) reads like GraphQL.
    tempo = startTempoApi({
      databaseUrl: readDatabaseUrl,
      pgSettingsFor,
      statementTimeout: config.graphqlStatementTimeout,
      log,
    });
    http = await startHttpServer({
      databaseUrl: config.graphqlDatabaseUrl ?? databaseUrl,
      port: config.port,
      host: config.host,
      pgSettingsFor,
      graphql: {
        introspection: config.graphqlIntrospection,
        statementTimeout: config.graphqlStatementTimeout,
        readDatabaseUrl: config.readDatabaseUrl,
      },
      routes: [...otlp.routes, tempo.route, dashboard],
    });
    log(`OTLP ingest: ${http.url}/v1/traces`);
    log(
      otlp.grpc
        ? `OTLP/gRPC ingest: ${otlp.grpc.address}`
        : 'OTLP/gRPC ingest: off (TRACEGRES_OTLP_GRPC_PORT sets its port, 4317 by default)',
    );
    log(
      jaeger.server
        ? `Jaeger remote storage (gRPC): ${jaeger.server.address}`
        : 'Jaeger remote storage: off (TRACEGRES_JAEGER_STORAGE_PORT sets its port, 17271 by default)',
    );
    log(`Tempo API (Grafana's Tempo data source): ${http.url}/api/search, /api/v2/traces/{id}`);
    log(`dashboard: ${http.url}/`);
    // Alert delivery and the rate rules' schedule (docs/alerts.md).
    alerts = await startAlerts({ databaseUrl, dashboardUrl: http.url, log });
    log(`GraphQL:  ${http.url}/graphql`);
    log(
      config.graphqlIntrospection
        ? `explorer: ${http.url}/graphiql`
        : 'explorer and introspection: off (TRACEGRES_GRAPHQL_INTROSPECTION=true turns them on)',
    );
    if (embedded && !config.jwtSecret && jwtSecret) {
      const token = await signToken(jwtSecret, { role: 'admin', sub: 'local-developer' }, '12h', claimsOf);
      log(`local development token (admin, 12h), send as "Authorization: Bearer <token>":\n${token}`);
    }
    log('ready; Ctrl-C stops the server and the database');
  } catch (error) {
    console.error(error);
    await stop(1);
  }
}

async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    const [found] = await sql`select 1 from pg_database where datname = ${name}`;
    if (!found) await sql.unsafe(`create database ${name}`);
  } finally {
    await sql.end();
  }
  return withDatabase(serverUrl, name);
}

async function localJwtSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'jwt-secret');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(32).toString('hex');
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, secret, { mode: 0o600 });
  return secret;
}

await main();
