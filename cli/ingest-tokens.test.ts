// `npx tracegres ingest-token create|list|revoke`, driven through cli/main.ts
// against this test's database: the token is printed once, stored only as
// its SHA-256, bound to its organization, and refused once revoked.
import { describe, expect, it } from 'vitest';
import { main } from './main.ts';
import type { Output } from './retention.ts';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';
import { hashIngestToken } from '../server/otlp/ingest-tokens.ts';

const db = useTestDatabase();
const ORG = '0c000000-0000-4000-8000-00000000000c';

async function cli(args: string[]) {
  const lines: string[] = [];
  const out: Output = { line: (t) => lines.push(t), progress: () => {} };
  const code = await main(['ingest-token', ...args, '--database-url', db.url], out);
  return { code, lines };
}

describe('tracegres ingest-token', () => {
  it('creates a token shown once, stored as its SHA-256, bound to the organization; lists it; revokes it', async () => {
    const created = await cli(['create', '--organization', ORG, '--name', 'checkout collector']);
    expect(created.code).toBe(0);
    const id = /^id\s+(\S+)$/.exec(created.lines[0]!)![1]!;
    const token = /^token\s+(\S+)$/.exec(created.lines[2]!)![1]!;
    expect(token).toMatch(/^tgi_[A-Za-z0-9_-]{43}$/);

    const [stored] = await db.sql`select organization_id::text, name, token_sha256 from tracing.ingest_tokens where id = ${id}`;
    expect(stored).toEqual({ organization_id: ORG, name: 'checkout collector', token_sha256: hashIngestToken(token) });
    const [bound] = await db.sql`select tracing.ingest_token_organization(${hashIngestToken(token)})::text as org`;
    expect(bound!.org).toBe(ORG);

    const listed = await cli(['list']);
    expect(listed.code).toBe(0);
    const line = listed.lines.find((l) => l.startsWith(id))!;
    expect(line).toContain(`${ORG}  checkout collector  created `);
    expect(line).not.toContain(token);
    expect(line).not.toContain('revoked');

    expect(await cli(['revoke', id])).toEqual({ code: 0, lines: [`revoked ${id}`] });
    const [after] = await db.sql`select tracing.ingest_token_organization(${hashIngestToken(token)}) as org`;
    expect(after!.org).toBeNull();
    expect((await cli(['list'])).lines.find((l) => l.startsWith(id))).toMatch(/revoked \d{4}-/);
    expect((await cli(['revoke', id])).code).toBe(1);
  });

  it('refuses a missing or malformed organization and an unknown command, naming the argument', async () => {
    expect((await cli(['create'])).code).toBe(2);
    expect((await cli(['create', '--organization', 'acme'])).code).toBe(2);
    expect((await cli(['revoke', 'not-a-uuid'])).code).toBe(2);
    expect((await cli(['rotate'])).code).toBe(2);
  });

  it('may be used by the owner only: no API role can mint, list or read tokens', async () => {
    const [row] = await db.sql`
      select bool_or(has_function_privilege(r, f, 'execute')) as any_function,
             bool_or(has_table_privilege(r, 'tracing.ingest_tokens', 'select')) as any_select
        from unnest(array['tracegres_anonymous', 'tracegres_reader', 'tracegres_admin', 'tracegres_writer']) as r,
             unnest(array['tracing.create_ingest_token(uuid, bytea, text)', 'tracing.list_ingest_tokens()',
                          'tracing.revoke_ingest_token(uuid)', 'tracing.ingest_token_organization(bytea)']) as f`;
    expect(row).toEqual({ any_function: false, any_select: false });
    const [rls] = await db.sql`select relrowsecurity from pg_class where oid = 'tracing.ingest_tokens'::regclass`;
    expect(rls!.relrowsecurity).toBe(true);
  });
});
