// api.get_replay_set, get_replay_set_by_trace, get_failed_replay_set: the
// events a replay would queue, oldest first, with their processing state
// and the span that emitted them (the dry run of start_replay).
import { describe, expect, it } from 'vitest';
import { expectArgumentErrors } from '../../helpers/argument-errors.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, archiveEvent, at, insertEvent, ORG_A, ORG_B, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

const CORRELATION = '5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const OTHER = '6d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a';

async function seed(tx: Tx) {
  await recordSpans(tx, [
    span('root', { start: 0, end: 100, name: 'POST /checkout' }),
    span('pay', { parent: 'root', start: 10, end: 90, name: 'capturePayment', service: 'worker', status: 'error' }),
  ]);
  const processed = await insertEvent(tx, { at: 5, type: 'order.placed', span: 'root', correlation: CORRELATION });
  await tx`update tracing.domain_events set processed_at = ${at(6)} where id = ${processed}`;
  await insertEvent(tx, { at: 20, type: 'payment.requested', span: 'pay', correlation: CORRELATION });
  await insertEvent(tx, { at: 30, type: 'payment.captured', span: 'pay', correlation: CORRELATION, error: 'card declined' });
  // Another correlation of the same trace, and another tenant's failure.
  await insertEvent(tx, { at: 40, type: 'email.send', correlation: OTHER, error: 'smtp timeout' });
  await insertEvent(tx, { at: 50, type: 'payment.captured', trace: 't2', correlation: OTHER, error: 'card declined', org: ORG_B });
}

