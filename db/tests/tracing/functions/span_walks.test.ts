// tracing.span_ancestors and tracing.span_descendants: walks over the
// recorded spans of a trace, within one organization, safe on parent loops.
import { beforeAll, describe, expect, it } from 'vitest';
import { ORG_B, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

// root > checkout > (pay > card, ship); a second tenant reuses the ids of
// root and checkout under the same trace id; t2 holds a parent loop.
beforeAll(async () => {
  await recordSpans(db.sql, [
    span('root', { start: 0, end: 100 }),
    span('checkout', { parent: 'root', start: 5, end: 90 }),
    span('pay', { parent: 'checkout', start: 10, end: 50, status: 'error' }),
    span('card', { parent: 'pay', start: 12, end: 40 }),
    span('ship', { parent: 'checkout', start: 55, end: 80 }),
    span('root', { start: 0, end: 10, org: ORG_B }),
    span('checkout', { parent: 'root', start: 1, end: 9, org: ORG_B }),
    span('a', { trace: 't2', parent: 'c', start: 0, end: 10 }),
    span('b', { trace: 't2', parent: 'a', start: 1, end: 9 }),
    span('c', { trace: 't2', parent: 'b', start: 2, end: 8 }),
  ]);
});

/** Labels of the spans a walk returns, with distance and organization, sorted. */
async function walk(fn: 'span_ancestors' | 'span_descendants', trace: string, from: string) {
  const rows = await db.sql.unsafe(
    `select tracing.span_id_to_hex(w.span_id) as span, w.distance, w.organization_id as org
       from tracing.${fn}(tracing.hex_to_trace_id($1), tracing.hex_to_span_id($2)) w
      order by w.organization_id, w.distance, w.span_id`,
    [traceId(trace), spanId(from)],
  );
  const label = (hex: string) => Buffer.from(hex.replace(/^(00)+/, ''), 'hex').toString('utf8');
  return rows.map((r) => [label(r.span as string), r.distance as number, r.org === ORG_B ? 'B' : 'A']);
}

describe('span_ancestors', () => {
  it('walks up to the root, nearest first, within the organization', async () => {
    expect(await walk('span_ancestors', 't1', 'card')).toEqual([
      ['pay', 1, 'A'],
      ['checkout', 2, 'A'],
      ['root', 3, 'A'],
    ]);
  });

  it("walks each organization's span of a shared id apart", async () => {
    expect(await walk('span_ancestors', 't1', 'checkout')).toEqual([
      ['root', 1, 'A'],
      ['root', 1, 'B'],
    ]);
  });

  it('stops where a parent loop would repeat a span', async () => {
    expect(await walk('span_ancestors', 't2', 'a')).toEqual([
      ['c', 1, 'A'],
      ['b', 2, 'A'],
    ]);
  });

  it('returns nothing for a root or an unknown span', async () => {
    expect(await walk('span_ancestors', 't1', 'root')).toEqual([]);
    expect(await walk('span_ancestors', 't1', 'nope')).toEqual([]);
  });
});

describe('span_descendants', () => {
  it('walks down every branch with its distance, within the organization', async () => {
    expect(await walk('span_descendants', 't1', 'checkout')).toEqual([
      ['pay', 1, 'A'],
      ['ship', 1, 'A'],
      ['card', 2, 'A'],
    ]);
    expect(await walk('span_descendants', 't1', 'root')).toEqual([
      ['checkout', 1, 'A'],
      ['pay', 2, 'A'],
      ['ship', 2, 'A'],
      ['card', 3, 'A'],
      ['checkout', 1, 'B'],
    ]);
  });

  it('stops where a parent loop would repeat a span', async () => {
    expect(await walk('span_descendants', 't2', 'a')).toEqual([
      ['b', 1, 'A'],
      ['c', 2, 'A'],
    ]);
  });

  it('finds "a failed descendant" as a join: the question structural search asks', async () => {
    const rows = await db.sql`
      select count(*)::int as n
        from tracing.span_descendants(tracing.hex_to_trace_id(${traceId('t1')}), tracing.hex_to_span_id(${spanId('checkout')})) d
        join tracing.spans s on s.trace_id = tracing.hex_to_trace_id(${traceId('t1')}) and s.span_id = d.span_id
                            and s.organization_id is not distinct from d.organization_id
       where s.status = 'error'`;
    expect(rows[0]!.n).toBe(1);
  });
});
