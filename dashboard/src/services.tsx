// The services of a time range: the service map drawn as a graph (callers
// left of callees), and RED metrics per service and operation (requests,
// error rate, p50/p95/p99) with two small charts over time: requests and
// errors, and the p50/p95/p99 duration of each bucket.
import { useState } from 'react';
import { Loading, QueryFailure } from './common.tsx';
import { formatDuration } from './format.ts';
import { useQuery } from './hooks.ts';
import { operationFlameGraphLink } from './operation-flame-graph.tsx';
import { linkProps } from './router.ts';
import { timeScale } from './time-scale.ts';

const RANGES: Array<[string, number]> = [
  ['Last hour', 60],
  ['Last 6 hours', 360],
  ['Last 24 hours', 1440],
];

interface Edge {
  parentService: string;
  childService: string;
  callCount: number;
  errorCount: number;
}

interface Red {
  bucketStart: string;
  service: string;
  operation: string;
  requests: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export function Services() {
  const [minutes, setMinutes] = useState(360);
  // Fixed when the range is picked, so the two queries read the same window.
  const [to] = useState(() => new Date().toISOString());
  const from = new Date(Date.parse(to) - minutes * 60_000).toISOString();
  const bucketSeconds = Math.max(60, Math.ceil((minutes * 60) / 60));
  const { data, error, loading } = useQuery<{ serviceMap: { nodes: Edge[] }; total: { nodes: Red[] }; series: { nodes: Red[] } }>(
    `query Services($from: Datetime!, $to: Datetime!, $bucket: Int!, $whole: Int!) {
      serviceMap(pFrom: $from, pTo: $to) { nodes { parentService childService callCount errorCount } }
      total: redMetrics(pFrom: $from, pTo: $to, pBucketSeconds: $whole) { nodes { bucketStart service operation requests errors p50Ms p95Ms p99Ms } }
      series: redMetrics(pFrom: $from, pTo: $to, pBucketSeconds: $bucket) { nodes { bucketStart service operation requests errors p50Ms p95Ms p99Ms } }
    }`,
    { from, to, bucket: bucketSeconds, whole: minutes * 60 },
    `${from}-${to}`,
  );
  return (
    <section aria-labelledby="services-heading">
      <h1 id="services-heading">Services</h1>
      <label className="range">
        Time range{' '}
        <select name="range" value={minutes} onChange={(e) => setMinutes(Number(e.target.value))}>
          {RANGES.map(([label, m]) => (
            <option key={m} value={m}>
              {label}
            </option>
          ))}
        </select>
      </label>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading ? <Loading what="the services" /> : null}
      {data && (
        <>
          <h2>Who calls whom</h2>
          {data.serviceMap.nodes.length === 0 ? (
            <p className="empty">No calls between services in this range.</p>
          ) : (
            <ServiceGraph edges={data.serviceMap.nodes} />
          )}
          <h2>Requests, errors and duration</h2>
          <RedTable totals={data.total.nodes} series={data.series.nodes} from={from} to={to} />
        </>
      )}
    </section>
  );
}

