// The processors' side of replay: tracing.claim_replay_event hands out a
// run's events one at a time in order (runs in parallel, FOR UPDATE SKIP
// LOCKED), under a lease; tracing.mark_replay_processed / _failed report the
// outcome with the claim's token, idempotently, and complete the run.
import { describe, expect, it } from 'vitest';
import { expectArgumentErrors } from '../../helpers/argument-errors.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, archiveEvent, insertEvent, ORG_A } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;
type Sql = import('postgres').Sql | Tx;

const CORRELATION = '5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';

async function seedRun(tx: Sql, correlation = CORRELATION, trace = 't1'): Promise<string> {
  await insertEvent(tx, { at: 10, type: 'payment.captured', trace, correlation, error: 'card declined' });
  await insertEvent(tx, { at: 20, type: 'order.confirmed', trace, correlation });
  await insertEvent(tx, { at: 30, type: 'email.send', trace, correlation, error: 'smtp timeout' });
  const [run] = await tx`select (api.start_replay('fix deployed', p_correlation_id => ${correlation})).id`;
  return String(run!.id);
}

const claim = (tx: Tx, processor = 'orders-1', lease = '5 minutes') =>
  actAs(tx, 'tracegres_writer', null, () => tx`select * from tracing.claim_replay_event(${processor}, ${lease}::interval)`);
const processed = (tx: Tx, c: Record<string, any>) =>
  actAs(
    tx,
    'tracegres_writer',
    null,
    () => tx`select tracing.mark_replay_processed(${c.run_id}, ${c.position}, ${c.claim_token}) as state`,
  );
const failed = (tx: Tx, c: Record<string, any>, error: string) =>
  actAs(
    tx,
    'tracegres_writer',
    null,
    () => tx`select tracing.mark_replay_failed(${c.run_id}, ${c.position}, ${c.claim_token}, ${error}) as state`,
  );

