// Jaeger's trace search (TraceQueryParameters) as a filter of
// api.find_traces, the search engine every query API shares.
import type { AttributeValue, TraceQuery } from './messages.ts';
import { toDate, toMilliseconds } from './messages.ts';
import { textTagCondition } from '../text-tag-condition.ts';

/** A search Jaeger asked for that tracegres cannot run; answered with INVALID_ARGUMENT. */
export class TraceQueryError extends Error {}

/** The widest window api.find_traces reads; a wider search covers its most recent part. */
export const MAX_WINDOW_MS = 7 * 24 * 3600 * 1000;
/** Traces a search returns at most (api.find_traces's page). */
const MAX_TRACES = 100;
const DEFAULT_TRACES = 20;
const DEFAULT_LOOKBACK_MS = 3600 * 1000;

export interface TraceSearch {
  filter: Record<string, unknown>;
  limit: number;
}

export function toTraceSearch(query: TraceQuery, now = new Date()): TraceSearch {
  const to = toDate(query.startTimeMax) ?? now;
  let from = toDate(query.startTimeMin) ?? new Date(to.getTime() - DEFAULT_LOOKBACK_MS);
  if (from >= to) throw new TraceQueryError('start_time_min must be before start_time_max');
  if (to.getTime() - from.getTime() > MAX_WINDOW_MS) from = new Date(to.getTime() - MAX_WINDOW_MS);

  const conditions: unknown[] = [];
  if (query.serviceName) conditions.push({ field: 'service', op: '=', value: query.serviceName });
  if (query.operationName) conditions.push({ field: 'name', op: '=', value: query.operationName });
  const durationMin = toMilliseconds(query.durationMin);
  const durationMax = toMilliseconds(query.durationMax);
  if (durationMin !== undefined) conditions.push({ field: 'duration_ms', op: '>=', value: durationMin });
  if (durationMax !== undefined) conditions.push({ field: 'duration_ms', op: '<=', value: durationMax });
  for (const attribute of query.attributes ?? []) conditions.push(attributeCondition(attribute.key, attribute.value));

  const filter: Record<string, unknown> = { from: from.toISOString(), to: to.toISOString() };
  // As in Jaeger's own stores, every condition holds for one span.
  if (conditions.length) filter.traces = { spans: conditions.length === 1 ? conditions[0] : { and: conditions } };
  const depth = query.searchDepth ?? 0;
  return { filter, limit: depth > 0 ? Math.min(depth, MAX_TRACES) : DEFAULT_TRACES };
}

function attributeCondition(key: string, value: AttributeValue | undefined): unknown {
  if (!key) throw new TraceQueryError('an attribute of the query has no key');
  // Tags from Jaeger's UI and HTTP API are strings.
  if (value?.stringValue !== undefined) return textTagCondition(key, value.stringValue);
  if (value?.boolValue !== undefined) return { attribute: key, op: '=', value: value.boolValue };
  if (value?.intValue !== undefined) return { attribute: key, op: '=', value: Number(value.intValue) };
  if (value?.doubleValue !== undefined) return { attribute: key, op: '=', value: value.doubleValue };
  throw new TraceQueryError(`attribute ${key}: only string, boolean and number values can be searched`);
}
