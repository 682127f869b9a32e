-- Replay by correlation id: "this request failed; we fixed the bug; run it
-- again".
--
-- Three parts, all state in SQL (tables in the replay migration):
--   * the replay set (api.get_replay_set and friends): the events of a
--     correlation id, a trace or a bounded window of failed events, oldest
--     first, each with its processing state and the span that emitted it,
--     and whether a run would queue it (the dry run);
--   * runs (api.start_replay, api.cancel_replay; admins only): a run queues
--     the set's failed and never-processed events as items in replay order,
--     records who started it, when and why, gets a trace of its own whose
--     root span links to the replayed traces, and wakes processors with
--     NOTIFY tracegres_replay (payload: the run id; sent at commit);
--   * the processors' API (tracing.claim_replay_event,
--     tracing.mark_replay_processed, tracing.mark_replay_failed; granted to
--     tracegres_writer): a claim takes the first open item of a running run,
--     locking the run with FOR UPDATE SKIP LOCKED, so runs are worked on in
--     parallel but each run's events strictly one after the other, in order.
--     A claim is a lease (tracing.replay_settings.claim_lease unless the
--     processor asks for another): if its processor dies, the item is
--     claimed again once the lease expires, or, in a cancelled run, ends
--     cancelled. A report carries the claim's token, so a processor that
--     lost its lease cannot overwrite a newer claim, and repeating a report
--     is a no-op.
--
-- Every set is bounded: at most 1,000 events. A correlation or trace with
-- more is refused by the run rather than replayed in part.
--
-- Events retention moved to the archive belong to their correlation, trace
-- or failed window as before: every read here goes through
-- tracing.all_events (live and archived, marked archived), a claim hands out
-- the event's body wherever it lives, and a report updates the event where
-- it lives. The correlation and trace branches use the lookup index of each
-- archive partition; the failed-events window reads only the archive
-- months it covers (partitions by created_at) but has no index there, so a
-- window over archived months costs a scan of those months. Measured on
-- Postgres 15, 85k live and 115k archived events in monthly partitions of
-- about 43k, alternating calls, loaded 2-core machine: a correlation of 10
-- events, 5 archived, 0.75 ms median (0.32 ms before, reading the live 5
-- only); a 7-day failed window in archived months 11.9 ms median (0.4 ms
-- before, when it found nothing there). A partial index of failed events
-- per archive partition would bound the second; the archive's indexes are
-- retention's (110-archive-partitions.sql).

create or replace function tracing.processing_state(p_processed_at timestamptz, p_processing_error text) returns text
language sql immutable parallel safe as $$
  -- A failed event has processing_error set (see tracing.domain_events);
  -- the error wins over a processed_at written by the same attempt.
  select case
    when p_processing_error is not null then 'failed'
    when p_processed_at is not null then 'processed'
    else 'never_processed'
  end
$$;

comment on function tracing.processing_state(timestamptz, text) is
  E'processed, failed or never_processed, from an event''s processed_at and processing_error.';

-- An item's state as readers and reports see it. A claim of a cancelled
-- run ends with its lease: nothing claims it again, so an item whose
-- processor died would otherwise stay claimed for good. Claims store the
-- same (tracing.claim_replay_event); until one does, this rule says it.
create or replace function tracing.replay_item_state(p_state text, p_claimed_until timestamptz, p_run_status text)
returns text
language sql stable parallel safe as $$
  select case
    when p_state = 'claimed' and p_run_status = 'cancelled' and p_claimed_until <= now() then 'cancelled'
    else p_state
  end
$$;

comment on function tracing.replay_item_state(text, timestamptz, text) is
  E'A replay item''s state: its stored state, except that a claim of a cancelled run whose lease ran out is cancelled.';

-- Largest replay set; a run never queues more.
create or replace function tracing.replay_set_limit() returns integer
language sql immutable parallel safe as $$ select 1000 $$;

