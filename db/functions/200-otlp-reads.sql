-- Stored spans in OTLP's shape, for the read APIs other tools speak (the
-- Jaeger remote storage of server/jaeger): whole traces, and the services
-- and operations a search form offers.
--
-- Invoker rights: each call runs as the role of the request, so row-level
-- security decides which organizations' spans it sees, as for GraphQL.

-- The one-argument form of an earlier release.
drop function if exists tracing.otlp_trace_spans(uuid[]);

create or replace function tracing.otlp_trace_spans(p_trace_ids uuid[], p_spans_per_trace integer default 10000)
returns setof tracing.otlp_span
language sql stable parallel safe as $$
  -- Rows of one trace come together, in start order; at most
  -- p_spans_per_trace a trace (10,000, the timeline's bound, and never more
  -- than 10,001: one more tells a caller the trace was cut), so one request
  -- has a bounded size. Each span is mapped once, inside the lateral
  -- subquery: written `(tracing.to_otlp_span(...)).*` the planner inlined
  -- the mapping once per column, doubling the planning time (2.5 to 5 ms).
  -- The events' lookup object is built once (materialized): inlined, the
  -- planner rebuilt it for every span, and a trace of 1,000 spans with
  -- 1,000 events took 18-29 s instead of 50-60 ms. Events are bounded like
  -- spans: the first 10,000 of each trace.
  with events as materialized (select tracing.otlp_domain_events(p_trace_ids, 10000) as lookup)
  select (x.span).*
    from unnest(p_trace_ids) with ordinality as t(trace_id, n)
    cross join events
    cross join lateral (
      select tracing.to_otlp_span(s, events.lookup) as span, s.start_time, s.span_id
        from tracing.spans s
       where s.trace_id = t.trace_id
       order by s.start_time, s.span_id
       limit least(greatest(p_spans_per_trace, 1), 10001)
    ) x
   order by t.n, x.start_time, x.span_id
$$;

comment on function tracing.otlp_trace_spans(uuid[], integer) is
  E'The spans of the given traces the caller may see, in OTLP''s terms (hex ids, times in Unix nanoseconds as text) with the domain events each span emitted; grouped by trace in the order given, each in start order, at most p_spans_per_trace a trace (10,000 unless given, 10,001 at most, so a caller can ask for one more than it shows to learn that a trace was cut), with the domain events of the first 10,000 events of each trace.';

-- Jaeger's UI asks for the services on every search page, so they come
-- from a bounded sample: the spans of the newest traces of the window, at
-- most 50,000 (tracing.newest_window_spans, as the Tempo tag lists do). All
-- of a window's spans took 65 ms at 20k spans and grow with the window; a
-- service seen only in older traces of a busy window may be left out.
create or replace function tracing.span_operations(p_from timestamptz, p_to timestamptz)
returns table (service text, name text, kind text)
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_metrics_window(p_from, p_to);
  return query
    select distinct s.service, s.name, s.kind
      from tracing.newest_window_spans(p_from, p_to, 50000) s
     order by 1, 2, 3;
end
$$;

comment on function tracing.span_operations(timestamptz, timestamptz) is
  E'Each service, operation (span name) and span kind among the spans of the newest traces that started in [p_from, p_to) (at most 7 days), at most 50,000 spans, that the caller may see.';

grant execute on function
  tracing.otlp_trace_spans(uuid[], integer),
  tracing.to_otlp_span(tracing.spans, jsonb),
  tracing.otlp_domain_events(uuid[], integer),
  tracing.otlp_span_key(uuid, bigint, uuid),
  tracing.otlp_unix_nano(timestamptz),
  tracing.span_operations(timestamptz, timestamptz)
to tracegres_anonymous;
