// Migration 000020 partitions tracing.spans in place on a database that has
// spans: a million rows before, the same million after (count and checksum
// of every row equal, no span twice), all of them in the old table now
// attached as the partition before next month, and recording goes on: a
// re-sent old span merges, a new one lands in its month.
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../../server/database/migrate.ts';
import { migrateToBefore } from '../helpers/earlier-schema.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { recordSpans } from '../helpers/trace-fixtures.ts';

const ROWS = 1_000_000;

let db: TestDatabase | undefined;
afterAll(async () => {
  await db?.drop();
});

// Every column of every row (generated duration_ms included), order-free.
async function fingerprint(sql: TestDatabase['sql']) {
  const [row] = await sql`
    select count(*)::bigint as rows,
           sum(('x' || left(md5(s::text), 15))::bit(60)::bigint::numeric)::text as checksum,
           count(distinct (trace_id, span_id, organization_id))::bigint as distinct_spans
      from tracing.spans s`;
  return { rows: String(row!.rows), checksum: row!.checksum as string, distinct: String(row!.distinct_spans) };
}

describe('migration 000020 on a table of a million spans', () => {
  it('keeps every row once and partitions the table in place', async () => {
    // The schema as it was just before: the migrations up to 000019.
    db = await createTestDatabase();
    await migrateToBefore(db, '000020-spans-partitioned-by-month-of-start-time-');
    const [kind] = await db.sql`select relkind from pg_class where oid = 'tracing.spans'::regclass`;
    expect(kind!.relkind).toBe('r');

    // 100,000 traces of 10 spans over the last two years, a third of them
    // without an organization (null is a value of the key), with events.
    await db.sql.unsafe(`
      insert into tracing.spans (trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status,
                                 attributes, span_events, organization_id)
      select md5('t' || (g / 10))::uuid, g % 10 + 1, nullif(1, g % 10 + 1), 'op ' || (g % 10), 'svc' || (g % 7), 'server',
             now() - interval '730 days' * ((g / 10) / 100000.0) + (g % 10) * interval '1 ms',
             now() - interval '730 days' * ((g / 10) / 100000.0) + (g % 10 + 5) * interval '1 ms',
             case when g % 97 = 0 then 'error' else 'ok' end, jsonb_build_object('n', g),
             case when g % 10 = 0 then '[{"name": "e"}]'::jsonb end,
             case when g % 3 = 0 then null else md5('org' || (g % 5))::uuid end
        from generate_series(0, ${ROWS - 1}) g`);
    const before = await fingerprint(db.sql);
    expect(before.rows).toBe(String(ROWS));
    expect(before.distinct).toBe(String(ROWS));

    await migrateDatabase(db.url);

    const after = await fingerprint(db.sql);
    expect(after).toEqual(before);
    const [partitioned] = await db.sql`select relkind from pg_class where oid = 'tracing.spans'::regclass`;
    expect(partitioned!.relkind).toBe('p');
    const where = await db.sql`
      select c.relname, count(*)::int as n
        from tracing.spans s join pg_class c on c.oid = s.tableoid group by c.relname`;
    expect(where).toHaveLength(1);
    expect(where[0]!.relname).toMatch(/^spans_before_\d{4}m\d\d$/);
    expect(where[0]!.n).toBe(ROWS);

    // Recording goes on against the upgraded table: an old span re-sent is
    // the same span, a new span of the trace is stored in its month.
    const [old] = await db.sql`
      select encode(uuid_send(trace_id), 'hex') as trace_id, lpad(to_hex(span_id), 16, '0') as span_id,
             to_json(start_time) #>> '{}' as start_time, to_json(end_time) #>> '{}' as end_time, organization_id
        from tracing.spans where trace_id = md5('t' || 4242)::uuid and span_id = 3`;
    // Summaries of the loaded traces, as record_spans would have kept them.
    await db.sql`
      insert into tracing.trace_summaries (trace_id, organization_id, start_time, end_time, span_count, error_count, services)
      select trace_id, organization_id, min(start_time), max(end_time), count(*), 0, array_agg(distinct service)
        from tracing.spans where trace_id = md5('t' || 4242)::uuid group by 1, 2`;
    const resent = { ...old, name: 'op 2', service: 'svc2', kind: 'server', status: 'ok', parent_span_id: '0000000000000001' };
    expect(await recordSpans(db.sql, [resent])).toBe(0);
    const next = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 3)).toISOString();
    expect(await recordSpans(db.sql, [{ ...resent, span_id: '00000000000000ff', start_time: next, end_time: next }])).toBe(1);
    const [landed] = await db.sql`
      select c.relname from tracing.spans s join pg_class c on c.oid = s.tableoid
       where s.trace_id = md5('t' || 4242)::uuid and s.span_id = 255`;
    expect(landed!.relname).toMatch(/^spans_\d{4}m\d\d$/);
    expect((await fingerprint(db.sql)).rows).toBe(String(ROWS + 1));
  }, 600_000);
});
