// The in-process retention scheduler of `npm start` (servers without
// pg_cron): runs `call tracing.run_retention()` on the stored schedule, once
// per due minute across instances, logs rather than throws.
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { first, createLedger, seedEvents, storeState } from '../db/tests/helpers/event-ledger.ts';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';
import { startRetentionScheduler, type RetentionScheduler } from './retention-scheduler.ts';

const db = useTestDatabase();
const started: RetentionScheduler[] = [];

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(async () => {
  await db.sql.unsafe(`
    truncate tracing.domain_events, public.event_ledger;
    delete from tracing.retention_runs;
    update tracing.retention_settings
       set schedule = '*/10 * * * *', pg_cron_job = null, in_process_claimed_minute = null, batch_size = 50000;
    truncate tracing.domain_events_archive;`);
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

/** A clock that moves one minute per scheduler check, from `start`. */
function steppingClock(start: string) {
  let t = Date.parse(start);
  return { now: () => new Date(t), nextCheckInMs: () => ((t += 60_000), 5) };
}

function start(clock: { now: () => Date; nextCheckInMs: (now: Date) => number }, log: string[]) {
  const scheduler = startRetentionScheduler(db.sql, { log: (m) => log.push(m), ...clock });
  started.push(scheduler);
  return scheduler;
}

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out');
}

const archiveRuns = async () =>
  first(await db.sql`select count(*)::int as n from tracing.retention_runs where operation = 'archive'`).n as number;

describe('startRetentionScheduler', () => {
  it('runs retention when the schedule is due, and says so', async () => {
    if (first(await db.sql`select tracing.retention_scheduler() as s`).s !== 'in_process') return;
    await seedEvents(db.sql, { count: 1000, ageDays: 100 });
    await seedEvents(db.sql, { count: 10, ageDays: 1 });
    const log: string[] = [];
    start(steppingClock('2026-03-04 05:07:00Z'), log);
    await until(async () => (await storeState(db.sql)).archived === 1000);
    await until(async () => log.some((l) => /archive succeeded, 1000 events and 0 spans moved/.test(l)));
    expect(log[0]).toMatch(/^retention: runs here on "\*\/10 \* \* \* \*" \(UTC\), next at 2026-03-04T05:10:00.000Z/);
    expect((await storeState(db.sql)).live).toBe(10);
  });

  it('runs each due minute once, however many app instances check it', async () => {
    // Three instances stuck in the same due minute.
    const frozen = { now: () => new Date('2026-03-04T05:10:00Z'), nextCheckInMs: () => 5 };
    const log: string[] = [];
    for (let i = 0; i < 3; i++) start(frozen, log);
    await until(async () => (await archiveRuns()) >= 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(await archiveRuns()).toBe(1);
  });

  it('does nothing when retention is unscheduled or run by pg_cron', async () => {
    const log: string[] = [];
    await db.sql`update tracing.retention_settings set schedule = null`;
    start(steppingClock('2026-03-04 05:00:00Z'), log);
    await new Promise((r) => setTimeout(r, 300));
    expect(await archiveRuns()).toBe(0);
    expect(log).toEqual(['retention: not scheduled (`npx tracegres retention schedule` or run it by hand)']);
  });

  it('logs a failed run and keeps going', async () => {
    await seedEvents(db.sql, { count: 10, ageDays: 100 });
    // A column the archive lacks makes the archive refuse to run.
    await db.sql`alter table tracing.domain_events add column extra text`;
    try {
      const log: string[] = [];
      const scheduler = start(steppingClock('2026-03-04 05:09:00Z'), log);
      await until(async () => log.some((l) => l.startsWith('retention: run failed: archive run')));
      // The pooled connection it used holds no retention lock afterwards.
      await until(async () => (await archiveRuns()) >= 2); // the next due minute ran (and failed) again
      await scheduler.stop();
      const { locks } = first(
        await db.sql`
        select count(*)::int as locks from pg_locks
         where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())
           and classid::bigint = (tracing.retention_lock_key() >> 32) & 4294967295
           and objid::bigint = tracing.retention_lock_key() & 4294967295`,
      );
      expect(locks).toBe(0);
      expect(
        first(await db.sql`select count(*)::int as n from tracing.retention_runs where operation = 'archive' and status = 'skipped'`).n,
      ).toBe(0);
    } finally {
      await Promise.all(started.splice(0).map((s) => s.stop()));
      await db.sql`alter table tracing.domain_events drop column extra`;
    }
  });

  it('stop() cancels a run in flight, which records itself and releases the lock', async () => {
    await db.sql`update tracing.retention_settings set batch_size = 100`;
    await seedEvents(db.sql, { count: 60_000, ageDays: 100 });
    const log: string[] = [];
    const scheduler = start(steppingClock('2026-03-04 05:10:00Z'), log);
    await until(async () => first(await db.sql`select count(*)::int as n from tracing.retention_runs where batches > 2`).n === 1);
    await scheduler.stop();
    const { status, error } = first(await db.sql`select status, error from tracing.retention_runs where operation = 'archive'`);
    // 'interrupted' is the status of a run whose error was SQLSTATE 57014
    // (query_canceled); the error's text is the server's, in its lc_messages.
    expect(status).toBe('interrupted');
    expect(error).not.toBeNull();
    expect(log.some((l) => /^retention: run failed: .*cancel/i.test(l))).toBe(true);
    // Whatever moved is in the archive, the rest live; nothing lost or doubled.
    const state = await storeState(db.sql);
    expect(state.live + state.archived).toBe(60_000);
    expect(state.distinctIds).toBe(60_000);
    // And another session can run at once.
    const [result] = await db.sql`call tracing.archive_events()`;
    expect(Number(result!.events_moved)).toBe(state.live);
  });
});
