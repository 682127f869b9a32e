// The trace as a flame (icicle) graph: one bar per span, the root on top,
// children below their parent, width proportional to duration on the
// trace's time axis. Each bar says its self time (computed in SQL by the
// timeline); failed spans are red. A click zooms into that span's subtree,
// "Whole trace" zooms out; a second click on the zoomed span opens it.
import { useMemo, useState } from 'react';
import type { TimelineSpan } from './api.ts';
import { flameLayout, subtreeEnd } from './flame-graph-layout.ts';
import { formatDuration } from './format.ts';
import { SpanDetails } from './timeline.tsx';

const ROW_HEIGHT = 24;

export function FlameGraph({ spans }: { spans: TimelineSpan[] }) {
  const [zoom, setZoom] = useState<number | null>(null);
  const [selected, setSelected] = useState<number | null>(null);
  const layout = useMemo(() => flameLayout(spans, zoom), [spans, zoom]);
  const zoomed = zoom === null ? undefined : spans[zoom];

  return (
    <div className="flame-graph" data-zoom={zoomed?.spanId ?? ''}>
      <div className="timeline-legend">
        <span aria-hidden="true">
          <span className="swatch swatch--ok" /> ok
        </span>
        <span aria-hidden="true">
          <span className="swatch swatch--error" /> failed
        </span>
        <span>Width is duration; each bar shows its self time. Click a bar to zoom into it.</span>
        <span className="timeline-scale">
          {zoomed ? `${zoomed.name ?? '(unnamed)'}: ` : ''}
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
          Zoomed into {zoomed?.name ?? '(unnamed)'} ({subtreeEnd(spans, zoom) - zoom} spans)
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
          const failed = span.status === 'error';
          const name = span.isPlaceholder ? 'missing parent span' : (span.name ?? '(unnamed)');
          const label = `${name}${span.service ? ` (${span.service})` : ''}, ${formatDuration(span.durationMs)}, self ${formatDuration(span.selfTimeMs)}${failed ? ', failed' : ''}`;
          const classes = ['flame-rect'];
          if (failed) classes.push('flame-rect--error');
          if (span.isPlaceholder) classes.push('flame-rect--placeholder');
          if (selected === index) classes.push('flame-rect--selected');
          return (
            <button
              type="button"
              key={span.spanId + ':' + index}
              className={classes.join(' ')}
              style={{ left: `${x * 100}%`, width: `${width * 100}%`, top: row * ROW_HEIGHT, height: ROW_HEIGHT - 2 }}
              data-span-id={span.spanId}
              data-status={span.status ?? 'unset'}
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
      {selected !== null && spans[selected] && <SpanDetails span={spans[selected]} onClose={() => setSelected(null)} />}
    </div>
  );
}
