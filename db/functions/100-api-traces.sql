-- Trace summaries and trace search.
--
-- A trace's summary comes from tracing.trace_summaries (the aggregates of
-- its recorded spans, kept up to date by tracing.record_spans) plus two
-- counts from its domain events: the events themselves and the spans known
-- only from events (inferred). A trace with events but no recorded span at
-- all is summarized from its events alone (start at the first, end at the
-- last). Search, the single-trace summary and the session view all return
-- the same numbers for the same trace.
--
-- Why a maintained table: searching "traces of service X slower than 2 s in
-- the last hour" over spans means aggregating every span of the window per
-- trace before a single filter applies (seconds at 20k spans/s); over
-- trace_summaries it is an index scan in start order that stops after one
-- page. Keeping it costs record_spans one upsert per trace of a batch.

create or replace function tracing.summarize_traces(p_trace_ids uuid[]) returns setof api.trace_summary
language sql stable parallel safe as $$
  with ids as (
    select distinct id as trace_id from unnest(p_trace_ids) as id
  ),
  -- One trace id used by two organizations has two summary rows; a caller
  -- who may see both (an admin) gets them merged.
  recorded as (
    select ts.trace_id,
           case when count(*) = 1 then min(ts.organization_id::text)::uuid end as organization_id,
           min(ts.start_time) as start_time,
           max(ts.end_time) as end_time,
           (array_agg(ts.root_span_id order by ts.root_start_time, ts.root_span_id) filter (where ts.root_span_id is not null))[1] as root_span_id,
           (array_agg(ts.root_name order by ts.root_start_time, ts.root_span_id) filter (where ts.root_span_id is not null))[1] as root_name,
           (array_agg(ts.root_service order by ts.root_start_time, ts.root_span_id) filter (where ts.root_span_id is not null))[1] as root_service,
           array(select distinct service from unnest(array_agg(ts.services)) as service order by 1) as services,
           sum(ts.span_count)::integer as span_count,
           sum(ts.error_count)::integer as error_count,
           (array_agg(ts.session_id order by ts.start_time) filter (where ts.session_id is not null))[1] as session_id,
           (array_agg(ts.correlation_id order by ts.start_time) filter (where ts.correlation_id is not null))[1] as correlation_id
    from ids join tracing.trace_summaries ts on ts.trace_id = ids.trace_id
    group by ts.trace_id
  ),
  from_events as (
    select e.trace_id,
           case when count(distinct e.organization_id) = 1 and bool_and(e.organization_id is not null)
                then min(e.organization_id::text)::uuid end as organization_id,
           min(e.created_at) as first_at,
           max(e.created_at) as last_at,
           count(*)::integer as event_count,
           (count(distinct e.span_id) filter (where not e.span_recorded))::integer as inferred_span_count,
           (array_agg(e.session_id order by e.created_at, e.id) filter (where e.session_id is not null))[1] as session_id,
           (array_agg(e.correlation_id order by e.created_at, e.id) filter (where e.correlation_id is not null))[1] as correlation_id
    from (
      select ev.*,
             ev.span_id is null
               or exists (select from tracing.spans sp where sp.trace_id = ev.trace_id and sp.span_id = ev.span_id) as span_recorded
      from ids join tracing.domain_events ev on ev.trace_id = ids.trace_id
    ) e
    group by e.trace_id
  )
  select
    tracing.trace_id_to_hex(coalesce(r.trace_id, e.trace_id)),
    coalesce(r.organization_id, case when r.trace_id is null then e.organization_id end),
    tracing.span_id_to_hex(r.root_span_id),
    r.root_name,
    r.root_service,
    coalesce(r.services, '{}'),
    coalesce(r.start_time, e.first_at),
    coalesce(r.end_time, e.last_at),
    (extract(epoch from coalesce(r.end_time, e.last_at) - coalesce(r.start_time, e.first_at)) * 1000)::double precision,
    coalesce(r.span_count, 0),
    coalesce(e.inferred_span_count, 0),
    coalesce(r.error_count, 0),
    coalesce(e.event_count, 0),
    case when coalesce(r.error_count, 0) > 0 then 'error' else 'ok' end,
    coalesce(r.session_id, e.session_id),
    coalesce(r.correlation_id, e.correlation_id)
  from recorded r
  full join from_events e on e.trace_id = r.trace_id
