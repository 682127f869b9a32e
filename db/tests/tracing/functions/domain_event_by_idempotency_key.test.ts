// tracing.domain_event_by_idempotency_key: the writer role finds the event
// stored under an idempotency key without reading event_metadata; the key is
// unique among the live events of one organization.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();
const ORG_A = '0a000000-0000-4000-8000-00000000000a';
const ORG_B = '0b000000-0000-4000-8000-00000000000b';

type Tx = import('postgres').TransactionSql;

async function insertEvent(tx: Tx, metadata: Record<string, unknown>) {
  const [row] = await tx`
    insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata)
    values ('payment', 'p-1', 'payment.captured', ${tx.json(metadata as never)})
    returning id, created_at`;
  return row as { id: string; created_at: Date };
}

describe('tracing.domain_event_by_idempotency_key', () => {
  it('gives tracegres_writer the id and time of the event with that key, and nothing for other keys', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_writer`;
      const stored = await insertEvent(tx, { idempotency_key: 'wf/run/1/payment.captured' });
      await insertEvent(tx, { idempotency_key: 'wf/run/2/payment.captured' });
      await insertEvent(tx, {});
      expect(await tx`select * from tracing.domain_event_by_idempotency_key('wf/run/1/payment.captured')`).toEqual([stored]);
      expect(await tx`select * from tracing.domain_event_by_idempotency_key('wf/run/3/payment.captured')`).toEqual([]);
      expect(await tx`select * from tracing.domain_event_by_idempotency_key(null)`).toEqual([]);
    });
  });

  it("finds only the event of the caller's organization: another tenant's key is not an earlier attempt", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_writer`;
      const [mine] = await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, organization_id)
        values ('payment', 'p-1', 'payment.captured', '{"idempotency_key": "order-42"}', ${ORG_A})
        returning id, created_at`;
      expect(await tx`select * from tracing.domain_event_by_idempotency_key('order-42', ${ORG_A}::uuid)`).toEqual([mine]);
      expect(await tx`select * from tracing.domain_event_by_idempotency_key('order-42', ${ORG_B}::uuid)`).toEqual([]);
      expect(await tx`select * from tracing.domain_event_by_idempotency_key('order-42')`).toEqual([]);
    });
  });

  it('is answered by the unique index on the key, one probe whichever month the events are in', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // domain_events is partitioned by month: the keys have a table of their own.
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at)
               select 'payment', 'p-' || i, 'payment.captured', jsonb_build_object('idempotency_key', 'k-' || i),
                      now() - (i % 3) * interval '40 days'
                 from generate_series(1, 2000) i`;
      await tx`analyze tracing.domain_event_idempotency_keys`;
      const plan = await tx.unsafe(`explain (format text)
        select k.event_id from tracing.domain_event_idempotency_keys k
         where k.organization_key = '00000000-0000-0000-0000-000000000000'::uuid and k.idempotency_key = 'k-7'`);
      expect(plan.map((r) => Object.values(r)[0]).join('\n')).toContain('Index Scan using domain_events_idempotency_key_idx');
      const [found] = await tx`
        select e.stream_id from tracing.domain_event_by_idempotency_key('k-7') k join tracing.domain_events e on e.id = k.id`;
      expect(found!.stream_id).toBe('p-7');
    });
  });

  it('may be called by the writer only', async () => {
    const [row] = await db.sql`
      select has_function_privilege('tracegres_writer', 'tracing.domain_event_by_idempotency_key(text)', 'execute') as writer,
             has_function_privilege('tracegres_reader', 'tracing.domain_event_by_idempotency_key(text)', 'execute') as reader,
             exists (select from pg_proc p, aclexplode(p.proacl) a
                      where p.oid = 'tracing.domain_event_by_idempotency_key(text)'::regprocedure and a.grantee = 0) as public,
             p.prosecdef as definer, p.proconfig as config
        from pg_proc p where p.oid = 'tracing.domain_event_by_idempotency_key(text)'::regprocedure`;
    expect(row).toEqual({ writer: true, reader: false, public: false, definer: true, config: ['search_path=pg_catalog, pg_temp'] });
  });
});

describe('domain_events_idempotency_key_idx', () => {
  it('refuses a second live event with the same key, from a writer that skips the lookup', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_writer`;
      await insertEvent(tx, { idempotency_key: 'wf/run/1/payment.captured' });
      await expect(insertEvent(tx, { idempotency_key: 'wf/run/1/payment.captured' })).rejects.toMatchObject({
        code: '23505',
        constraint_name: 'domain_events_idempotency_key_idx',
      });
    });
  });

  it('lets another organization use the same key: its new event is written', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_writer`;
      for (const org of [ORG_A, ORG_B]) {
        await tx`
          insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, organization_id)
          values ('payment', 'p-1', 'payment.captured', '{"idempotency_key": "order-42"}', ${org})`;
      }
      await expect(
        tx`insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, organization_id)
           values ('payment', 'p-1', 'payment.captured', '{"idempotency_key": "order-42"}', ${ORG_B})`,
      ).rejects.toMatchObject({ code: '23505', constraint_name: 'domain_events_idempotency_key_idx' });
    });
  });

  it('leaves events without a key alone', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await insertEvent(tx, {});
      await insertEvent(tx, {});
      await insertEvent(tx, { idempotency_key: null });
      await insertEvent(tx, { idempotency_key: null });
    });
  });
});
