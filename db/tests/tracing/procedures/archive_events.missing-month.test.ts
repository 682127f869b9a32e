// An archive batch that meets a month the archive has no partition for is
// rolled back, the month is created, and the batch runs again. The run
// recognises that error by its SQLSTATE and the table it names, never by
// its text: lc_messages translates the text ("keine Partition von Relation
// ..." in German), and a server with another language would otherwise fail
// every run that meets a new month.
//
// The test servers cannot be counted on to give a translated message (the
// embedded Postgres ships no translations, and Debian's has them but the
// machines running the tests have no locale but C for lc_messages), so the
// classification is checked on errors raised with translated text and on
// the real error's fields, plus a run that goes through that path.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import { createLedger, first, ledgerState, resetRetentionState, seedEvents, storeState } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(() => resetRetentionState(db.sql));

// Raises the statement's error, catches it, and returns what the run would
// conclude from it, with the SQLSTATE it saw.
async function classify(raising: string): Promise<{ missing: boolean; sqlstate: string }> {
  return db.sql.begin(async (tx) => {
    await tx`create temp table classified (missing boolean, sqlstate text) on commit drop`;
    await tx.unsafe(`
      do $$
      declare v_schema text; v_table text; v_constraint text;
      begin
        ${raising};
      exception when others then
        get stacked diagnostics v_schema = schema_name, v_table = table_name, v_constraint = constraint_name;
        insert into classified values (tracing.is_missing_archive_partition_error(sqlstate, v_schema, v_table, v_constraint), sqlstate);
      end $$`);
    return first(await tx`select missing, sqlstate from classified`) as { missing: boolean; sqlstate: string };
  });
}

describe('archive_events and a month missing from the archive', () => {
  it("knows Postgres's own error for a row with no archive partition by its fields: 23514 on domain_events_archive, no constraint", async () => {
    // About 30 years back: a month no archive partition exists for.
    await seedEvents(db.sql, { count: 1, ageDays: 11000, tag: 'backlog' });
    const { column_list: columns } = first(await db.sql`select column_list from tracing.archived_event_columns()`);
    expect(await classify(`insert into tracing.domain_events_archive (${columns}) select ${columns} from tracing.domain_events`)).toEqual({
      missing: true,
      sqlstate: '23514',
    });
  });

  it('recognises the error by its fields whatever its text, and not a CHECK violation that reads like it', async () => {
    // The German text Postgres gives under lc_messages = 'de_DE': the old
    // match on 'no partition of relation%' took it for a failure.
    expect(
      await classify(
        `raise exception 'keine Partition von Relation »domain_events_archive« für Zeile gefunden' ` +
          `using errcode = '23514', schema = 'tracing', table = 'domain_events_archive'`,
      ),
    ).toEqual({ missing: true, sqlstate: '23514' });
    // A CHECK constraint of an archive partition names itself: a real
    // failure, even with the English text the old match took for a
    // missing month.
    expect(
      await classify(
        `raise exception 'no partition of relation "domain_events_archive" found for row' ` +
          `using errcode = '23514', schema = 'tracing', table = 'domain_events_archive_2020m01', constraint = 'domain_events_archive_2020m01_check'`,
      ),
    ).toEqual({ missing: false, sqlstate: '23514' });
    // Another table's missing partition is not the archive's.
    expect(
      await classify(`raise exception 'keine Partition' using errcode = '23514', schema = 'tracing', table = 'spans_archive'`),
    ).toEqual({ missing: false, sqlstate: '23514' });
  });

  it('creates a backlog month the archive lacks when a batch meets it, and moves its events', async () => {
    // About 30 years back: no archive partition is ever made that far ahead
    // of need, so the first batch meets Postgres's error.
    await seedEvents(db.sql, { count: 50, ageDays: 11000, tag: 'backlog' });
    const { name } = first(
      await db.sql`select tracing.archive_partition_name(tracing.archive_month_start(now() - interval '11000 days')) as name`,
    );
    expect(first(await db.sql`select to_regclass('tracing.' || ${name}::text) as r`).r).toBeNull();

    await db.sql`call tracing.archive_events(p_batch_size => 20)`;

    const state = await storeState(db.sql);
    expect(state).toMatchObject({ live: 0, archived: 50, checksum: (await ledgerState(db.sql)).checksum });
    const run = first(await db.sql`select * from tracing.retention_runs where operation = 'archive' order by id desc limit 1`);
    expect(run.status).toBe('succeeded');
    expect(run.partitions_created).toContain(name);
  });
});
