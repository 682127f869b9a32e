// Each lookup the API makes (by correlation, session and trace id, newest
// first) is served by its partial composite index, not by a scan.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

beforeAll(async () => {
  // 20k events in realistic shape: 5 events a request, 40 requests a session;
  // a tenth of them without any trace fields (the partial indexes skip those).
  await db.sql`
    insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, created_at)
    select 'order', (i / 5)::text, 'order.placed',
           case when i % 10 = 0 then '{}'::jsonb else jsonb_build_object(
             'correlation_id', md5('c' || (i / 5))::uuid,
             'session_id', md5('s' || (i / 200))::uuid,
             'trace_id', md5('t' || (i / 5)),
             'span_id', left(md5('p' || i), 16)) end,
           now() - i * interval '1 second'
    from generate_series(1, 20000) i`;
  await db.sql`analyze tracing.domain_events`;
});

async function plan(query: string): Promise<string> {
  const rows = await db.sql.unsafe(`explain ${query}`);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

describe('lookup indexes', () => {
  it.each([
    ['correlation_id', 'domain_events_correlation_id_idx', `md5('c' || 42)::uuid`],
    ['session_id', 'domain_events_session_id_idx', `md5('s' || 7)::uuid`],
    ['trace_id', 'domain_events_trace_id_idx', `md5('t' || 42)::uuid`],
  ])('a lookup by %s uses %s', async (column, index, value) => {
    const text = await plan(`select * from tracing.domain_events where ${column} = ${value} order by created_at desc limit 50`);
    // domain_events is partitioned by month: each partition holding rows is
    // read through its own copy of the index, which carries its name.
    expect(text).toMatch(new RegExp(`domain_events_\\w*${column}\\w*_idx`));
    expect(await db.sql`select 1 from pg_class where relname = ${index} and relkind = 'I'`).toHaveLength(1);
    // Only partitions without a row may be scanned (the planner reads an
    // empty one for free).
    for (const [, partition] of text.matchAll(/Seq Scan on (\w+)/g)) {
      const [row] = await db.sql.unsafe(`select count(*)::int as n from tracing.${partition}`);
      expect(row!.n, partition).toBe(0);
    }
  });

  it('the partial indexes leave out rows without the field', async () => {
    const [row] = await db.sql`
      select (select count(*) from tracing.domain_events where trace_id is not null) as traced,
             (select count(*) from tracing.domain_events) as total`;
    expect(Number(row!.traced)).toBe(18000);
    expect(Number(row!.total)).toBe(20000);
    const [definition] = await db.sql`select pg_get_indexdef('tracing.domain_events_trace_id_idx'::regclass) as def`;
    expect(definition!.def).toMatch(/\(trace_id, created_at DESC\) WHERE \(trace_id IS NOT NULL\)/);
  });
});
