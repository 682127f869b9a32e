// A trace one span larger than the timeline reads (10,000): a root and its
// children, the last of which is left out and the trace flagged
// trace_cut_at_limit. For the pages that say a trace was cut.
import type { Sql } from 'postgres';
import { DEMO_ORGANIZATION_ID } from '../../cli/demo.ts';

export const CUT_TRACE_SPANS = 10_001;

/** Records the trace `traceId` in the demo organization, its spans named "call 1" to "call `operations`" in turn. */
export async function recordCutTrace(sql: Sql, traceId: string, operations = CUT_TRACE_SPANS): Promise<void> {
  await sql`
    select tracing.record_spans(jsonb_agg(jsonb_build_object(
      'trace_id', ${traceId}::text, 'span_id', lpad(to_hex(i), 16, '0'),
      'parent_span_id', case when i > 1 then lpad(to_hex(1), 16, '0') end,
      'organization_id', ${DEMO_ORGANIZATION_ID}::uuid, 'service', 'fan-out', 'name', 'call ' || (1 + (i - 1) % ${operations}),
      'start_time', to_char((timestamptz '2025-03-01 12:00:00+00' + i * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'end_time', to_char((timestamptz '2025-03-01 12:00:00+00' + (i + 20000) * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
    from generate_series(1, ${CUT_TRACE_SPANS}) i`;
}
