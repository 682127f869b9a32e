// Archiving while the application keeps writing events and spans, and runs
// killed mid-way: afterwards live + archive hold exactly the events and
// spans written (count and checksum), none twice, every trace's summary on
// the side of its spans.
import postgres from 'postgres';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import {
  createLedger,
  expectSpansAsWritten,
  first,
  ledgerState,
  resetRetentionState,
  seedEvents,
  seedSpans,
  spanStoreState,
  storeState,
} from '../../helpers/event-ledger.ts';

const db = useTestDatabase();
const clients: postgres.Sql[] = [];

function newClient(): postgres.Sql {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  clients.push(sql);
  return sql;
}

beforeAll(async () => {
  await createLedger(db.sql);
});

beforeEach(() => resetRetentionState(db.sql));

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end({ timeout: 1 }).catch(() => {})));
});

async function expectExactlyTheLedger(): Promise<void> {
  const ledger = await ledgerState(db.sql);
  const state = await storeState(db.sql);
  expect(state.live + state.archived).toBe(ledger.count);
  expect(state.distinctIds).toBe(ledger.count);
  expect(state.checksum).toBe(ledger.checksum);
  await expectSpansAsWritten(db.sql);
}

describe('archiving while writers insert', () => {
  it('ends with exactly the written events and spans, none lost, none twice', async () => {
    await seedEvents(db.sql, { count: 20_000, ageDays: 120, tag: 'backlog' });
    await seedSpans(db.sql, { traces: 1_500, spansPerTrace: 4, ageDays: 120, tag: 'backlog' });

    // Three writers insert continuously, one event or a few per transaction,
    // as the application would: mostly new events, some written with an old
    // created_at (imports, replays) that the archive must also take exactly once.
    let writing = true;
    let written = 0;
    const writers = [0, 1, 2].map(async (w) => {
      const sql = newClient();
      for (let i = 0; writing; i++) {
        const old = i % 5 === 0;
        await seedEvents(sql, { count: 1 + (i % 3), ageDays: old ? 200 : 0, tag: `writer-${w}` });
        written += 1;
      }
    });
    // Two span writers, the edge and OTLP ingest: new traces, and traces
    // that ended long ago (a collector catching up).
    let spanBatches = 0;
    const spanWriters = [0, 1].map(async (w) => {
      const sql = newClient();
      for (let i = 0; writing; i++) {
        await seedSpans(sql, { traces: 1 + (i % 3), ageDays: i % 4 === 0 ? 200 : 0, tag: `span-writer-${w}` });
        spanBatches += 1;
      }
    });

    // Two runs started together: one works, the other is skipped by the lock.
    const [a, b] = await Promise.all([
      newClient()`call tracing.archive_events(p_batch_size => 400)`,
      (async () => {
        await new Promise((r) => setTimeout(r, 20));
        return newClient()`call tracing.archive_events(p_batch_size => 400)`;
      })(),
    ]);
    writing = false;
    await Promise.all([...writers, ...spanWriters]);
    expect(written).toBeGreaterThan(10);
    expect(spanBatches).toBeGreaterThan(10);

    const runs = await db.sql`select status from tracing.retention_runs order by id`;
    expect(runs.map((r) => r.status).sort()).toEqual(['skipped', 'succeeded']);
    expect(Number(a![0]!.events_moved) + Number(b![0]!.events_moved)).toBeGreaterThanOrEqual(20_000);
    await expectExactlyTheLedger();

    // Old events written after the run started wait for the next run.
    await db.sql`call tracing.archive_events()`;
    await expectExactlyTheLedger();
    const { oldLive } = first(
      await db.sql`select count(*)::int as "oldLive" from tracing.domain_events where created_at < now() - interval '90 days'`,
    );
    expect(oldLive).toBe(0);
    const { oldTraces } = first(
      await db.sql`select count(*)::int as "oldTraces" from tracing.trace_summaries where end_time < now() - interval '90 days'`,
    );
    expect(oldTraces).toBe(0);
  });
});

