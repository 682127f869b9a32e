// The live view's SQL side: a committed failure (inserted failed, or failed
// later) is announced on tracegres_failed_events with its event id, events
// that did not fail and events restored from the archive are not, and the
// read-back honours row-level security and its bound.
import { describe, expect, it } from 'vitest';
import { actAs, insertEvent, ORG_A, ORG_B } from '../../helpers/trace-fixtures.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

describe('tracegres_failed_events', () => {
  it('announces failures at commit, but not events that did not fail or that a restore brought back', async () => {
    const received: string[] = [];
    const listener = await db.sql.listen('tracegres_failed_events', (payload) => received.push(payload));
    const correlation = '3b9e2c41-7d5a-4f6e-8a1b-2c3d4e5f6a7b';
    const ids: Record<string, string> = {};
    try {
      await db.sql.begin(async (tx) => {
        ids.failed = await insertEvent(tx, { at: 0, type: 'payment.declined', correlation, error: 'card declined' });
        ids.fine = await insertEvent(tx, { at: 1, type: 'payment.captured', correlation });
        ids.later = await insertEvent(tx, { at: 2, type: 'payment.captured', correlation });
        await tx`update tracing.domain_events set processing_error = 'timeout' where id = ${ids.later}`;
        await tx`select set_config('tracegres.restoring', 'on', true)`;
        ids.restored = await insertEvent(tx, { at: 3, type: 'payment.declined', correlation, error: 'long ago' });
        await tx`select set_config('tracegres.restoring', 'off', true)`;
      });
      await expect.poll(() => received, { timeout: 5_000 }).toContain(ids.later);
      // A marker committed after the others: once it arrived, so had they.
      await db.sql.begin(async (tx) => {
        ids.marker = await insertEvent(tx, { at: 4, type: 'payment.declined', correlation, error: 'marker' });
      });
      await expect.poll(() => received, { timeout: 5_000 }).toContain(ids.marker);
      expect(received).toEqual([ids.failed, ids.later, ids.marker]);
    } finally {
      await listener.unlisten();
      await db.sql`delete from tracing.domain_events where correlation_id = ${correlation}`;
    }
  });
});

describe('api.get_failed_events_by_id', () => {
  it("returns the caller's failed events among the ids, oldest first, and refuses more than 500 ids", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const late = await insertEvent(tx, { at: 5, type: 'payment.declined', error: 'late' });
      const early = await insertEvent(tx, { at: 1, type: 'payment.declined', error: 'early' });
      const fine = await insertEvent(tx, { at: 2, type: 'payment.captured' });
      const other = await insertEvent(tx, { at: 3, type: 'payment.declined', error: 'other tenant', org: ORG_B });
      const ids = [late, early, fine, other];
      const rows = await actAs(tx, 'tracegres_reader', ORG_A, () => tx`select id::text from api.get_failed_events_by_id(${ids}::bigint[])`);
      expect(rows.map((r) => r.id)).toEqual([early, late]);
      const tooMany = Array.from({ length: 501 }, (_, i) => String(i + 1));
      await expect(tx`select * from api.get_failed_events_by_id(${tooMany}::bigint[])`).rejects.toMatchObject({
        code: '22023',
        message: expect.stringContaining('p_ids'),
      });
    });
  });
});
