import { useMemo, useState } from 'react';
import { EVENT_FIELDS, SUMMARY_FIELDS, TIMELINE_QUERY, type ApiEvent, type TimelineSpan, type TraceSummary } from './api.ts';
import { Id, Loading, QueryFailure } from './common.tsx';
import { formatDuration, formatTime, json } from './format.ts';
import { useQuery } from './hooks.ts';
import { useLiveFailedEvents } from './live.ts';
import { replayLink, TraceReplays } from './replay.tsx';
import { linkProps, liveToggleLink, navigate } from './router.ts';
import { TraceFlameGraph } from './flame-graph.tsx';
import { Timeline } from './timeline.tsx';

/** The timeline of one trace, loaded on its own. */
export function TraceTimeline({ traceId }: { traceId: string }) {
  const { data, error, loading } = useQuery<{ getTraceTimeline: { nodes: TimelineSpan[] } }>(TIMELINE_QUERY, { traceId }, traceId);
  if (error) return <QueryFailure error={error} />;
  if (!data) return loading ? <Loading what="the trace timeline" /> : null;
  const spans = data.getTraceTimeline.nodes;
  if (spans.length === 0) return <p className="empty">This trace has no spans (or none you may see).</p>;
  // Keyed by trace: a selected span belongs to its trace.
  return (
    <>
      <TraceReplays traceId={traceId} />
      {spans[0]!.traceCutAtLimit && (
        <p className="note trace-cut">
          This trace is larger than the timeline reads: it is drawn from its earliest 10,000 spans and 10,000 events (at most 10,000 rows),
          so its later spans are left out, and a parent that started after its children shows as a missing parent.
        </p>
      )}
      <TraceDrawing key={traceId} spans={spans} />
    </>
  );
}

/** The same spans as a waterfall or as a flame graph, as the reader picks. */
function TraceDrawing({ spans }: { spans: TimelineSpan[] }) {
  const [drawing, setDrawing] = useState<'timeline' | 'flame'>('timeline');
  return (
    <>
      <div className="drawing-toggle" role="group" aria-label="Draw the trace as">
        <button type="button" aria-pressed={drawing === 'timeline'} onClick={() => setDrawing('timeline')}>
          Timeline
        </button>
        <button type="button" aria-pressed={drawing === 'flame'} onClick={() => setDrawing('flame')}>
          Flame graph
        </button>
      </div>
      {drawing === 'timeline' ? <Timeline spans={spans} /> : <TraceFlameGraph spans={spans} />}
    </>
  );
}

