-- The event lookups of 080-api-events.sql, asked to include the archive: the
-- same arguments, order, keyset cursor and page bounds, over live and
-- archived events together (tracing.all_events). Separate functions rather
-- than a flag on the live ones, so the everyday lookups keep their plans on
-- one table and a caller says explicitly that it is reaching back past the
-- retention horizon. Invoker rights: row-level security applies to archived
-- rows as to live ones.

-- Every event, live or archived, for queries asked to include the archive
-- (api functions select from this instead of tracing.domain_events). With
-- security_invoker the row-level security of both tables applies to the
-- caller, and a lookup by trace, correlation or session id uses the index
-- of each side.
create or replace view tracing.all_events with (security_invoker = true) as
  select id, stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at,
         processed_at, processing_error, correlation_id, session_id, trace_id, span_id, parent_span_id,
         trace_field_errors, false as archived, null::timestamptz as archived_at
    from tracing.domain_events
  union all
  select id, stream_type, stream_id, event_type, event_data, event_metadata, organization_id, created_at,
         processed_at, processing_error, correlation_id, session_id, trace_id, span_id, parent_span_id,
         trace_field_errors, true, archived_at
    from tracing.domain_events_archive;

comment on view tracing.all_events is
  E'Live and archived events together (archived tells which), under the caller''s row-level security.';

grant select on tracing.all_events to tracegres_anonymous;

create or replace function tracing.to_api_event(e tracing.all_events) returns api.event
language sql stable parallel safe as $$
  select row(
    e.id, e.stream_type, e.stream_id, e.event_type, e.event_data, e.event_metadata, e.organization_id,
    e.created_at, e.processed_at, e.processing_error, e.correlation_id, e.session_id,
    tracing.trace_id_to_hex(e.trace_id), tracing.span_id_to_hex(e.span_id), tracing.span_id_to_hex(e.parent_span_id),
    e.trace_field_errors
  )::api.event
$$;

comment on function tracing.to_api_event(tracing.all_events) is
  E'A tracing.all_events row (live or archived) as api.event (ids as W3C hex).';

create or replace function api.get_events_by_session_including_archive(
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
    from tracing.all_events e
    where e.session_id = p_session_id
      and e.created_at <= coalesce(p_after_created_at, 'infinity')
      and (p_after_created_at is null or e.created_at < p_after_created_at or e.id < p_after_id)
    order by e.created_at desc, e.id desc
    limit v_first;
end
$$;

comment on function api.get_events_by_session_including_archive(uuid, integer, timestamptz, bigint) is
  E'Events of one session, newest first, archived ones included (getEventsBySession reads live events only). Page with p_first (1-500, default 50); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

create or replace function api.get_events_by_correlation_including_archive(
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
    from tracing.all_events e
    where e.correlation_id = p_correlation_id
      and e.created_at <= coalesce(p_after_created_at, 'infinity')
      and (p_after_created_at is null or e.created_at < p_after_created_at or e.id < p_after_id)
    order by e.created_at desc, e.id desc
    limit v_first;
end
$$;

comment on function api.get_events_by_correlation_including_archive(uuid, integer, timestamptz, bigint) is
  E'Events of one correlation id, newest first, archived ones included (getEventsByCorrelation reads live events only). Page with p_first (1-500, default 50); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

create or replace function api.get_events_by_trace_including_archive(
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
  return query
    select (tracing.to_api_event(e)).*
    from tracing.all_events e
    where e.trace_id = v_trace_id
      and e.created_at >= coalesce(p_after_created_at, '-infinity')
      and (p_after_created_at is null or e.created_at > p_after_created_at or e.id > p_after_id)
    order by e.created_at, e.id
    limit v_first;
end
$$;

comment on function api.get_events_by_trace_including_archive(text, integer, timestamptz, bigint) is
  E'Events of one trace, oldest first, archived ones included (getEventsByTrace reads live events only). p_trace_id: 32 lowercase hex characters. Page with p_first (1-500, default 100); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

grant execute on function
  tracing.to_api_event(tracing.all_events),
  api.get_events_by_session_including_archive(uuid, integer, timestamptz, bigint),
  api.get_events_by_correlation_including_archive(uuid, integer, timestamptz, bigint),
  api.get_events_by_trace_including_archive(text, integer, timestamptz, bigint)
to tracegres_anonymous;
