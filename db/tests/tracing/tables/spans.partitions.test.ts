// tracing.spans partitioned by month of start_time (UTC), migration 000020:
// where spans of past, next and far months land, that time-bounded reads
// prune partitions, that a re-sent span still merges with its stored copy
// across partitions, that row-level security holds on every partition, and
// that the archive run's upkeep creates months ahead and takes waiting rows
// out of the default partition.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, ORG_A, ORG_B, recordSpans, span, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();
type Tx = import('postgres').TransactionSql;

// UTC months relative to today, as the migration and the upkeep count them.
const now = new Date();
const monthStart = (monthsAhead: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + monthsAhead, 1));
const monthName = (monthsAhead: number) => {
  const m = monthStart(monthsAhead);
  return `spans_${m.getUTCFullYear()}m${String(m.getUTCMonth() + 1).padStart(2, '0')}`;
};
const iso = (d: Date, plusMs = 0) => new Date(d.getTime() + plusMs).toISOString();

/** A span of `trace` starting at `start` (lasting `ms`). */
function spanAt(label: string, trace: string, start: Date, options: { parent?: string; ms?: number; org?: string | null } = {}) {
  return {
    ...span(label, { trace, start: 0, end: 0, parent: options.parent ?? null, org: options.org }),
    start_time: iso(start),
    end_time: iso(start, options.ms ?? 10),
  };
}

async function partitionsOf(tx: Tx, trace: string): Promise<Record<string, string>> {
  const rows = await tx`
    select tableoid::regclass::text as partition, span_id
      from tracing.spans where trace_id = ${traceId(trace)}::uuid`;
  return Object.fromEntries(rows.map((r) => [(r.partition as string).replace(/^tracing\./, ''), String(r.span_id)]));
}

async function record(tx: Tx, spans: unknown[]) {
  const [row] = await tx`select recorded, rejected from tracing.record_spans(${tx.json(spans as never)}::jsonb)`;
  return { recorded: row!.recorded as number, rejected: row!.rejected as unknown[] };
}