$$;

comment on function tracing.summarize_traces(uuid[]) is
  E'Summaries (api.trace_summary) of the given traces, as far as the caller may see them; traces with neither spans nor events are left out.';

create or replace function api.get_trace_summary(p_trace_id text) returns api.trace_summary
language plpgsql stable parallel safe as $$
declare
  v_trace_id uuid := tracing.require_trace_id(p_trace_id, 'p_trace_id');
  v_summary api.trace_summary;
begin
  select * into v_summary from tracing.summarize_traces(array[v_trace_id]);
  if not found then
    return null;
  end if;
  return v_summary;
end
$$;

comment on function api.get_trace_summary(text) is
  E'One trace at a glance: root span, services, start, whole-trace duration, span, error and event counts. Null when the trace does not exist or the caller may not see it. p_trace_id: 32 lowercase hex characters.';

create or replace function api.get_session_traces(
  p_session_id uuid,
  p_first integer default 100,
  p_after_start_time timestamptz default null,
  p_after_trace_id text default null
) returns setof api.trace_summary
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 100, 500);
  v_after_trace_id uuid;
begin
  perform tracing.require_present(p_session_id, 'p_session_id');
  perform tracing.require_cursor(p_after_start_time, 'p_after_start_time', p_after_trace_id, 'p_after_trace_id');
  if p_after_trace_id is not null then
    v_after_trace_id := tracing.require_trace_id(p_after_trace_id, 'p_after_trace_id');
  end if;
  -- A session's traces are those whose spans or events carry its id.
  return query
    select t.*
    from tracing.summarize_traces(array(
      select ts.trace_id from tracing.trace_summaries ts where ts.session_id = p_session_id
      union
      select e.trace_id from tracing.domain_events e where e.session_id = p_session_id and e.trace_id is not null
    )) t
    where p_after_start_time is null
       or (t.start_time, t.trace_id) > (p_after_start_time, tracing.trace_id_to_hex(v_after_trace_id))
    order by t.start_time, t.trace_id
    limit v_first;
end
$$;

comment on function api.get_session_traces(uuid, integer, timestamptz, text) is
  E'Every trace of one session in time order (oldest first): what the user did, request by request. Page with p_first (1-500, default 100); for the next page pass the start_time and trace_id of the last trace received as p_after_start_time and p_after_trace_id.';

create or replace function api.search_traces(
  p_from timestamptz default null,
  p_to timestamptz default null,
  p_service text default null,
  p_operation text default null,
  p_status text default null,
  p_min_duration_ms double precision default null,
  p_max_duration_ms double precision default null,
  p_event_type text default null,
  p_first integer default 50,
  p_after_start_time timestamptz default null,
  p_after_trace_id text default null
) returns setof api.trace_summary
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 50, 500);
  v_service text := nullif(btrim(p_service), '');
  v_operation text := nullif(btrim(p_operation), '');
  v_event_type text := nullif(btrim(p_event_type), '');
  v_status text := lower(nullif(btrim(p_status), ''));
  v_after_trace_id uuid;
  v_filters text := '';
