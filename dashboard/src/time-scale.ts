/**
 * Places a timestamp along a chart's time axis: `from` at 0 and `to` at
 * `width`, linearly between. An empty range counts as one millisecond so
 * a chart of a single instant still draws.
 */
export function timeScale(from: string, to: string, width: number): (iso: string) => number {
  const t0 = Date.parse(from);
  const range = Math.max(Date.parse(to) - t0, 1);
  return (iso) => ((Date.parse(iso) - t0) / range) * width;
}