-- The failed-events selector of getFailedReplaySet and startReplay, checked
-- in one place: both ends given, a non-empty range, and a page size of 1 to
-- the set limit (default 100). Returns the page size.
create or replace function tracing.require_failed_event_range(p_from timestamptz, p_to timestamptz, p_first integer)
returns integer
language plpgsql immutable parallel safe as $$
begin
  perform tracing.require_bounded_time_range(p_from, p_to);
  return tracing.require_page_size(p_first, 'p_first', 100, tracing.replay_set_limit());
end
$$;

comment on function tracing.require_failed_event_range(timestamptz, timestamptz, integer) is
  E'Checks a failed-events replay selector (p_from and p_to required, p_from before p_to, p_first 1-1000 or null for 100); raises 22023 naming the argument. Returns the page size.';

create or replace function tracing.replay_set(
  p_correlation_id uuid,
  p_trace_id uuid,
  p_event_type text,
  p_from timestamptz,
  p_to timestamptz,
  p_limit integer,
  p_include_processed boolean
) returns setof api.replay_event
language sql stable parallel safe as $$
  -- One branch per selector, each bounded and driven by its own index
  -- (correlation, trace, failed); the callers pass exactly one selector.
  -- Live and archived events alike (tracing.all_events).
  with chosen as (
    (select e.* from tracing.all_events e
     where p_correlation_id is not null and e.correlation_id = p_correlation_id
     order by e.created_at, e.id limit p_limit)
    union all
    (select e.* from tracing.all_events e
     where p_trace_id is not null and e.trace_id = p_trace_id
     order by e.created_at, e.id limit p_limit)
    union all
    (select e.* from tracing.all_events e
     where p_correlation_id is null and p_trace_id is null
       and e.processing_error is not null
       and e.created_at >= p_from and e.created_at < p_to
       and (p_event_type is null or e.event_type = p_event_type)
     order by e.created_at, e.id limit p_limit)
  )
  select row(
    (row_number() over (order by c.created_at, c.id))::integer,
    c.id, c.event_type, c.stream_type, c.stream_id, c.event_data, c.organization_id, c.created_at,
    c.correlation_id, tracing.trace_id_to_hex(c.trace_id), tracing.span_id_to_hex(c.span_id),
    tracing.processing_state(c.processed_at, c.processing_error), c.processed_at, c.processing_error,
    s.name, s.service, s.status,
    p_include_processed or tracing.processing_state(c.processed_at, c.processing_error) <> 'processed',
    c.archived
  )::api.replay_event
  from chosen c
  -- A span is named by its ids within its organization.
  left join tracing.spans s on s.trace_id = c.trace_id and s.span_id = c.span_id
    and s.organization_id is not distinct from c.organization_id
  order by c.created_at, c.id
$$;

comment on function tracing.replay_set(uuid, uuid, text, timestamptz, timestamptz, integer, boolean) is
  E'The events of one selector (correlation id, trace id, or failed events of a type in [p_from, p_to)), live and archived, oldest first, at most p_limit, with processing state, emitting span and whether a run queues them.';

create or replace function api.get_replay_set(
  p_correlation_id uuid,
  p_include_processed boolean default false
) returns setof api.replay_event
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_present(p_correlation_id, 'p_correlation_id');
  return query select * from tracing.replay_set(
    p_correlation_id, null, null, null, null, tracing.replay_set_limit(), coalesce(p_include_processed, false));
end
$$;

comment on function api.get_replay_set(uuid, boolean) is
  E'The events of one correlation id in replay order (oldest first, at most 1,000), each with its processing state (processed, failed, never_processed), the span that emitted it, and whether a replay run would queue it: this is the dry run of startReplay. Failed and never-processed events are replayed; processed ones too with p_include_processed.';

create or replace function api.get_replay_set_by_trace(
  p_trace_id text,
  p_include_processed boolean default false
) returns setof api.replay_event
language plpgsql stable parallel safe as $$
declare
  v_trace_id uuid := tracing.require_trace_id(p_trace_id, 'p_trace_id');
begin
  return query select * from tracing.replay_set(
    null, v_trace_id, null, null, null, tracing.replay_set_limit(), coalesce(p_include_processed, false));
end
$$;

comment on function api.get_replay_set_by_trace(text, boolean) is
  E'The events of one trace (p_trace_id: 32 lowercase hex characters) in replay order, like getReplaySet: at most 1,000, with processing state, emitting span and whether a run would queue them.';

