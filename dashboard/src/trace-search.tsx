// Find traces, the way Jaeger's first page does: service and operation
// pickers filled from the data, attribute rows, duration bounds, status, a
// time range, or a TraceQL query; results as a list and a duration-over-time
// scatter plot whose points open the trace; two picked results open their
// comparison. The form lives in the URL, so a search can be shared.
import { useState, type FormEvent } from 'react';
import { Loading, QueryFailure } from './common.tsx';
import { compareLink } from './compare.tsx';
import { formatDuration, formatTime } from './format.ts';
import { useQuery } from './hooks.ts';
import { useLiveNewTraces } from './live.ts';
import { linkProps, liveToggleLink, navigate } from './router.ts';
import { timeScale } from './time-scale.ts';

const RANGES: Array<[string, number]> = [
  ['Last 15 minutes', 15],
  ['Last hour', 60],
  ['Last 6 hours', 360],
  ['Last 24 hours', 1440],
  ['Last 7 days', 10080],
];
const OPERATORS = ['=', '!=', '<', '<=', '>', '>=', '=~', '!~', 'exists', 'not_exists'] as const;

interface FoundTrace {
  traceId: string;
  rootService: string | null;
  rootName: string | null;
  startTime: string;
  durationMs: number;
  spanCount: number;
  errorCount: number;
  matchedSpans: Array<{ span_id: string; name: string; service: string; status: string; duration_ms: number }>;
}

interface AttributeRow {
  key: string;
  op: (typeof OPERATORS)[number];
  value: string;
}

const FOUND_FIELDS = 'traceId rootService rootName startTime durationMs spanCount errorCount matchedSpans';

/** The search as URL parameters: what the form shows and what runs. */
function readParams(params: URLSearchParams) {
  return {
    minutes: Number(params.get('minutes') ?? 360),
    service: params.get('service') ?? '',
    operation: params.get('operation') ?? '',
    status: params.get('status') ?? '',
    minMs: params.get('minMs') ?? '',
    maxMs: params.get('maxMs') ?? '',
    attributes: params.getAll('attr').map((a) => JSON.parse(a) as AttributeRow),
    traceql: params.get('traceql') ?? '',
    // The window is fixed when the search is submitted, so a shared link finds the same traces.
    to: params.get('to') ?? '',
  };
}

type Search = ReturnType<typeof readParams>;

/** A value typed in a form: a number where it reads as one. */
function typed(value: string): string | number | boolean {
  if (value === 'true' || value === 'false') return value === 'true';
  return value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value;
}

/** The structured filter of api.find_traces for the form's fields. */
export function filterOf(search: Search, from: string, to: string): Record<string, unknown> {
  const conditions: unknown[] = [];
  if (search.service) conditions.push({ field: 'service', op: '=', value: search.service });
  if (search.operation) conditions.push({ field: 'name', op: '=', value: search.operation });
  if (search.status) conditions.push({ field: 'status', op: '=', value: search.status });
  if (search.minMs) conditions.push({ field: 'duration_ms', op: '>=', value: Number(search.minMs) });
  if (search.maxMs) conditions.push({ field: 'duration_ms', op: '<=', value: Number(search.maxMs) });
  for (const row of search.attributes) {
    if (!row.key) continue;
    conditions.push(
      row.op === 'exists' || row.op === 'not_exists'
        ? { attribute: row.key, op: row.op }
        : { attribute: row.key, op: row.op, value: typed(row.value) },
    );
  }
  const filter: Record<string, unknown> = { from, to, spans_per_trace: 5 };
  if (conditions.length) filter.traces = { spans: conditions.length === 1 ? conditions[0] : { and: conditions } };
  return filter;
}

export function TraceSearch({ params }: { params: URLSearchParams }) {
  const search = readParams(params);
  const submitted = search.to !== '';
  // Live: the window ends now, and moves on each time new traces arrive.
  const live = submitted && params.get('live') === '1';
  const [now, setNow] = useState(() => new Date().toISOString());
  const liveState = useLiveNewTraces(live, () => setNow(new Date().toISOString()));
  const to = submitted && !live ? search.to : now;
  const from = new Date(Date.parse(to) - search.minutes * 60_000).toISOString();

  return (
    <section aria-labelledby="search-heading">
      <h1 id="search-heading">Find traces</h1>
      <SearchForm search={search} />
      {submitted && (
        <label className="live-toggle">
          <input
            type="checkbox"
            checked={live}
            onChange={(event) => navigate(liveToggleLink('/traces', params, event.currentTarget.checked))}
          />{' '}
          Live{' '}
          {live && (
            <span className={`live-state live-state--${liveState}`} role="status" data-live-state={liveState}>
              {liveState === 'live' ? 'new traces appear as they arrive' : liveState === 'retrying' ? 'reconnecting…' : 'connecting…'}
            </span>
          )}
        </label>
      )}
      {submitted && <SearchResults search={search} from={from} to={to} />}
    </section>
  );
}

