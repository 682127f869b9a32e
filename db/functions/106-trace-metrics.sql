-- What the spans of a time window add up to: RED metrics (rate, errors,
-- duration) per service and operation, the service map (who calls whom),
-- and two traces compared operation by operation.
--
-- A window is read through tracing.trace_summaries (indexed by start time)
-- and the spans of those traces through their (trace, span, organization)
-- key, so the cost follows the traces in the window, not the whole table.
-- Invoker rights: row-level security decides which traces count.

-- The spans of the traces that started in [p_from, p_to), fetched trace by
-- trace through the spans' key. As a plain join the planner chose a
-- parallel scan of the whole spans table once the window's spans were a few
-- thousand rows (RED metrics of one service over an hour of 1M spans: 380 ms
-- scanning, 80 ms by key, in the same minute of a loaded machine); `offset
-- 0` keeps the lateral subquery from being flattened into that join. A
-- trace's spans start within its summary's [start_time, end_time], which
-- lets each probe skip the monthly partitions of tracing.spans outside it
-- (a day of 550 traces over 8 partitions: 34 ms probing all, 4 ms pruned).
create or replace function tracing.window_spans(p_from timestamptz, p_to timestamptz)
returns setof tracing.spans
language sql stable parallel safe as $$
  select s.*
    from tracing.trace_summaries t
    cross join lateral (
      select * from tracing.spans s
       where s.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id
         and s.start_time between t.start_time and t.end_time
      offset 0
    ) s
   where t.start_time >= p_from and t.start_time < p_to
$$;

-- A window of at most 7 days, and a bucket that cuts it into at most 1,000
-- pieces: the bounds every metric shares.
create or replace function tracing.require_metrics_window(p_from timestamptz, p_to timestamptz, p_bucket_seconds integer default null)
returns void
language plpgsql immutable parallel safe as $$
begin
  perform tracing.require_bounded_time_range(p_from, p_to);
  if p_to - p_from > interval '7 days' then
    raise exception 'p_to must be at most 7 days after p_from' using errcode = '22023';
  end if;
  if p_bucket_seconds is not null and (p_bucket_seconds < 1 or extract(epoch from p_to - p_from) / p_bucket_seconds > 1000) then
    raise exception 'p_bucket_seconds must be at least 1 and cut the window into at most 1,000 buckets' using errcode = '22023',
      detail = format('got %s for a window of %s', p_bucket_seconds, p_to - p_from);
  end if;
end
$$;

-- A request is a span that enters a service: kind server or consumer, or a
-- root span (a service that did not say its kind). Written once for the
-- metrics and the rate rules' example traces (222-alert-rate-rules.sql).
create or replace function tracing.is_request(p_kind text, p_parent_span_id bigint) returns boolean
language sql immutable parallel safe as $$
  select p_kind in ('server', 'consumer') or p_parent_span_id is null
$$;

comment on function tracing.is_request(text, bigint) is
  E'Whether a span of this kind and parent is a request: kind server or consumer, or a root span.';

create or replace function api.red_metrics(
  p_from timestamptz,
  p_to timestamptz,
  p_bucket_seconds integer default 60,
  p_service text default null,
  p_operation text default null
) returns table (
  bucket_start timestamptz, service text, operation text, requests bigint, errors bigint, error_rate double precision,
  p50_ms double precision, p95_ms double precision, p99_ms double precision
)
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_metrics_window(p_from, p_to, p_bucket_seconds);
  return query
    select date_bin(make_interval(secs => p_bucket_seconds), s.start_time, p_from) as bucket_start,
           s.service, s.name as operation,
           count(*) as requests,
           count(*) filter (where s.status = 'error') as errors,
           (count(*) filter (where s.status = 'error'))::double precision / count(*) as error_rate,
           percentile_cont(0.5) within group (order by s.duration_ms) as p50_ms,
           percentile_cont(0.95) within group (order by s.duration_ms) as p95_ms,
           percentile_cont(0.99) within group (order by s.duration_ms) as p99_ms
      from tracing.window_spans(p_from, p_to) s
     where tracing.is_request(s.kind, s.parent_span_id)
       and s.start_time >= p_from and s.start_time < p_to
       and (p_service is null or s.service = p_service)
       and (p_operation is null or s.name = p_operation)
     group by 1, 2, 3
     order by 1, 2, 3;
end
$$;

comment on function api.red_metrics(timestamptz, timestamptz, integer, text, text) is
  E'RED metrics of the requests services handled in [p_from, p_to) (at most 7 days), per time bucket of p_bucket_seconds (default 60, at most 1,000 buckets), service and operation: requests, errors, error rate and p50/p95/p99 duration in ms. A request is a span of kind server or consumer, or a root span. Optional filters p_service, p_operation.';

