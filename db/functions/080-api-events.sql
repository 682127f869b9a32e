-- Event lookups: by session, by correlation id, by trace, and failed events.
--
-- All page with a keyset cursor on (created_at, id): the caller passes the
-- created_at and id of the last row it got, and the next page starts right
-- after it. Unlike an offset, this costs the same on page 1,000 as on page 1
-- and never skips or repeats a row when events arrive in between; id breaks
-- ties between events of the same instant.
--
-- The cursor's created_at is also written as a plain range bound
-- (created_at <= cursor) so the (column, created_at desc) indexes start the
-- scan at the cursor; the (created_at, id) comparison then only settles ties.
-- The functions run with the caller's rights: row-level security decides
-- which events exist for the caller.

create or replace function tracing.to_api_event(e tracing.domain_events) returns api.event
language sql stable parallel safe as $$
  select row(
    e.id, e.stream_type, e.stream_id, e.event_type, e.event_data, e.event_metadata, e.organization_id,
    e.created_at, e.processed_at, e.processing_error, e.correlation_id, e.session_id,
    tracing.trace_id_to_hex(e.trace_id), tracing.span_id_to_hex(e.span_id), tracing.span_id_to_hex(e.parent_span_id),
    e.trace_field_errors
  )::api.event
$$;

comment on function tracing.to_api_event(tracing.domain_events) is
  E'A tracing.domain_events row as api.event (ids as W3C hex).';

create or replace function api.get_events_by_session(
  p_session_id uuid,
  p_first integer default 50,
  p_after_created_at timestamptz default null,
  p_after_id bigint default null
) returns setof api.event
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 50, 500);
begin
  perform tracing.require_present(p_session_id, 'p_session_id');
  perform tracing.require_cursor(p_after_created_at, 'p_after_created_at', p_after_id, 'p_after_id');
  return query
    select (tracing.to_api_event(e)).*
    from tracing.domain_events e
    where e.session_id = p_session_id
      and e.created_at <= coalesce(p_after_created_at, 'infinity')
      and (p_after_created_at is null or e.created_at < p_after_created_at or e.id < p_after_id)
    order by e.created_at desc, e.id desc
    limit v_first;
end
$$;

comment on function api.get_events_by_session(uuid, integer, timestamptz, bigint) is
  E'Events of one session (the session id from the user''s auth token), newest first. Page with p_first (1-500, default 50); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

create or replace function api.get_events_by_correlation(
  p_correlation_id uuid,
  p_first integer default 50,
  p_after_created_at timestamptz default null,
  p_after_id bigint default null
) returns setof api.event
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 50, 500);
begin
  perform tracing.require_present(p_correlation_id, 'p_correlation_id');
  perform tracing.require_cursor(p_after_created_at, 'p_after_created_at', p_after_id, 'p_after_id');
  return query
    select (tracing.to_api_event(e)).*
    from tracing.domain_events e
    where e.correlation_id = p_correlation_id
      and e.created_at <= coalesce(p_after_created_at, 'infinity')
      and (p_after_created_at is null or e.created_at < p_after_created_at or e.id < p_after_id)
    order by e.created_at desc, e.id desc
    limit v_first;
end
$$;

comment on function api.get_events_by_correlation(uuid, integer, timestamptz, bigint) is
  E'Events of one correlation id (one user action, across every service it reached), newest first. Page with p_first (1-500, default 50); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

create or replace function api.get_events_by_trace(
  p_trace_id text,
  p_first integer default 100,
  p_after_created_at timestamptz default null,
  p_after_id bigint default null
) returns setof api.event
language plpgsql stable parallel safe as $$
declare
  v_trace_id uuid := tracing.require_trace_id(p_trace_id, 'p_trace_id');
  v_first integer := tracing.require_page_size(p_first, 'p_first', 100, 500);
begin
  perform tracing.require_cursor(p_after_created_at, 'p_after_created_at', p_after_id, 'p_after_id');
  -- Oldest first: a trace is read as a story, from the request onwards.
  return query
    select (tracing.to_api_event(e)).*
    from tracing.domain_events e
    where e.trace_id = v_trace_id
      and e.created_at >= coalesce(p_after_created_at, '-infinity')
      and (p_after_created_at is null or e.created_at > p_after_created_at or e.id > p_after_id)
    order by e.created_at, e.id
    limit v_first;
end
$$;

comment on function api.get_events_by_trace(text, integer, timestamptz, bigint) is
  E'Events of one trace, oldest first (including events not tied to a span). p_trace_id: 32 lowercase hex characters. Page with p_first (1-500, default 100); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

create or replace function api.get_failed_events(
  p_from timestamptz default null,
  p_to timestamptz default null,
  p_event_type text default null,
  p_first integer default 50,
  p_after_created_at timestamptz default null,
  p_after_id bigint default null
) returns setof api.event
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 50, 500);
begin
  perform tracing.require_time_range(p_from, p_to);
  perform tracing.require_cursor(p_after_created_at, 'p_after_created_at', p_after_id, 'p_after_id');
  -- Failed events are few, and their partial index is in created_at order:
  -- the time range and the cursor are bounds of that index scan.
  return query
    select (tracing.to_api_event(e)).*
    from tracing.domain_events e
    where e.processing_error is not null
      and e.created_at >= coalesce(p_from, '-infinity')
      and e.created_at < coalesce(p_to, 'infinity')
      and e.created_at <= coalesce(p_after_created_at, 'infinity')
      and (p_after_created_at is null or e.created_at < p_after_created_at or e.id < p_after_id)
      and (p_event_type is null or e.event_type = p_event_type)
    order by e.created_at desc, e.id desc
    limit v_first;
end
$$;

comment on function api.get_failed_events(timestamptz, timestamptz, text, integer, timestamptz, bigint) is
  E'Events whose processing failed (processing_error set), newest first, with their correlation, session and trace ids. Optional filters: created in [p_from, p_to), event type. Page with p_first (1-500, default 50); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

grant execute on function
  tracing.to_api_event(tracing.domain_events),
  api.get_events_by_session(uuid, integer, timestamptz, bigint),
  api.get_events_by_correlation(uuid, integer, timestamptz, bigint),
  api.get_events_by_trace(text, integer, timestamptz, bigint),
  api.get_failed_events(timestamptz, timestamptz, text, integer, timestamptz, bigint)
to tracegres_anonymous;
