// tracing.cover_by_parent: the self-time rule shared by one trace's timeline
// and the aggregated flame graph, given one element per child with its
// parent's key and both intervals.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

const literal = (values: number[]) => `{${values.join(',')}}`;

interface Child {
  parent: number;
  start: number;
  end: number;
  parentStart: number;
  parentEnd: number;
}

async function cover(children: Child[]) {
  const rows = await db.sql`
    select parent::text, covered
      from tracing.cover_by_parent(${literal(children.map((c) => c.parent))}::bigint[],
                                   ${literal(children.map((c) => c.start))}::float8[],
                                   ${literal(children.map((c) => c.end))}::float8[],
                                   ${literal(children.map((c) => c.parentStart))}::float8[],
                                   ${literal(children.map((c) => c.parentEnd))}::float8[])
     order by parent`;
  return rows.map((r) => [r.parent, r.covered]);
}

describe('tracing.cover_by_parent', () => {
  it('counts overlapping children once and clips them to their parent, per parent key', async () => {
    // Parent 7 (0..100): 10..50 and 30..70 overlap, 90..150 outlasts it.
    // Parent 900000000000 (1000..1050): one child that starts before it.
    const children: Child[] = [
      { parent: 7, start: 10, end: 50, parentStart: 0, parentEnd: 100 },
      { parent: 900000000000, start: 990, end: 1020, parentStart: 1000, parentEnd: 1050 },
      { parent: 7, start: 30, end: 70, parentStart: 0, parentEnd: 100 },
      { parent: 7, start: 90, end: 150, parentStart: 0, parentEnd: 100 },
    ];
    expect(await cover(children)).toEqual([
      ['7', 70],
      ['900000000000', 20],
    ]);
  });

  it('sweeps children by start whatever order they come in', async () => {
    // A long child passed after a short one inside it: still 0..80 covered.
    const children: Child[] = [
      { parent: 1, start: 20, end: 30, parentStart: 0, parentEnd: 100 },
      { parent: 1, start: 0, end: 80, parentStart: 0, parentEnd: 100 },
      { parent: 1, start: 0, end: 10, parentStart: 0, parentEnd: 100 },
    ];
    expect(await cover(children)).toEqual([['1', 80]]);
  });

  it('leaves out a parent whose children all lie outside it', async () => {
    const children: Child[] = [
      { parent: 1, start: 200, end: 300, parentStart: 0, parentEnd: 100 },
      { parent: 2, start: 0, end: 10, parentStart: 0, parentEnd: 100 },
    ];
    expect(await cover(children)).toEqual([['2', 10]]);
  });
});