create or replace function api.get_failed_replay_set(
  p_from timestamptz,
  p_to timestamptz,
  p_event_type text default null,
  p_first integer default 100
) returns setof api.replay_event
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_failed_event_range(p_from, p_to, p_first);
begin
  return query select * from tracing.replay_set(null, null, p_event_type, p_from, p_to, v_first, false);
end
$$;

comment on function api.get_failed_replay_set(timestamptz, timestamptz, text, integer) is
  E'Failed events created in [p_from, p_to), optionally of one event type, oldest first, at most p_first (1-1000, default 100), with their spans: the dry run of startReplay over failed events.';

----------------------------------------------------------------------------
-- Runs.

create or replace function tracing.to_api_replay_run(r tracing.replay_runs) returns api.replay_run
language sql stable parallel safe as $$
  select row(
    r.id, r.organization_id, r.selector, r.reason, r.started_by, r.started_at, r.status, r.finished_at,
    r.cancelled_by, tracing.trace_id_to_hex(r.trace_id), tracing.span_id_to_hex(r.span_id), r.event_count,
    counts.pending, counts.claimed, counts.processed, counts.failed, counts.cancelled
  )::api.replay_run
  from (
    select count(*) filter (where s.state = 'pending')::integer as pending,
           count(*) filter (where s.state = 'claimed')::integer as claimed,
           count(*) filter (where s.state = 'processed')::integer as processed,
           count(*) filter (where s.state = 'failed')::integer as failed,
           count(*) filter (where s.state = 'cancelled')::integer as cancelled
    from tracing.replay_items i
    cross join lateral (select tracing.replay_item_state(i.state, i.claimed_until, r.status) as state) as s
    where i.run_id = r.id
  ) as counts
$$;

comment on function tracing.to_api_replay_run(tracing.replay_runs) is
  E'A tracing.replay_runs row as api.replay_run, with its items counted by state.';

create or replace function tracing.current_actor() returns text
language sql stable parallel safe as $$
  -- The token's subject when the request has one, else the database role.
  select coalesce(nullif(current_setting('jwt.claims.user_id', true), ''), current_user::text)
$$;

comment on function tracing.current_actor() is
  E'Who is acting: the token subject (jwt.claims.user_id) of the request, else the database role.';

create or replace function tracing.random_span_id() returns bigint
language sql volatile parallel safe as $$
  -- 64 random bits; W3C forbids the all-zero id, so zero becomes one.
  select coalesce(nullif(('x' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16))::bit(64)::bigint, 0), 1)
$$;

comment on function tracing.random_span_id() is E'A random, valid (non-zero) W3C span id as bigint.';

-- The run's trace: one root span, written with definer rights because span
-- rows are written only through tracing.record_spans. Its links point at
-- the root (or, when none was recorded, the first emitting span) of every
-- replayed trace, so each side can be found from the other.
create or replace function tracing.record_replay_run_span(p_run_id bigint) returns void
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run tracing.replay_runs;
  v_links jsonb;
begin
  select * into v_run from tracing.replay_runs where id = p_run_id;
  if not found then
    raise exception 'p_run_id names no replay run' using errcode = '22023', detail = format('got %s', p_run_id);
  end if;
  select jsonb_agg(jsonb_build_object(
           'trace_id', tracing.trace_id_to_hex(l.trace_id),
           'span_id', tracing.span_id_to_hex(l.span_id),
           'attributes', jsonb_build_object('tracegres.link', 'replayed trace')))
  into v_links
  from (
    select distinct on (e.trace_id) e.trace_id,
           coalesce(ts.root_span_id, e.span_id) as span_id
    from tracing.replay_items i
    join tracing.all_events e on e.id = i.event_id
    left join tracing.trace_summaries ts
      on ts.trace_id = e.trace_id and ts.organization_id is not distinct from e.organization_id
    where i.run_id = p_run_id and e.trace_id is not null and coalesce(ts.root_span_id, e.span_id) is not null
    order by e.trace_id, i.position
    limit 128
  ) as l;
  perform tracing.record_spans(jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
    'trace_id', tracing.trace_id_to_hex(v_run.trace_id),
    'span_id', tracing.span_id_to_hex(v_run.span_id),
    'name', 'replay run',
    'service', 'tracegres',
    'kind', 'internal',
    'start_time', v_run.started_at,
    'end_time', greatest(clock_timestamp(), v_run.started_at),
    'status', 'ok',
    'attributes', jsonb_build_object(
      'tracegres.replay.run_id', v_run.id,
      'tracegres.replay.reason', v_run.reason,
      'tracegres.replay.started_by', v_run.started_by,
      'tracegres.replay.event_count', v_run.event_count),
    'links', v_links,
    'correlation_id', v_run.selector ->> 'correlation_id',
    'organization_id', v_run.organization_id))));
