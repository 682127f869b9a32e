// Scheduling retention: the cron dialect both schedulers share, the clear
// error without pg_cron, the in-process schedule and its once-a-minute claim.
import { afterEach, describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { first } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();

afterEach(async () => {
  await db.sql`update tracing.retention_settings set schedule = '17 3 * * *', pg_cron_job = null, in_process_claimed_minute = null`;
});

const matches = async (expression: string, at: string) =>
  first(await db.sql`select tracing.cron_matches(${expression}, ${at}::timestamptz) as m`).m as boolean;

describe('cron expressions', () => {
  it.each([
    ['* * * * *', '2026-03-04 05:06:00Z', true],
    ['*/15 * * * *', '2026-03-04 05:30:00Z', true],
    ['*/15 * * * *', '2026-03-04 05:31:00Z', false],
    ['17 3 * * *', '2026-03-04 03:17:59Z', true],
    ['17 3 * * *', '2026-03-04 04:17:00Z', false],
    // UTC whatever the session's time zone: 03:17 UTC is 04:17 in Paris.
    ['17 3 * * *', '2026-03-04 04:17:00+01', true],
    ['0 9 * * mon-fri', '2026-03-06 09:00:00Z', true], // a Friday
    ['0 9 * * mon-fri', '2026-03-07 09:00:00Z', false], // a Saturday
    ['0 0 * * 7', '2026-03-08 00:00:00Z', true], // 7 is Sunday too
    ['0 0 * jan,mar *', '2026-03-01 00:00:00Z', true],
    ['5/20 * * * *', '2026-03-01 00:45:00Z', true],
    ['0-10/5 * * * *', '2026-03-01 00:10:00Z', true],
    ['0-10/5 * * * *', '2026-03-01 00:15:00Z', false],
    // Both day fields restricted: either one matching is enough (vixie cron).
    ['0 0 1 * mon', '2026-03-02 00:00:00Z', true], // a Monday, not the 1st
    ['0 0 1 * mon', '2026-04-01 00:00:00Z', true], // the 1st, a Wednesday
    ['0 0 1 * mon', '2026-03-03 00:00:00Z', false],
    // One day field starting with '*': both must match.
    ['0 0 */2 * mon', '2026-03-02 00:00:00Z', false],
    ['@daily', '2026-03-02 00:00:00Z', true],
    ['@hourly', '2026-03-02 07:00:00Z', true],
  ])('%s at %s: %s', async (expression, at, expected) => {
    expect(await matches(expression, at)).toBe(expected);
  });

  it.each([
    ['', /expected 5 fields/],
    ['* * * *', /expected 5 fields.*got 4/],
    ['60 * * * *', /"60" is outside 0-59 in the minute field/],
    ['* 24 * * *', /outside 0-23 in the hour field/],
    ['* * 0 * *', /day-of-month/],
    ['*/0 * * * *', /step 0/],
    ['a * * * *', /"a" in the minute field/],
    ['30 seconds', /not supported/],
    ['@reboot', /not supported/],
  ])('rejects %j', async (expression, message) => {
    await expect(db.sql`select tracing.check_cron_expression(${expression})`).rejects.toThrow(message);
  });

  it('finds the next run', async () => {
    const next = async (expression: string, after: string) =>
      (first(await db.sql`select tracing.cron_next_run(${expression}, ${after}::timestamptz) as n`).n as Date | null)?.toISOString();
    expect(await next('17 3 * * *', '2026-03-04 03:17:00Z')).toBe('2026-03-05T03:17:00.000Z');
    expect(await next('17 3 * * *', '2026-03-04 03:16:30Z')).toBe('2026-03-04T03:17:00.000Z');
    expect(await next('0 9 * * mon-fri', '2026-03-06 12:00:00Z')).toBe('2026-03-09T09:00:00.000Z');
    expect(await next('0 0 29 2 *', '2026-03-01 00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(await next('0 0 30 2 *', '2026-03-01 00:00:00Z')).toBeUndefined();
  });
});

describe('schedule_retention', () => {
  it('without pg_cron in this database, says why and how to fix it', async () => {
    const { loaded, cron_database: cronDatabase } = first(await db.sql`select * from tracing.pg_cron_status()`);
    const error = await db.sql`select tracing.schedule_retention('0 4 * * *')`.then(
      () => undefined,
      (e: Error & { hint?: string }) => e,
    );
    expect(error).toBeDefined();
    if (loaded) {
      // The test databases are not pg_cron's own (cron.database_name).
      expect(error!.message).toContain(`pg_cron keeps its jobs in database "${cronDatabase}"`);
      expect(error!.hint).toContain('npx tracegres retention schedule');
      expect(error!.hint).toContain(
        `cron.schedule_in_database('tracegres-retention:${db.name}', '0 4 * * *', 'call tracing.run_retention()'`,
      );
    } else {
      expect(error!.message).toContain('pg_cron is not installed on this server');
      expect(error!.hint).toMatch(/apt install postgresql-\d+-cron/);
      expect(error!.hint).toContain("shared_preload_libraries = 'pg_cron'");
      expect(error!.hint).toContain('p_in_process => true');
    }
    // Nothing changed.
    expect(first(await db.sql`select schedule from tracing.retention_settings`).schedule).toBe('17 3 * * *');
  });

  it('rejects a bad expression naming the argument', async () => {
    await expect(db.sql`select tracing.schedule_retention('61 * * * *')`).rejects.toThrow(/p_cron: invalid cron expression/);
    await expect(db.sql`select tracing.schedule_retention(null)`).rejects.toThrow(/p_cron must be a cron expression/);
  });

  it('with p_in_process, stores the schedule for the npm start scheduler', async () => {
    const { message } = first(await db.sql`select tracing.schedule_retention('*/5 * * * *', p_in_process => true) as message`);
    expect(message).toMatch(/npm start\) runs call tracing.run_retention\(\) at "\*\/5 \* \* \* \*"/);
    expect(first(await db.sql`select tracing.retention_scheduler() as s`).s).toBe('in_process');
  });

  it('creates or replaces the pg_cron job when pg_cron lives in this database', async () => {
    // A stand-in for pg_cron's two functions, in a rolled-back transaction:
    // what matters here is what schedule_retention asks of pg_cron.
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx.unsafe(`
        create schema cron;
        create table cron.job (jobid bigserial, jobname text unique, schedule text, command text);
        create function cron.schedule(job_name text, schedule text, command text) returns bigint language sql as $$
          insert into cron.job (jobname, schedule, command) values (job_name, schedule, command)
          on conflict (jobname) do update set schedule = excluded.schedule, command = excluded.command returning jobid $$;
        create function cron.unschedule(job_id bigint) returns boolean language sql as $$
          delete from cron.job where jobid = job_id returning true $$;`);
      await tx`select tracing.schedule_retention('0 4 * * *')`;
      await tx`select tracing.schedule_retention('0 5 * * *')`;
      const jobs = await tx`select jobname, schedule, command from cron.job order by jobname`;
      expect(jobs).toEqual([
        { jobname: `tracegres-retention:${db.name}`, schedule: '0 5 * * *', command: 'call tracing.run_retention()' },
        { jobname: `tracegres-sampling:${db.name}`, schedule: '* * * * *', command: 'call tracing.run_sampling()' },
      ]);
      expect(first(await tx`select tracing.retention_scheduler() as s`).s).toBe('pg_cron');
      // The npm start scheduler stands aside while pg_cron runs it.
      expect(first(await tx`select tracing.claim_retention_tick('2026-03-04 05:00:00Z') as due`).due).toBe(false);

      await tx`select tracing.unschedule_retention()`;
      expect(await tx`select * from cron.job`).toEqual([]);
      expect(first(await tx`select tracing.retention_scheduler() as s`).s).toBe('off');
    });
  });
});

describe('claim_retention_tick', () => {
  it('is true once per due minute, across callers', async () => {
    await db.sql`select tracing.schedule_retention('*/10 * * * *', p_in_process => true)`;
    const claim = async (at: string) => first(await db.sql`select tracing.claim_retention_tick(${at}::timestamptz) as due`).due;
    expect(await claim('2026-03-04 05:10:00Z')).toBe(true);
    expect(await claim('2026-03-04 05:10:30Z')).toBe(false); // the same minute, another instance
    expect(await claim('2026-03-04 05:11:00Z')).toBe(false); // not due
    expect(await claim('2026-03-04 05:20:00Z')).toBe(true);
  });

  it('is never true once unscheduled', async () => {
    await db.sql`select tracing.unschedule_retention()`;
    expect(first(await db.sql`select tracing.claim_retention_tick('2026-03-04 03:17:00Z') as due`).due).toBe(false);
  });
});
