// Number, duration and progress formatting for the DBA CLI.

export function count(n: number | bigint | string | null | undefined): string {
  return Number(n ?? 0).toLocaleString('en-US');
}

/** 0:07, 12:30, 1:02:03 */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** 850ms, 6.3s, 2m05s */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export function bytes(n: number | string | null | undefined): string {
  let value = Number(n ?? 0);
  for (const unit of ['B', 'kB', 'MB', 'GB']) {
    if (value < 1024 || unit === 'GB') return `${unit === 'B' ? value : value.toFixed(1)} ${unit}`;
    value /= 1024;
  }
  return `${value} TB`;
}

export interface ArchiveProgress {
  eventsMoved: number;
  blocksDone: number;
  blocksTotal: number;
  elapsedMs: number;
}

/**
 * Rows moved, rate and estimated time left. The estimate is by blocks of
 * the live table scanned, not rows: how many old rows remain is unknown
 * without a full count, but every run scans the table's blocks once.
 */
export function archiveProgressLine(p: ArchiveProgress): string {
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? p.eventsMoved / seconds : 0;
  const fraction = p.blocksTotal > 0 ? Math.min(1, p.blocksDone / p.blocksTotal) : 1;
  const eta = fraction > 0 ? seconds * ((1 - fraction) / fraction) : NaN;
  return [
    `archive: ${count(p.eventsMoved)} events moved`,
    `${count(Math.round(rate))} events/s`,
    `${Math.floor(fraction * 100)}% of ${count(p.blocksTotal)} blocks scanned`,
    `ETA ${fraction >= 1 ? '0:00' : clock(eta)}`,
  ].join(' · ');
}

/** Fixed-width columns for small tables. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
