--! Previous: sha1:e2c02f20a25c921b186b99f33e65bea99b81d384
--! Hash: sha1:305b81e5ef54b07a23ceae40b6afc5d569bdb857
--! Message: A type for traces found by search, with the spans that matched

-- A trace found by tracing.find_traces / api.find_traces: its summary and
-- the spans that matched the filter.
create type api.found_trace as (
  trace_id text,
  root_service text,
  root_name text,
  start_time timestamptz,
  duration_ms double precision,
  span_count integer,
  error_count integer,
  matched_spans jsonb
);

comment on type api.found_trace is E'A trace that matched a search filter, with the spans that matched it.';
comment on column api.found_trace.duration_ms is E'Duration of the whole trace: latest span end minus earliest span start.';
comment on column api.found_trace.matched_spans is E'Up to p_filter.spans_per_trace spans of the trace that matched a span condition of the filter, earliest first: [{span_id, parent_span_id, name, service, kind, status, start_time, duration_ms, attributes}].';
