// What `npm start` runs for OTLP: the /v1/traces ingest route always, the
// OTLP/gRPC ingest server unless turned off, and the exporter loop when an
// OTLP endpoint is configured.
import postgres from 'postgres';
import type { PgSettings } from '../auth/jwt.ts';
import { readOtlpExportConfig, readOtlpIngestConfig } from './config.ts';
import { createOtlpExporter, type OtlpExporter } from './exporter.ts';
import { startOtlpGrpcServer, type OtlpGrpcServer } from './ingest-grpc.ts';
import { createOtlpIngestRoute } from './ingest-http.ts';

export interface OtlpServerParts {
  routes: Array<ReturnType<typeof createOtlpIngestRoute>>;
  grpc?: OtlpGrpcServer;
  exporter?: OtlpExporter;
  stop(): Promise<void>;
}

export async function startOtlp(options: {
  databaseUrl: string;
  /** Where the gRPC server listens (the HTTP server's host). */
  host: string;
  pgSettingsFor: (authorization: string | undefined) => Promise<PgSettings>;
  log: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}): Promise<OtlpServerParts> {
  const env = options.env ?? process.env;
  // Read first: a wrong OTEL_* setting stops the start with its message.
  const exportConfig = readOtlpExportConfig(env);
  const ingestConfig = readOtlpIngestConfig(env);
  const ingestSql = postgres(options.databaseUrl, { max: 4, onnotice: () => {} });
  const ingestOptions = { ...ingestConfig, sql: ingestSql, pgSettingsFor: options.pgSettingsFor, log: options.log };
  const routes = [createOtlpIngestRoute(ingestOptions)];
  const grpc =
    ingestConfig.grpcPort === undefined
      ? undefined
      : await startOtlpGrpcServer({ ...ingestOptions, host: options.host, port: ingestConfig.grpcPort });
  let exporterSql: postgres.Sql | undefined;
  let exporter: OtlpExporter | undefined;
  if (exportConfig) {
    exporterSql = postgres(options.databaseUrl, { max: 2, onnotice: () => {} });
    exporter = createOtlpExporter(exporterSql, exportConfig, { log: (m) => options.log(`otlp export: ${m}`) });
    // Before the server takes requests, so no span ingested from the first
    // moment misses the queue.
    await exporter.enable();
    exporter.start();
  } else {
    options.log('OTLP export off (set OTEL_EXPORTER_OTLP_ENDPOINT to turn it on)');
  }
  return {
    routes,
    grpc,
    exporter,
    async stop() {
      await grpc?.close();
      await exporter?.stop();
      await exporterSql?.end();
      await ingestSql.end();
    },
  };
}
