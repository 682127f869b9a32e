// api.start_replay, api.cancel_replay and the run lookups: an admin queues
// a correlation's failed and never-processed events again, in order, with
// who, when and why recorded, a trace of the run's own linked to the
// replayed one, and a NOTIFY for the processors.
import { describe, expect, it } from 'vitest';
import { expectArgumentErrors } from '../../helpers/argument-errors.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, at, insertEvent, ORG_A, ORG_B, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

const CORRELATION = '5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';

async function seed(tx: Tx, correlation = CORRELATION) {
  await recordSpans(tx, [span('root', { start: 0, end: 100, name: 'POST /checkout' })]);
  const placed = await insertEvent(tx, { at: 5, type: 'order.placed', span: 'root', correlation });
  await tx`update tracing.domain_events set processed_at = ${at(6)} where id = ${placed}`;
  await insertEvent(tx, { at: 20, type: 'payment.captured', span: 'root', correlation, error: 'card declined' });
  await insertEvent(tx, { at: 30, type: 'order.confirmed', span: 'root', correlation });
}

/** Runs `body` as an admin whose token subject is `user`. */
async function asAdmin<T>(tx: Tx, user: string, body: () => Promise<T>): Promise<T> {
  return actAs(tx, 'tracegres_admin', null, async () => {
    await tx`select set_config('jwt.claims.user_id', ${user}, true)`;
    return body();
  });
}