end
$$;

comment on function tracing.record_replay_run_span(bigint) is
  E'Records the root span of a replay run''s own trace, linked to the traces it replays.';

create or replace function api.start_replay(
  p_reason text,
  p_correlation_id uuid default null,
  p_trace_id text default null,
  p_from timestamptz default null,
  p_to timestamptz default null,
  p_event_type text default null,
  p_first integer default null,
  p_include_processed boolean default false
) returns api.replay_run
language plpgsql volatile as $$
declare
  v_trace_id uuid;
  v_limit integer := tracing.replay_set_limit();
  v_selector jsonb;
  v_include boolean := coalesce(p_include_processed, false);
  v_run tracing.replay_runs;
  v_set api.replay_event[];
  v_queued integer;
  v_organizations uuid[];
begin
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'p_reason is required: say why the events are replayed' using errcode = '22023';
  end if;
  if length(p_reason) > 2000 then
    raise exception 'p_reason must be at most 2000 characters' using errcode = '22023',
      detail = format('got %s', length(p_reason));
  end if;
  -- Exactly one selector.
  if num_nonnulls(p_correlation_id, p_trace_id, coalesce(p_from, p_to)) <> 1 then
    raise exception 'p_correlation_id or p_trace_id or p_from and p_to (failed events) must be given, exactly one of them'
      using errcode = '22023';
  end if;
  if p_from is null and p_to is null then
    if p_event_type is not null then
      raise exception 'p_event_type applies only to failed events (with p_from and p_to)' using errcode = '22023';
    elsif p_first is not null then
      raise exception 'p_first applies only to failed events (with p_from and p_to)' using errcode = '22023';
    end if;
  end if;

  if p_correlation_id is not null then
    v_selector := jsonb_build_object('correlation_id', p_correlation_id);
  elsif p_trace_id is not null then
    v_trace_id := tracing.require_trace_id(p_trace_id, 'p_trace_id');
    v_selector := jsonb_build_object('trace_id', p_trace_id);
  else
    v_limit := tracing.require_failed_event_range(p_from, p_to, p_first);
    if v_include then
      raise exception 'p_include_processed does not apply to failed events' using errcode = '22023';
    end if;
    v_selector := jsonb_build_object('failed', jsonb_strip_nulls(jsonb_build_object(
      'event_type', p_event_type, 'from', p_from, 'to', p_to, 'limit', v_limit)));
  end if;

  -- One more than the bound tells a whole set from a cut one.
  select coalesce(array_agg(s order by s.position), '{}') into v_set
  from tracing.replay_set(p_correlation_id, v_trace_id, p_event_type, p_from, p_to,
                          v_limit + case when v_selector ? 'failed' then 0 else 1 end, v_include) as s;
  if cardinality(v_set) > v_limit then
    raise exception '% selects more than % events; replay it by failed events over a time range instead',
      case when p_correlation_id is not null then 'p_correlation_id' else 'p_trace_id' end, v_limit
      using errcode = '22023';
  end if;
  select count(*), array_agg(distinct s.organization_id) filter (where s.organization_id is not null)
    into v_queued, v_organizations
    from unnest(v_set) as s where s.will_replay;
  if v_queued = 0 then
    raise exception '% selects no failed or never-processed event (% events in all): nothing to replay',
      case when p_correlation_id is not null then 'p_correlation_id'
           when p_trace_id is not null then 'p_trace_id' else 'p_from and p_to' end, cardinality(v_set)
      using errcode = '22023';
  end if;

  insert into tracing.replay_runs (organization_id, selector, reason, started_by, trace_id, span_id, event_count)
  values (case when cardinality(v_organizations) = 1 then v_organizations[1] end, v_selector, btrim(p_reason),
          tracing.current_actor(), gen_random_uuid(), tracing.random_span_id(), v_queued)
  returning * into v_run;

  insert into tracing.replay_items (run_id, position, event_id, organization_id, original_processed_at, original_error)
  select v_run.id, row_number() over (order by s.position), s.event_id, s.organization_id, s.processed_at, s.processing_error
  from unnest(v_set) as s
  where s.will_replay
  order by s.position;

  perform tracing.record_replay_run_span(v_run.id);
  perform pg_notify('tracegres_replay', v_run.id::text);
  return tracing.to_api_replay_run(v_run);
