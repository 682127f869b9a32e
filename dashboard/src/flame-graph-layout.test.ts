// The flame graph's layout: subtrees from the depth-first rows, bars placed
// in the zoomed window, clipped, and spans too narrow to see counted.
import { describe, expect, it } from 'vitest';
import { flameLayout, pathsToFlameRows, subtreeEnd } from './flame-graph-layout.ts';

// root 0-100 > a 0-60 > a1 10-20, then b 60-100 (depth-first order).
const spans = [
  { depth: 0, offsetMs: 0, durationMs: 100 },
  { depth: 1, offsetMs: 0, durationMs: 60 },
  { depth: 2, offsetMs: 10, durationMs: 10 },
  { depth: 1, offsetMs: 60, durationMs: 40 },
];

describe('flameLayout', () => {
  it('places every span of the whole trace by offset and duration, one row per depth', () => {
    const layout = flameLayout(spans, null);
    expect(layout).toMatchObject({ rows: 3, startMs: 0, endMs: 100, hidden: 0 });
    expect(layout.rects).toEqual([
      { index: 0, row: 0, x: 0, width: 1 },
      { index: 1, row: 1, x: 0, width: 0.6 },
      { index: 2, row: 2, x: 0.1, width: 0.1 },
      { index: 3, row: 1, x: 0.6, width: 0.4 },
    ]);
  });

  it('zooms into a subtree: its window, its rows only, depth from it', () => {
    expect(subtreeEnd(spans, 1)).toBe(3);
    expect(subtreeEnd(spans, 3)).toBe(4);
    const layout = flameLayout(spans, 1);
    expect(layout).toMatchObject({ rows: 2, startMs: 0, endMs: 60 });
    expect(layout.rects.map((r) => [r.index, r.row, r.x, Number(r.width.toFixed(4))])).toEqual([
      [1, 0, 0, 1],
      [2, 1, 10 / 60, Number((10 / 60).toFixed(4))],
    ]);
  });

  it('clips a child that outlasts its parent, and counts spans too narrow to draw', () => {
    const messy = [
      { depth: 0, offsetMs: 0, durationMs: 10 },
      { depth: 1, offsetMs: 5, durationMs: 50 },
      { depth: 1, offsetMs: 1, durationMs: 0.001 },
    ];
    const layout = flameLayout(messy, 0);
    expect(layout.rects.map((r) => [r.index, r.x, r.width])).toEqual([
      [0, 0, 1],
      [1, 0.5, 0.5],
    ]);
    expect(layout.hidden).toBe(1);
  });
});

describe('pathsToFlameRows', () => {
  const path = (names: string[], totalMs: number) => ({
    path: names,
    depth: names.length - 1,
    calls: 1,
    traces: 1,
    totalMs,
    selfMs: 0,
    errorCount: 0,
  });

  it('places each child path after its earlier siblings, inside its parent', () => {
    const rows = pathsToFlameRows([path(['a'], 100), path(['a', 'b'], 30), path(['a', 'b', 'c'], 10), path(['a', 'd'], 50)]);
    expect(rows.map((r) => [r.path.path.at(-1), r.depth, r.offsetMs, r.durationMs])).toEqual([
      ['a', 0, 0, 100],
      ['b', 1, 0, 30],
      ['c', 2, 0, 10],
      ['d', 1, 30, 50],
    ]);
    expect(subtreeEnd(rows, 1)).toBe(3);
  });

  it('scales children that together outlast their parent (parallel calls) to fit it', () => {
    const rows = pathsToFlameRows([path(['a'], 100), path(['a', 'b'], 100), path(['a', 'c'], 100)]);
    expect(rows.map((r) => [r.offsetMs, r.durationMs])).toEqual([
      [0, 100],
      [0, 50],
      [50, 50],
    ]);
  });
});
