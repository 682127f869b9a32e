// `npx tracegres retention run|status|schedule`, driven through cli/main.ts
// against this test's database.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from './main.ts';
import { archiveProgressLine, clock } from './format.ts';
import { runRetention, type Output } from './retention.ts';
import { projectRoot } from '../server/database/migrate.ts';
import { useTestDatabase } from '../db/tests/helpers/test-database.ts';
import { createLedger, first, resetRetentionState, seedEvents, seedSpans, storeState } from '../db/tests/helpers/event-ledger.ts';

const db = useTestDatabase();

function capture(): Output & { lines: string[]; progressLines: string[] } {
  const lines: string[] = [];
  const progressLines: string[] = [];
  return { lines, progressLines, line: (t) => lines.push(t), progress: (t) => progressLines.push(t) };
}

const cli = (args: string[], out = capture()) => main([...args, '--database-url', db.url], out).then((code) => ({ code, out }));

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(async () => {
  await resetRetentionState(db.sql);
  await db.sql.unsafe(`
    update tracing.retention_settings set schedule = '17 3 * * *', pg_cron_job = null;`);
});

describe('tracegres retention run', () => {
  it('dry run reports what would move, by month, and moves nothing', async () => {
    await seedEvents(db.sql, { count: 1200, ageDays: 100 });
    await seedEvents(db.sql, { count: 100, ageDays: 1 });
    await seedSpans(db.sql, { traces: 10, spansPerTrace: 3, ageDays: 100 });
    const { code, out } = await cli(['retention', 'run', '--dry-run']);
    expect(code).toBe(0);
    expect(out.lines[0]).toMatch(
      /^archive \(dry run\) #\d+: succeeded: 1,200 events and 30 spans \(10 traces\) would move to the archive$/,
    );
    expect(out.lines.some((l) => /^ {2}domain_events_archive_\d{4}m\d{2}: [\d,]+$/.test(l))).toBe(true);
    expect((await storeState(db.sql)).archived).toBe(0);
  });

  it('moves the old events, shows progress, and ends with a summary', async () => {
    await seedEvents(db.sql, { count: 20_000, ageDays: 100 });
    await seedEvents(db.sql, { count: 500, ageDays: 1 });
    const out = capture();
    // Small batches and quick polling so the run is watched while it works.
    const result = await runRetention(db.url, out, { batchSize: 100, pollMs: 10 });
    expect(result.ok).toBe(true);
    expect(out.progressLines.length).toBeGreaterThan(0);
    expect(out.lines.join('\n')).toMatch(
      /archive #\d+: succeeded: 20,000 events and 0 spans moved in [\d.]+m?s \([\d,]+ events\/s, \d+ batches\)/,
    );
    expect(out.lines.join('\n')).toMatch(/partitions indexed: domain_events_archive_/);
    for (const line of out.progressLines) {
      expect(line).toMatch(/^archive: [\d,]+ events moved · [\d,]+ events\/s · \d+% of [\d,]+ blocks scanned · ETA ((\d+:)?\d+:\d{2}|\?)$/);
    }
    expect(await storeState(db.sql)).toMatchObject({ live: 500, archived: 20_000 });
  });

  it('takes --older-than', async () => {
    await seedEvents(db.sql, { count: 10, ageDays: 40 });
    const { code } = await cli(['retention', 'run', '--older-than', '30 days']);
    expect(code).toBe(0);
    expect((await storeState(db.sql)).live).toBe(0);
  });

  it('fails with the database error and a non-zero exit code', async () => {
    const { code, out } = await cli(['retention', 'run', '--older-than=-3 days']);
    expect(code).toBe(1);
    expect(out.lines.join('\n')).toMatch(/error: p_older_than must be a positive interval/);
  });

  it('rejects a bad batch size before connecting', async () => {
    expect((await cli(['retention', 'run', '--batch-size', 'lots'])).code).toBe(2);
  });
});