end
$$;

comment on function api.start_replay(text, uuid, text, timestamptz, timestamptz, text, integer, boolean) is
  E'Admins only. Queues events again for the application''s processors, in order, and returns the run. Select them with exactly one of p_correlation_id, p_trace_id, or p_from and p_to (failed events created in that range, optionally of p_event_type, at most p_first, 1-1000, default 100). Failed and never-processed events are queued (processed ones too with p_include_processed); getReplaySet and friends show the same choice beforehand. p_reason (why) is required and kept with who started the run and when. The run gets its own trace, linked to the replayed ones.';

create or replace function api.cancel_replay(p_run_id bigint) returns api.replay_run
language plpgsql volatile as $$
declare
  v_run tracing.replay_runs;
begin
  perform tracing.require_present(p_run_id, 'p_run_id');
  select * into v_run from tracing.replay_runs where id = p_run_id for update;
  if not found then
    raise exception 'p_run_id names no replay run' using errcode = '22023', detail = format('got %s', p_run_id);
  end if;
  if v_run.status = 'completed' then
    raise exception 'p_run_id names a run that has already completed' using errcode = '22023', detail = format('got %s', p_run_id);
  end if;
  if v_run.status = 'running' then
    -- Items a processor holds under a live lease finish and report as usual;
    -- the rest never start.
    update tracing.replay_items set state = 'cancelled', claimed_until = null
      where run_id = p_run_id and (state = 'pending' or (state = 'claimed' and claimed_until <= now()));
    update tracing.replay_runs
      set status = 'cancelled', finished_at = now(), cancelled_by = tracing.current_actor()
      where id = p_run_id
      returning * into v_run;
  end if;
  return tracing.to_api_replay_run(v_run);
end
$$;

comment on function api.cancel_replay(bigint) is
  E'Admins only. Cancels a running replay run: events not yet claimed are never replayed; an event a processor holds under a live lease finishes and reports as usual, and ends cancelled if its lease runs out first. Cancelling a cancelled run returns it unchanged.';

create or replace function api.get_replay_runs(
  p_first integer default 50,
  p_after_id bigint default null
) returns setof api.replay_run
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 50, 500);
begin
  return query
    select (tracing.to_api_replay_run(r)).*
    from tracing.replay_runs r
    where p_after_id is null or r.id < p_after_id
    order by r.id desc
    limit v_first;
end
$$;

comment on function api.get_replay_runs(integer, bigint) is
  E'Replay runs, newest first, with their progress. Page with p_first (1-500, default 50); for the next page pass the id of the last run received as p_after_id.';

create or replace function api.get_replay_run(p_run_id bigint) returns api.replay_run
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_present(p_run_id, 'p_run_id');
  return (select tracing.to_api_replay_run(r) from tracing.replay_runs r where r.id = p_run_id);
end
$$;

comment on function api.get_replay_run(bigint) is
  E'One replay run with its progress; null when there is none (or it belongs to another organization).';

