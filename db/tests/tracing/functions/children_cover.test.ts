// tracing.children_cover (the time a node's children cover, for self time)
// and tracing.critical_path, over a tree given as parent numbers and times.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

const literal = (values: number[]) => `{${values.join(',')}}`;

async function timing(parents: number[], starts: number[], ends: number[]) {
  const [row] = await db.sql`
    select tracing.children_cover(${literal(parents)}::integer[], ${literal(starts)}::float8[], ${literal(ends)}::float8[]) as covered,
           tracing.critical_path(${literal(parents)}::integer[], ${literal(starts)}::float8[], ${literal(ends)}::float8[]) as critical`;
  return row as { covered: number[]; critical: boolean[] };
}

describe('children_cover and critical_path', () => {
  // In start order: root 0..100, a 0..30, b 20..60, c 65..90, e 66..75, d 70..80.
  const parents = [0, 1, 1, 1, 4, 4];
  const starts = [0, 0, 20, 65, 66, 70];
  const ends = [100, 30, 60, 90, 75, 80];

  it('count overlapping children once', async () => {
    // root: a and b cover 0..60, c 65..90; c: e and d cover 66..80.
    expect((await timing(parents, starts, ends)).covered).toEqual([85, 0, 0, 14, 0, 0]);
  });

  it('walk back from the child that finished last, through what finished before it started', async () => {
    expect((await timing(parents, starts, ends)).critical).toEqual([true, false, true, true, false, true]);
  });

  it('clip children to their parent', async () => {
    // In start order: y -10..20 and root 0..100 with x 50..150 under the root.
    const result = await timing([2, 0, 2], [-10, 0, 50], [20, 100, 150]);
    expect(result.covered).toEqual([0, 70, 0]);
    expect(result.critical).toEqual([true, true, true]);
  });

  it('make every root that ends the trace in turn critical, and only those', async () => {
    // r2 0..50 ends the trace; r1 10..20 and its child a do not.
    expect((await timing([0, 0, 2], [0, 10, 11], [50, 20, 12])).critical).toEqual([true, false, false]);
    // Two roots one after the other.
    expect((await timing([0, 0], [0, 10], [10, 30])).critical).toEqual([true, true]);
  });

  it('follow a 1,000-deep chain to the bottom', async () => {
    const n = 1000;
    const result = await timing(
      Array.from({ length: n }, (_, i) => i),
      Array.from({ length: n }, (_, i) => i),
      Array.from({ length: n }, (_, i) => 2 * n - i),
    );
    expect(result.critical.every(Boolean)).toBe(true);
    expect(result.covered.slice(0, 3)).toEqual([1998, 1996, 1994]);
  });
});
