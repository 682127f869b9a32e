// tracing.span_tree: the depth-first layout of a tree given as parent
// numbers (nodes numbered in start order), with its depth limit, and
// tracing.parent_loop_cuts, which finds where parent loops are cut.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

interface TreeRow {
  num: number;
  depth: number;
  position: number;
  sibling_index: number;
  child_count: number;
  cut_at_depth_limit: boolean;
}

async function tree(parents: number[], depthLimit = 1000): Promise<TreeRow[]> {
  return (await db.sql`
    select t.num, t.depth, t.position, t.sibling_index, t.child_count, t.cut_at_depth_limit
      from tracing.span_tree(${`{${parents.join(',')}}`}::integer[], ${depthLimit}) t`) as unknown as TreeRow[];
}

describe('span_tree', () => {
  it('lays a tree out depth-first, children in number (start) order, with depth, sibling order and child count', async () => {
    // 1 > (2 > 7, 3 > (5, 6)); 4 is a second root.
    const rows = await tree([0, 1, 1, 0, 3, 3, 2]);
    expect(rows.map((r) => [r.num, r.depth, r.position, r.sibling_index, r.child_count])).toEqual([
      [1, 0, 0, 0, 2],
      [2, 1, 1, 0, 1],
      [7, 2, 2, 0, 0],
      [3, 1, 3, 1, 2],
      [5, 2, 4, 0, 0],
      [6, 2, 5, 1, 0],
      [4, 0, 6, 1, 0],
    ]);
    expect(rows.every((r) => !r.cut_at_depth_limit)).toBe(true);
  });

  it('leaves out the nodes of a parent loop and what hangs off it, so the walk cannot loop', async () => {
    // 2 > 3 > 4 > 2 is a loop, 5 hangs off 3; 1 is a root.
    const rows = await tree([0, 4, 2, 3, 3]);
    expect(rows.map((r) => r.num)).toEqual([1]);
  });

  it('starts a tree of its own at the depth limit, placed among the roots by start, and flags it', async () => {
    // A chain 1 > 2 > 3 > 4 > 5 and a root 6 that starts last, limit 2 levels.
    const rows = await tree([0, 1, 2, 3, 4, 0], 2);
    expect(rows.map((r) => [r.num, r.depth, r.position, r.sibling_index, r.child_count, r.cut_at_depth_limit])).toEqual([
      [1, 0, 0, 0, 1, false],
      [2, 1, 1, 0, 0, false],
      [3, 0, 2, 1, 1, true],
      [4, 1, 3, 0, 0, false],
      [5, 0, 4, 2, 0, true],
      [6, 0, 5, 3, 0, false],
    ]);
  });

  it('walks a 1,000-deep chain within the limit', async () => {
    const rows = await tree(Array.from({ length: 1000 }, (_, i) => i));
    expect(rows).toHaveLength(1000);
    expect(rows.map((r) => r.depth)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(rows.some((r) => r.cut_at_depth_limit)).toBe(false);
  });
});

describe('parent_loop_cuts', () => {
  async function cuts(parents: number[]): Promise<number[]> {
    const [row] = await db.sql`select tracing.parent_loop_cuts(${`{${parents.join(',')}}`}::integer[]) as cuts`;
    return row!.cuts as number[];
  }

  it('cuts each loop at its lowest number (earliest start), once', async () => {
    // Loop 2 > 3 > 4 > 2 with 5 hanging off it; loop 6 > 7 > 6; 8 is its own parent.
    expect(await cuts([0, 4, 2, 3, 3, 7, 6, 8])).toEqual([2, 6, 8]);
  });

  it('finds nothing to cut in a tree', async () => {
    expect(await cuts([0, 1, 1, 0, 3])).toEqual([]);
  });
});