create or replace function api.get_replay_items(p_run_id bigint) returns setof api.replay_item
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_present(p_run_id, 'p_run_id');
  -- A run holds at most tracing.replay_set_limit() items.
  return query
    select i.run_id, i.position, i.event_id, e.event_type, e.created_at, e.correlation_id,
           tracing.trace_id_to_hex(e.trace_id),
           tracing.processing_state(i.original_processed_at, i.original_error), i.original_error,
           tracing.replay_item_state(i.state, i.claimed_until, r.status), i.attempts, i.claimed_by, i.settled_at, i.error,
           e.archived
    from tracing.replay_items i
    join tracing.replay_runs r on r.id = i.run_id
    left join tracing.all_events e on e.id = i.event_id
    where i.run_id = p_run_id
    order by i.position;
end
$$;

comment on function api.get_replay_items(bigint) is
  E'The events of a replay run in replay order: each event''s original processing outcome beside the replayed one (state pending, claimed, processed, failed or cancelled, with the error), and whether the event lives in the archive.';

----------------------------------------------------------------------------
-- A trace's replays, for its timeline: both sides of the OpenTelemetry link
-- between a run's own trace and the traces it replayed.

create or replace function api.get_trace_replays(p_trace_id text) returns setof api.trace_replay
language plpgsql stable parallel safe as $$
declare
  v_trace_id uuid := tracing.require_trace_id(p_trace_id, 'p_trace_id');
begin
  return query
    -- This trace is a run's own: the traces its root span links to (at
    -- most 128, tracing.record_replay_run_span's bound).
    (select 'replay_of'::text, r.id, r.status, r.started_at, r.reason, l.link ->> 'trace_id'
     from tracing.replay_runs r
     join tracing.spans s on s.trace_id = r.trace_id and s.span_id = r.span_id
       and s.organization_id is not distinct from r.organization_id
     cross join lateral jsonb_array_elements(coalesce(s.links, '[]')) with ordinality as l(link, n)
     where r.trace_id = v_trace_id
       and l.link -> 'attributes' ->> 'tracegres.link' = 'replayed trace'
     order by r.id, l.n
     limit 128)
    union all
    -- Runs that replayed events of this trace, newest first. Span links
    -- have no index; the runs' items do (by event).
    (select 'replayed_by'::text, r.id, r.status, r.started_at, r.reason, tracing.trace_id_to_hex(r.trace_id)
     from tracing.replay_runs r
     where r.id in (select i.run_id
                    from tracing.all_events e
                    join tracing.replay_items i on i.event_id = e.id
                    where e.trace_id = v_trace_id)
     order by r.id desc
     limit 100);
end
$$;

comment on function api.get_trace_replays(text) is
  E'The replays of one trace (p_trace_id: 32 lowercase hex characters), for its timeline: when it is a replay run''s own trace, the traces the run replayed (relation replay_of, from the OpenTelemetry links of the run''s root span, at most 128); and the replay runs that replayed events of this trace, newest first (relation replayed_by, at most 100), with each run''s trace. Readers see their own organization''s runs.';

----------------------------------------------------------------------------
-- The processors' API.

create or replace function tracing.claim_replay_event(
  p_processor text,
  p_lease interval default null
) returns table (
  run_id bigint,
  "position" integer,
  claim_token uuid,
  attempts integer,
  event_id bigint,
  event_type text,
  stream_type text,
  stream_id text,
  event_data jsonb,
  event_metadata jsonb,
  organization_id uuid,
  correlation_id uuid,
  traceparent text
)
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run tracing.replay_runs;
  v_item tracing.replay_items;
  v_passed bigint[] := '{}';
  v_lease interval := p_lease;