function SearchForm({ search }: { search: Search }) {
  const [form, setForm] = useState(search);
  const windowFrom = new Date(Date.now() - form.minutes * 60_000).toISOString();
  const operations = useQuery<{ listOperations: { nodes: Array<{ service: string; operation: string }> } }>(
    `query Operations($from: Datetime!, $to: Datetime!) { listOperations(pFrom: $from, pTo: $to) { nodes { service operation } } }`,
    { from: windowFrom, to: new Date().toISOString() },
    `operations-${form.minutes}`,
  );
  const all = operations.data?.listOperations.nodes ?? [];
  const services = [...new Set(all.map((o) => o.service))];
  const ops = all.filter((o) => o.service === form.service).map((o) => o.operation);
  const set = (patch: Partial<Search>) => setForm({ ...form, ...patch });
  const setRow = (i: number, patch: Partial<AttributeRow>) =>
    set({ attributes: form.attributes.map((row, j) => (j === i ? { ...row, ...patch } : row)) });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const params = new URLSearchParams({ minutes: String(form.minutes), to: new Date().toISOString() });
    for (const key of ['service', 'operation', 'status', 'minMs', 'maxMs', 'traceql'] as const) if (form[key]) params.set(key, form[key]);
    for (const row of form.attributes) if (row.key) params.append('attr', JSON.stringify(row));
    navigate(`/traces?${params}`);
  };

  return (
    <form className="trace-search" onSubmit={submit} aria-label="Find traces">
      <div className="fields">
        <label>
          Time range
          <select name="range" value={form.minutes} onChange={(e) => set({ minutes: Number(e.target.value) })}>
            {RANGES.map(([label, minutes]) => (
              <option key={minutes} value={minutes}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Service
          <select name="service" value={form.service} onChange={(e) => set({ service: e.target.value, operation: '' })}>
            <option value="">Any service</option>
            {services.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Operation
          <select name="operation" value={form.operation} onChange={(e) => set({ operation: e.target.value })} disabled={!form.service}>
            <option value="">Any operation</option>
            {ops.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select name="status" value={form.status} onChange={(e) => set({ status: e.target.value })}>
            <option value="">Any status</option>
            <option value="error">error</option>
            <option value="ok">ok</option>
            <option value="unset">unset</option>
          </select>
        </label>
        <label>
          Min duration (ms)
          <input name="minMs" type="number" min={0} value={form.minMs} onChange={(e) => set({ minMs: e.target.value })} />
        </label>
        <label>
          Max duration (ms)
          <input name="maxMs" type="number" min={0} value={form.maxMs} onChange={(e) => set({ maxMs: e.target.value })} />
        </label>
      </div>
      <fieldset className="attributes">
        <legend>Attributes</legend>
        {form.attributes.map((row, i) => (
          <div className="attribute-row" key={i}>
            <input
              aria-label="Attribute key"
              placeholder="http.route"
              value={row.key}
              onChange={(e) => setRow(i, { key: e.target.value })}
            />
            <select aria-label="Operator" value={row.op} onChange={(e) => setRow(i, { op: e.target.value as AttributeRow['op'] })}>
              {OPERATORS.map((op) => (
                <option key={op}>{op}</option>
              ))}
            </select>
            <input
              aria-label="Attribute value"
              placeholder="value"
              value={row.value}
              disabled={row.op === 'exists' || row.op === 'not_exists'}
              onChange={(e) => setRow(i, { value: e.target.value })}
            />
            <button
              type="button"
              className="secondary"
              aria-label="Remove attribute"
              onClick={() => set({ attributes: form.attributes.filter((_, j) => j !== i) })}
            >
              ×
            </button>
          </div>
        ))}
        <button
          type="button"
          className="secondary"
          onClick={() => set({ attributes: [...form.attributes, { key: '', op: '=', value: '' }] })}
        >
          Add attribute
        </button>
      </fieldset>
      <label className="traceql">
        TraceQL (used instead of the fields above when given)
        <input
          name="traceql"
          placeholder='{ resource.service.name = "checkout" } >> { status = error }'
          value={form.traceql}
          spellCheck={false}
          onChange={(e) => set({ traceql: e.target.value })}
        />
      </label>
      <button type="submit">Find traces</button>
    </form>
  );
}

function SearchResults({ search, from, to }: { search: Search; from: string; to: string }) {
  const byTraceql = search.traceql.trim() !== '';
  const query = byTraceql
    ? `query Find($q: String!, $from: Datetime!, $to: Datetime!) { found: findTracesByTraceql(pQuery: $q, pFrom: $from, pTo: $to, pFirst: 100) { nodes { ${FOUND_FIELDS} } } }`
    : `query Find($filter: JSON!) { found: findTraces(pFilter: $filter, pFirst: 100) { nodes { ${FOUND_FIELDS} } } }`;
  const variables = byTraceql ? { q: search.traceql, from, to } : { filter: filterOf(search, from, to) };
  const { data, error, loading } = useQuery<{ found: { nodes: FoundTrace[] } }>(query, variables, JSON.stringify(variables));
  // Picked for comparison, oldest pick first; a third pick replaces the oldest.
  const [picked, setPicked] = useState<string[]>([]);
  const togglePick = (traceId: string) =>
    setPicked(picked.includes(traceId) ? picked.filter((id) => id !== traceId) : [...picked, traceId].slice(-2));
  if (error) return <QueryFailure error={error} />;
  if (!data) return loading ? <Loading what="the traces" /> : null;
  const traces = data.found.nodes;
  if (traces.length === 0) return <p className="empty">No traces match (or none you may see).</p>;
  return (
    <>
      <Scatter traces={traces} from={from} to={to} />
      <p className="muted">
        {traces.length} traces{traces.length === 100 ? ' (the newest 100)' : ''}, newest first. Pick two to compare them.
      </p>
      {/* A picked trace that a live refresh moved out of the results is left out. */}
      <ComparePicked picked={traces.filter((t) => picked.includes(t.traceId))} />
      <ol className="found-traces">
        {traces.map((t) => (
          <li key={t.traceId} className={t.errorCount ? 'failed' : undefined}>
            <label className="compare-pick">
              <input
                type="checkbox"
                aria-label={`Compare ${t.traceId}`}
                checked={picked.includes(t.traceId)}
                onChange={() => togglePick(t.traceId)}
              />{' '}
              compare
            </label>{' '}
            <a {...linkProps(`/trace/${t.traceId}`)}>
              <strong>
                {t.rootService ?? '?'}: {t.rootName ?? '(no root span)'}
              </strong>
            </a>{' '}
            <span className="muted">
              {formatTime(t.startTime)} · {formatDuration(t.durationMs)} · {t.spanCount} spans
              {t.errorCount ? ` · ${t.errorCount} errors` : ''}
            </span>
            {t.matchedSpans.length > 0 && (
              <div className="matched">
                matched: {t.matchedSpans.map((s) => `${s.service} ${s.name}${s.status === 'error' ? ' (error)' : ''}`).join(', ')}
              </div>
            )}
          </li>
        ))}
      </ol>
    </>
  );
}

/** The button that compares the two picked traces, the quicker one as the baseline. */
function ComparePicked({ picked }: { picked: FoundTrace[] }) {
  if (picked.length < 2) return null;
  const [quick, slow] = [...picked].sort((x, y) => x.durationMs - y.durationMs) as [FoundTrace, FoundTrace];
  return (
    <p className="compare-picked">
      <button type="button" onClick={() => navigate(compareLink(quick.traceId, slow.traceId))}>
        Compare {formatDuration(slow.durationMs)} against {formatDuration(quick.durationMs)}
      </button>
    </p>
  );
}

/** Duration over start time; a point opens its trace. */
function Scatter({ traces, from, to }: { traces: FoundTrace[]; from: string; to: string }) {
  const width = 800;
  const height = 180;
  const at = timeScale(from, to, width);
  const longest = Math.max(...traces.map((t) => t.durationMs), 1);
  return (
    <svg className="scatter" viewBox={`0 0 ${width} ${height + 20}`} role="img" aria-label="Trace duration over time">
      <line x1={0} y1={height} x2={width} y2={height} className="axis" />
      <text x={0} y={height + 16} className="tick">
        {formatTime(from)}
      </text>
      <text x={width} y={height + 16} className="tick" textAnchor="end">
        {formatTime(to)}
      </text>
      <text x={4} y={12} className="tick">
        {formatDuration(longest)}
      </text>
      {traces.map((t) => (
        <circle
          key={t.traceId}
          data-trace-id={t.traceId}
          className={t.errorCount ? 'point failed' : 'point'}
          cx={at(t.startTime)}
          cy={height - (t.durationMs / longest) * (height - 16)}
          r={5}
          onClick={() => navigate(`/trace/${t.traceId}`)}
        >
          <title>
            {t.rootName}: {formatDuration(t.durationMs)}
          </title>
        </circle>
      ))}
    </svg>
  );
}
