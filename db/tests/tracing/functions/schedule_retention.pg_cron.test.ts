// Against a Postgres with pg_cron (CI): pg_cron runs a job in a tracegres
// database, and `tracegres retention schedule` registers the job that moves
// exactly the old events. The only pg_cron tests: skipped, with the reason
// printed, where pg_cron is missing, unless TRACEGRES_REQUIRE_PG_CRON=1 (CI),
// where the whole file fails instead.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleRetention, type Output } from '../../../../cli/retention.ts';
import { useTestDatabase } from '../../helpers/test-database.ts';
import { createLedger, first, ledgerState, seedEvents, storeState } from '../../helpers/event-ledger.ts';
import { PG_CRON_REQUIRED, pgCronDatabase } from '../../helpers/pg-cron.ts';

const pgCron = await pgCronDatabase();
if ('reason' in pgCron) {
  // Required (CI): the whole file fails, so no skip can hide a missing pg_cron.
  if (PG_CRON_REQUIRED) throw new Error(`pg_cron is required here (TRACEGRES_REQUIRE_PG_CRON=1): ${pgCron.reason}`);
  console.warn(`retention pg_cron tests skipped: ${pgCron.reason}`);
}

describe.runIf('url' in pgCron)('retention scheduled with pg_cron', () => {
  const db = useTestDatabase();
  let cron: postgres.Sql;
  const lines: string[] = [];
  const out: Output = { line: (t) => lines.push(t), progress: () => {} };

  beforeAll(async () => {
    cron = postgres((pgCron as { url: string }).url, { max: 1, onnotice: () => {} });
    await createLedger(db.sql);
  });

  afterAll(async () => {
    // A job left behind would keep trying to run in a dropped database.
    await cron`select cron.unschedule(jobid) from cron.job where database = ${db.name}`;
    await cron.end();
  });

  it('is scheduled, runs, and moves the right rows', { timeout: 150_000 }, async () => {
    await seedEvents(db.sql, { count: 2_000, ageDays: 100, tag: 'old' });
    await seedEvents(db.sql, { count: 500, ageDays: 3, tag: 'new' });

    const result = await scheduleRetention(db.url, out, { cron: '* * * * *' });
    expect(result).toMatchObject({ scheduler: 'pg_cron', jobName: `tracegres-retention:${db.name}` });
    const [job] = await cron`select jobid, schedule, command, database, active from cron.job where jobname = ${result.jobName!}`;
    expect(job).toMatchObject({ schedule: '* * * * *', command: 'call tracing.run_retention()', database: db.name, active: true });
    const [sampling] =
      await cron`select jobid, schedule, command, database from cron.job where jobname = ${`tracegres-sampling:${db.name}`}`;
    expect(sampling).toMatchObject({ schedule: '* * * * *', command: 'call tracing.run_sampling()', database: db.name });
    expect(first(await db.sql`select tracing.retention_scheduler() as s`).s).toBe('pg_cron');
    expect(lines.join('\n')).toMatch(
      new RegExp(`registered pg_cron jobs in database \\w+ tracegres-retention:${db.name} \\(in ${db.name}\\)`),
    );

    // pg_cron fires at the next minute boundary.
    let run: postgres.Row | undefined;
    for (const deadline = Date.now() + 140_000; Date.now() < deadline;) {
      [run] =
        await cron`select status, return_message from cron.job_run_details where jobid = ${job!.jobid} and status in ('succeeded', 'failed') order by runid limit 1`;
      if (run) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(run, 'pg_cron ran the job within two minutes').toBeDefined();
    expect(run).toMatchObject({ status: 'succeeded' });
    // The sampling job fired in the same minute.
    let samplingRun: postgres.Row | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !samplingRun; await new Promise((r) => setTimeout(r, 500))) {
      [samplingRun] =
        await cron`select status, return_message from cron.job_run_details where jobid = ${sampling!.jobid} and status in ('succeeded', 'failed') limit 1`;
    }
    expect(samplingRun).toMatchObject({ status: 'succeeded' });

    const state = await storeState(db.sql);
    expect(state).toMatchObject({ live: 500, archived: 2_000, distinctIds: 2_500 });
    expect(state.checksum).toBe((await ledgerState(db.sql)).checksum);
    const [archiveRun] = await db.sql`select * from tracing.retention_runs where operation = 'archive' order by id limit 1`;
    expect(archiveRun).toMatchObject({ status: 'succeeded' });
    expect(Number(archiveRun!.events_moved)).toBe(2_000);

    await scheduleRetention(db.url, out, { off: true });
    expect(await cron`select jobid from cron.job where database = ${db.name}`).toHaveLength(0);
    expect(first(await db.sql`select tracing.retention_scheduler() as s`).s).toBe('off');
  });

  it('a dry run of schedule registers nothing', async () => {
    lines.length = 0;
    await scheduleRetention(db.url, out, { cron: '0 4 * * *', dryRun: true });
    expect(lines.join('\n')).toMatch(/dry run: would register pg_cron jobs .* at "0 4 \* \* \*"/);
    expect(await cron`select jobid from cron.job where database = ${db.name}`).toHaveLength(0);
  });
});

describe.runIf('url' in pgCron)('pg_cron', () => {
  const db = useTestDatabase();

  it('runs a scheduled job in a tracegres database', { timeout: 150_000 }, async () => {
    const sql = postgres((pgCron as { url: string }).url, { max: 1, onnotice: () => {} });
    const job = `tracegres_test_${db.name}`;
    try {
      await sql`select cron.schedule_in_database(${job}, '* * * * *',
        $$insert into tracing.domain_events (stream_type, stream_id, event_type) values ('cron', 'probe', 'cron.ran')$$,
        ${db.name})`;
      // Debian's pg_cron 1.4 schedules by the minute (no seconds syntax);
      // two minute boundaries, so one run that found the server busy (a
      // failed connection) is not the end of it.
      const deadline = Date.now() + 135_000;
      let ran = 0;
      while (Date.now() < deadline && ran === 0) {
        await new Promise((r) => setTimeout(r, 250));
        ran = first(
          await db.sql<{ ran: number }[]>`select count(*)::int as ran from tracing.domain_events where event_type = 'cron.ran'`,
        ).ran;
      }
      const runs =
        await sql`select d.status, d.return_message from cron.job_run_details d join cron.job j using (jobid) where j.jobname = ${job}`;
      expect(ran, `pg_cron's runs of the job: ${JSON.stringify(runs)}`).toBeGreaterThan(0);
    } finally {
      await sql`select cron.unschedule(${job}) where exists (select from cron.job where jobname = ${job})`;
      await sql.end();
    }
  });
});
