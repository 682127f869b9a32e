// The trace as a flame (icicle) graph: one bar per span, the root on top,
// children below their parent, width proportional to duration on the
// trace's time axis. Each bar says its self time (computed in SQL by the
// timeline); failed spans are red. A click zooms into that span's subtree,
// "Whole trace" zooms out; a second click on the zoomed span opens it.
import { useMemo, useState, type ReactNode } from 'react';
import type { TimelineSpan } from './api.ts';
import { flameLayout, subtreeEnd } from './flame-graph-layout.ts';
import { formatDuration } from './format.ts';
import { SpanDetails } from './timeline.tsx';

const ROW_HEIGHT = 24;

/** One bar: a span of a trace, or a call path summed over many traces. */
export interface FlameBar {
  key: string;
  name: string;
  service: string | null;
  depth: number;
  offsetMs: number;
  durationMs: number;
  selfTimeMs: number;
  failed: boolean;
  placeholder?: boolean;
  /** Said after the durations, e.g. "10000 calls". */
  note?: string;
}

/** The flame graph of one trace; a span's details open under it. */
export function TraceFlameGraph({ spans }: { spans: TimelineSpan[] }) {
  const bars = useMemo(
    () =>
      spans.map((span, i): FlameBar => ({
        key: span.spanId + ':' + i,
        name: span.isPlaceholder ? 'missing parent span' : (span.name ?? '(unnamed)'),
        service: span.service,
        depth: span.depth,
        offsetMs: span.offsetMs,
        durationMs: span.durationMs,
        selfTimeMs: span.selfTimeMs,
        failed: span.status === 'error',
        placeholder: span.isPlaceholder,
      })),
    [spans],
  );
  return <FlameGraph bars={bars} details={(index, close) => <SpanDetails span={spans[index]!} onClose={close} />} />;
}

export function FlameGraph({ bars: spans, details }: { bars: FlameBar[]; details?(index: number, close: () => void): ReactNode }) {
  const [zoom, setZoom] = useState<number | null>(null);
  const [selected, setSelected] = useState<number | null>(null);
  const layout = useMemo(() => flameLayout(spans, zoom), [spans, zoom]);
  const zoomed = zoom === null ? undefined : spans[zoom];

  return (
    <div className="flame-graph" data-zoom={zoomed?.key ?? ''}>
      <div className="timeline-legend">
        <span aria-hidden="true">
          <span className="swatch swatch--ok" /> ok
        </span>
        <span aria-hidden="true">
          <span className="swatch swatch--error" /> failed
        </span>
        <span>Width is duration; each bar shows its self time. Click a bar to zoom into it.</span>
        <span className="timeline-scale">
          {zoomed ? `${zoomed.name}: ` : ''}
          {layout.startMs === 0 ? '0' : formatDuration(layout.startMs)} – {formatDuration(layout.endMs)}
        </span>
      </div>
      {zoom !== null && (
        <p className="flame-zoom">
          <button
            type="button"
            className="secondary"
            onClick={() => {
              setZoom(null);
              setSelected(null);
            }}
          >
            Whole trace
          </button>{' '}
          Zoomed into {zoomed?.name} ({subtreeEnd(spans, zoom) - zoom} bars)
        </p>
      )}
      <div
        className="flame-canvas"
        role="group"
        aria-label={`Flame graph, ${layout.rects.length} spans drawn`}
        style={{ height: layout.rows * ROW_HEIGHT }}
      >
        {layout.rects.map(({ index, row, x, width }) => {
          const span = spans[index]!;
          const { failed, name } = span;
          const label = `${name}${span.service ? ` (${span.service})` : ''}, ${formatDuration(span.durationMs)}, self ${formatDuration(span.selfTimeMs)}${span.note ? `, ${span.note}` : ''}${failed ? ', failed' : ''}`;
          const classes = ['flame-rect'];
          if (failed) classes.push('flame-rect--error');
          if (span.placeholder) classes.push('flame-rect--placeholder');
          if (selected === index) classes.push('flame-rect--selected');
          return (
            <button
              type="button"
              key={span.key}
              className={classes.join(' ')}
              style={{ left: `${x * 100}%`, width: `${width * 100}%`, top: row * ROW_HEIGHT, height: ROW_HEIGHT - 2 }}
              data-key={span.key}
              data-status={failed ? 'error' : 'ok'}
              data-row={row}
              aria-label={label}
              title={label}
              onClick={() => {
                // The first click zooms, a click on the zoomed span opens it.
                if (zoom === index || subtreeEnd(spans, index) === index + 1) setSelected(selected === index ? null : index);
                else {
                  setZoom(index);
                  setSelected(null);
                }
              }}
            >
              <span className="flame-name">{name}</span>
              <span className="flame-self">self {formatDuration(span.selfTimeMs)}</span>
            </button>
          );
        })}
      </div>
      {layout.hidden > 0 && (
        <p className="muted flame-hidden">
          {layout.hidden} spans too narrow to draw at this zoom; click a bar to zoom in, or see them in the timeline.
        </p>
      )}
      {selected !== null && spans[selected] && details?.(selected, () => setSelected(null))}
    </div>
  );
}