create or replace function api.service_map(p_from timestamptz, p_to timestamptz)
returns table (parent_service text, child_service text, call_count bigint, error_count bigint)
language plpgsql stable parallel safe
-- The window's spans are joined with themselves by hash, whatever the row
-- estimates: a nested loop over the gathered spans would be quadratic on a
-- window the planner thought small (fresh traces without statistics). The
-- window's own lookups stay nested loops, the only way to do a lateral.
set enable_nestloop = off
as $$
begin
  perform tracing.require_metrics_window(p_from, p_to);
  -- An edge is a span whose parent is a span of another service, in the
  -- same trace. The window's spans are gathered once and matched to their
  -- parents among themselves (1M spans, an hour of 41,600 spans, run in
  -- turns: p50/p99 61-67/74-109 ms, against 107-113/176-277 ms looking each
  -- parent up through the spans' key, and 75/206 ms for the plain join the
  -- planner turned into a parallel scan of the whole table).
  return query
    with window_spans as materialized (
      select s.trace_id, s.span_id, s.parent_span_id, s.service, s.status, s.organization_id
        from tracing.window_spans(p_from, p_to) s
    )
    select p.service, c.service, count(*), count(*) filter (where c.status = 'error')
      from window_spans c
      join window_spans p on p.trace_id = c.trace_id and p.span_id = c.parent_span_id and p.organization_id is not distinct from c.organization_id
     where p.service <> c.service
     group by 1, 2
     order by 3 desc, 1, 2;
end
$$;

comment on function api.service_map(timestamptz, timestamptz) is
  E'Which service calls which among the traces that started in [p_from, p_to) (at most 7 days): one row per caller and callee service, with how many calls (spans of the callee whose parent span is of the caller) and how many of them failed.';

do $$
begin
  -- compare_traces did not say whether a side was cut at the timeline's
  -- limit before; a function's result type can only change by dropping it.
  if to_regprocedure('api.compare_traces(text, text)') is not null
     and not exists (select from pg_proc p where p.oid = to_regprocedure('api.compare_traces(text, text)')
                                             and 'cut_at_limit_a' = any (p.proargnames)) then
    drop function api.compare_traces(text, text);
  end if;
end
$$;

create or replace function api.compare_traces(p_trace_a text, p_trace_b text)
returns table (
  service text, operation text, count_a bigint, count_b bigint, total_ms_a double precision, total_ms_b double precision,
  self_ms_a double precision, self_ms_b double precision, self_ms_difference double precision,
  cut_at_limit_a boolean, cut_at_limit_b boolean
)
language plpgsql stable parallel safe as $$
declare
  v_a uuid := tracing.require_trace_id(p_trace_a, 'p_trace_a');
  v_b uuid := tracing.require_trace_id(p_trace_b, 'p_trace_b');
begin
  -- Each side is its timeline, which reads at most tracing.timeline_limit()
  -- spans and events of a trace: whether a side was cut is carried on every
  -- row, so a comparison of part of a trace says so.
  return query
    with spans as (
      select 'a' as side, l.service, l.name, l.duration_ms, l.self_time_ms, l.is_placeholder, l.trace_cut_at_limit
        from tracing.trace_timeline(v_a) l
      union all
      select 'b', l.service, l.name, l.duration_ms, l.self_time_ms, l.is_placeholder, l.trace_cut_at_limit
        from tracing.trace_timeline(v_b) l
    ),
    cut as (
      select coalesce(bool_or(s.trace_cut_at_limit) filter (where s.side = 'a'), false) as a,
             coalesce(bool_or(s.trace_cut_at_limit) filter (where s.side = 'b'), false) as b
        from spans s
    )
    select coalesce(s.service, '(inferred)'), coalesce(s.name, '(inferred)'),
           count(*) filter (where s.side = 'a'), count(*) filter (where s.side = 'b'),
           coalesce(sum(s.duration_ms) filter (where s.side = 'a'), 0), coalesce(sum(s.duration_ms) filter (where s.side = 'b'), 0),
           coalesce(sum(s.self_time_ms) filter (where s.side = 'a'), 0), coalesce(sum(s.self_time_ms) filter (where s.side = 'b'), 0),
           coalesce(sum(s.self_time_ms) filter (where s.side = 'b'), 0) - coalesce(sum(s.self_time_ms) filter (where s.side = 'a'), 0),
           c.a, c.b
      from spans s cross join cut c
     where not s.is_placeholder
     group by 1, 2, c.a, c.b
     order by abs(coalesce(sum(s.self_time_ms) filter (where s.side = 'b'), 0) - coalesce(sum(s.self_time_ms) filter (where s.side = 'a'), 0)) desc, 1, 2;
end
$$;

comment on function api.compare_traces(text, text) is
  E'Two traces side by side, per service and operation (span name): how many spans each has, their total and self durations in ms, and the self-time difference (b minus a), largest difference first; e.g. a slow checkout (p_trace_b) against a normal one (p_trace_a). Spans known only from events count as (inferred). Each side is its trace timeline, which reads at most the earliest 10,000 spans and 10,000 events of a trace: cut_at_limit_a and cut_at_limit_b (the same on every row) say that trace a or b was larger and only that part of it is compared. Trace ids: 32 lowercase hex characters.';

create or replace function api.list_operations(p_from timestamptz, p_to timestamptz)
returns table (service text, operation text, span_count bigint)
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_metrics_window(p_from, p_to);
  return query
    select s.service, s.name, count(*) from tracing.window_spans(p_from, p_to) s group by 1, 2 order by 1, 2;
end
$$;

comment on function api.list_operations(timestamptz, timestamptz) is
  E'The services and operations (span names) of the traces that started in [p_from, p_to) (at most 7 days), with how many spans each had: what a search form offers to pick from.';

grant execute on function
  api.list_operations(timestamptz, timestamptz),
  tracing.window_spans(timestamptz, timestamptz),
  tracing.is_request(text, bigint),
  tracing.require_metrics_window(timestamptz, timestamptz, integer),
  api.red_metrics(timestamptz, timestamptz, integer, text, text),
  api.service_map(timestamptz, timestamptz),
  api.compare_traces(text, text)
to tracegres_anonymous;
