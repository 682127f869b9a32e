// api.get_failed_events: events whose processing failed, newest first, with
// the ids a support engineer needs to follow them (correlation, session,
// trace), filterable by time range and type, in keyset pages.
import { beforeAll, describe, expect, it } from 'vitest';
import { nestedPlans } from '../../helpers/nested-plans.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { at, insertEvent, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

const CORRELATION = '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d';
const SESSION = '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b';

async function seed(tx: Tx) {
  await insertEvent(tx, { at: 0, type: 'email.send', error: 'smtp timeout', span: 'a', correlation: CORRELATION, session: SESSION });
  await insertEvent(tx, { at: 10, type: 'email.send' });
  await insertEvent(tx, { at: 20, type: 'payment.capture', error: 'card declined' });
  await insertEvent(tx, { at: 30, type: 'email.send', error: 'mailbox full' });
  await insertEvent(tx, { at: 30, type: 'email.send', error: 'bounced' });
}

const failed = (tx: Tx, args: Record<string, unknown> = {}) =>
  tx.unsafe(
    `select * from api.get_failed_events(p_from => $1, p_to => $2, p_event_type => $3, p_first => $4,
                                         p_after_created_at => $5, p_after_id => $6)`,
    [
      args.from ?? null,
      args.to ?? null,
      args.type ?? null,
      args.first ?? null,
      args.afterCreatedAt ?? null,
      args.afterId ?? null,
    ] as never[],
  );

describe('api.get_failed_events', () => {
  it('lists failed events only, newest first, with their trace context', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await failed(tx);
      expect(rows.map((r) => r.processing_error)).toEqual(['bounced', 'mailbox full', 'card declined', 'smtp timeout']);
      expect(rows[3]).toMatchObject({
        event_type: 'email.send',
        correlation_id: CORRELATION,
        session_id: SESSION,
        trace_id: traceId('t1'),
        span_id: spanId('a'),
      });
    });
  });

  it('filters by [p_from, p_to) and by event type', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      expect((await failed(tx, { from: at(10), to: at(30) })).map((r) => r.processing_error)).toEqual(['card declined']);
      expect((await failed(tx, { type: 'email.send' })).map((r) => r.processing_error)).toEqual([
        'bounced',
        'mailbox full',
        'smtp timeout',
      ]);
      expect(await failed(tx, { type: 'nothing.like.it' })).toEqual([]);
    });
  });

  it('pages through failures that share a timestamp', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const first = await failed(tx, { first: 1 });
      const second = await failed(tx, { first: 2, afterCreatedAt: first[0]!.created_at, afterId: first[0]!.id });
      const third = await failed(tx, { first: 2, afterCreatedAt: second[1]!.created_at, afterId: second[1]!.id });
      expect([...first, ...second, ...third].map((r) => r.processing_error)).toEqual([
        'bounced',
        'mailbox full',
        'card declined',
        'smtp timeout',
      ]);
    });
  });

  it('refuses bad arguments, naming them', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`savepoint s`;
      for (const [args, message] of [
        [{ from: at(10), to: at(10) }, /^p_from must be before p_to/],
        [{ from: at(20), to: at(10) }, /^p_from must be before p_to/],
        [{ first: 0 }, /^p_first must be between 1 and 500/],
        [{ first: 100000 }, /^p_first must be between 1 and 500/],
        [{ afterId: 3 }, /^p_after_created_at is required when p_after_id is given/],
      ] as const) {
        const error = await failed(tx, args).catch((e) => e);
        expect(error.message).toMatch(message);
        await tx`rollback to savepoint s`;
      }
    });
  });

  describe('index use', () => {
    beforeAll(async () => {
      await db.sql`
        insert into tracing.domain_events (stream_type, stream_id, event_type, created_at, processing_error)
        select 'order', 'o', 'step', now() - i * interval '1 second', case when i % 100 = 0 then 'failed' end
        from generate_series(1, 20000) i`;
      await db.sql`analyze tracing.domain_events`;
    });

    it('reads the partial index of failed events', async () => {
      const plans = (await nestedPlans(db.url, `select * from api.get_failed_events(now() - interval '1 hour', now(), null, 20)`)).join(
        '\n',
      );
      expect(plans).toContain('domain_events_failed_idx');
      expect(plans).not.toMatch(/Seq Scan on domain_events/);
    });
  });
});
