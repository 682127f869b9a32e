// GET /api/search: Tempo's trace search as one filter of api.find_traces,
// the search engine every query API shares, and its answer in Tempo's shape.
//
// `q` is TraceQL (the subset tracing.traceql_to_filter reads; anything else
// is refused by it, naming the construct). The older form's `tags`
// (logfmt), `minDuration` and `maxDuration` add trace conditions; all of
// them must hold.
import { isoToNanos, toAnyValue } from '../otlp/mapping.ts';
import { textTagCondition } from '../text-tag-condition.ts';
import { durationParameter, integerParameter, logfmtParameter, windowParameters, type TimeWindow } from './parameters.ts';

/** Traces a search returns at most (api.find_traces' page). */
const MAX_LIMIT = 100;
/** Matched spans returned a trace at most (api.find_traces' spans_per_trace). */
const MAX_SPANS_PER_SPANSET = 20;
const DEFAULT_LOOKBACK_SECONDS = 3600;

export interface TempoSearch {
  window: TimeWindow;
  limit: number;
  spansPerSpanset: number;
  /** TraceQL, when given and not blank. */
  query?: string;
  /** Trace conditions of api.find_traces from tags, minDuration and maxDuration. */
  conditions: unknown[];
}

export function searchOf(params: URLSearchParams, now = new Date()): TempoSearch {
  const conditions: unknown[] = logfmtParameter(params, 'tags').map(([key, value]) => ({ spans: tagCondition(key, value) }));
  const minMs = durationParameter(params, 'minDuration');
  const maxMs = durationParameter(params, 'maxDuration');
  if (minMs !== undefined) conditions.push({ trace_duration_ms: { op: '>=', value: minMs } });
  if (maxMs !== undefined) conditions.push({ trace_duration_ms: { op: '<=', value: maxMs } });
  return {
    window: windowParameters(params, DEFAULT_LOOKBACK_SECONDS, now),
    limit: integerParameter(params, 'limit', 1, MAX_LIMIT, 20),
    spansPerSpanset: integerParameter(params, 'spss', 1, MAX_SPANS_PER_SPANSET, 3),
    query: params.get('q')?.trim() || undefined,
    conditions,
  };
}

/** One `tags` pair as a span condition: the tag names Tempo's older search knew, else as any query API reads a text tag. */
function tagCondition(key: string, value: string): unknown {
  if (key === 'service.name' || key === 'resource.service.name') return { field: 'service', op: '=', value };
  if (key === 'name') return { field: 'name', op: '=', value };
  if (key === 'status' || key === 'status.code') return { field: 'status', op: '=', value: value.toLowerCase() };
  return textTagCondition(key, value);
}

/** The filter of api.find_traces, given the trace condition `q` was read into. */
export function searchFilter(search: TempoSearch, traceqlCondition: unknown): Record<string, unknown> {
  const conditions = traceqlCondition ? [traceqlCondition, ...search.conditions] : search.conditions;
  return {
    from: search.window.from.toISOString(),
    to: search.window.to.toISOString(),
    spans_per_trace: search.spansPerSpanset,
    ...(conditions.length ? { traces: conditions.length === 1 ? conditions[0] : { and: conditions } } : {}),
  };
}

/** A row of api.find_traces, with its start time in Unix nanoseconds. */
export interface FoundTraceRow {
  trace_id: string;
  root_service: string | null;
  root_name: string | null;
  start_unix_nano: string;
  duration_ms: number;
  matched_spans: Array<{
    span_id: string;
    name: string;
    service: string;
    kind: string;
    status: string;
    start_time: string;
    duration_ms: number;
    attributes: Record<string, unknown> | null;
  }>;
}

export function searchResponse(rows: FoundTraceRow[]) {
  return {
    traces: rows.map((row) => {
      const spanSet = {
        spans: row.matched_spans.map((span) => ({
          spanID: span.span_id,
          name: span.name,
          startTimeUnixNano: isoToNanos(span.start_time) ?? '0',
          durationNanos: String(Math.round(span.duration_ms * 1e6)),
          attributes: [
            { key: 'service.name', value: { stringValue: span.service } },
            { key: 'status', value: { stringValue: span.status } },
            { key: 'kind', value: { stringValue: span.kind } },
            ...Object.entries(span.attributes ?? {})
              .filter(([, value]) => value !== null)
              .map(([key, value]) => ({ key, value: toAnyValue(value as Parameters<typeof toAnyValue>[0]) })),
          ],
        })),
        // The spans returned, at most spss: the engine stops counting there.
        matched: row.matched_spans.length,
      };
      return {
        traceID: row.trace_id,
        // Tempo's words for a trace whose root span has not arrived.
        rootServiceName: row.root_service ?? '<root span not yet received>',
        rootTraceName: row.root_name ?? '',
        startTimeUnixNano: row.start_unix_nano,
        durationMs: Math.round(row.duration_ms),
        // spanSet is the older single form some clients still read.
        spanSet,
        spanSets: [spanSet],
      };
    }),
    metrics: {},
  };
}
