// tracing.text_to_uuid: correlation, session and organization ids in the
// one canonical spelling (8-4-4-4-12 hex, either case), never the nil uuid.
// Every event and span written goes through it, so it checks the shape
// without a regular expression; these cases pin the rule it replaced.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();
const ID = '6f1c3a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';

describe('tracing.text_to_uuid', () => {
  it.each([
    ['lowercase', ID, ID],
    ['uppercase', ID.toUpperCase(), ID],
    ['the nil uuid', '00000000-0000-0000-0000-000000000000', null],
    ['braces', `{${ID}}`, null],
    ['no hyphens', ID.replaceAll('-', ''), null],
    ['a hyphen moved', `${ID.slice(0, 8)}${ID.slice(9, 10)}-${ID.slice(10)}`, null],
    ['a fifth hyphen instead of a digit', `${ID.slice(0, 35)}-`, null],
    ['a letter beyond f', ID.replace('a', 'g'), null],
    ['a non-ASCII letter', ID.replace('a', 'é'), null],
    ['a space at the end', `${ID} `, null],
    ['a newline at the end', `${ID.slice(0, 35)}\n`, null],
    ['one digit short', ID.slice(0, 35), null],
    ['empty', '', null],
    ['null', null, null],
  ])('%s', async (_case, value, expected) => {
    const [row] = await db.sql<{ id: string | null }[]>`select tracing.text_to_uuid(${value})::text as id`;
    expect(row!.id).toBe(expected);
  });

  it('agrees with the 8-4-4-4-12 regular expression on 20,000 near-miss spellings', async () => {
    const [row] = await db.sql<{ differ: number; valid: number }[]>`
      with spellings(value) as (
        select overlay(gen_random_uuid()::text placing substr('0-aZ{', (random() * 4)::int + 1, 1)
                       from (random() * 35)::int + 1 for 1)
          from generate_series(1, 20000))
      select count(*) filter (where tracing.text_to_uuid(value) is distinct from
                                    case when value ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
                                         then value::uuid end)::int as differ,
             count(*) filter (where tracing.text_to_uuid(value) is not null)::int as valid
        from spellings`;
    expect(row!.differ).toBe(0);
    // Both outcomes were exercised.
    expect(row!.valid).toBeGreaterThan(1000);
    expect(row!.valid).toBeLessThan(19000);
  });
});
