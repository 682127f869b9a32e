// `tracegres export`: the OTLP exporter on its own, for deployments that
// run it apart from the API server (or several of them: they share the
// queue without sending a span twice).
//
//   tracegres export [--once] [--database-url URL]   send queued spans to OTEL_EXPORTER_OTLP_*
//   tracegres export status [--database-url URL]     queue depth, oldest waiting span, counts
import postgres from 'postgres';
import { redactPassword } from '../server/database/connection-strings.ts';
import { OtlpConfigError, readOtlpExportConfig } from '../server/otlp/config.ts';
import { createOtlpExporter } from '../server/otlp/exporter.ts';
import { parseCommandLine } from './arguments.ts';

const USAGE = `usage:
  tracegres export [--once] [--database-url URL]
      send spans queued in the database to the collector named by
      OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
      (with OTEL_EXPORTER_OTLP_HEADERS, _PROTOCOL, _TIMEOUT, OTEL_SERVICE_NAME,
      OTEL_RESOURCE_ATTRIBUTES) until Ctrl-C; --once: until nothing is ready.
  tracegres export status [--database-url URL]
      the export queue and counters (tracing.otlp_export_status).`;

export async function exportCommand(argv: string[], databaseUrl: (explicit: string | undefined) => string): Promise<number> {
  const parsed = parseCommandLine(argv, { once: { type: 'boolean', default: false } }, USAGE);
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (values.help || (positionals.length > 0 && positionals[0] !== 'status') || positionals.length > 1) {
    (values.help ? console.log : console.error)(USAGE);
    return values.help ? 0 : 2;
  }
  const url = databaseUrl(values['database-url']);
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    if (positionals[0] === 'status') {
      const [status] = await sql`select * from tracing.otlp_export_status`;
      for (const [key, value] of Object.entries(status ?? {})) {
        console.log(`${key.padEnd(20)} ${value instanceof Date ? value.toISOString() : (value ?? '-')}`);
      }
      return 0;
    }
    let config;
    try {
      config = readOtlpExportConfig();
    } catch (error) {
      if (error instanceof OtlpConfigError) {
        console.error(error.message);
        return 2;
      }
      throw error;
    }
    if (!config) {
      console.error(`no OTLP endpoint: set OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT\n\n${USAGE}`);
      return 2;
    }
    const log = (message: string) => console.log(`[tracegres export] ${message}`);
    log(`database: ${redactPassword(url)}`);
    const exporter = createOtlpExporter(sql, config, { log });
    if (values.once) {
      await exporter.enable();
      let sent = 0;
      for (;;) {
        const result = await exporter.exportBatch();
        if (result.kind === 'exported') sent += result.spans;
        else if (result.kind === 'dead_lettered') log(`warning: ${result.spans} spans dead-lettered: ${result.reason}`);
        else if (result.kind === 'retry') {
          log(`collector unavailable (${result.reason}); the spans stay queued`);
          break;
        } else break;
      }
      log(`exported ${sent} spans`);
      await exporter.logStatus();
      return 0;
    }
    exporter.start();
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log('stopping after the batch in flight...');
    await exporter.stop();
    await exporter.logStatus();
    return 0;
  } finally {
    await sql.end();
  }
}