describe('tracegres retention status', () => {
  it('shows settings, schedule, runs and partitions', async () => {
    await seedEvents(db.sql, { count: 300, ageDays: 100 });
    await cli(['retention', 'run']);
    const { code, out } = await cli(['retention', 'status']);
    expect(code).toBe(0);
    const text = out.lines.join('\n');
    expect(text).toContain(`database ${db.name}`);
    expect(text).toMatch(/archive events older than 90 days/);
    expect(text).toMatch(/purge off/);
    expect(text).toMatch(/schedule "17 3 \* \* \*" \(UTC\), next \d{4}-\d{2}-\d{2} 03:17:00Z/);
    expect(text).toMatch(/\n\d+ +archive +succeeded/);
    expect(text).toMatch(/domain_events_archive_\d{4}m\d{2} .* yes/);
    // The live table's size is its partitions' (the partitioned parent has none).
    expect(text).toMatch(/live table ~[\d,]+ events, [1-9]/);
  });
});

describe('tracegres retention schedule', () => {
  it('--in-process stores the schedule for npm start; --off removes it', async () => {
    const { code, out } = await cli(['retention', 'schedule', '*/30 * * * *', '--in-process']);
    const { loaded } = first(await db.sql`select * from tracing.pg_cron_status()`);
    expect(code).toBe(0);
    if (!loaded) {
      expect(out.lines.join('\n')).toMatch(
        /now letting the tracegres server \(npm start\) run call tracing.run_retention\(\) at "\*\/30 \* \* \* \*"/,
      );
      expect(first(await db.sql`select schedule from tracing.retention_settings`).schedule).toBe('*/30 * * * *');
      expect(first(await db.sql`select tracing.retention_scheduler() as s`).s).toBe('in_process');
    }
    expect((await cli(['retention', 'schedule', '--off'])).code).toBe(0);
    expect(first(await db.sql`select tracing.retention_scheduler() as s`).s).toBe('off');
  });

  it('explains what is missing when pg_cron is not installed', async () => {
    const { loaded } = first(await db.sql`select * from tracing.pg_cron_status()`);
    if (loaded) return; // covered by pg_cron.test.ts on such servers
    const errors: string[] = [];
    const original = console.error;
    console.error = (message: string) => errors.push(message);
    try {
      const { code } = await cli(['retention', 'schedule', '0 4 * * *']);
      expect(code).toBe(1);
    } finally {
      console.error = original;
    }
    expect(errors.join('\n')).toMatch(/error: pg_cron is not installed on this server[\s\S]*hint: To install it/);
  });

  it('rejects a malformed cron expression', async () => {
    const errors: string[] = [];
    const original = console.error;
    console.error = (message: string) => errors.push(message);
    try {
      expect((await cli(['retention', 'schedule', '0 25 * * *', '--in-process'])).code).toBe(1);
      expect((await cli(['retention', 'schedule', '0', '4', '*', '*', '*'])).code).toBe(2);
    } finally {
      console.error = original;
    }
    expect(errors.join('\n')).toMatch(/outside 0-23 in the hour field/);
    expect(errors.join('\n')).toMatch(/quote the cron expression/);
  });
});

describe('npx tracegres', () => {
  it('runs the CLI through bin/tracegres.mjs', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(projectRoot, 'bin/tracegres.mjs'), 'retention', 'status'], {
      env: { ...process.env, DATABASE_URL: db.url },
    });
    expect(stdout).toContain(`database ${db.name}`);
  });

  it('prints usage for an unknown command', async () => {
    const run = promisify(execFile)(process.execPath, [path.join(projectRoot, 'bin/tracegres.mjs'), 'nonsense']);
    await expect(run).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage:') });
  });
});

describe('progress line', () => {
  it('estimates time left from the blocks scanned', () => {
    expect(archiveProgressLine({ eventsMoved: 250_000, blocksDone: 2500, blocksTotal: 10_000, elapsedMs: 5000 })).toBe(
      'archive: 250,000 events moved · 50,000 events/s · 25% of 10,000 blocks scanned · ETA 0:15',
    );
    expect(clock(3725)).toBe('1:02:05');
  });
});