/** Services in columns by call depth (a caller left of its callees), edges labelled with calls and errors. */
function ServiceGraph({ edges }: { edges: Edge[] }) {
  const services = [...new Set(edges.flatMap((e) => [e.parentService, e.childService]))].sort();
  // Depth: the longest chain of callers above a service (cycles stop at the number of services).
  const depth = new Map(services.map((s) => [s, 0]));
  for (let round = 0; round < services.length; round++) {
    for (const e of edges)
      depth.set(e.childService, Math.max(depth.get(e.childService)!, Math.min(depth.get(e.parentService)! + 1, services.length)));
  }
  const columns = new Map<number, string[]>();
  for (const s of services) columns.set(depth.get(s)!, [...(columns.get(depth.get(s)!) ?? []), s]);
  const boxW = 150;
  const boxH = 36;
  const gapX = 170;
  const gapY = 30;
  const position = new Map<string, { x: number; y: number }>();
  for (const [column, names] of columns)
    names.forEach((s, row) => position.set(s, { x: column * (boxW + gapX) + 10, y: row * (boxH + gapY) + 10 }));
  const width = (Math.max(...columns.keys()) + 1) * (boxW + gapX);
  const height = Math.max(...[...columns.values()].map((c) => c.length)) * (boxH + gapY) + 20;
  return (
    <svg
      className="service-graph"
      viewBox={`0 0 ${width} ${height}`}
      style={{ width, maxWidth: '100%' }}
      role="img"
      aria-label="Service map"
    >
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" />
        </marker>
      </defs>
      {edges.map((e) => {
        const a = position.get(e.parentService)!;
        const b = position.get(e.childService)!;
        const x1 = a.x + boxW;
        const y1 = a.y + boxH / 2;
        const x2 = b.x;
        const y2 = b.y + boxH / 2;
        return (
          <g
            key={`${e.parentService}>${e.childService}`}
            className={e.errorCount ? 'edge failed' : 'edge'}
            data-edge={`${e.parentService}>${e.childService}`}
          >
            <line x1={x1} y1={y1} x2={x2} y2={y2} markerEnd="url(#arrow)" />
            <text x={(x1 + x2) / 2} y={(y1 + y2) / 2 - 4} textAnchor="middle">
              {e.callCount} calls{e.errorCount ? `, ${e.errorCount} failed` : ''}
            </text>
          </g>
        );
      })}
      {services.map((s) => {
        const p = position.get(s)!;
        return (
          <g key={s} className="service-node" data-service={s}>
            <rect x={p.x} y={p.y} width={boxW} height={boxH} rx={6} />
            <text x={p.x + boxW / 2} y={p.y + boxH / 2 + 4} textAnchor="middle">
              {s}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** One row per service and operation over the whole range, with requests and errors per bucket as bars and its durations as lines. */
function RedTable({ totals, series, from, to }: { totals: Red[]; series: Red[]; from: string; to: string }) {
  if (totals.length === 0) return <p className="empty">No requests in this range.</p>;
  const key = (r: Red) => `${r.service}\u0000${r.operation}`;
  const buckets = new Map<string, Red[]>();
  for (const r of series) buckets.set(key(r), [...(buckets.get(key(r)) ?? []), r]);
  // The duration charts share one time axis from the first bucket with requests, so rows line up.
  const firstBucket = series.length ? new Date(Math.min(...series.map((r) => Date.parse(r.bucketStart)))).toISOString() : from;
  return (
    <div className="table-wrap">
      <table className="red">
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">Operation</th>
            <th scope="col">Requests</th>
            <th scope="col">Error rate</th>
            <th scope="col">p50</th>
            <th scope="col">p95</th>
            <th scope="col">p99</th>
            <th scope="col">Over time</th>
            <th scope="col">
              Duration over time (<span className="p50">p50</span>, <span className="p95">p95</span>, <span className="p99">p99</span>)
            </th>
          </tr>
        </thead>
        <tbody>
          {totals.map((t) => {
            const requests = Number(t.requests);
            const errors = Number(t.errors);
            const bars = buckets.get(key(t)) ?? [];
            const most = Math.max(1, ...bars.map((b) => Number(b.requests)));
            return (
              <tr key={key(t)} data-operation={`${t.service} ${t.operation}`}>
                <td>{t.service}</td>
                <td>
                  {t.operation}{' '}
                  <a className="flame-link" {...linkProps(operationFlameGraphLink(t.service, t.operation, from, to))}>
                    flame graph
                  </a>
                </td>
                <td>{requests}</td>
                <td className={errors ? 'failed' : undefined}>{((errors / requests) * 100).toFixed(1)} %</td>
                <td>{formatDuration(t.p50Ms)}</td>
                <td>{formatDuration(t.p95Ms)}</td>
                <td>{formatDuration(t.p99Ms)}</td>
                <td>
                  <svg
                    className="sparkline"
                    viewBox={`0 0 ${Math.max(bars.length, 1) * 6} 24`}
                    role="img"
                    aria-label={`${requests} requests, ${errors} errors over time`}
                  >
                    {bars.map((b, i) => (
                      <g key={b.bucketStart}>
                        <rect
                          x={i * 6}
                          y={24 - (Number(b.requests) / most) * 24}
                          width={5}
                          height={(Number(b.requests) / most) * 24}
                          className="requests"
                        />
                        <rect
                          x={i * 6}
                          y={24 - (Number(b.errors) / most) * 24}
                          width={5}
                          height={(Number(b.errors) / most) * 24}
                          className="errors"
                        />
                      </g>
                    ))}
                  </svg>
                </td>
                <td>
                  <DurationChart buckets={bars} from={firstBucket} to={to} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

const PERCENTILES = ['p50Ms', 'p95Ms', 'p99Ms'] as const;

/**
 * p50, p95 and p99 of each bucket as three lines, placed by the bucket's
 * start in [from, to) so a quiet stretch shows as a longer segment, on
 * one scale from zero to the largest p99 (which the label names).
 */
function DurationChart({ buckets, from, to }: { buckets: Red[]; from: string; to: string }) {
  const width = 160;
  const height = 32;
  const at = timeScale(from, to, width);
  const slowest = Math.max(...buckets.map((b) => b.p99Ms), 0);
  const x = (b: Red) => at(b.bucketStart).toFixed(1);
  const y = (ms: number) => (height - (slowest > 0 ? (ms / slowest) * (height - 2) : 0)).toFixed(1);
  return (
    <svg
      className="duration-chart"
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`p50, p95 and p99 duration over time, up to ${formatDuration(slowest)}`}
    >
      {PERCENTILES.map((p) => (
        <polyline
          key={p}
          className={p.slice(0, 3)}
          data-percentile={p.slice(0, 3)}
          points={buckets.map((b) => `${x(b)},${y(b[p])}`).join(' ')}
          vectorEffect="non-scaling-stroke"
        />
      ))}
    </svg>
  );
}
