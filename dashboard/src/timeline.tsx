// The trace waterfall. One row per span in the timeline's depth-first order:
// the name indented by depth, a bar placed by start offset and sized by
// duration on a shared time axis. Only the rows in view (plus a margin) are
// in the DOM, so a trace of 10,000 spans scrolls as lightly as one of ten.
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { TimelineSpan } from './api.ts';
import { Id } from './common.tsx';
import { formatDuration, formatTime, json } from './format.ts';

const ROW_HEIGHT = 30;
const OVERSCAN = 12;
const MAX_INDENT_LEVELS = 16;
const MAX_EVENT_TICKS = 50;

export function Timeline({ spans, height = 480 }: { spans: TimelineSpan[]; height?: number }) {
  const [selected, setSelected] = useState<number | null>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(height);
  const [focusIndex, setFocusIndex] = useState<number | null>(null);
  const scroller = useRef<HTMLDivElement>(null);

  const total = useMemo(() => Math.max(1e-6, ...spans.map((s) => s.offsetMs + s.durationMs)), [spans]);
  const listHeight = Math.min(height, spans.length * ROW_HEIGHT + 2);

  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setViewport(element.clientHeight));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(spans.length, Math.ceil((scrollTop + viewport) / ROW_HEIGHT) + OVERSCAN);

  // Keyboard: arrows move between rows (scrolling them into view, so focus
  // can travel through rows that are not rendered yet), Home/End jump.
  const moveFocus = useCallback(
    (index: number) => {
      const target = Math.max(0, Math.min(spans.length - 1, index));
      const element = scroller.current;
      if (element) {
        const top = target * ROW_HEIGHT;
        if (top < element.scrollTop) element.scrollTop = top;
        else if (top + ROW_HEIGHT > element.scrollTop + element.clientHeight) element.scrollTop = top + ROW_HEIGHT - element.clientHeight;
        setScrollTop(element.scrollTop);
      }
      setFocusIndex(target);
    },
    [spans.length],
  );
  useEffect(() => {
    if (focusIndex === null) return;
    // preventScroll: this also runs while the user scrolls with the wheel,
    // and must not pull the list back to the focused row.
    const row = scroller.current?.querySelector<HTMLElement>(`[data-index="${focusIndex}"]`);
    if (row && document.activeElement !== row) row.focus({ preventScroll: true });
  }, [focusIndex, first, last]);

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const current = Number((event.target as HTMLElement).dataset.index ?? -1);
    if (current < 0) return;
    const page = Math.max(1, Math.floor(viewport / ROW_HEIGHT) - 1);
    const moves: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (event.key in moves) moveFocus(current + moves[event.key]!);
    else if (event.key === 'Home') moveFocus(0);
    else if (event.key === 'End') moveFocus(spans.length - 1);
    else return;
    event.preventDefault();
  };

  const rows = [];
  for (let i = first; i < last; i++) {
    const span = spans[i]!;
    const failed = span.status === 'error';
    const left = (span.offsetMs / total) * 100;
    const width = Math.max(0.15, (span.durationMs / total) * 100);
    const classes = ['span-row'];
    if (failed) classes.push('span-row--error');
    if (span.onCriticalPath) classes.push('span-row--critical');
    if (span.isPlaceholder) classes.push('span-row--placeholder');
    if (span.isInferred) classes.push('span-row--inferred');
    if (selected === i) classes.push('span-row--selected');
    const name = span.isPlaceholder ? 'missing parent span' : (span.name ?? '(unnamed)');
    const indent = Math.min(span.depth, MAX_INDENT_LEVELS);
    rows.push(
      <button
        type="button"
        key={span.spanId + ':' + i}
        className={classes.join(' ')}
        style={{ top: i * ROW_HEIGHT, height: ROW_HEIGHT }}
        data-index={i}
        data-span-id={span.spanId}
        data-status={span.status ?? (span.isPlaceholder ? 'placeholder' : 'unset')}
        data-critical={span.onCriticalPath ? 'true' : undefined}
        aria-pressed={selected === i}
        aria-label={`${name}${span.service ? ` (${span.service})` : ''}, ${formatDuration(span.durationMs)}${failed ? ', failed' : ''}${span.onCriticalPath ? ', on the critical path' : ''}${span.isPlaceholder ? ', never recorded' : ''}${span.isInferred ? ', inferred from its events' : ''}`}
        onClick={() => {
          setSelected(selected === i ? null : i);
          setFocusIndex(i);
        }}
      >
        <span className="span-label" style={{ paddingLeft: `${indent * 0.9}rem` }}>
          <span className="span-marker" aria-hidden="true">
            {span.onCriticalPath ? '◆' : ''}
          </span>
          <span className="span-name">{name}</span>
          {span.service && <span className="span-service">{span.service}</span>}
          {span.isInferred && <span className="tag">inferred</span>}
          {span.isPlaceholder && <span className="tag">not recorded</span>}
        </span>
        <span className="span-track">
          <span className="span-bar" style={{ left: `${left}%`, width: `${width}%` }} />
          {/* When the span's events happened; failed ones stand out. */}
          {span.events.slice(0, MAX_EVENT_TICKS).map((event) => (
            <span
              key={event.id}
              className={event.processing_error ? 'span-event-tick span-event-tick--failed' : 'span-event-tick'}
              style={{ left: `${(event.offset_ms / total) * 100}%` }}
              title={`${event.event_type}${event.processing_error ? `: ${event.processing_error}` : ''}`}
            />
          ))}
        </span>
        <span className="span-duration">
          {formatDuration(span.durationMs)}
          {failed && <span className="span-status"> error</span>}
        </span>
      </button>,
    );
  }

  const span = selected === null ? undefined : spans[selected];
  return (
    <div className="timeline">
      <div className="timeline-legend" aria-hidden="true">
        <span>
          <span className="swatch swatch--ok" /> ok
        </span>
        <span>
          <span className="swatch swatch--error" /> failed
        </span>
        <span>◆ critical path</span>
        <span>
          <span className="swatch swatch--placeholder" /> not recorded
        </span>
        <span>
          <span className="swatch swatch--inferred" /> inferred from events
        </span>
        <span>
          <span className="swatch swatch--tick" /> event
        </span>
        <span className="timeline-scale">0 – {formatDuration(total)}</span>
      </div>
      <TimeAxis total={total} />
      <div
        className="timeline-rows"
        ref={scroller}
        role="group"
        aria-label={`Trace timeline, ${spans.length} spans; arrow keys move between spans`}
        style={{ height: listHeight }}
        onScroll={(event) => setScrollTop(event.currentTarget.scrollTop)}
        onKeyDown={onKeyDown}
        data-span-count={spans.length}
      >
        <div className="timeline-canvas" style={{ height: spans.length * ROW_HEIGHT }}>
          {rows}
        </div>
      </div>
      {span && <SpanDetails span={span} onClose={() => setSelected(null)} />}
    </div>
  );
}