describe('tracing.claim_replay_event', () => {
  it('hands out a run one event at a time, in order, and completes it after the last report', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const runId = await seedRun(tx);
      const [first] = await claim(tx);
      expect(first).toMatchObject({ run_id: runId, position: 1, attempts: 1, event_type: 'payment.captured', correlation_id: CORRELATION });
      const [run] = await tx`select trace_id, span_id from api.get_replay_run(${runId})`;
      expect(first!.traceparent).toBe(`00-${run!.trace_id}-${run!.span_id}-01`);
      // The next event waits for the one before it.
      expect(await claim(tx, 'orders-2')).toEqual([]);
      expect((await processed(tx, first!))[0]!.state).toBe('processed');
      const [second] = await claim(tx, 'orders-2');
      expect(second).toMatchObject({ position: 2, event_type: 'order.confirmed' });
      await processed(tx, second!);
      const [third] = await claim(tx);
      expect((await failed(tx, third!, 'smtp still down'))[0]!.state).toBe('failed');
      expect(await claim(tx)).toEqual([]);

      const [done] = await tx`select * from api.get_replay_run(${runId})`;
      expect(done).toMatchObject({ status: 'completed', processed_count: 2, failed_count: 1, pending_count: 0 });
      expect(done!.finished_at).toBeInstanceOf(Date);
      // Original and replayed outcome side by side.
      const items = await tx`select position, original_state, original_error, state, error, claimed_by from api.get_replay_items(${runId})`;
      expect(items).toEqual([
        { position: 1, original_state: 'failed', original_error: 'card declined', state: 'processed', error: null, claimed_by: 'orders-1' },
        { position: 2, original_state: 'never_processed', original_error: null, state: 'processed', error: null, claimed_by: 'orders-2' },
        {
          position: 3,
          original_state: 'failed',
          original_error: 'smtp timeout',
          state: 'failed',
          error: 'smtp still down',
          claimed_by: 'orders-1',
        },
      ]);
      // The events' own state follows the replay.
      const events = await tx`select event_type, processing_state, processing_error from api.get_replay_set(${CORRELATION})`;
      expect(events.map((e) => [e.event_type, e.processing_state, e.processing_error])).toEqual([
        ['payment.captured', 'processed', null],
        ['order.confirmed', 'processed', null],
        ['email.send', 'failed', 'smtp still down'],
      ]);
    });
  });

  it('takes a claim back after its lease expires, and refuses the old token', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seedRun(tx);
      const [lost] = await claim(tx, 'orders-1', '1 second');
      await tx`update tracing.replay_items set claimed_until = now() - interval '1 second' where run_id = ${lost!.run_id}::bigint and position = 1`;
      const [again] = await claim(tx, 'orders-2');
      expect(again).toMatchObject({ position: 1, attempts: 2 });
      const error = await tx.savepoint((sp) => processed(sp as never, lost!)).catch((e) => e);
      expect(error.code).toBe('22023');
      expect(error.message).toMatch(/^p_claim_token does not hold this event/);
      expect((await processed(tx, again!))[0]!.state).toBe('processed');
    });
  });

  it('holds a claim for the lease of tracing.replay_settings when the processor names none', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seedRun(tx);
      await tx`update tracing.replay_settings set claim_lease = interval '42 seconds'`;
      const [c] = await actAs(tx, 'tracegres_writer', null, () => tx`select * from tracing.claim_replay_event('orders-1')`);
      const [item] = await tx`
        select extract(epoch from claimed_until - now())::int as lease_s from tracing.replay_items
        where run_id = ${c!.run_id}::bigint and position = 1`;
      expect(item!.lease_s).toBe(42);
      const error = await tx.savepoint((sp) => sp`update tracing.replay_settings set claim_lease = interval '2 hours'`).catch((e) => e);
      expect(error.constraint_name).toBe('replay_settings_claim_lease_range');
    });
  });

  it("ends a cancelled run's claim as cancelled once its lease runs out, and refuses the dead holder's late report", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const runId = await seedRun(tx);
      const [held] = await claim(tx, 'orders-1');
      await tx`select api.cancel_replay(${runId})`;
      const states = async () => (await tx`select state from api.get_replay_items(${runId})`).map((r) => r.state);
      // Under a live lease the holder may still finish it.
      expect(await states()).toEqual(['claimed', 'cancelled', 'cancelled']);
      // The holder died: its lease runs out.
      await tx`update tracing.replay_items set claimed_until = now() - interval '1 second' where run_id = ${runId}::bigint and position = 1`;
      expect(await states()).toEqual(['cancelled', 'cancelled', 'cancelled']);
      const [run] = await tx`select status, claimed_count, cancelled_count from api.get_replay_run(${runId})`;
      expect(run).toEqual({ status: 'cancelled', claimed_count: 0, cancelled_count: 3 });
      // A claim hands nothing out of a cancelled run, and stores the ending.
      expect(await claim(tx, 'orders-2')).toEqual([]);
      const [stored] = await tx`select state, claimed_until from tracing.replay_items where run_id = ${runId}::bigint and position = 1`;
      expect(stored).toEqual({ state: 'cancelled', claimed_until: null });
      for (const report of [() => processed(tx, held!), () => failed(tx, held!, 'too late')]) {
        const error = await tx.savepoint(() => report()).catch((e) => e);
        expect(error.code).toBe('22023');
        expect(error.message).toBe(`p_claim_token does not hold this event: its lease expired after replay run ${runId} was cancelled`);
      }
    });
  });

  it('refuses the late report of a cancelled run whose claim nobody swept yet, and lets a live claim finish', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const runId = await seedRun(tx);
      const [held] = await claim(tx, 'orders-1');
      await tx`select api.cancel_replay(${runId})`;
      await tx`update tracing.replay_items set claimed_until = now() - interval '1 second' where run_id = ${runId}::bigint and position = 1`;
      const error = await tx.savepoint(() => processed(tx, held!)).catch((e) => e);
      expect(error.message).toMatch(/^p_claim_token does not hold this event: its lease expired after replay run \d+ was cancelled$/);
      // The same claim under its lease reports as usual.
      await tx`update tracing.replay_items set claimed_until = now() + interval '1 minute' where run_id = ${runId}::bigint and position = 1`;
      expect((await processed(tx, held!))[0]!.state).toBe('processed');
      const [run] = await tx`select status, processed_count, cancelled_count from api.get_replay_run(${runId})`;
      expect(run).toEqual({ status: 'cancelled', processed_count: 1, cancelled_count: 2 });
    });
  });

  it('cancels at once the claims whose lease already ran out when the run is cancelled', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const runId = await seedRun(tx);
      await claim(tx, 'orders-1');
      await tx`update tracing.replay_items set claimed_until = now() - interval '1 second' where run_id = ${runId}::bigint and position = 1`;
      await tx`select api.cancel_replay(${runId})`;
      const [stored] =
        await tx`select state, claimed_until, attempts from tracing.replay_items where run_id = ${runId}::bigint and position = 1`;
      expect(stored).toEqual({ state: 'cancelled', claimed_until: null, attempts: 1 });
    });
  });

  it('keeps one item per (run, event) however often it is claimed again', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const runId = await seedRun(tx);
      let last: Record<string, any> | undefined;
      for (let attempt = 1; attempt <= 3; attempt++) {
        [last] = await claim(tx, `orders-${attempt}`);
        expect(last).toMatchObject({ position: 1, attempts: attempt });
        await tx`update tracing.replay_items set claimed_until = now() - interval '1 second' where run_id = ${runId}::bigint and position = 1`;
      }
      // The last holder's report is taken, even after its lease ran out, as no one took the event over.
      expect((await processed(tx, last!))[0]!.state).toBe('processed');
      const items =
        await tx`select state, attempts from tracing.replay_items where run_id = ${runId}::bigint and event_id = ${last!.event_id}::bigint`;
      expect(items).toEqual([{ state: 'processed', attempts: 3 }]);
    });
  });

  it('replays archived events: the claim returns their body and the report updates them in the archive', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await insertEvent(tx, {
        at: 10,
        type: 'payment.captured',
        span: 'pay',
        correlation: CORRELATION,
        error: 'card declined',
        data: { amount: 42 },
      });
      await insertEvent(tx, { at: 20, type: 'email.send', span: 'mail', correlation: CORRELATION, error: 'smtp timeout' });
      const events = await tx`select id from tracing.domain_events where correlation_id = ${CORRELATION} order by created_at`;
      await archiveEvent(tx, events[0]!.id);
      const [run] = await tx`select (api.start_replay('fix deployed', p_correlation_id => ${CORRELATION})).id`;
      const runId = String(run!.id);
      const queued = await tx`select event_id, archived, original_state from api.get_replay_items(${runId})`;
      expect(queued).toEqual([
        { event_id: events[0]!.id, archived: true, original_state: 'failed' },
        { event_id: events[1]!.id, archived: false, original_state: 'failed' },
      ]);

      const [first] = await claim(tx);
      expect(first).toMatchObject({ event_id: events[0]!.id, event_type: 'payment.captured', event_data: { amount: 42 } });
      await processed(tx, first!);
      const [archived] = await tx`
        select processed_at is not null as processed, processing_error from tracing.domain_events_archive where id = ${events[0]!.id}`;
      expect(archived).toEqual({ processed: true, processing_error: null });
      const [second] = await claim(tx);
      await failed(tx, second!, 'smtp still down');
      const states = await tx`select event_type, processing_state, archived from api.get_replay_set(${CORRELATION}, true)`;
      expect(states.map((r) => [r.event_type, r.processing_state, r.archived])).toEqual([
        ['payment.captured', 'processed', true],
        ['email.send', 'failed', false],
      ]);
      // The run's trace links the replayed trace though its event is archived.
      const [link] = await tx`
        select s.links from tracing.spans s join tracing.replay_runs r on r.trace_id = s.trace_id and r.span_id = s.span_id
        where r.id = ${runId}::bigint`;
      expect(link!.links).toHaveLength(1);
    });
  });

  it('fails an event purged since it was queued and hands out the next one instead of nothing', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const runId = await seedRun(tx);
      const [gone] = await tx`select event_id from tracing.replay_items where run_id = ${runId}::bigint and position = 1`;
      await tx`delete from tracing.domain_events where id = ${gone!.event_id}`;
      const [next] = await claim(tx);
      expect(next).toMatchObject({ position: 2, event_type: 'order.confirmed' });
      const [item] = await tx`select state, error, archived from api.get_replay_items(${runId}) where position = 1`;
      expect(item).toEqual({
        state: 'failed',
        error: `event ${gone!.event_id} no longer exists: it was purged from the archive`,
        archived: null,
      });
    });
  });

  it('treats a repeated report as already recorded', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seedRun(tx);
      const [c] = await claim(tx);
      await failed(tx, c!, 'first report');
      expect((await processed(tx, c!))[0]!.state).toBe('failed');
      const [item] = await tx`select state, error, attempts from tracing.replay_items where run_id = ${c!.run_id}::bigint and position = 1`;
      expect(item).toEqual({ state: 'failed', error: 'first report', attempts: 1 });
    });
  });

  it('lets processors work on different runs at once without waiting for each other', async () => {
    const other = '6d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a';
    const runs = [await seedRun(db.sql, CORRELATION, 'ta'), await seedRun(db.sql, other, 'tb')];
    try {
      const holder = await db.sql.reserve();
      try {
        // One processor is inside its claim (run locked, not committed yet)...
        await holder`begin`;
        await holder`set local role tracegres_writer`;
        const [a] = await holder`select run_id from tracing.claim_replay_event('slow')`;
        // ...another claims at the same time and gets the other run at once.
        const [b] = await db.sql.begin(async (tx) => {
          await tx`set local lock_timeout = '2s'`;
          return claim(tx, 'fast');
        });
        expect(new Set([a!.run_id, b!.run_id])).toEqual(new Set(runs));
      } finally {
        await holder`rollback`;
        holder.release();
      }
    } finally {
      await db.sql`delete from tracing.replay_runs where id in ${db.sql(runs)}`;
      await db.sql`delete from tracing.domain_events where correlation_id in ${db.sql([CORRELATION, other])}`;
    }
  });

  it('names bad arguments (22023)', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seedRun(tx);
      const [c] = await claim(tx);
      const cases: [string, RegExp][] = [
        [`select tracing.claim_replay_event(' ')`, /^p_processor is required/],
        [`select tracing.claim_replay_event('w', interval '2 hours')`, /^p_lease must be between 1 second and 1 hour/],
        [`select tracing.mark_replay_failed(${c!.run_id}, 1, '${c!.claim_token}', '')`, /^p_error is required/],
        [`select tracing.mark_replay_processed(${c!.run_id}, 99, '${c!.claim_token}')`, /^p_position names no event of replay run \d+/],
        [`select tracing.mark_replay_processed(${c!.run_id}, 1, null)`, /^p_claim_token is required/],
      ];
      await expectArgumentErrors(
        (query) => tx.savepoint((sp) => actAs(sp as never, 'tracegres_writer', null, () => sp.unsafe(query))),
        cases,
      );
    });
  });

  it('gives processors the queue only through these functions', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const error = await actAs(tx, 'tracegres_writer', null, () => tx`select * from tracing.replay_items`).catch((e) => e);
      expect(error.code).toBe('42501');
    });
  });

  it('keeps claim tokens from readers and admins, who still read the rest of an item', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const runId = await seedRun(tx);
      const [c] = await claim(tx);
      for (const [role, org] of [
        ['tracegres_reader', ORG_A],
        ['tracegres_admin', null],
      ] as const) {
        const refused = await tx
          .savepoint((sp) => actAs(sp as never, role, org, () => sp`select claim_token from tracing.replay_items`))
          .catch((e) => e);
        expect(refused.code).toBe('42501');
        expect(refused.message).toMatch(/replay_items/);
        const items = await actAs(
          tx,
          role,
          org,
          () => tx`select position, state, claimed_by from tracing.replay_items where run_id = ${runId}::bigint order by position`,
        );
        expect(items).toEqual([
          { position: 1, state: 'claimed', claimed_by: 'orders-1' },
          { position: 2, state: 'pending', claimed_by: null },
          { position: 3, state: 'pending', claimed_by: null },
        ]);
      }
      expect(c!.claim_token).toMatch(/^[0-9a-f-]{36}$/);
    });
  });
});