describe('api.start_replay', () => {
  it('queues what the dry run showed, in order, recording who, when and why', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const dryRun = await tx`select event_id from api.get_replay_set(${CORRELATION}) where will_replay`;
      const [run] = await asAdmin(
        tx,
        'alice@example.com',
        () => tx`select * from api.start_replay('card bug fixed in 4.2.1', p_correlation_id => ${CORRELATION})`,
      );
      expect(run).toMatchObject({
        reason: 'card bug fixed in 4.2.1',
        started_by: 'alice@example.com',
        status: 'running',
        event_count: 2,
        pending_count: 2,
        processed_count: 0,
        organization_id: ORG_A,
        selector: { correlation_id: CORRELATION },
      });
      expect(run!.started_at).toBeInstanceOf(Date);
      const items = await tx`select * from api.get_replay_items(${run!.id})`;
      expect(items.map((i) => i.event_id)).toEqual(dryRun.map((e) => e.event_id));
      expect(items.map((i) => [i.position, i.event_type, i.original_state, i.original_error, i.state])).toEqual([
        [1, 'payment.captured', 'failed', 'card declined', 'pending'],
        [2, 'order.confirmed', 'never_processed', null, 'pending'],
      ]);
    });
  });

  it('gives the run a trace whose root span links to the replayed trace', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const [run] = await asAdmin(tx, 'alice', () => tx`select * from api.start_replay('again', p_trace_id => ${traceId('t1')})`);
      expect(run!.trace_id).toMatch(/^[0-9a-f]{32}$/);
      expect(run!.trace_id).not.toBe(traceId('t1'));
      const [root] = await tx`select * from api.get_trace_timeline(${run!.trace_id})`;
      expect(root).toMatchObject({ span_id: run!.span_id, name: 'replay run', service: 'tracegres', depth: 0 });
      const [runSpan] = await tx`select links from tracing.spans where trace_id = ${run!.trace_id}::uuid`;
      expect(runSpan!.links).toEqual([
        { trace_id: traceId('t1'), span_id: spanId('root'), attributes: { 'tracegres.link': 'replayed trace' } },
      ]);
    });
  });

  it('replays processed events too when asked, and a bounded window of failed events', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      await insertEvent(tx, { at: 40, type: 'payment.captured', trace: 't2', error: 'gateway timeout' });
      const [all] = await asAdmin(
        tx,
        'a',
        () => tx`select * from api.start_replay('all', p_correlation_id => ${CORRELATION}, p_include_processed => true)`,
      );
      expect(all!.event_count).toBe(3);
      const [failed] = await asAdmin(
        tx,
        'a',
        () =>
          tx`select * from api.start_replay('payments', p_from => ${at(0)}, p_to => ${at(60)}, p_event_type => 'payment.captured', p_first => 1)`,
      );
      expect(failed).toMatchObject({ event_count: 1, selector: { failed: { event_type: 'payment.captured', limit: 1 } } });
      const [item] = await tx`select * from api.get_replay_items(${failed!.id})`;
      expect(item).toMatchObject({ original_error: 'card declined', trace_id: traceId('t1') });
    });
  });

  it("is for admins only; readers see their own organization's runs", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const refused = await actAs(
        tx,
        'tracegres_reader',
        ORG_A,
        () => tx`select api.start_replay('x', p_correlation_id => ${CORRELATION})`,
      ).catch((e) => e);
      expect(refused.code).toBe('42501');
    });
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const [run] = await asAdmin(tx, 'a', () => tx`select id from api.start_replay('x', p_correlation_id => ${CORRELATION})`);
      const mine = await actAs(tx, 'tracegres_reader', ORG_A, () => tx`select id from api.get_replay_runs()`);
      expect(mine.map((r) => r.id)).toEqual([run!.id]);
      const theirs = await actAs(tx, 'tracegres_reader', ORG_B, () => tx`select * from api.get_replay_items(${run!.id})`);
      expect(theirs).toEqual([]);
      const [none] = await actAs(tx, 'tracegres_reader', ORG_B, () => tx`select (api.get_replay_run(${run!.id})).id`);
      expect(none!.id).toBeNull();
    });
  });

  it('notifies processors on tracegres_replay when the run commits', async () => {
    const received: string[] = [];
    const listener = await db.sql.listen('tracegres_replay', (payload) => received.push(payload));
    const correlation = '7e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b';
    let runId = '';
    try {
      await db.sql.begin(async (tx) => {
        await insertEvent(tx, { at: 0, type: 'payment.captured', trace: 'tn', correlation, error: 'card declined' });
        const [run] = await asAdmin(tx, 'a', () => tx`select id from api.start_replay('notify', p_correlation_id => ${correlation})`);
        runId = String(run!.id);
      });
      await expect.poll(() => received, { timeout: 5_000 }).toContain(runId);
    } finally {
      await listener.unlisten();
      await db.sql`delete from tracing.replay_runs where id = ${runId}`;
      await db.sql`delete from tracing.domain_events where correlation_id = ${correlation}`;
    }
  });

  it('names bad arguments (22023) and refuses an empty or cut set', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const ok = '5c1d2e3f-4a5b-4c6d-8e7f-000000000000';
      const cases: [string, RegExp][] = [
        [`select api.start_replay(null, p_correlation_id => '${CORRELATION}')`, /^p_reason is required/],
        [`select api.start_replay('  ', p_correlation_id => '${CORRELATION}')`, /^p_reason is required/],
        [`select api.start_replay('x')`, /^p_correlation_id or p_trace_id or p_from and p_to \(failed events\) must be given, exactly one/],
        [
          `select api.start_replay('x', p_correlation_id => '${CORRELATION}', p_trace_id => '${traceId('t1')}')`,
          /^p_correlation_id or p_trace_id or p_from and p_to/,
        ],
        [`select api.start_replay('x', p_trace_id => 'nope')`, /^p_trace_id must be 32 lowercase hex/],
        [`select api.start_replay('x', p_from => now())`, /^p_to is required/],
        [`select api.start_replay('x', p_from => now(), p_to => now() - interval '1 day')`, /^p_from must be before p_to/],
        [
          `select api.start_replay('x', p_correlation_id => '${CORRELATION}', p_event_type => 'a')`,
          /^p_event_type applies only to failed events/,
        ],
        [
          `select api.start_replay('x', p_from => now() - interval '1 day', p_to => now(), p_first => 0)`,
          /^p_first must be between 1 and 1000/,
        ],
        [
          `select api.start_replay('x', p_correlation_id => '${ok}')`,
          /^p_correlation_id selects no failed or never-processed event \(0 events in all\)/,
        ],
        [`select api.cancel_replay(null)`, /^p_run_id is required/],
        [`select api.cancel_replay(-1)`, /^p_run_id names no replay run/],
      ];
      await expectArgumentErrors(
        (query) => tx.savepoint((sp) => actAs(sp as never, 'tracegres_admin', null, () => sp.unsafe(query))),
        cases,
      );
    });
  });

  it('refuses a correlation with more events than a run may hold, rather than replaying part of it', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const correlation = '8f4a5b6c-7d8e-4f9a-8b1c-2d3e4f5a6b7c';
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, organization_id, processing_error)
               select 'order', 'o-' || n, 'payment.captured', jsonb_build_object('correlation_id', ${correlation}::text), ${ORG_A}::uuid, 'declined'
               from generate_series(1, 1001) n`;
      const error = await asAdmin(tx, 'a', () => tx`select api.start_replay('x', p_correlation_id => ${correlation})`).catch((e) => e);
      expect(error.code).toBe('22023');
      expect(error.message).toMatch(/^p_correlation_id selects more than 1000 events/);
    });
  });
});

describe('api.cancel_replay', () => {
  it('stops the events not yet claimed and records who cancelled', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const [run] = await asAdmin(tx, 'alice', () => tx`select id from api.start_replay('x', p_correlation_id => ${CORRELATION})`);
      const [claim] = await actAs(tx, 'tracegres_writer', null, () => tx`select * from tracing.claim_replay_event('worker-1')`);
      const [cancelled] = await asAdmin(tx, 'bob', () => tx`select * from api.cancel_replay(${run!.id})`);
      expect(cancelled).toMatchObject({ status: 'cancelled', cancelled_by: 'bob', claimed_count: 1, cancelled_count: 1 });
      expect(cancelled!.finished_at).toBeInstanceOf(Date);
      // Nothing more is handed out; the event in flight still reports.
      expect(await actAs(tx, 'tracegres_writer', null, () => tx`select * from tracing.claim_replay_event('worker-2')`)).toEqual([]);
      await actAs(
        tx,
        'tracegres_writer',
        null,
        () => tx`select tracing.mark_replay_processed(${run!.id}, ${claim!.position}, ${claim!.claim_token})`,
      );
      const [again] = await asAdmin(tx, 'carol', () => tx`select * from api.cancel_replay(${run!.id})`);
      expect(again).toMatchObject({ status: 'cancelled', cancelled_by: 'bob', processed_count: 1, cancelled_count: 1 });
    });
  });

  it('refuses to cancel a completed run', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const [run] = await asAdmin(tx, 'a', () => tx`select id from api.start_replay('x', p_correlation_id => ${CORRELATION})`);
      for (;;) {
        const [claim] = await actAs(tx, 'tracegres_writer', null, () => tx`select * from tracing.claim_replay_event('w')`);
        if (!claim) break;
        await actAs(
          tx,
          'tracegres_writer',
          null,
          () => tx`select tracing.mark_replay_processed(${claim.run_id}, ${claim.position}, ${claim.claim_token})`,
        );
      }
      const error = await asAdmin(tx, 'a', () => tx`select api.cancel_replay(${run!.id})`).catch((e) => e);
      expect(error.code).toBe('22023');
      expect(error.message).toMatch(/^p_run_id names a run that has already completed/);
    });
  });
});
