// `tracegres ingest-token`: the tokens OTLP clients send to /v1/traces,
// each bound to one organization (tracing.ingest_tokens). The token is
// printed once, when it is created; the database keeps only its SHA-256.
//
//   tracegres ingest-token create --organization UUID [--name NAME]
//   tracegres ingest-token list
//   tracegres ingest-token revoke ID
import postgres from 'postgres';
import { generateIngestToken, hashIngestToken } from '../server/otlp/ingest-tokens.ts';
import { UUID_PATTERN } from '../ts/trace-context/headers.ts';
import { parseCommandLine } from './arguments.ts';
import type { Output } from './retention.ts';

const USAGE = `usage:
  tracegres ingest-token create --organization UUID [--name NAME] [--database-url URL]
      make a token whose spans belong to organization UUID; it is printed
      once and cannot be shown again.
  tracegres ingest-token list [--database-url URL]
      every token's id, organization, name, creation and revocation time.
  tracegres ingest-token revoke ID [--database-url URL]
      refuse the token from now on.`;

export async function ingestTokenCommand(
  argv: string[],
  databaseUrl: (explicit: string | undefined) => string,
  out: Output,
): Promise<number> {
  const parsed = parseCommandLine(argv, { organization: { type: 'string' }, name: { type: 'string' } }, USAGE);
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    (values.help ? console.log : console.error)(USAGE);
    return values.help ? 0 : 2;
  }
  const usageError = (message: string) => {
    console.error(`${message}\n\n${USAGE}`);
    return 2;
  };
  if (command === 'create') {
    if (!values.organization || !UUID_PATTERN.test(values.organization)) return usageError('--organization must be a uuid');
    if (values.name !== undefined && values.name.trim() === '') return usageError('--name must not be blank');
  } else if (command === 'revoke') {
    if (rest.length !== 1 || !UUID_PATTERN.test(rest[0]!)) return usageError('revoke takes one token id (a uuid, from ingest-token list)');
  } else if (command !== 'list') {
    return usageError(`unknown command "ingest-token ${command}"`);
  }

  const sql = postgres(databaseUrl(values['database-url']), { max: 1, onnotice: () => {} });
  try {
    switch (command) {
      case 'create': {
        const token = generateIngestToken();
        const [row] = await sql<{ id: string }[]>`
          select tracing.create_ingest_token(${values.organization!}::uuid, ${hashIngestToken(token)}, ${values.name ?? null}) as id`;
        out.line(`id            ${row!.id}`);
        out.line(`organization  ${values.organization!.toLowerCase()}`);
        out.line(`token         ${token}`);
        out.line('The token is shown only now: store it as the Bearer token of your OTLP exporter.');
        return 0;
      }
      case 'list': {
        const rows = await sql<{ id: string; organization_id: string; name: string | null; created_at: Date; revoked_at: Date | null }[]>`
          select * from tracing.list_ingest_tokens()`;
        if (rows.length === 0) out.line('no ingest tokens');
        for (const r of rows) {
          out.line(
            `${r.id}  ${r.organization_id}  ${r.name ?? '-'}  created ${r.created_at.toISOString()}` +
              (r.revoked_at ? `  revoked ${r.revoked_at.toISOString()}` : ''),
          );
        }
        return 0;
      }
      default: {
        const [row] = await sql<{ revoked: boolean }[]>`select tracing.revoke_ingest_token(${rest[0]!}::uuid) as revoked`;
        if (!row!.revoked) {
          console.error(`no live ingest token has id ${rest[0]}`);
          return 1;
        }
        out.line(`revoked ${rest[0]}`);
        return 0;
      }
    }
  } finally {
    await sql.end();
  }
}