begin
  if p_processor is null or btrim(p_processor) = '' then
    raise exception 'p_processor is required: name the processor claiming' using errcode = '22023';
  end if;
  if v_lease is null then
    select s.claim_lease into v_lease from tracing.replay_settings s;
  elsif v_lease < interval '1 second' or v_lease > interval '1 hour' then
    raise exception 'p_lease must be between 1 second and 1 hour' using errcode = '22023',
      detail = format('got %s', p_lease);
  end if;
  -- Claims of cancelled runs whose lease ran out end cancelled (see
  -- tracing.replay_item_state). Rows another claim is ending are skipped:
  -- processors never wait for each other.
  update tracing.replay_items i
    set state = 'cancelled', claimed_until = null
    where (i.run_id, i.position) in (
      select x.run_id, x.position
      from tracing.replay_items x
      join tracing.replay_runs r on r.id = x.run_id
      where x.state = 'claimed' and x.claimed_until <= now() and r.status = 'cancelled'
      for update of x skip locked);
  -- Oldest running run with an event free to claim; a run another
  -- processor is claiming from (its row locked) is skipped, not waited for.
  -- One run at a time, LIMIT 1: a FOR loop over the query would fetch, and
  -- so lock, rows in batches. A run whose head another claim took after
  -- this statement's snapshot is passed over and the next one tried.
  loop
    select r.* into v_run
    from tracing.replay_runs r
    where r.status = 'running'
      and r.id <> all (v_passed)
      and not exists (select from tracing.replay_items i
                      where i.run_id = r.id and i.state = 'claimed' and i.claimed_until > now())
    order by r.started_at, r.id
    limit 1
    for update of r skip locked;
    exit when not found or cardinality(v_passed) >= 10;
    select i.* into v_item
    from tracing.replay_items i
    where i.run_id = v_run.id and i.state in ('pending', 'claimed')
    order by i.position
    limit 1;
    -- Order within a run: the next event waits while the one before it is
    -- held under a live lease.
    if not found or (v_item.state = 'claimed' and v_item.claimed_until > now()) then
      v_passed := v_passed || v_run.id;
      continue;
    end if;
    update tracing.replay_items i
      set state = 'claimed', claim_token = gen_random_uuid(), claimed_until = now() + v_lease,
          claimed_by = btrim(p_processor), attempts = i.attempts + 1
      where i.run_id = v_item.run_id and i.position = v_item.position
      returning * into v_item;
    -- The event's body, live or archived.
    return query
      select v_item.run_id, v_item.position, v_item.claim_token, v_item.attempts, e.id, e.event_type,
             e.stream_type, e.stream_id, e.event_data, e.event_metadata, e.organization_id, e.correlation_id,
             format('00-%s-%s-01', tracing.trace_id_to_hex(v_run.trace_id), tracing.span_id_to_hex(v_run.span_id))
      from tracing.all_events e where e.id = v_item.event_id
      limit 1;
    if found then
      return;
    end if;
    -- Purged from the archive since it was queued: it cannot be replayed,
    -- and a claim that returned nothing would hold up the run. It fails,
    -- and the run's next event is tried.
    perform tracing.settle_replay_item(v_item.run_id, v_item.position, v_item.claim_token,
      format('event %s no longer exists: it was purged from the archive', v_item.event_id));
  end loop;
end
$$;

comment on function tracing.claim_replay_event(text, interval) is
  E'For event processors: claims the next event to replay (the first open event of the oldest running run not being claimed by another processor), for p_lease (1 second to 1 hour; null: tracing.replay_settings.claim_lease, 5 minutes by default); returns no row when there is none. Once a lease runs out another claim may take the event; in a cancelled run the event ends cancelled. traceparent is the run''s root span, to parent the processing span on. Report with tracing.mark_replay_processed or tracing.mark_replay_failed and the claim_token.';

create or replace function tracing.settle_replay_item(
  p_run_id bigint, p_position integer, p_claim_token uuid, p_error text
) returns text
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_item tracing.replay_items;
  v_run_status text;
