// Replay: "this request failed; we fixed the bug; run it again". The page
// shows a correlation's (or trace's) events as the replay set, which of them
// a run would queue (the dry run), starts a run with a reason, and follows
// it: each event's original outcome beside the replayed one, refreshed
// while the run is in progress. Everything is decided in SQL
// (db/functions/230-replay.sql); the page only asks and draws.
import { useEffect, useState, type FormEvent } from 'react';
import { graphql, type ApiEvent } from './api.ts';
import { Id, Loading, QueryFailure } from './common.tsx';
import { formatTime } from './format.ts';
import { useQuery } from './hooks.ts';
import { linkProps, navigate } from './router.ts';

interface ReplayEvent {
  position: number;
  eventId: string;
  eventType: string;
  createdAt: string;
  processingState: string;
  processingError: string | null;
  spanName: string | null;
  spanService: string | null;
  traceId: string | null;
  willReplay: boolean;
  archived: boolean;
}

interface ReplayRun {
  rowId: string;
  reason: string;
  startedBy: string;
  startedAt: string;
  status: string;
  finishedAt: string | null;
  cancelledBy: string | null;
  traceId: string;
  selector: Record<string, unknown>;
  eventCount: number;
  pendingCount: number;
  claimedCount: number;
  processedCount: number;
  failedCount: number;
  cancelledCount: number;
}

interface ReplayItem {
  position: number;
  eventId: string;
  eventType: string | null;
  eventCreatedAt: string | null;
  traceId: string | null;
  originalState: string;
  originalError: string | null;
  state: string;
  attempts: number;
  claimedBy: string | null;
  settledAt: string | null;
  error: string | null;
  /** Null when the event is gone (purged from the archive). */
  archived: boolean | null;
}

const SET_FIELDS = 'position eventId eventType createdAt processingState processingError spanName spanService traceId willReplay archived';
const RUN_FIELDS =
  'rowId reason startedBy startedAt status finishedAt cancelledBy traceId selector eventCount pendingCount claimedCount processedCount failedCount cancelledCount';
const ITEM_FIELDS =
  'position eventId eventType eventCreatedAt traceId originalState originalError state attempts claimedBy settledAt error archived';
const PROGRESS_EVERY_MS = 1000;

/** A link to the replay view of an event's correlation (or, without one, its trace). */
export function replayLink(event: Pick<ApiEvent, 'correlationId' | 'traceId'>): string | null {
  if (event.correlationId) return `/replay?correlation=${event.correlationId}`;
  if (event.traceId) return `/replay?trace=${event.traceId}`;
  return null;
}

/** /replay?correlation=… or ?trace=…: the set and its dry run; /replay alone: the runs. */
export function ReplayView({ params }: { params: URLSearchParams }) {
  const correlation = params.get('correlation');
  const trace = params.get('trace');
  if (!correlation && !trace) return <ReplayRuns />;
  return <ReplaySet key={`${correlation}|${trace}`} correlation={correlation} trace={trace} />;
}