async function plan(tx: Tx, query: string, params: unknown[] = []): Promise<string> {
  const rows = await tx.unsafe(`explain (costs off) ${query}`, params as never[]);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

describe('tracing.spans partitions', () => {
  it('is partitioned by range of start_time: the old table before next month, a default, two months ahead', async () => {
    const rows = await db.sql`
      select c.relname, pg_get_expr(c.relpartbound, c.oid) as bound, c.relrowsecurity
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'tracing.spans'::regclass`;
    const byName = Object.fromEntries(rows.map((r) => [r.relname, r]));
    expect(byName[`spans_before_${monthName(1).slice(6)}`]?.bound).toMatch(/^FOR VALUES FROM \(MINVALUE\) TO \(/);
    expect(byName.spans_default?.bound).toBe('DEFAULT');
    expect(byName[monthName(1)]).toBeDefined();
    expect(byName[monthName(2)]).toBeDefined();
    // Reached only through the parent's policies; no partition is open.
    expect(rows.every((r) => r.relrowsecurity)).toBe(true);
    const [key] = await db.sql`select pg_get_partkeydef('tracing.spans'::regclass) as key`;
    expect(key!.key).toBe('RANGE (start_time)');
  });

  it('stores spans of past, coming and far-off months, each in its month, and reads them back as one trace', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const far = new Date(Date.UTC(now.getUTCFullYear() + 5, 6, 15));
      const recorded = await recordSpans(tx, [
        spanAt('root', 'months', new Date('1999-06-01T00:00:00Z'), { ms: 100 * 24 * 3600 * 1000 }),
        spanAt('next', 'months', new Date(monthStart(1).getTime() + 3600_000), { parent: 'root' }),
        spanAt('after', 'months', new Date(monthStart(2).getTime() + 3600_000), { parent: 'root' }),
        spanAt('far', 'months', far, { parent: 'root' }),
      ]);
      expect(recorded).toBe(4);
      const where = await partitionsOf(tx, 'months');
      expect(Object.keys(where).sort()).toEqual(
        [`spans_before_${monthName(1).slice(6)}`, monthName(1), monthName(2), 'spans_default'].sort(),
      );
      const timeline = await tx`select span_id from api.get_trace_timeline(${traceId('months')})`;
      expect(timeline).toHaveLength(4);
      const [summary] = await tx`
        select span_count, start_time from tracing.trace_summaries where trace_id = ${traceId('months')}::uuid`;
      expect(summary!.span_count).toBe(4);
      expect(new Date(summary!.start_time).toISOString()).toBe('1999-06-01T00:00:00.000Z');
    });
  });

  it('reads only the partitions a time-bounded query can touch', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const from = iso(monthStart(1), 24 * 3600_000);
      const to = iso(monthStart(1), 2 * 24 * 3600_000);
      const bounded = await plan(tx, `select * from tracing.spans where start_time >= $1 and start_time < $2`, [from, to]);
      expect(bounded).toContain(`on ${monthName(1)}`);
      expect(bounded).not.toMatch(/spans_before_|spans_default/);
      expect(bounded).not.toContain(monthName(2));
      // A prepared statement with a generic plan prunes at execution time.
      await tx`set local plan_cache_mode = force_generic_plan`;
      await tx.unsafe(`prepare spans_window(timestamptz, timestamptz) as
        select count(*) from tracing.spans where start_time >= $1 and start_time < $2`);
      const generic = (await tx.unsafe(`explain (analyze, costs off, timing off, summary off) execute spans_window('${from}', '${to}')`))
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      expect(generic).toMatch(/Subplans Removed: [1-9]/);
      expect(generic).toContain(monthName(1));
      expect(generic).not.toContain('spans_default');
    });
  });

  it("reads a window trace by trace only in the partitions of each trace's time range", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const start = new Date(monthStart(1).getTime() + 3600_000);
      await recordSpans(tx, [spanAt('root', 'window', start, { ms: 50 }), spanAt('kid', 'window', start, { parent: 'root' })]);
      const analyzed = (
        await tx.unsafe(`explain (analyze, costs off, timing off, summary off) select count(*) from tracing.window_spans($1, $2)`, [
          iso(start, -1000),
          iso(start, 1000),
        ] as never[])
      )
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      // Each partition's probe is planned, but only the month's runs.
      // Postgres 18 prints rows with two decimals.
      expect(analyzed).toMatch(new RegExp(`on ${monthName(1)} \\w+ \\(actual rows=2(\\.00)? loops=1\\)`));
      expect(analyzed).toMatch(/on spans_before_\w+ \w+ \(never executed\)/);
      expect(analyzed).toMatch(/on spans_default \w+ \(never executed\)/);
    });
  });

  it('merges a re-sent span with its stored copy, also when it comes back with another start time', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const start = new Date(monthStart(1).getTime() + 3600_000);
      const root = spanAt('root', 'resent', start, { ms: 1000 });
      const child = spanAt('child', 'resent', new Date(start.getTime() + 100), { parent: 'root' });
      expect(await recordSpans(tx, [root, child])).toBe(2);
      // The same batch again: nothing new.
      expect(await recordSpans(tx, [root, child])).toBe(0);
      // The child again with a start time in another month (its partition
      // differs, so the unique key alone would not meet the stored copy).
      // The first write stays, and the other one is reported as a conflict.
      const moved = { ...child, start_time: iso(monthStart(2), 1000), end_time: iso(monthStart(2), 2000) };
      const conflict = (index: number) =>
        expect.objectContaining({ index, reason: expect.stringMatching(/already recorded; the first one is kept/) });
      expect(await record(tx, [moved])).toEqual({ recorded: 0, rejected: [conflict(0)] });
      // Twice in one batch with different start times: stored once, the
      // second reported.
      const twin = spanAt('twin', 'resent', new Date(start.getTime() + 200), { parent: 'root' });
      const twinLater = { ...twin, start_time: iso(start, 300), end_time: iso(start, 400) };
      expect(await record(tx, [twin, twinLater])).toEqual({ recorded: 1, rejected: [conflict(1)] });

      const rows = await tx`
        select span_id, start_time from tracing.spans where trace_id = ${traceId('resent')}::uuid order by start_time`;
      expect(rows).toHaveLength(3);
      const [summary] = await tx`
        select span_count, end_time from tracing.trace_summaries where trace_id = ${traceId('resent')}::uuid`;
      expect(summary!.span_count).toBe(3);
      expect(new Date(summary!.end_time).toISOString()).toBe(iso(start, 1000));
      // The same ids in another organization are another span.
      expect(await recordSpans(tx, [{ ...child, organization_id: ORG_B }])).toBe(1);
    });
  });

  it("looks for a re-sent span's conflicts only in the partitions of its trace's time range", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const start = new Date(monthStart(1).getTime() + 3600_000);
      const root = spanAt('root', 'retried', start, { ms: 1000 });
      const child = spanAt('child', 'retried', new Date(start.getTime() + 100), { parent: 'root' });
      expect(await recordSpans(tx, [root, child])).toBe(2);
      // Scans of the other partitions by this transaction, so far.
      const otherScans = async () =>
        (
          await tx`
            select coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::int as n
              from pg_stat_xact_user_tables
             where schemaname = 'tracing' and relid in (select inhrelid from pg_inherits where inhparent = 'tracing.spans'::regclass)
               and relname <> ${monthName(1)}`
        )[0]!.n as number;
      const before = await otherScans();
      // A retry with one span changed: stored nothing, so the conflicts are
      // looked for, and found in the month alone.
      const changed = { ...child, name: 'child renamed' };
      expect(await record(tx, [root, changed])).toEqual({
        recorded: 0,
        rejected: [expect.objectContaining({ index: 1, reason: expect.stringMatching(/already recorded/) })],
      });
      expect(await otherScans()).toBe(before);
    });
  });

  it('keeps row-level security on every partition', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const next = new Date(monthStart(1).getTime() + 3600_000);
      const far = new Date(Date.UTC(now.getUTCFullYear() + 5, 0, 10));
      await recordSpans(tx, [
        spanAt('a-next', 'rls', next, { org: ORG_A }),
        spanAt('a-far', 'rls', far, { org: ORG_A }),
        spanAt('b-next', 'rls', next, { org: ORG_B }),
        spanAt('b-old', 'rls', new Date('2001-01-01T00:00:00Z'), { org: ORG_B }),
      ]);
      const seen = await actAs(tx, 'tracegres_reader', ORG_A, async () =>
        (await tx`select name from tracing.spans where trace_id = ${traceId('rls')}::uuid order by name`).map((r) => r.name),
      );
      expect(seen).toEqual(['a-far', 'a-next']);
      const timeline = await actAs(tx, 'tracegres_reader', ORG_B, async () =>
        (await tx`select name from api.get_trace_timeline(${traceId('rls')}) order by name`).map((r) => r.name),
      );
      expect(timeline).toEqual(['b-next', 'b-old']);
      const none = await actAs(tx, 'tracegres_anonymous', null, async () => (await tx`select count(*)::int as n from tracing.spans`)[0]!.n);
      expect(none).toBe(0);
    });
  });

  it('refuses a reader every partition itself, the old table included', async () => {
    const partitions = await db.sql`
      select c.oid::regclass::text as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'tracing.spans'::regclass`;
    expect(partitions.map((p) => p.name)).toContainEqual(expect.stringMatching(/^tracing\.spans_before_/));
    for (const { name } of partitions) {
      await inRolledBackTransaction(db.sql, async (tx) => {
        await tx.unsafe(`set local role tracegres_reader`);
        await expect(tx.unsafe(`select count(*) from ${name}`), name).rejects.toThrow(/permission denied/);
      });
    }
  });

  it('is kept months ahead by the upkeep, which moves waiting rows out of the default partition', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // A span three months ahead waits in the default partition.
      const later = new Date(monthStart(3).getTime() + 3600_000);
      expect(await recordSpans(tx, [spanAt('later', 'ahead', later)])).toBe(1);
      expect(Object.keys(await partitionsOf(tx, 'ahead'))).toEqual(['spans_default']);

      // The archive run keeps every live partitioned table ahead, spans too.
      const tables = await tx`select t::text as name from tracing.live_partitioned_tables() t`;
      expect(tables.map((t) => t.name)).toContain('tracing.spans');
      await tx`update tracing.retention_settings set months_ahead = 3`;
      const created = (await tx`select tracing.ensure_live_partitions_ahead('tracing.spans') as name`).map((r) => r.name);
      expect(created).toContain(monthName(3));
      expect(Object.keys(await partitionsOf(tx, 'ahead'))).toEqual([monthName(3)]);
      const [count] = await tx`select count(*)::int as n from tracing.spans where trace_id = ${traceId('ahead')}::uuid`;
      expect(count!.n).toBe(1);
      const [rls] = await tx`select relrowsecurity from pg_class where oid = ${`tracing.${monthName(3)}`}::regclass`;
      expect(rls!.relrowsecurity).toBe(true);
    });
  });
});