export function SpanDetails({ span, onClose }: { span: TimelineSpan; onClose(): void }) {
  const attributes = Object.entries(span.attributes ?? {});
  return (
    <section className="span-details" aria-label="Span details">
      <header>
        <h3>
          {span.isPlaceholder ? 'Missing parent span' : (span.name ?? '(unnamed)')}{' '}
          {span.status === 'error' && <span className="badge badge--error">error</span>}
          {span.onCriticalPath && <span className="badge">critical path</span>}
        </h3>
        <button type="button" onClick={onClose} aria-label="Close span details">
          Close
        </button>
      </header>
      {span.isPlaceholder && (
        <p className="note">
          Spans name this span as their parent, but it was never recorded (its process may have died before ending it). It is shown so its
          children are not lost.
        </p>
      )}
      {span.isInferred && <p className="note">This span was never recorded; it is inferred from the events it emitted.</p>}
      {span.breaksCycle && <p className="note">This span's parent links formed a loop; the loop was cut here.</p>}
      {span.cutAtDepthLimit && (
        <p className="note">
          This span lies deeper than the timeline's depth limit of 1,000 levels, so it starts a tree of its own here; its recorded parent is
          the parent span id below.
        </p>
      )}
      <dl className="facts">
        <dt>Service</dt>
        <dd>{span.service ?? '–'}</dd>
        <dt>Kind</dt>
        <dd>{span.kind ?? '–'}</dd>
        <dt>Status</dt>
        <dd>
          {span.status ?? '–'}
          {span.statusMessage ? `: ${span.statusMessage}` : ''}
        </dd>
        <dt>Start</dt>
        <dd>
          {formatTime(span.startTime)} (+{formatDuration(span.offsetMs)})
        </dd>
        <dt>Duration</dt>
        <dd>
          {formatDuration(span.durationMs)} (self {formatDuration(span.selfTimeMs)})
        </dd>
        <dt>Span id</dt>
        <dd>
          <Id value={span.spanId} label="span id" />
        </dd>
        <dt>Parent span id</dt>
        <dd>
          <Id value={span.parentSpanId ?? span.recordedParentSpanId} label="parent span id" />
        </dd>
        <dt>Trace id</dt>
        <dd>
          <Id value={span.traceId} label="trace id" />
        </dd>
      </dl>
      <h4>Attributes</h4>
      {attributes.length === 0 ? (
        <p className="muted">none</p>
      ) : (
        <table className="attributes">
          <tbody>
            {attributes.map(([key, value]) => (
              <tr key={key}>
                <th scope="row">{key}</th>
                <td>
                  <code>{typeof value === 'string' ? value : JSON.stringify(value)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h4>Events ({span.eventCount})</h4>
      {span.events.length === 0 ? (
        <p className="muted">none</p>
      ) : (
        <ol className="span-events">
          {span.events.map((event) => (
            <li key={event.id} className={event.processing_error ? 'failed' : undefined}>
              <strong>{event.event_type}</strong> at +{formatDuration(event.offset_ms)} ({formatTime(event.created_at)})
              {event.processing_error && <div className="error-text">Processing error: {event.processing_error}</div>}
              <pre>{json(event.event_data)}</pre>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

/** Offsets from the trace start at round steps (1, 2 or 5 times a power of ten), above the bars they measure. */
export function axisTicks(total: number): number[] {
  const raw = total / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const ticks: number[] = [];
  // Multiples, rounded to 12 digits: adding 0.2 up drifts (0.6000000000000001).
  for (let i = 0; i * step <= total * (1 + 1e-9); i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

function TimeAxis({ total }: { total: number }) {
  return (
    <div className="timeline-axis" aria-hidden="true">
      <span />
      <span className="axis-track">
        {axisTicks(total).map((t) => (
          <span key={t} className="axis-tick" style={{ left: `${(t / total) * 100}%` }}>
            {t === 0 ? '0' : formatDuration(t)}
          </span>
        ))}
      </span>
      <span />
    </div>
  );
}