/** A table of events; a row opens its details below. */
export function EventTable({
  events,
  caption,
  selected,
  onSelect,
}: {
  events: ApiEvent[];
  caption: string;
  selected?: string | null;
  onSelect(event: ApiEvent): void;
}) {
  return (
    <div className="table-wrap">
      <table className="events">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Event type</th>
            <th scope="col">Error</th>
            <th scope="col">Correlation id</th>
            <th scope="col">Session id</th>
            <th scope="col">Trace id</th>
          </tr>
        </thead>
        <tbody>
          {events.map((event) => (
            <tr
              key={event.rowId}
              className={[event.processingError ? 'failed' : '', selected === event.rowId ? 'selected' : ''].join(' ').trim() || undefined}
              data-event-id={event.rowId}
              onClick={() => onSelect(event)}
            >
              <td>
                {/* The row's keyboard handle: a real button, reachable with Tab. */}
                <button
                  type="button"
                  className="link-button"
                  onClick={(e) => {
                    e.stopPropagation();
                    onSelect(event);
                  }}
                  aria-expanded={selected === event.rowId}
                >
                  {formatTime(event.createdAt)}
                </button>
              </td>
              <td>{event.eventType}</td>
              <td className="error-text">{event.processingError ?? ''}</td>
              <td>
                <Id
                  value={event.correlationId}
                  label="correlation id"
                  href={event.correlationId ? `/correlation/${event.correlationId}` : undefined}
                  short
                />
              </td>
              <td>
                <Id value={event.sessionId} label="session id" href={event.sessionId ? `/session/${event.sessionId}` : undefined} short />
              </td>
              <td>
                <Id value={event.traceId} label="trace id" href={event.traceId ? `/trace/${event.traceId}` : undefined} short />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** One event: its data and metadata, its ids, and its trace's timeline. */
export function EventDetails({ event, onClose }: { event: ApiEvent; onClose?(): void }) {
  return (
    <section className="event-details" aria-label="Event details">
      <header>
        <h2>
          {event.eventType} <span className="muted">#{event.rowId}</span>
          {event.processingError && <span className="badge badge--error">failed</span>}
        </h2>
        {onClose && (
          <button type="button" onClick={onClose}>
            Close
          </button>
        )}
      </header>
      {event.processingError && <p className="error-text">Processing error: {event.processingError}</p>}
      {event.processingError && replayLink(event) && (
        <p>
          <a className="replay-link" {...linkProps(replayLink(event)!)}>
            Replay this request…
          </a>
        </p>
      )}
      <dl className="facts">
        <dt>Created</dt>
        <dd>{formatTime(event.createdAt)}</dd>
        <dt>Stream</dt>
        <dd>
          {event.streamType} / {event.streamId}
        </dd>
        <dt>Correlation id</dt>
        <dd>
          <Id
            value={event.correlationId}
            label="correlation id"
            href={event.correlationId ? `/correlation/${event.correlationId}` : undefined}
          />
        </dd>
        <dt>Session id</dt>
        <dd>
          <Id value={event.sessionId} label="session id" href={event.sessionId ? `/session/${event.sessionId}` : undefined} />
        </dd>
        <dt>Trace id</dt>
        <dd>
          <Id value={event.traceId} label="trace id" href={event.traceId ? `/trace/${event.traceId}` : undefined} />
        </dd>
        <dt>Span id</dt>
        <dd>
          <Id value={event.spanId} label="span id" />
        </dd>
      </dl>
      {event.traceFieldErrors != null && (
        <p className="note">
          Trace fields that could not be read: <code>{json(event.traceFieldErrors)}</code>
        </p>
      )}
      <div className="json-pair">
        <div>
          <h3>Data</h3>
          <pre className="json">{json(event.eventData)}</pre>
        </div>
        <div>
          <h3>Metadata</h3>
          <pre className="json">{json(event.eventMetadata)}</pre>
        </div>
      </div>
      <h3>Trace timeline</h3>
      {event.traceId ? <TraceTimeline traceId={event.traceId} /> : <p className="muted">This event carries no trace id.</p>}
    </section>
  );
}

const PAGE_SIZES = [20, 50, 100];

interface Cursor {
  createdAt: string;
  rowId: string;
}

function toIso(local: string): string | null {
  if (!local) return null;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** The landing page: failed events, newest first, filtered and paged. */
export function FailedEvents({ params }: { params: URLSearchParams }) {
  const from = params.get('from') ?? '';
  const to = params.get('to') ?? '';
  const eventType = params.get('type') ?? '';
  const pageSize = PAGE_SIZES.includes(Number(params.get('size'))) ? Number(params.get('size')) : PAGE_SIZES[0]!;
  // Keyset paging: the cursor of each page seen so far, so Previous works.
  const [cursors, setCursors] = useState<Array<Cursor | null>>([null]);
  const [selected, setSelected] = useState<ApiEvent | null>(null);
  const filterKey = `${from}|${to}|${eventType}|${pageSize}`;
  const [seenFilterKey, setSeenFilterKey] = useState(filterKey);
  if (seenFilterKey !== filterKey) {
    setSeenFilterKey(filterKey);
    setCursors([null]);
    setSelected(null);
  }
  const cursor = cursors[cursors.length - 1] ?? null;
  const variables = {
    from: toIso(from),
    to: toIso(to),
    type: eventType.trim() || null,
    // One more than shown: whether it comes back says if there is a next page.
    first: pageSize + 1,
    afterCreatedAt: cursor?.createdAt ?? null,
    afterId: cursor?.rowId ?? null,
  };
  const { data, error, loading } = useQuery<{ getFailedEvents: { nodes: ApiEvent[] } }>(
    `query FailedEvents($from: Datetime, $to: Datetime, $type: String, $first: Int, $afterCreatedAt: Datetime, $afterId: BigInt) {
      getFailedEvents(pFrom: $from, pTo: $to, pEventType: $type, pFirst: $first, pAfterCreatedAt: $afterCreatedAt, pAfterId: $afterId) {
        nodes { ${EVENT_FIELDS} }
      }
    }`,
    variables,
    JSON.stringify(variables),
  );
  const nodes = data?.getFailedEvents.nodes ?? [];
  const hasNext = nodes.length > pageSize;
  // Live: failures pushed by the server land on top of the first page, if
  // they match the filters; the page keeps its size.
  const live = params.get('live') === '1';
  const [arrived, setArrived] = useState<ApiEvent[]>([]);
  if (seenFilterKey !== filterKey && arrived.length) setArrived([]);
  const liveState = useLiveFailedEvents(live && cursors.length === 1, (event) => {
    if (!matchesFilters(event, variables)) return;
    setArrived((current) => (current.some((e) => e.rowId === event.rowId) ? current : [event, ...current].slice(0, pageSize)));
  });
  const arrivedIds = new Set(arrived.map((e) => e.rowId));
  const events = (cursors.length === 1 ? [...arrived, ...nodes.filter((e) => !arrivedIds.has(e.rowId))] : nodes).slice(0, pageSize);

  const setFilters = (form: HTMLFormElement) => {
    const values = new FormData(form);
    const next = new URLSearchParams();
    for (const name of ['from', 'to', 'type', 'size', 'live']) {
      const value = String(values.get(name) ?? '').trim();
      if (value) next.set(name, value);
    }
    navigate(next.size ? `/?${next}` : '/');
  };

  return (
    <section aria-labelledby="failed-heading">
      <h1 id="failed-heading">Failed events</h1>
      <form
        className="filters"
        key={filterKey}
        onSubmit={(event) => {
          event.preventDefault();
          setFilters(event.currentTarget);
        }}
      >
        <label>
          From <input type="datetime-local" name="from" step="1" defaultValue={from} />
        </label>
        <label>
          To <input type="datetime-local" name="to" step="1" defaultValue={to} />
        </label>
        <label>
          Event type <input type="text" name="type" defaultValue={eventType} placeholder="e.g. payment.failed" list="event-types" />
        </label>
        <datalist id="event-types">
          {[...new Set(events.map((e) => e.eventType))].map((type) => (
            <option key={type} value={type} />
          ))}
        </datalist>
        <label>
          Per page
          <select name="size" defaultValue={String(pageSize)}>
            {PAGE_SIZES.map((size) => (
              <option key={size}>{size}</option>
            ))}
          </select>
        </label>
        <label className="live-toggle">
          <input
            type="checkbox"
            name="live"
            value="1"
            defaultChecked={live}
            onChange={(event) => navigate(liveToggleLink('/', params, event.currentTarget.checked))}
          />{' '}
          Live
        </label>
        <button type="submit">Apply</button>
        {(from || to || eventType) && <a {...linkProps('/')}>Clear filters</a>}
        {live && (
          <span className={`live-state live-state--${liveState}`} role="status" data-live-state={liveState}>
            {liveState === 'live'
              ? cursors.length === 1
                ? 'Live: new failures appear on top'
                : 'Live on the first page only'
              : liveState === 'retrying'
                ? 'Live stream lost, reconnecting…'
                : liveState === 'connecting'
                  ? 'Connecting…'
                  : 'Live on the first page only'}
          </span>
        )}
      </form>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading && <Loading what="failed events" />}
      {data && events.length === 0 && (
        <p className="empty">
          No failed events{from || to || eventType ? ' match these filters' : ''}. <DemoHint />
        </p>
      )}
      {events.length > 0 && (
        <EventTable
          events={events}
          caption="Failed events, newest first"
          selected={selected?.rowId}
          onSelect={(e) => setSelected(selected?.rowId === e.rowId ? null : e)}
        />
      )}
      <nav className="pager" aria-label="Failed events pages">
        <button
          type="button"
          disabled={cursors.length === 1 || loading}
          onClick={() => {
            setCursors(cursors.slice(0, -1));
            setSelected(null);
          }}
        >
          ← Newer
        </button>
        <span aria-live="polite" className="page-number">
          Page {cursors.length}
        </span>
        <button
          type="button"
          disabled={!hasNext || loading}
          onClick={() => {
            const last = events[events.length - 1]!;
            setCursors([...cursors, { createdAt: last.createdAt, rowId: last.rowId }]);
            setSelected(null);
          }}
        >
          Older →
        </button>
      </nav>
      {selected && <EventDetails event={selected} onClose={() => setSelected(null)} />}
    </section>
  );
}

/** Whether a pushed event belongs on the page: the type and time range filters. */
function matchesFilters(event: ApiEvent, filters: { from: string | null; to: string | null; type: string | null }): boolean {
  if (filters.type && event.eventType !== filters.type) return false;
  const at = Date.parse(event.createdAt);
  if (filters.from && at < Date.parse(filters.from)) return false;
  if (filters.to && at >= Date.parse(filters.to)) return false;
  return true;
}

function DemoHint() {
  return (
    <span className="muted">
      New here? Load the demo data with <code>npx tracegres demo</code> (or, on a local <code>npm start</code>, the "Load demo data" button
      above).
    </span>
  );
}

function TraceSummaryFacts({ summary }: { summary: TraceSummary }) {
  return (
    <dl className="facts facts--inline">
      <dt>Root</dt>
      <dd>
        {summary.rootName ?? '–'}
        {summary.rootService ? ` (${summary.rootService})` : ''}
      </dd>
      <dt>Start</dt>
      <dd>{formatTime(summary.startTime)}</dd>
      <dt>Duration</dt>
      <dd>{formatDuration(summary.durationMs)}</dd>
      <dt>Spans</dt>
      <dd>
        {summary.spanCount}
        {summary.inferredSpanCount ? ` + ${summary.inferredSpanCount} inferred` : ''}
      </dd>
      <dt>Errors</dt>
      <dd className={summary.errorCount ? 'error-text' : undefined}>{summary.errorCount}</dd>
      <dt>Events</dt>
      <dd>{summary.eventCount}</dd>
      <dt>Services</dt>
      <dd>{summary.services.join(', ') || '–'}</dd>
      <dt>Correlation id</dt>
      <dd>
        <Id
          value={summary.correlationId}
          label="correlation id"
          href={summary.correlationId ? `/correlation/${summary.correlationId}` : undefined}
        />
      </dd>
      <dt>Session id</dt>
      <dd>
        <Id value={summary.sessionId} label="session id" href={summary.sessionId ? `/session/${summary.sessionId}` : undefined} />
      </dd>
    </dl>
  );
}

/** One trace: its summary, timeline and events. */
export function TraceView({ traceId }: { traceId: string }) {
  const [selected, setSelected] = useState<ApiEvent | null>(null);
  const { data, error, loading } = useQuery<{ getTraceSummary: TraceSummary | null; getEventsByTrace: { nodes: ApiEvent[] } }>(
    `query Trace($traceId: String!) {
      getTraceSummary(pTraceId: $traceId) { ${SUMMARY_FIELDS} }
      getEventsByTrace(pTraceId: $traceId, pFirst: 500) { nodes { ${EVENT_FIELDS} } }
    }`,
    { traceId },
    traceId,
  );
  return (
    <section aria-labelledby="trace-heading">
      <h1 id="trace-heading">
        Trace <Id value={traceId} label="trace id" />
      </h1>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading && <Loading what="the trace" />}
      {data && !data.getTraceSummary && <p className="empty">No trace with this id (or none you may see).</p>}
      {data?.getTraceSummary && (
        <>
          <TraceSummaryFacts summary={data.getTraceSummary} />
          <h2>Timeline</h2>
          <TraceTimeline traceId={traceId} />
          <h2>Events</h2>
          <EventTable
            events={data.getEventsByTrace.nodes}
            caption="Events of this trace, oldest first"
            selected={selected?.rowId}
            onSelect={(e) => setSelected(selected?.rowId === e.rowId ? null : e)}
          />
          {selected && <EventDetails event={selected} onClose={() => setSelected(null)} />}
        </>
      )}
    </section>
  );
}

/** A session: every trace in time order, what the user did request by request. */
export function SessionView({ sessionId }: { sessionId: string }) {
  const { data, error, loading } = useQuery<{ getSessionTraces: { nodes: TraceSummary[] } }>(
    `query Session($sessionId: UUID!) { getSessionTraces(pSessionId: $sessionId, pFirst: 500) { nodes { ${SUMMARY_FIELDS} } } }`,
    { sessionId },
    sessionId,
  );
  const traces = data?.getSessionTraces.nodes ?? [];
  return (
    <section aria-labelledby="session-heading">
      <h1 id="session-heading">
        Session <Id value={sessionId} label="session id" />
      </h1>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading && <Loading what="the session's traces" />}
      {data && traces.length === 0 && <p className="empty">No traces for this session (or none you may see).</p>}
      {traces.length > 0 && (
        <>
          <p className="muted">{traces.length} traces, oldest first.</p>
          <ol className="session-traces">
            {traces.map((trace) => (
              <li key={trace.traceId} className={trace.errorCount ? 'failed' : undefined} data-trace-id={trace.traceId}>
                <a {...linkProps(`/trace/${trace.traceId}`)} className="session-trace-link">
                  <span className="when">{formatTime(trace.startTime)}</span>
                  <span className="what">{trace.rootName ?? '(no root span)'}</span>
                  <span className="how-long">{formatDuration(trace.durationMs)}</span>
                  <span className="count">{trace.spanCount} spans</span>
                  <span className={trace.errorCount ? 'status status--error' : 'status'}>
                    {trace.errorCount ? `${trace.errorCount} errors` : 'ok'}
                  </span>
                </a>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

/** One correlation id: the user action's events and the trace they belong to. */
export function CorrelationView({ correlationId }: { correlationId: string }) {
  const { data, error, loading } = useQuery<{ getEventsByCorrelation: { nodes: ApiEvent[] } }>(
    `query Correlation($id: UUID!) { getEventsByCorrelation(pCorrelationId: $id, pFirst: 500) { nodes { ${EVENT_FIELDS} } } }`,
    { id: correlationId },
    correlationId,
  );
  const events = useMemo(() => [...(data?.getEventsByCorrelation.nodes ?? [])].reverse(), [data]);
  const traceIds = [...new Set(events.map((e) => e.traceId).filter((id): id is string => !!id))];
  const [selected, setSelected] = useState<ApiEvent | null>(null);
  const failed = events.find((e) => e.processingError);
  return (
    <section aria-labelledby="correlation-heading">
      <h1 id="correlation-heading">
        Correlation <Id value={correlationId} label="correlation id" />
      </h1>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading && <Loading what="events" />}
      {data && events.length === 0 && <p className="empty">No events with this correlation id (or none you may see).</p>}
      {events.length > 0 && (
        <>
          <p className="muted">
            {events.length} events, oldest first{failed ? `; failed: ${failed.eventType} (${failed.processingError})` : ''}.{' '}
            <a className="replay-link" {...linkProps(`/replay?correlation=${correlationId}`)}>
              Replay…
            </a>
          </p>
          <EventTable
            events={events}
            caption="Events of this correlation id, oldest first"
            selected={selected?.rowId}
            onSelect={(e) => setSelected(selected?.rowId === e.rowId ? null : e)}
          />
          {selected && <EventDetails event={selected} onClose={() => setSelected(null)} />}
          {traceIds.map((traceId) => (
            <section key={traceId} className="correlation-trace">
              <h2>
                Trace{' '}
                <a {...linkProps(`/trace/${traceId}`)}>
                  <code>{traceId}</code>
                </a>
              </h2>
              <TraceTimeline traceId={traceId} />
            </section>
          ))}
        </>
      )}
    </section>
  );
}
