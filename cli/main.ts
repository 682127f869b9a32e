// The tracegres command line (bin/tracegres.mjs runs this):
//
//   tracegres retention run      [--dry-run] [--older-than '30 days'] [--batch-size N]
//   tracegres retention status
//   tracegres retention schedule [CRON] [--in-process] [--off] [--dry-run]
//   tracegres demo               [--database-url URL]
//   tracegres export             [status] [--once] [--database-url URL]
//   tracegres ingest-token       create --organization UUID [--name NAME] | list | revoke ID
//   tracegres alerts             test RULE | status
//
// The database is DATABASE_URL, or --database-url, or else the embedded
// Postgres that `npm start` runs (its port from TRACEGRES_EMBEDDED_PG_PORT).
import { embeddedDatabaseUrl, readConfig } from '../server/config.ts';
import { redactPassword } from '../server/database/connection-strings.ts';
import { parseCommandLine } from './arguments.ts';
import { type Output, retentionStatus, runRetention, scheduleRetention } from './retention.ts';

const USAGE = `usage:
  tracegres retention run      [--dry-run] [--older-than INTERVAL] [--batch-size N]
      one retention pass (archive old events, purge old archive months when
      purge is on), printing progress and a summary; --dry-run reports what
      would happen and changes nothing.
  tracegres retention status
      settings, schedule, recent runs and archive partitions.
  tracegres retention schedule [CRON] [--in-process] [--off] [--dry-run]
      run retention with pg_cron on CRON (UTC, five fields; default the
      stored schedule, else "17 3 * * *"). --in-process: without pg_cron,
      let the tracegres server (npm start) run it. --off: stop scheduling.
  tracegres demo [--database-url URL]
      load demo checkout traces (some of them failed) and print a
      correlation id to look up in the dashboard.
  tracegres export [status] [--once] [--database-url URL]
      send queued spans to the OTLP collector of OTEL_EXPORTER_OTLP_*
      (tracegres export --help for more).
  tracegres ingest-token create --organization UUID [--name NAME] | list | revoke ID
      tokens for OTLP ingest at /v1/traces, each bound to one organization
      (tracegres ingest-token --help for more).
  tracegres alerts test RULE | status
      send a sample alert of a rule (id or name) to its channel; the
      delivery queue and the rules (tracegres alerts --help for more).

options:
  --database-url URL   the database (default: DATABASE_URL, else the
                       embedded Postgres of npm start)
  -h, --help`;

export function terminalOutput(stream: NodeJS.WriteStream = process.stdout): Output {
  let progressShown = false;
  let lastPlain = 0;
  return {
    line(text) {
      if (progressShown) stream.write('\n');
      progressShown = false;
      stream.write(`${text}\n`);
    },
    progress(text) {
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        progressShown = true;
      } else if (Date.now() - lastPlain >= 2000) {
        // Logs (pg_cron wrappers, CI) get a line every few seconds, not a flood.
        lastPlain = Date.now();
        stream.write(`${text}\n`);
      }
    },
  };
}

function databaseUrl(explicit: string | undefined): string {
  if (explicit) return explicit;
  const config = readConfig();
  if (config.databaseUrl) return config.databaseUrl;
  return embeddedDatabaseUrl(config);
}

export async function main(argv: string[], out: Output = terminalOutput()): Promise<number> {
  if (argv[0] === 'demo') return (await import('./demo.ts')).demoCommand(argv.slice(1));
  if (argv[0] === 'export') return (await import('./export.ts')).exportCommand(argv.slice(1), databaseUrl);
  if (argv[0] === 'ingest-token') return (await import('./ingest-tokens.ts')).ingestTokenCommand(argv.slice(1), databaseUrl, out);
  if (argv[0] === 'alerts') return (await import('./alerts.ts')).alertsCommand(argv.slice(1), databaseUrl, out);
  const parsed = parseCommandLine(
    argv,
    {
      'dry-run': { type: 'boolean', default: false },
      'older-than': { type: 'string' },
      'batch-size': { type: 'string' },
      'in-process': { type: 'boolean', default: false },
      off: { type: 'boolean', default: false },
    },
    USAGE,
  );
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  const [topic, command, ...rest] = positionals;
  if (values.help || topic !== 'retention' || !command) {
    (values.help ? console.log : console.error)(USAGE);
    return values.help ? 0 : 2;
  }

  const url = databaseUrl(values['database-url']);
  try {
    switch (command) {
      case 'run': {
        const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
        if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0)) {
          console.error(`--batch-size must be a positive integer, got ${values['batch-size']}`);
          return 2;
        }
        // Ctrl-C cancels the batch in flight (it rolls back whole; moved
        // batches stay moved) and the next run carries on.
        let interrupted = false;
        let onSigint = () => {};
        const cancel = new Promise<void>((resolve) => {
          onSigint = () => {
            interrupted = true;
            out.line('interrupted: cancelling the batch in progress…');
            resolve();
          };
          process.once('SIGINT', onSigint);
        });
        const result = await runRetention(url, out, {
          dryRun: values['dry-run'],
          olderThan: values['older-than'],
          batchSize,
          cancel,
        }).finally(() => process.off('SIGINT', onSigint));
        if (interrupted) out.line('stopped; what moved stays moved, the next run carries on');
        return result.ok ? 0 : 1;
      }
      case 'status':
        await retentionStatus(url, out);
        return 0;
      case 'schedule':
        if (rest.length > 1) {
          console.error(`quote the cron expression as one argument, e.g. '17 3 * * *'\n\n${USAGE}`);
          return 2;
        }
        await scheduleRetention(url, out, {
          cron: rest[0],
          off: values.off,
          inProcess: values['in-process'],
          dryRun: values['dry-run'],
        });
        return 0;
      default:
        console.error(`unknown command "retention ${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    const e = error as Error & { code?: string; hint?: string };
    if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND') {
      console.error(
        `cannot connect to ${redactPassword(url)}: set DATABASE_URL (or --database-url), or start the embedded database with npm start`,
      );
    } else {
      console.error(`error: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
    }
    return 1;
  }
}
