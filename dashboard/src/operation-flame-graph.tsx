// Where one operation spends its time in general: its call paths summed
// over the traces of a time range (api.operation_flame_graph, in SQL), drawn
// as a flame graph. Reached from the Services page.
import { useMemo } from 'react';
import { Loading, QueryFailure } from './common.tsx';
import { FlameGraph, type FlameBar } from './flame-graph.tsx';
import { pathsToFlameRows, type FlamePath } from './flame-graph-layout.ts';
import { formatDuration, formatTime } from './format.ts';
import { useQuery } from './hooks.ts';
import { linkProps } from './router.ts';

/** The page's address for an operation over [from, to). */
export function operationFlameGraphLink(service: string, operation: string, from: string, to: string): string {
  return `/flame?${new URLSearchParams({ service, operation, from, to })}`;
}

export function OperationFlameGraph({ params }: { params: URLSearchParams }) {
  const service = params.get('service') ?? '';
  const operation = params.get('operation') ?? '';
  const from = params.get('from') ?? '';
  const to = params.get('to') ?? '';
  const { data, error, loading } = useQuery<{ operationFlameGraph: { nodes: FlamePath[] } }>(
    `query OperationFlameGraph($from: Datetime!, $to: Datetime!, $service: String!, $operation: String!) {
      operationFlameGraph(pFrom: $from, pTo: $to, pService: $service, pOperation: $operation) {
        nodes { path depth calls traces totalMs selfMs errorCount }
      }
    }`,
    { from, to, service, operation },
    params.toString(),
  );
  const paths = data?.operationFlameGraph.nodes;
  const bars = useMemo(
    () =>
      pathsToFlameRows(paths ?? []).map((row, i): FlameBar => {
        const [rowService, ...rest] = row.path.path.at(-1)!.split(': ');
        const calls = Number(row.path.calls);
        const errors = Number(row.path.errorCount);
        return {
          key: String(i),
          name: rest.join(': '),
          service: rowService ?? null,
          depth: row.depth,
          offsetMs: row.offsetMs,
          durationMs: Number(row.path.totalMs),
          selfTimeMs: Number(row.path.selfMs),
          failed: errors > 0,
          note: `${calls} calls in ${row.path.traces} traces${errors ? `, ${errors} failed` : ''}`,
        };
      }),
    [paths],
  );
  const root = paths?.[0];
  return (
    <section aria-labelledby="operation-flame-heading">
      <h1 id="operation-flame-heading">
        {operation} <span className="muted">({service})</span>
      </h1>
      <p className="muted">
        Where this operation spends its time over the traces that started between {formatTime(from)} and {formatTime(to)} (at most 10,000):
        each call path below it, widths and self times summed over every call. <a {...linkProps('/services')}>Services</a>
      </p>
      {error ? <QueryFailure error={error} /> : null}
      {!data && loading && <Loading what="the flame graph" />}
      {paths && paths.length === 0 && <p className="empty">No calls of this operation in this range (or none you may see).</p>}
      {root && (
        <>
          <p className="operation-flame-summary">
            {Number(root.calls)} calls, {formatDuration(Number(root.totalMs) / Number(root.calls))} on average.
          </p>
          <FlameGraph bars={bars} />
        </>
      )}
    </section>
  );
}
