// Two traces side by side, per service and operation (api.compare_traces):
// span counts, total and self time, and the self-time difference, largest
// first, drawn as a bar either side of zero. Trace a is the baseline (the
// Find traces page puts the quicker of the two picked traces there), so a
// slow checkout against a normal one reads as positive differences.
import { Id, Loading, QueryFailure } from './common.tsx';
import { formatDuration } from './format.ts';
import { useQuery } from './hooks.ts';

interface Row {
  service: string;
  operation: string;
  countA: number;
  countB: number;
  totalMsA: number;
  totalMsB: number;
  selfMsA: number;
  selfMsB: number;
  selfMsDifference: number;
  /** Trace a (b) has more spans or events than the timeline reads: only its earliest part is compared. */
  cutAtLimitA: boolean;
  cutAtLimitB: boolean;
}

/** The compare page's address for baseline trace `a` and trace `b`. */
export function compareLink(a: string, b: string): string {
  return `/compare?${new URLSearchParams({ a, b })}`;
}

/** A signed duration: "+120 ms", "−4.0 ms", "0 µs". */
function formatDifference(ms: number): string {
  if (ms === 0) return formatDuration(0);
  return `${ms > 0 ? '+' : '−'}${formatDuration(Math.abs(ms))}`;
}

export function CompareTraces({ params }: { params: URLSearchParams }) {
  const a = params.get('a') ?? '';
  const b = params.get('b') ?? '';
  const { data, error, loading } = useQuery<{ compareTraces: { nodes: Row[] } }>(
    `query Compare($a: String!, $b: String!) {
      compareTraces(pTraceA: $a, pTraceB: $b) { nodes { service operation countA countB totalMsA totalMsB selfMsA selfMsB selfMsDifference cutAtLimitA cutAtLimitB } }
    }`,
    { a, b },
    `${a}-${b}`,
  );
  return (
    <section aria-labelledby="compare-heading">
      <h1 id="compare-heading">Compare traces</h1>
      <dl className="compare-traces">
        <dt>A (baseline)</dt>
        <dd>
          <Id value={a} label="trace id A" href={`/trace/${a}`} />
        </dd>
        <dt>B</dt>
        <dd>
          <Id value={b} label="trace id B" href={`/trace/${b}`} />
        </dd>
      </dl>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading ? <Loading what="the comparison" /> : null}
      {data && <CutNote rows={data.compareTraces.nodes} />}
      {data && <CompareTable rows={data.compareTraces.nodes} />}
    </section>
  );
}

/** Which side was larger than the timeline reads, so compared only in part (the same on every row). */
function CutNote({ rows }: { rows: Row[] }) {
  const cut = [rows[0]?.cutAtLimitA && 'A', rows[0]?.cutAtLimitB && 'B'].filter(Boolean);
  if (cut.length === 0) return null;
  return (
    <p className="note trace-cut">
      {cut.length === 2 ? 'Traces A and B are' : `Trace ${cut[0]} is`} larger than the timeline reads: only the earliest 10,000 spans and
      10,000 events of {cut.length === 2 ? 'each' : 'it'} are compared.
    </p>
  );
}

function CompareTable({ rows }: { rows: Row[] }) {
  if (rows.length === 0) return <p className="empty">Neither trace has spans you may see.</p>;
  const sum = (pick: (r: Row) => number) => rows.reduce((total, r) => total + Number(pick(r)), 0);
  const widest = Math.max(1, ...rows.map((r) => Math.abs(r.selfMsDifference)));
  return (
    <div className="table-wrap">
      <table className="compare">
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">Operation</th>
            <th scope="col">Spans A</th>
            <th scope="col">Spans B</th>
            <th scope="col">Total A</th>
            <th scope="col">Total B</th>
            <th scope="col">Self A</th>
            <th scope="col">Self B</th>
            <th scope="col">Self B − A</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const difference = r.selfMsDifference;
            return (
              <tr key={`${r.service}\u0000${r.operation}`} data-operation={`${r.service} ${r.operation}`}>
                <td>{r.service}</td>
                <td>{r.operation}</td>
                <td className={r.countA !== r.countB ? 'changed' : undefined}>{r.countA}</td>
                <td className={r.countA !== r.countB ? 'changed' : undefined}>{r.countB}</td>
                <td>{formatDuration(r.totalMsA)}</td>
                <td>{formatDuration(r.totalMsB)}</td>
                <td>{formatDuration(r.selfMsA)}</td>
                <td>{formatDuration(r.selfMsB)}</td>
                <td className={difference > 0 ? 'slower' : difference < 0 ? 'faster' : undefined}>
                  <span className="difference-bar" aria-hidden="true">
                    <span
                      className={difference > 0 ? 'slower' : 'faster'}
                      style={{
                        width: `${(Math.abs(difference) / widest) * 50}%`,
                        left: difference >= 0 ? '50%' : `${50 - (Math.abs(difference) / widest) * 50}%`,
                      }}
                    />
                  </span>
                  <span className="difference">{formatDifference(difference)}</span>
                </td>
              </tr>
            );
          })}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colSpan={2}>
              All operations
            </th>
            <td>{sum((r) => r.countA)}</td>
            <td>{sum((r) => r.countB)}</td>
            <td />
            <td />
            <td>{formatDuration(sum((r) => r.selfMsA))}</td>
            <td>{formatDuration(sum((r) => r.selfMsB))}</td>
            <td className="difference">{formatDifference(sum((r) => r.selfMsDifference))}</td>
          </tr>
        </tfoot>
      </table>
    </div>
  );
}
