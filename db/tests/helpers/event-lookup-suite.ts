// The behaviour shared by the newest-first event lookups
// (api.get_events_by_session, api.get_events_by_correlation): which events,
// in which order, keyset pages that neither skip nor repeat, bounded page
// sizes, errors that name the argument, and the index each one uses.
import { beforeAll, describe, expect, it } from 'vitest';
import { nestedPlans } from './nested-plans.ts';
import { inRolledBackTransaction, type TestDatabase } from './test-database.ts';
import { insertEvent, spanId, traceId, type EventOptions } from './trace-fixtures.ts';

type Tx = import('postgres').TransactionSql;

export interface EventLookup {
  fn: 'get_events_by_session' | 'get_events_by_correlation';
  argument: 'p_session_id' | 'p_correlation_id';
  /** How an event is tagged with the looked-up id. */
  tag: (id: string) => Partial<EventOptions>;
  index: string;
}

const ID = '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b';
const OTHER = '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d';

interface EventRow {
  id: string;
  created_at: Date;
  event_type: string;
  trace_id: string | null;
  span_id: string | null;
}

export function describeEventLookup(db: TestDatabase, lookup: EventLookup) {
  const call = (tx: Tx, first: number | null, afterCreatedAt: Date | null = null, afterId: string | null = null, id = ID) =>
    tx.unsafe(`select * from api.${lookup.fn}($1, $2, $3, $4)`, [id, first, afterCreatedAt, afterId] as never[]) as unknown as Promise<
      EventRow[]
    >;

  // Ten events, several sharing one instant: ids alone decide their order.
  async function seed(tx: Tx) {
    const times = [0, 10, 10, 10, 20, 30, 30, 40, 50, 50];
    const ids: string[] = [];
    for (const [i, at] of times.entries()) {
      ids.push(await insertEvent(tx, { at, type: `step.${i}`, trace: 't1', span: 'a', ...lookup.tag(ID) }));
    }
    await insertEvent(tx, { at: 25, type: 'someone.else', ...lookup.tag(OTHER) });
    await insertEvent(tx, { at: 25, type: 'untagged' });
    return ids;
  }

  describe(`api.${lookup.fn}`, () => {
    it('returns only the events of that id, newest first, ties broken by id', async () => {
      await inRolledBackTransaction(db.sql, async (tx) => {
        const ids = await seed(tx);
        const rows = await call(tx, null);
        const expected = ids
          .map((id, i) => ({ id, at: [0, 10, 10, 10, 20, 30, 30, 40, 50, 50][i]! }))
          .sort((a, b) => b.at - a.at || Number(b.id) - Number(a.id))
          .map((e) => e.id);
        expect(rows.map((r) => r.id)).toEqual(expected);
        expect(rows[0]).toMatchObject({ trace_id: traceId('t1'), span_id: spanId('a') });
      });
    });

    it('pages with a (created_at, id) cursor without skipping or repeating across equal timestamps', async () => {
      await inRolledBackTransaction(db.sql, async (tx) => {
        await seed(tx);
        const all = await call(tx, null);
        const paged: EventRow[] = [];
        let page = await call(tx, 3);
        while (page.length > 0) {
          paged.push(...page);
          const last = page[page.length - 1]!;
          page = await call(tx, 3, last.created_at, last.id);
        }
        expect(paged.map((r) => r.id)).toEqual(all.map((r) => r.id));
        expect(paged).toHaveLength(10);
      });
    });

    it('accepts a cursor that matches no event (it is a position, not a reference)', async () => {
      await inRolledBackTransaction(db.sql, async (tx) => {
        await seed(tx);
        const all = await call(tx, null);
        const between = new Date(all[2]!.created_at.getTime() - 1);
        const rows = await call(tx, 50, between, '999999999');
        expect(rows.map((r) => r.id)).toEqual(all.filter((r) => r.created_at <= between).map((r) => r.id));
      });
    });

    it('returns nothing for an id without events', async () => {
      await inRolledBackTransaction(db.sql, async (tx) => {
        await seed(tx);
        expect(await call(tx, 10, null, null, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')).toEqual([]);
      });
    });

    it.each([
      [0, /^p_first must be between 1 and 500/],
      [-5, /^p_first must be between 1 and 500/],
      [501, /^p_first must be between 1 and 500/],
      [2_000_000_000, /^p_first must be between 1 and 500/],
    ])('refuses p_first = %s', async (first, message) => {
      const error = await db.sql.unsafe(`select * from api.${lookup.fn}($1, $2)`, [ID, first]).catch((e) => e);
      expect(error.message).toMatch(message);
      expect(error.code).toBe('22023');
    });

    it('refuses half a cursor and a missing id, naming the argument', async () => {
      const run = (args: unknown[]) => db.sql.unsafe(`select * from api.${lookup.fn}($1, $2, $3, $4)`, args as never[]).catch((e) => e);
      expect((await run([ID, 10, new Date(), null])).message).toMatch(/^p_after_id is required when p_after_created_at is given/);
      expect((await run([ID, 10, null, '5'])).message).toMatch(/^p_after_created_at is required when p_after_id is given/);
      expect((await run([null, 10, null, null])).message).toMatch(new RegExp(`^${lookup.argument} is required`));
    });

    describe('index use', () => {
      beforeAll(async () => {
        await db.sql.unsafe(`
          insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at)
          select 'order', 'o', 'step', jsonb_build_object('session_id', md5('s' || (i / 50))::uuid, 'correlation_id', md5('c' || (i / 5))::uuid),
                 now() - i * interval '1 second'
          from generate_series(1, 20000) i`);
        await db.sql`analyze tracing.domain_events`;
      });

      it(`uses ${lookup.index} for the first page and for a later one`, async () => {
        for (const query of [
          `select * from api.${lookup.fn}(md5('${lookup.argument === 'p_session_id' ? 's' : 'c'}' || 7)::uuid, 20)`,
          `select * from api.${lookup.fn}(md5('${lookup.argument === 'p_session_id' ? 's' : 'c'}' || 7)::uuid, 20, now() - interval '300 seconds', 1)`,
        ]) {
          const plans = (await nestedPlans(db.url, query)).join('\n');
          // Each month partition's copy of the index carries its name.
          expect(plans).toContain(lookup.index);
          // Only partitions without a row may be scanned (the planner reads
          // an empty one for free).
          for (const [, partition] of plans.matchAll(/Seq Scan on (domain_events\w*)/g)) {
            const [row] = await db.sql.unsafe(`select count(*)::int as n from tracing.${partition}`);
            expect(row!.n, partition).toBe(0);
          }
        }
      });
    });
  });
}