begin
  perform tracing.require_present(p_run_id, 'p_run_id');
  perform tracing.require_present(p_position, 'p_position');
  perform tracing.require_present(p_claim_token, 'p_claim_token');
  select * into v_item from tracing.replay_items i
    where i.run_id = p_run_id and i.position = p_position for update;
  if not found then
    raise exception 'p_position names no event of replay run %', p_run_id using errcode = '22023', detail = format('got %s', p_position);
  end if;
  if v_item.claim_token is distinct from p_claim_token then
    raise exception 'p_claim_token does not hold this event: its lease expired and it was claimed again'
      using errcode = '22023';
  end if;
  select r.status into v_run_status from tracing.replay_runs r where r.id = p_run_id;
  if tracing.replay_item_state(v_item.state, v_item.claimed_until, v_run_status) = 'cancelled' then
    -- Only a claim ends cancelled with its token kept: the lease ran out in
    -- a cancelled run, and the event counts as not replayed.
    raise exception 'p_claim_token does not hold this event: its lease expired after replay run % was cancelled', p_run_id
      using errcode = '22023';
  end if;
  if v_item.state <> 'claimed' then
    -- The same report again (a retried call): already recorded.
    return v_item.state;
  end if;
  update tracing.replay_items i
    set state = case when p_error is null then 'processed' else 'failed' end,
        error = p_error, settled_at = now(), claimed_until = null
    where i.run_id = p_run_id and i.position = p_position
    returning * into v_item;
  -- The event's own processing state follows its latest processing, where
  -- the event lives now.
  update tracing.domain_events e
    set processed_at = now(), processing_error = p_error
    where e.id = v_item.event_id;
  if not found then
    update tracing.domain_events_archive e
      set processed_at = now(), processing_error = p_error
      where e.id = v_item.event_id;
  end if;
  update tracing.replay_runs r
    set status = 'completed', finished_at = now()
    where r.id = p_run_id and r.status = 'running'
      and not exists (select from tracing.replay_items i where i.run_id = p_run_id and i.state in ('pending', 'claimed'));
  return v_item.state;
end
$$;

comment on function tracing.settle_replay_item(bigint, integer, uuid, text) is
  E'Records a replayed event''s outcome (processed when p_error is null, else failed) on the item and on the event (live or archived), and completes the run after its last event; shared by mark_replay_processed and mark_replay_failed.';

create or replace function tracing.mark_replay_processed(p_run_id bigint, p_position integer, p_claim_token uuid)
returns text
language sql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  select tracing.settle_replay_item(p_run_id, p_position, p_claim_token, null)
$$;

comment on function tracing.mark_replay_processed(bigint, integer, uuid) is
  E'For event processors: the claimed replay event was processed. Returns the item''s state; repeating the call is a no-op.';

create or replace function tracing.mark_replay_failed(p_run_id bigint, p_position integer, p_claim_token uuid, p_error text)
returns text
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_error is null or btrim(p_error) = '' then
    raise exception 'p_error is required: say why processing failed' using errcode = '22023';
  end if;
  return tracing.settle_replay_item(p_run_id, p_position, p_claim_token, left(p_error, 4000));
end
$$;

comment on function tracing.mark_replay_failed(bigint, integer, uuid, text) is
  E'For event processors: processing the claimed replay event failed with p_error. Returns the item''s state; repeating the call is a no-op. Later events of the run are still replayed.';

-- Readers and admins: a request without a token has no grant on replay,
-- as on alerts; it has no policy on the replay tables either.
grant execute on function
  tracing.processing_state(timestamptz, text),
  tracing.replay_item_state(text, timestamptz, text),
  tracing.replay_set_limit(),
  tracing.require_failed_event_range(timestamptz, timestamptz, integer),
  tracing.replay_set(uuid, uuid, text, timestamptz, timestamptz, integer, boolean),
  tracing.to_api_replay_run(tracing.replay_runs),
  api.get_replay_set(uuid, boolean),
  api.get_replay_set_by_trace(text, boolean),
  api.get_failed_replay_set(timestamptz, timestamptz, text, integer),
  api.get_replay_runs(integer, bigint),
  api.get_replay_run(bigint),
  api.get_replay_items(bigint),
  api.get_trace_replays(text)
to tracegres_reader;

grant execute on function
  tracing.current_actor(),
  tracing.random_span_id(),
  tracing.record_replay_run_span(bigint),
  api.start_replay(text, uuid, text, timestamptz, timestamptz, text, integer, boolean),
  api.cancel_replay(bigint)
to tracegres_admin;

grant execute on function
  tracing.claim_replay_event(text, interval),
  tracing.mark_replay_processed(bigint, integer, uuid),
  tracing.mark_replay_failed(bigint, integer, uuid, text)
to tracegres_writer;
