// Where each span of a trace sits in the flame (icicle) graph. The timeline
// rows come from api.get_trace_timeline in depth-first order with depth,
// offset, duration and self time already computed in SQL, so a span's
// subtree is simply the run of rows after it that are deeper than it: no
// tree is rebuilt here, only positions are computed for drawing.
import type { TimelineSpan } from './api.ts';

type FlameSpan = Pick<TimelineSpan, 'depth' | 'offsetMs' | 'durationMs'>;

export interface FlameRect {
  /** Index of the span in the timeline rows. */
  index: number;
  /** Row of the graph: depth below the zoomed span (0 for it). */
  row: number;
  /** Left edge and width as fractions (0..1) of the zoomed time window. */
  x: number;
  width: number;
}

export interface FlameLayout {
  rects: FlameRect[];
  rows: number;
  /** The time window drawn, in ms from the trace start. */
  startMs: number;
  endMs: number;
  /** Spans of the window too narrow to draw (below minWidth). */
  hidden: number;
}

/** The rows of the subtree rooted at `index`: it and the deeper rows right after it. */
export function subtreeEnd(spans: FlameSpan[], index: number): number {
  const depth = spans[index]!.depth;
  let end = index + 1;
  while (end < spans.length && spans[end]!.depth > depth) end++;
  return end;
}

/**
 * The rectangles of the whole trace (zoom null) or of one span's subtree,
 * clipped to the window; spans narrower than minWidth (a fraction of the
 * window) are counted in `hidden` rather than drawn, so a 10,000-span trace
 * draws only what can be seen.
 */
export function flameLayout(spans: FlameSpan[], zoom: number | null, minWidth = 0.002): FlameLayout {
  const from = zoom ?? 0;
  const to = zoom === null ? spans.length : subtreeEnd(spans, zoom);
  const baseDepth = zoom === null ? 0 : spans[zoom]!.depth;
  const startMs = zoom === null ? 0 : spans[zoom]!.offsetMs;
  const endMs =
    zoom === null ? Math.max(0, ...spans.map((s) => s.offsetMs + s.durationMs)) : spans[zoom]!.offsetMs + spans[zoom]!.durationMs;
  const window = Math.max(endMs - startMs, 1e-6);
  const rects: FlameRect[] = [];
  let rows = 0;
  let hidden = 0;
  for (let index = from; index < to; index++) {
    const span = spans[index]!;
    // Clipped: in a messy trace a child may outlast its parent.
    const left = Math.max(0, (span.offsetMs - startMs) / window);
    const right = Math.min(1, (span.offsetMs + span.durationMs - startMs) / window);
    const width = right - left;
    if (width < minWidth && !(index === zoom)) {
      hidden++;
      continue;
    }
    const row = span.depth - baseDepth;
    rows = Math.max(rows, row + 1);
    rects.push({ index, row, x: left, width: Math.max(width, minWidth) });
  }
  return { rects, rows, startMs, endMs, hidden };
}

/** One call path of api.operation_flame_graph. */
export interface FlamePath {
  path: string[];
  depth: number;
  calls: number;
  traces: number;
  totalMs: number;
  selfMs: number;
  errorCount: number;
}

/**
 * The call paths of an operation as flame graph rows: depth-first (SQL
 * orders them by path, so a parent comes right before its children), each
 * child placed after its earlier siblings inside its parent, widths being
 * total time. Children whose totals exceed their parent's (parallel calls)
 * are scaled to fit it.
 */
export function pathsToFlameRows(paths: FlamePath[]): Array<FlameSpan & { path: FlamePath }> {
  const rows: Array<FlameSpan & { path: FlamePath }> = [];
  const byKey = new Map<string, { offsetMs: number; widthMs: number; next: number; scale: number }>();
  const childTotals = new Map<string, number>();
  for (const p of paths) {
    const parentKey = JSON.stringify(p.path.slice(0, -1));
    if (p.depth > 0) childTotals.set(parentKey, (childTotals.get(parentKey) ?? 0) + Number(p.totalMs));
  }
  let rootOffset = 0;
  for (const p of paths) {
    const key = JSON.stringify(p.path);
    const parent = byKey.get(JSON.stringify(p.path.slice(0, -1)));
    let offsetMs: number;
    let widthMs: number;
    if (p.depth === 0 || !parent) {
      offsetMs = rootOffset;
      widthMs = Number(p.totalMs);
      rootOffset += widthMs;
    } else {
      widthMs = Number(p.totalMs) * parent.scale;
      offsetMs = parent.next;
      parent.next += widthMs;
    }
    const children = childTotals.get(key) ?? 0;
    byKey.set(key, { offsetMs, widthMs, next: offsetMs, scale: children > widthMs ? widthMs / children : 1 });
    rows.push({ depth: p.depth, offsetMs, durationMs: widthMs, path: p });
  }
  return rows;
}