/**
 * Starts an archive run in its own session and kills that session (as a DBA
 * or an OOM killer would) once the run has committed `afterBatches`
 * batches; returns the killed backend's pid.
 */
async function killArchiveRunAfter(afterBatches: number): Promise<number> {
  const runner = newClient();
  const { pid } = first(await runner`select pg_backend_pid() as pid`);
  const call = runner`call tracing.archive_events(p_batch_size => 250)`.then(
    () => 'finished',
    (error: Error) => error.message,
  );
  for (;;) {
    const [run] = await db.sql`select batches from tracing.retention_runs where backend_pid = ${pid} and status = 'running'`;
    if (run && run.batches >= afterBatches) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  await db.sql`select pg_terminate_backend(${pid})`;
  // The client sees its connection end (how depends on timing).
  expect(await call).not.toBe('finished');
  return pid as number;
}

describe('a run killed mid-way', () => {
  it('loses and duplicates nothing, and the next run finishes the job', async () => {
    await seedEvents(db.sql, { count: 30_000, ageDays: 150, tag: 'old' });
    await seedEvents(db.sql, { count: 2_000, ageDays: 1, tag: 'new' });

    // Kill three runs at different points, each from another session, the
    // way a DBA or an OOM killer would.
    for (const afterBatches of [1, 4, 9]) {
      const pid = await killArchiveRunAfter(afterBatches);
      // Between runs, the store is already whole: every batch was atomic.
      await expectExactlyTheLedger();
      const [run] = await db.sql`select status from tracing.retention_run_status where backend_pid = ${pid}`;
      expect(run!.status).toBe('interrupted');
    }

    const [result] = await db.sql`call tracing.archive_events(p_batch_size => 250)`;
    expect(Number(result!.events_moved)).toBeGreaterThan(0);
    await expectExactlyTheLedger();
    expect(await storeState(db.sql)).toMatchObject({ live: 2_000, archived: 30_000 });

    const runs = await db.sql`select status, events_moved from tracing.retention_runs order by id`;
    expect(runs.map((r) => r.status)).toEqual(['interrupted', 'interrupted', 'interrupted', 'succeeded']);
    expect(runs.reduce((sum, r) => sum + Number(r.events_moved), 0)).toBe(30_000);
    // The partitions the killed runs filled are indexed by the one that finished.
    const { unindexed } = first(
      await db.sql`
      select count(*)::int as unindexed from tracing.archive_partitions p
       where not p.indexed and exists (select from tracing.domain_events_archive a where a.created_at >= p.from_at and a.created_at < p.to_at)`,
    );
    expect(unindexed).toBe(0);
  });
});

describe('a run killed while it archives spans', () => {
  it('leaves every trace whole on one side, and the next run finishes the job', async () => {
    await seedSpans(db.sql, { traces: 3_000, spansPerTrace: 3, ageDays: 150, tag: 'old' });
    await seedSpans(db.sql, { traces: 100, spansPerTrace: 3, ageDays: 1, tag: 'new' });

    // About 36 batches in all: each kill leaves many batches for the next
    // run, so a busy machine cannot let a run finish before it is killed.
    for (const afterBatches of [2, 6, 10]) {
      await killArchiveRunAfter(afterBatches);
      await expectExactlyTheLedger();
    }

    await db.sql`call tracing.archive_events(p_batch_size => 250)`;
    await expectExactlyTheLedger();
    expect(await spanStoreState(db.sql)).toMatchObject({ live: 300, archived: 9_000 });
    const runs = await db.sql`select status, spans_moved from tracing.retention_runs order by id`;
    expect(runs.map((r) => r.status)).toEqual(['interrupted', 'interrupted', 'interrupted', 'succeeded']);
    expect(runs.reduce((sum, r) => sum + Number(r.spans_moved), 0)).toBe(9_000);
  });
});