function ReplaySet({ correlation, trace }: { correlation: string | null; trace: string | null }) {
  const [includeProcessed, setIncludeProcessed] = useState(false);
  const [reason, setReason] = useState('');
  const [starting, setStarting] = useState<{ error?: unknown; busy?: boolean }>({});
  const query = correlation
    ? `query ($id: UUID!, $all: Boolean) { set: getReplaySet(pCorrelationId: $id, pIncludeProcessed: $all) { nodes { ${SET_FIELDS} } } }`
    : `query ($id: String!, $all: Boolean) { set: getReplaySetByTrace(pTraceId: $id, pIncludeProcessed: $all) { nodes { ${SET_FIELDS} } } }`;
  const id = correlation ?? trace!;
  const { data, error, loading } = useQuery<{ set: { nodes: ReplayEvent[] } }>(
    query,
    { id, all: includeProcessed },
    `${id}|${includeProcessed}`,
  );
  const events = data?.set.nodes ?? [];
  const queued = events.filter((e) => e.willReplay).length;

  const start = async (event: FormEvent) => {
    event.preventDefault();
    setStarting({ busy: true });
    try {
      const result = await graphql<{ startReplay: { result: ReplayRun } }>(
        `
          mutation ($correlation: UUID, $trace: String, $reason: String!, $all: Boolean) {
            startReplay(input: { pCorrelationId: $correlation, pTraceId: $trace, pReason: $reason, pIncludeProcessed: $all }) {
              result {
                rowId
              }
            }
          }
        `,
        { correlation, trace, reason, all: includeProcessed },
      );
      navigate(`/replay/run/${result.startReplay.result.rowId}`);
    } catch (failure) {
      setStarting({ error: failure });
    }
  };

  return (
    <section aria-labelledby="replay-heading">
      <h1 id="replay-heading">
        Replay {correlation ? 'correlation' : 'trace'} <Id value={id} label={correlation ? 'correlation id' : 'trace id'} />
      </h1>
      <p className="muted">
        The events in the order they happened, with how their processing went. A run queues the failed and never-processed ones again, in
        this order, for the application&apos;s processors.
      </p>
      <label className="replay-include">
        <input type="checkbox" checked={includeProcessed} onChange={(e) => setIncludeProcessed(e.currentTarget.checked)} /> Replay processed
        events too
      </label>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading && <Loading what="the replay set" />}
      {data && events.length === 0 && <p className="empty">No events here (or none you may see).</p>}
      {events.length > 0 && (
        <div className="table-wrap">
          <table className="events replay-set">
            <caption>
              Dry run: {queued} of {events.length} events would be replayed
            </caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Time</th>
                <th scope="col">Event type</th>
                <th scope="col">State</th>
                <th scope="col">Emitted by</th>
                <th scope="col">Replay</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.eventId} className={e.processingState === 'failed' ? 'failed' : undefined} data-will-replay={e.willReplay}>
                  <td>{e.position}</td>
                  <td>{formatTime(e.createdAt)}</td>
                  <td>
                    {e.eventType}
                    {e.archived && <ArchivedTag />}
                  </td>
                  <td>
                    <StateBadge state={e.processingState} />
                    {e.processingError && <div className="error-text">{e.processingError}</div>}
                  </td>
                  <td>{e.spanName ? `${e.spanName} (${e.spanService})` : <span className="muted">no recorded span</span>}</td>
                  <td>{e.willReplay ? 'yes' : <span className="muted">no</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {queued > 0 && (
        <form className="replay-start" onSubmit={(e) => void start(e)}>
          <label>
            Why replay (kept with the run)
            <input
              type="text"
              name="reason"
              value={reason}
              onChange={(e) => setReason(e.currentTarget.value)}
              placeholder="e.g. card bug fixed in 4.2.1"
              required
            />
          </label>
          <button type="submit" disabled={starting.busy || !reason.trim()}>
            Replay {queued} events
          </button>
        </form>
      )}
      {starting.error ? <QueryFailure error={starting.error} /> : null}
      <p>
        <a {...linkProps('/replay')}>All replay runs</a>
      </p>
    </section>
  );
}

function ReplayRuns() {
  const { data, error, loading } = useQuery<{ getReplayRuns: { nodes: ReplayRun[] } }>(
    `{ getReplayRuns(pFirst: 100) { nodes { ${RUN_FIELDS} } } }`,
    {},
    'runs',
  );
  const runs = data?.getReplayRuns.nodes ?? [];
  return (
    <section aria-labelledby="runs-heading">
      <h1 id="runs-heading">Replay runs</h1>
      <p className="muted">Start a replay from a correlation or a failed event (its Replay link).</p>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading && <Loading what="replay runs" />}
      {data && runs.length === 0 && <p className="empty">No replay runs yet.</p>}
      {runs.length > 0 && (
        <div className="table-wrap">
          <table className="events replay-runs">
            <caption className="visually-hidden">Replay runs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Started</th>
                <th scope="col">By</th>
                <th scope="col">Why</th>
                <th scope="col">Status</th>
                <th scope="col">Processed / failed / events</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((run) => (
                <tr key={run.rowId}>
                  <td>
                    <a {...linkProps(`/replay/run/${run.rowId}`)}>#{run.rowId}</a>
                  </td>
                  <td>{formatTime(run.startedAt)}</td>
                  <td>{run.startedBy}</td>
                  <td>{run.reason}</td>
                  <td>{run.status}</td>
                  <td>
                    {run.processedCount} / {run.failedCount} / {run.eventCount}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** /replay/run/:id: the run and its events, original beside replayed, refreshed while it runs. */
export function ReplayRunView({ runId }: { runId: string }) {
  const [state, setState] = useState<{ run?: ReplayRun | null; items?: ReplayItem[]; error?: unknown }>({});
  const [cancelError, setCancelError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    graphql<{ getReplayRun: ReplayRun | null; getReplayItems: { nodes: ReplayItem[] } }>(
      `query ($id: BigInt!) { getReplayRun(pRunId: $id) { ${RUN_FIELDS} } getReplayItems(pRunId: $id) { nodes { ${ITEM_FIELDS} } } }`,
      { id: runId },
      undefined,
      controller.signal,
    ).then(
      (data) => !controller.signal.aborted && setState({ run: data.getReplayRun, items: data.getReplayItems.nodes }),
      (error) => !controller.signal.aborted && setState((s) => ({ ...s, error })),
    );
    return () => controller.abort();
  }, [runId, tick]);
  // Live progress: ask again while the run is in progress.
  const running = state.run?.status === 'running';
  useEffect(() => {
    if (!running) return;
    const timer = setTimeout(() => setTick((t) => t + 1), PROGRESS_EVERY_MS);
    return () => clearTimeout(timer);
  }, [running, state]);

  const cancel = async () => {
    setCancelError(null);
    try {
      await graphql(
        `
          mutation ($id: BigInt!) {
            cancelReplay(input: { pRunId: $id }) {
              result {
                status
              }
            }
          }
        `,
        { id: runId },
      );
      setTick((t) => t + 1);
    } catch (error) {
      setCancelError(error);
    }
  };

  const { run, items = [] } = state;
  return (
    <section aria-labelledby="run-heading">
      <h1 id="run-heading">Replay run #{runId}</h1>
      {state.error ? <QueryFailure error={state.error} /> : null}
      {run === undefined && !state.error && <Loading what="the replay run" />}
      {run === null && <p className="empty">No replay run with this id (or none you may see).</p>}
      {run && (
        <>
          <dl className="facts replay-facts">
            <dt>Status</dt>
            <dd data-run-status={run.status}>
              {run.status}
              {running && (
                <button type="button" className="secondary replay-cancel" onClick={() => void cancel()}>
                  Cancel run
                </button>
              )}
            </dd>
            <dt>Why</dt>
            <dd>{run.reason}</dd>
            <dt>Started</dt>
            <dd>
              {formatTime(run.startedAt)} by {run.startedBy}
            </dd>
            {run.finishedAt && (
              <>
                <dt>{run.status === 'cancelled' ? 'Cancelled' : 'Finished'}</dt>
                <dd>
                  {formatTime(run.finishedAt)}
                  {run.cancelledBy ? ` by ${run.cancelledBy}` : ''}
                </dd>
              </>
            )}
            <dt>Progress</dt>
            <dd className="replay-progress">
              {run.processedCount} processed, {run.failedCount} failed, {run.pendingCount + run.claimedCount} to go
              {run.cancelledCount ? `, ${run.cancelledCount} cancelled` : ''} of {run.eventCount}
            </dd>
            <dt>The run&apos;s trace</dt>
            <dd>
              <a {...linkProps(`/trace/${run.traceId}`)}>{run.traceId}</a>
            </dd>
          </dl>
          {cancelError ? <QueryFailure error={cancelError} /> : null}
          <div className="table-wrap">
            <table className="events replay-items">
              <caption>Each event&apos;s original outcome beside the replayed one</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Event type</th>
                  <th scope="col">Original</th>
                  <th scope="col">Replayed</th>
                  <th scope="col">Trace</th>
                </tr>
              </thead>
              <tbody>
                {items.map((item) => (
                  <tr key={item.position} data-position={item.position}>
                    <td>{item.position}</td>
                    <td>
                      {item.eventType ?? <span className="muted">(event purged)</span>}
                      {item.archived && <ArchivedTag />}
                    </td>
                    <td className="replay-original">
                      <StateBadge state={item.originalState} />
                      {item.originalError && <div className="error-text">{item.originalError}</div>}
                    </td>
                    <td className="replay-outcome">
                      <StateBadge state={item.state} />
                      {item.error && <div className="error-text">{item.error}</div>}
                      {item.claimedBy && <div className="muted">by {item.claimedBy}</div>}
                    </td>
                    <td>{item.traceId && <a {...linkProps(`/trace/${item.traceId}`)}>{item.traceId.slice(0, 8)}…</a>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

interface TraceReplay {
  relation: 'replay_of' | 'replayed_by';
  runId: string;
  runStatus: string;
  runStartedAt: string;
  runReason: string;
  traceId: string;
}

/**
 * The replays of a trace, drawn with its timeline: on a replay run's own
 * trace, the traces it replayed (its root span's links); on a replayed
 * trace, the runs that replayed it. Nothing when there are none.
 */
export function TraceReplays({ traceId }: { traceId: string }) {
  const { data } = useQuery<{ getTraceReplays: { nodes: TraceReplay[] } }>(
    `query ($traceId: String!) { getTraceReplays(pTraceId: $traceId) {
      nodes { relation runId runStatus runStartedAt runReason traceId } } }`,
    { traceId },
    traceId,
  );
  const replays = data?.getTraceReplays.nodes ?? [];
  if (replays.length === 0) return null;
  return (
    <ul className="trace-replays" aria-label="Replays of this trace">
      {replays.map((r) =>
        r.relation === 'replay_of' ? (
          <li key={`of:${r.runId}:${r.traceId}`} data-relation="replay_of">
            ↩ Replay of trace{' '}
            <a {...linkProps(`/trace/${r.traceId}`)} data-trace-id={r.traceId}>
              <code>{r.traceId}</code>
            </a>{' '}
            by <a {...linkProps(`/replay/run/${r.runId}`)}>run #{r.runId}</a>: {r.runReason}
          </li>
        ) : (
          <li key={`by:${r.runId}`} data-relation="replayed_by">
            ↪ Replayed by <a {...linkProps(`/replay/run/${r.runId}`)}>run #{r.runId}</a> ({r.runStatus}, {formatTime(r.runStartedAt)}):{' '}
            {r.runReason}; its trace{' '}
            <a {...linkProps(`/trace/${r.traceId}`)} data-trace-id={r.traceId}>
              <code>{r.traceId}</code>
            </a>
          </li>
        ),
      )}
    </ul>
  );
}

/** Marks an event that retention moved to the archive; it is replayed all the same. */
function ArchivedTag() {
  return (
    <>
      {' '}
      <span className="tag" data-archived="true" title="This event lives in the archive; it is replayed all the same">
        archived
      </span>
    </>
  );
}

function StateBadge({ state }: { state: string }) {
  const failed = state === 'failed';
  return (
    <span className={failed ? 'badge badge--error' : 'badge'} data-state={state}>
      {state.replace('_', ' ')}
    </span>
  );
}
