// Roles: the writer writes events, the reader reads (through row-level
// security) and never writes, and PUBLIC holds nothing.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../helpers/test-database.ts';

const db = useTestDatabase();

async function asRole<T>(role: string, body: (tx: import('postgres').TransactionSql) => Promise<T>): Promise<T> {
  return inRolledBackTransaction(db.sql, async (tx) => {
    await tx.unsafe(`set local role ${role}`);
    return body(tx);
  });
}

describe('tracegres_writer', () => {
  it('inserts events and reads back their id, with trace fields promoted', async () => {
    const row = await asRole('tracegres_writer', async (tx) => {
      const [inserted] = await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata)
        values ('user', 'u-1', 'user.invited', ${tx.json({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' })})
        returning id, created_at`;
      await tx`reset role`;
      const [stored] = await tx`select tracing.trace_id_to_hex(trace_id) as trace_id from tracing.domain_events where id = ${inserted!.id}`;
      return stored;
    });
    expect(row!.trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('records processing state but cannot rewrite an event', async () => {
    await asRole('tracegres_writer', async (tx) => {
      const [inserted] = await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type) values ('user', 'u-1', 'user.invited') returning id`;
      await tx`update tracing.domain_events set processing_error = 'smtp down' where id = ${inserted!.id}`;
      await expect(tx`update tracing.domain_events set event_type = 'x' where id = ${inserted!.id}`).rejects.toThrow(/permission denied/);
    });
  });

  it("updates processing state only of its own organization's events", async () => {
    const orgA = '0a000000-0000-4000-8000-00000000000a';
    const orgB = '0b000000-0000-4000-8000-00000000000b';
    await asRole('tracegres_writer', async (tx) => {
      const [inserted] = await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, organization_id)
        values ('user', 'u-1', 'user.invited', ${orgA}) returning id`;
      await tx`select set_config('jwt.claims.organization_id', ${orgB}, true)`;
      const foreign = await tx`update tracing.domain_events set processed_at = now(), processing_error = 'x' where id = ${inserted!.id}`;
      expect(foreign.count).toBe(0);
      // Without a tenant a writer settles only events without an organization.
      await tx`select set_config('jwt.claims.organization_id', '', true)`;
      expect((await tx`update tracing.domain_events set processing_error = 'x' where id = ${inserted!.id}`).count).toBe(0);
      await tx`select set_config('jwt.claims.organization_id', ${orgA}, true)`;
      const own = await tx`update tracing.domain_events set processing_error = 'smtp down' where id = ${inserted!.id}`;
      expect(own.count).toBe(1);
      await tx`reset role`;
      const [stored] = await tx`select processed_at, processing_error from tracing.domain_events where id = ${inserted!.id}`;
      expect(stored).toEqual({ processed_at: null, processing_error: 'smtp down' });
    });
  });

  it('cannot delete events', async () => {
    await expect(asRole('tracegres_writer', (tx) => tx`delete from tracing.domain_events`)).rejects.toThrow(/permission denied/);
  });
});

describe('tracegres_reader', () => {
  // Readers query through the invoker-rights api functions, so they hold
  // SELECT; row-level security decides which rows (their organization's,
  // none without one: see tables/*.row_level_security.test.ts).
  it('sees no row without a tenant and cannot write the tables', async () => {
    const visible = await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type) values ('user', 'u-1', 'user.invited')`;
      await tx`set local role tracegres_reader`;
      return tx`select * from tracing.domain_events`;
    });
    expect(visible).toEqual([]);
    await expect(
      asRole('tracegres_reader', (tx) => tx`insert into tracing.domain_events (stream_type, stream_id, event_type) values ('a', 'b', 'c')`),
    ).rejects.toThrow(/permission denied/);
    await expect(asRole('tracegres_reader', (tx) => tx`update tracing.domain_events set processing_error = 'x'`)).rejects.toThrow(
      /permission denied/,
    );
    await expect(asRole('tracegres_reader', (tx) => tx`delete from tracing.domain_events`)).rejects.toThrow(/permission denied/);
  });
});

describe('PUBLIC', () => {
  it('holds no privilege on the tracegres schemas, tables or functions', async () => {
    // grantee 0 is PUBLIC in aclexplode; a null ACL means the built-in default.
    const grants = await db.sql`
      select 'schema ' || nspname as object from pg_namespace
       where nspname in ('tracing', 'api', 'public')
         and exists (select from aclexplode(coalesce(nspacl, acldefault('n', nspowner))) a where a.grantee = 0)
      union all
      select 'table ' || c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('tracing', 'api') and c.relkind in ('r', 'v', 'p')
         and exists (select from aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a where a.grantee = 0)
      union all
      select 'function ' || p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
       where n.nspname in ('tracing', 'api')
         and exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a where a.grantee = 0)`;
    expect(grants.map((g) => g.object)).toEqual([]);
  });
});
