-- The event lookups of 080-api-events.sql, asked to include the archive: the
-- same arguments, order, keyset cursor and page bounds, over live and
-- archived events together (tracing.all_events), through the same
-- functions with the archive flag on. Separate api functions rather than a
-- flag on the live ones, so a caller says explicitly that it is reaching
-- back past the retention horizon, and the everyday lookups never plan for
-- the archive. Invoker rights: row-level security applies to archived rows
-- as to live ones.

create or replace function api.get_events_by_session_including_archive(
  p_session_id uuid,
  p_first integer default 50,
  p_after_created_at timestamptz default null,
  p_after_id bigint default null
) returns setof api.event
language sql stable parallel safe as $$
  select * from tracing.events_by_session(p_session_id, p_first, p_after_created_at, p_after_id, true)
$$;

comment on function api.get_events_by_session_including_archive(uuid, integer, timestamptz, bigint) is
  E'Events of one session, newest first, archived ones included (getEventsBySession reads live events only). Page with p_first (1-500, default 50); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

create or replace function api.get_events_by_correlation_including_archive(
  p_correlation_id uuid,
  p_first integer default 50,
  p_after_created_at timestamptz default null,
  p_after_id bigint default null
) returns setof api.event
language sql stable parallel safe as $$
  select * from tracing.events_by_correlation(p_correlation_id, p_first, p_after_created_at, p_after_id, true)
$$;

comment on function api.get_events_by_correlation_including_archive(uuid, integer, timestamptz, bigint) is
  E'Events of one correlation id, newest first, archived ones included (getEventsByCorrelation reads live events only). Page with p_first (1-500, default 50); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

create or replace function api.get_events_by_trace_including_archive(
  p_trace_id text,
  p_first integer default 100,
  p_after_created_at timestamptz default null,
  p_after_id bigint default null
) returns setof api.event
language sql stable parallel safe as $$
  select * from tracing.events_by_trace(p_trace_id, p_first, p_after_created_at, p_after_id, true)
$$;

comment on function api.get_events_by_trace_including_archive(text, integer, timestamptz, bigint) is
  E'Events of one trace, oldest first, archived ones included (getEventsByTrace reads live events only). p_trace_id: 32 lowercase hex characters. Page with p_first (1-500, default 100); for the next page pass the created_at and id of the last event received as p_after_created_at and p_after_id.';

grant execute on function
  api.get_events_by_session_including_archive(uuid, integer, timestamptz, bigint),
  api.get_events_by_correlation_including_archive(uuid, integer, timestamptz, bigint),
  api.get_events_by_trace_including_archive(text, integer, timestamptz, bigint)
to tracegres_anonymous;