describe('api.get_replay_set', () => {
  it('lists the correlation oldest first with state, emitting span and what a run would queue', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await tx`select * from api.get_replay_set(${CORRELATION})`;
      expect(rows.map((r) => [r.position, r.event_type, r.processing_state, r.span_name, r.span_status, r.will_replay])).toEqual([
        [1, 'order.placed', 'processed', 'POST /checkout', 'unset', false],
        [2, 'payment.requested', 'never_processed', 'capturePayment', 'error', true],
        [3, 'payment.captured', 'failed', 'capturePayment', 'error', true],
      ]);
      expect(rows[2]).toMatchObject({
        processing_error: 'card declined',
        trace_id: traceId('t1'),
        span_id: spanId('pay'),
        span_service: 'worker',
      });
      const all = await tx`select will_replay from api.get_replay_set(${CORRELATION}, p_include_processed => true)`;
      expect(all.map((r) => r.will_replay)).toEqual([true, true, true]);
    });
  });

  it('shows events whose span was never recorded, with no span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const [row] = await tx`select * from api.get_replay_set(${OTHER})`;
      expect(row).toMatchObject({ event_type: 'email.send', span_name: null, processing_state: 'failed' });
    });
  });

  it('is offered by trace id and for failed events of a type in a time range', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const byTrace = await tx`select event_type from api.get_replay_set_by_trace(${traceId('t1')})`;
      expect(byTrace.map((r) => r.event_type)).toEqual(['order.placed', 'payment.requested', 'payment.captured', 'email.send']);
      const failed = await tx`select event_type, processing_error from api.get_failed_replay_set(${at(0)}, ${at(60)})`;
      expect(failed.map((r) => r.processing_error)).toEqual(['card declined', 'smtp timeout', 'card declined']);
      const payments = await tx`select created_at from api.get_failed_replay_set(${at(0)}, ${at(60)}, 'payment.captured', 1)`;
      expect(payments.map((r) => r.created_at.toISOString())).toEqual([at(30)]);
      expect(await tx`select * from api.get_failed_replay_set(${at(31)}, ${at(40)})`).toEqual([]);
    });
  });

  it('includes archived events in their place, with their state, marked archived, by correlation, trace and failed window', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const [captured] =
        await tx`select id from tracing.domain_events where correlation_id = ${CORRELATION} and event_type = 'payment.captured'`;
      const [placed] = await tx`select id from tracing.domain_events where correlation_id = ${CORRELATION} and event_type = 'order.placed'`;
      await archiveEvent(tx, captured!.id);
      await archiveEvent(tx, placed!.id);
      const rows = await tx`select * from api.get_replay_set(${CORRELATION})`;
      expect(rows.map((r) => [r.position, r.event_type, r.processing_state, r.archived, r.will_replay, r.span_name])).toEqual([
        [1, 'order.placed', 'processed', true, false, 'POST /checkout'],
        [2, 'payment.requested', 'never_processed', false, true, 'capturePayment'],
        [3, 'payment.captured', 'failed', true, true, 'capturePayment'],
      ]);
      expect(rows[2]).toMatchObject({ processing_error: 'card declined', event_id: captured!.id });
      const byTrace = await tx`select event_type, archived from api.get_replay_set_by_trace(${traceId('t1')})`;
      expect(byTrace.map((r) => [r.event_type, r.archived])).toEqual([
        ['order.placed', true],
        ['payment.requested', false],
        ['payment.captured', true],
        ['email.send', false],
      ]);
      const failed = await tx`select event_type, archived from api.get_failed_replay_set(${at(0)}, ${at(60)})`;
      expect(failed.map((r) => [r.event_type, r.archived])).toEqual([
        ['payment.captured', true],
        ['email.send', false],
        ['payment.captured', false],
      ]);
      // The archive keeps tenants apart too.
      const otherTenant = await actAs(tx, 'tracegres_reader', ORG_B, () => tx`select * from api.get_replay_set(${CORRELATION})`);
      expect(otherTenant).toEqual([]);
      const ownTenant = await actAs(tx, 'tracegres_reader', ORG_A, () => tx`select archived from api.get_replay_set(${CORRELATION})`);
      expect(ownTenant.map((r) => r.archived)).toEqual([true, false, true]);
    });
  });

  it('keeps tenants apart', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const seen = await actAs(
        tx,
        'tracegres_reader',
        ORG_A,
        () => tx`select event_type from api.get_failed_replay_set(${at(0)}, ${at(60)})`,
      );
      expect(seen).toHaveLength(2);
      const other = await actAs(tx, 'tracegres_reader', ORG_B, () => tx`select event_type from api.get_replay_set(${OTHER})`);
      expect(other.map((r) => r.event_type)).toEqual(['payment.captured']);
      // A request without a token has no grant on replay at all.
      const anonymous = await actAs(tx, 'tracegres_anonymous', null, () => tx`select * from api.get_replay_set(${CORRELATION})`).catch(
        (e: { code: string }) => e,
      );
      expect(anonymous).toMatchObject({ code: '42501' });
    });
  });

  it("names each event's span within the event's organization, where another tenant recorded the same ids", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      await recordSpans(tx, [span('pay', { start: 10, end: 90, name: 'someone else', service: 'elsewhere', org: ORG_B })]);
      const rows = await tx`select event_type, span_name from api.get_replay_set(${CORRELATION})`;
      expect(rows.map((r) => [r.event_type, r.span_name])).toEqual([
        ['order.placed', 'POST /checkout'],
        ['payment.requested', 'capturePayment'],
        ['payment.captured', 'capturePayment'],
      ]);
    });
  });

  it('names bad arguments (22023)', async () => {
    const cases: [string, RegExp][] = [
      [`select * from api.get_replay_set(null)`, /^p_correlation_id is required/],
      [`select * from api.get_replay_set_by_trace('xyz')`, /^p_trace_id must be 32 lowercase hex/],
      [`select * from api.get_failed_replay_set(null, now())`, /^p_from is required/],
      [`select * from api.get_failed_replay_set(now(), now() - interval '1 hour')`, /^p_from must be before p_to/],
      [`select * from api.get_failed_replay_set(now() - interval '1 hour', now(), null, 1001)`, /^p_first must be between 1 and 1000/],
    ];
    await expectArgumentErrors((query) => db.sql.unsafe(query), cases);
  });
});