begin
  perform tracing.require_time_range(p_from, p_to);
  perform tracing.require_cursor(p_after_start_time, 'p_after_start_time', p_after_trace_id, 'p_after_trace_id');
  if p_after_trace_id is not null then
    v_after_trace_id := tracing.require_trace_id(p_after_trace_id, 'p_after_trace_id');
  end if;
  if v_status not in ('ok', 'error') then
    raise exception 'p_status must be ok or error' using errcode = '22023', detail = format('got %s', p_status);
  end if;
  if p_min_duration_ms < 0 or p_min_duration_ms = 'NaN' then
    raise exception 'p_min_duration_ms must be a number >= 0' using errcode = '22023', detail = format('got %s', p_min_duration_ms);
  end if;
  if p_max_duration_ms < 0 or p_max_duration_ms = 'NaN' then
    raise exception 'p_max_duration_ms must be a number >= 0' using errcode = '22023', detail = format('got %s', p_max_duration_ms);
  end if;
  if p_min_duration_ms > p_max_duration_ms then
    raise exception 'p_min_duration_ms must not exceed p_max_duration_ms' using errcode = '22023';
  end if;

  -- Only the filters given become part of the statement, and it is planned
  -- for them each time (EXECUTE): a cached plan with "x is null or ..."
  -- conditions could not pick the index each combination needs.
  if p_from is not null then v_filters := v_filters || ' and s.start_time >= $1'; end if;
  if p_to is not null then v_filters := v_filters || ' and s.start_time < $2'; end if;
  if v_service is not null then v_filters := v_filters || ' and s.services @> array[$3]'; end if;
  -- An operation is a span name; with a service too, one span must match both.
  if v_operation is not null then
    v_filters := v_filters || ' and exists (select from tracing.spans sp where sp.trace_id = s.trace_id and sp.name = $4'
                           || case when v_service is not null then ' and sp.service = $3' else '' end || ')';
  end if;
  if v_status = 'error' then v_filters := v_filters || ' and s.error_count > 0'; end if;
  if v_status = 'ok' then v_filters := v_filters || ' and s.error_count = 0'; end if;
  if p_min_duration_ms is not null then v_filters := v_filters || ' and s.duration_ms >= $5'; end if;
  if p_max_duration_ms is not null then v_filters := v_filters || ' and s.duration_ms <= $6'; end if;
  if v_event_type is not null then
    v_filters := v_filters || ' and exists (select from tracing.domain_events e where e.trace_id = s.trace_id and e.event_type = $7)';
  end if;
  if p_after_start_time is not null then
    v_filters := v_filters || ' and s.start_time <= $9 and (s.start_time < $9 or s.trace_id < $10)';
  end if;

  return query execute
    'select tracing.trace_id_to_hex(s.trace_id), s.organization_id, tracing.span_id_to_hex(s.root_span_id),
            s.root_name, s.root_service, s.services, s.start_time, s.end_time, s.duration_ms,
            s.span_count, coalesce(ev.inferred_span_count, 0), s.error_count, coalesce(ev.event_count, 0),
            case when s.error_count > 0 then ''error'' else ''ok'' end, s.session_id, s.correlation_id
     from (
       select s.* from tracing.trace_summaries s
       where true' || v_filters || '
       order by s.start_time desc, s.trace_id desc
       limit $8
     ) s
     cross join lateral (
       select count(*)::integer as event_count,
              (count(distinct e.span_id) filter (
                 where e.span_id is not null
                   and not exists (select from tracing.spans sp where sp.trace_id = e.trace_id and sp.span_id = e.span_id)
              ))::integer as inferred_span_count
       from tracing.domain_events e
       where e.trace_id = s.trace_id
     ) ev
     order by s.start_time desc, s.trace_id desc'
  using p_from, p_to, v_service, v_operation, p_min_duration_ms, p_max_duration_ms, v_event_type, v_first,
        p_after_start_time, v_after_trace_id;
end
$$;

comment on function api.search_traces(timestamptz, timestamptz, text, text, text, double precision, double precision, text, integer, timestamptz, text) is
  E'Trace search, newest first. Every filter is optional: traces starting in [p_from, p_to); with a span of service p_service; with a span named p_operation (of that service, when both are given); p_status ok (no span failed) or error (some span failed); whole-trace duration (latest span end minus earliest span start, not the root span''s duration) between p_min_duration_ms and p_max_duration_ms; with an event of type p_event_type. Page with p_first (1-500, default 50); for the next page pass the start_time and trace_id of the last trace received as p_after_start_time and p_after_trace_id. Durations and counts cover the recorded spans.';

grant execute on function
  tracing.summarize_traces(uuid[]),
  api.get_trace_summary(text),
  api.get_session_traces(uuid, integer, timestamptz, text),
  api.search_traces(timestamptz, timestamptz, text, text, text, double precision, double precision, text, integer, timestamptz, text)
to tracegres_anonymous;
