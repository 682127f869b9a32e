-- Sampling: one keep-or-drop decision per trace, the same in SQL and in the
-- edge toolkit (ts/edge/sampling.ts) for the same trace id and rate; the
-- shared cases are in ts/edge/sampling.vectors.json.
--
-- The decision follows OpenTelemetry's consistent probability sampling:
-- the randomness of a trace is the least-significant 56 bits of its trace
-- id (W3C Trace Context Level 2: random when the random flag is set), and a
-- trace is kept at rate r when that randomness is at least the rejection
-- threshold floor((1 - r) * 2^56). So a trace kept at some rate is kept at
-- every higher rate, and every service deciding alone agrees.
--
-- Sampling decides span and timing detail only: it deletes spans and the
-- summaries of the traces it drops, never domain events.

create or replace function tracing.trace_randomness(p_trace_id uuid) returns bigint
language sql immutable parallel safe as $$
  select ('x' || right(replace(p_trace_id::text, '-', ''), 14))::bit(56)::bigint
$$;

create or replace function tracing.sampling_threshold(p_rate numeric) returns bigint
language sql immutable parallel safe as $$
  -- numeric, not float: 0.1 is exact here, as in the TypeScript twin.
  select floor((1 - p_rate) * 72057594037927936)::bigint
$$;

create or replace function tracing.trace_kept_at(p_trace_id uuid, p_rate numeric) returns boolean
language sql immutable parallel safe as $$
  select tracing.trace_randomness(p_trace_id) >= tracing.sampling_threshold(p_rate)
$$;

comment on function tracing.trace_kept_at(uuid, numeric) is
  E'Whether the head decision keeps a trace at a rate (0..1): its trace id''s lower 56 bits against the rejection threshold, as OpenTelemetry''s consistent probability sampling.';

create or replace function tracing.sampling_pattern_matches(p_pattern text, p_value text) returns boolean
language sql immutable parallel safe as $$
  -- An exact name, or a prefix when the pattern ends in '*'.
  select coalesce(case
    when right(p_pattern, 1) = '*' then starts_with(p_value, left(p_pattern, -1))
    else p_value = p_pattern
  end, false)
$$;

create or replace function tracing.sampling_rate(p_environment text, p_operation text, p_event_types text[]) returns numeric
language sql stable parallel safe as $$
  -- Overrides replace the environment's rate; of several matching, the
  -- highest wins (more detail is the safe side).
  select coalesce(
    (select max(o.rate)
       from tracing.sampling_overrides o
      where o.environment = p_environment
        and ((o.kind = 'operation' and tracing.sampling_pattern_matches(o.pattern, p_operation))
          or (o.kind = 'event_type'
              and exists (select from unnest(p_event_types) as t(event_type) where tracing.sampling_pattern_matches(o.pattern, t.event_type))))),
    (select e.rate from tracing.sampling_environments e where e.environment = p_environment))
$$;

comment on function tracing.sampling_rate(text, text, text[]) is
  E'The head sampling rate of a trace in an environment: the highest matching override (by root operation or by one of its event types), else the environment''s rate.';

create or replace function tracing.sampling_lock_key() returns bigint
language sql immutable parallel safe as $$
  select ('x' || left(md5('tracegres sampling'), 16))::bit(64)::bigint
$$;

-- The spans with their trace's decision: sampled_by and sample_rate are
-- null while the trace waits in the tail window.
create or replace view tracing.sampled_spans with (security_invoker = true) as
  select s.*, d.sampled_by, d.sample_rate
    from tracing.spans s
    left join tracing.trace_sampling d
      on d.trace_id = s.trace_id and d.organization_id is not distinct from s.organization_id;

comment on view tracing.sampled_spans is
  E'Spans with their trace''s sampling decision and the rate it was kept at (1 for traces kept for an error, latency or a forced request); null while undecided.';

grant select on tracing.sampled_spans to tracegres_anonymous;

-- OpenTracing's sampling.priority convention: a span whose attribute is a
-- number >= 1 (or a positive integer as text) asks to keep its trace.
create or replace function tracing.span_forces_sampling(p_attributes jsonb) returns boolean
language sql immutable parallel safe as $$
  select case jsonb_typeof(p_attributes -> 'sampling.priority')
           when 'number' then (p_attributes ->> 'sampling.priority')::numeric >= 1
           when 'string' then (p_attributes ->> 'sampling.priority') ~ '^[1-9][0-9]*$'
           else false
         end
$$;

-- The traces with spans recorded after p_since and no decision yet, one per
-- organization (tenants sharing a trace id are decided apart), with what
-- the decision reads from their spans. Finds them by recorded_at (BRIN).
create or replace function tracing.undecided_traces(p_since timestamptz)
returns table (
  trace_id uuid, organization_id uuid, first_recorded timestamptz, last_recorded timestamptz,
  span_error boolean, forced boolean, duration_ms numeric, root_name text
)
language sql stable as $$
  with recent as (
    select s.trace_id, s.organization_id, min(s.recorded_at) as first_recorded, max(s.recorded_at) as last_recorded
      from tracing.spans s
     where s.recorded_at > p_since
     group by s.trace_id, s.organization_id
  )
  select r.trace_id, r.organization_id, r.first_recorded, r.last_recorded,
         bool_or(s.status = 'error'),
         bool_or(tracing.span_forces_sampling(s.attributes)),
         extract(epoch from max(s.end_time) - min(s.start_time)) * 1000,
         -- The trace's operation: its earliest root span.
         (array_agg(s.name order by s.start_time, s.span_id) filter (where s.parent_span_id is null))[1]
    from recent r
    join tracing.spans s on s.trace_id = r.trace_id and s.organization_id is not distinct from r.organization_id
   where not exists (select from tracing.trace_sampling d
                      where d.trace_id = r.trace_id and d.organization_id is not distinct from r.organization_id)
   group by r.trace_id, r.organization_id, r.first_recorded, r.last_recorded
$$;

-- The decision for each undecided trace in an environment: 'error',
-- 'forced' or 'head' (kept at once), 'latency' or 'dropped' once the trace
-- has been quiet since p_cutoff (the tail window), null while it waits.
create or replace function tracing.sampling_decisions(p_environment text, p_since timestamptz, p_cutoff timestamptz)
returns table (trace_id uuid, organization_id uuid, first_recorded timestamptz, rate numeric, sampled_by text)
language sql stable as $$
  with rated as (
    select u.*,
           tracing.sampling_rate(p_environment, u.root_name,
             case when exists (select from tracing.sampling_overrides o where o.environment = p_environment and o.kind = 'event_type')
               then array(select distinct e.event_type from tracing.domain_events e
                           where e.trace_id = u.trace_id and e.organization_id is not distinct from u.organization_id)
               else '{}'::text[] end) as rate,
           -- A failed domain event makes its trace an error trace too.
           u.span_error or exists (
             select from tracing.domain_events e
              where e.trace_id = u.trace_id and e.organization_id is not distinct from u.organization_id
                and e.processing_error is not null
           ) as has_error
      from tracing.undecided_traces(p_since) u
  )
  select r.trace_id, r.organization_id, r.first_recorded, r.rate,
         case
           -- Errors are always kept.
           when r.has_error then 'error'
           when r.forced and env.honor_forced then 'forced'
           when tracing.trace_kept_at(r.trace_id, r.rate) then 'head'
           -- Not kept up front: wait until the trace has been quiet for the
           -- tail window, then keep it only if it was slow.
           when r.last_recorded > p_cutoff then null
           when env.tail_latency_ms is not null and r.duration_ms > env.tail_latency_ms then 'latency'
           else 'dropped'
         end
    from rated r
    left join tracing.sampling_environments env on env.environment = p_environment
$$;

-- Deletes the spans recorded after p_since of traces decided 'dropped'
-- (spans arriving after their trace was dropped included); returns how many
-- spans went. Domain events stay.
--
-- A dropped trace may keep older spans: ones recorded before the watermark
-- (before sampling was installed, or by a transaction that committed after
-- a run had moved past its recorded_at). Every live span must stay under a
-- summary (store_spans finds a re-sent span, and archive_traces a trace's
-- spans, only within the summary's time range), so a summary goes only
-- with the last span of its trace; otherwise it is folded again from the
-- spans left.
create or replace function tracing.drop_sampled_out_spans(p_since timestamptz) returns bigint
language plpgsql volatile as $$
declare
  v_dropped bigint;
begin
  -- The summaries first, locked in store_spans' order: a batch adding to
  -- one of these traces meanwhile waits, and then merges into the summary
  -- folded here instead of being overwritten by it. The refold below is a
  -- new statement, so it sees every span committed before the lock.
  perform
    from tracing.trace_summaries t
   where exists (
           select from tracing.spans s
             join tracing.trace_sampling d
               on d.trace_id = s.trace_id and d.organization_id is not distinct from s.organization_id
            where s.recorded_at > p_since and d.sampled_by = 'dropped'
              and s.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id)
   order by t.trace_id, t.organization_id
     for update of t;

  with gone as (
    delete from tracing.spans s
     using tracing.trace_sampling d
     where s.recorded_at > p_since and d.trace_id = s.trace_id
       and d.organization_id is not distinct from s.organization_id and d.sampled_by = 'dropped'
    returning s.trace_id, s.organization_id
  ),
  -- The summaries of the traces that lost spans: the ones locked above,
  -- unless one appeared since (with spans as new as this statement).
  touched as (
    select t.trace_id, t.organization_id, t.start_time, t.end_time
      from tracing.trace_summaries t
     where exists (select from gone g
                    where g.trace_id = t.trace_id and g.organization_id is not distinct from t.organization_id)
  ),
  -- Each trace folded again from the spans it keeps, the same fold as
  -- store_spans' batch of inserted spans, read per trace within its
  -- summary's range (only the partitions of that range). This statement
  -- still sees the spans it deletes: every trace here was dropped, so the
  -- ones it keeps are those recorded up to p_since.
  refolded as (
    select t.trace_id, t.organization_id, k.*
      from touched t
     cross join lateral (
       select min(s.start_time) as start_time,
              max(s.end_time) as end_time,
              (array_agg(s.span_id order by s.start_time, s.span_id) filter (where s.parent_span_id is null))[1] as root_span_id,
              (array_agg(s.name order by s.start_time, s.span_id) filter (where s.parent_span_id is null))[1] as root_name,
              (array_agg(s.service order by s.start_time, s.span_id) filter (where s.parent_span_id is null))[1] as root_service,
              min(s.start_time) filter (where s.parent_span_id is null) as root_start_time,
              array_agg(distinct s.service) as services,
              count(*)::integer as span_count,
              (count(*) filter (where s.status = 'error'))::integer as error_count,
              (array_agg(s.session_id order by s.start_time, s.span_id) filter (where s.session_id is not null))[1] as session_id,
              (array_agg(s.correlation_id order by s.start_time, s.span_id) filter (where s.correlation_id is not null))[1] as correlation_id
         from tracing.spans s
        where s.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id
          and s.start_time between t.start_time and t.end_time
          and s.recorded_at <= p_since
     ) as k
  ),
  updated as (
    update tracing.trace_summaries t
       set (start_time, end_time, root_span_id, root_name, root_service, root_start_time, services, span_count,
            error_count, session_id, correlation_id) =
           (r.start_time, r.end_time, r.root_span_id, r.root_name, r.root_service, r.root_start_time, r.services,
            r.span_count, r.error_count, r.session_id, r.correlation_id),
           updated_at = now()
      from refolded r
     where t.trace_id = r.trace_id and t.organization_id is not distinct from r.organization_id and r.span_count > 0
  ),
  emptied as (
    delete from tracing.trace_summaries t
     using refolded r
     where t.trace_id = r.trace_id and t.organization_id is not distinct from r.organization_id and r.span_count = 0
  )
  select count(*) into v_dropped from gone;
  return v_dropped;
end
$$;

-- Dropped decisions only serve spans that arrive late; after a day a
-- straggler is decided afresh (the same way, by its trace id). The sampling
-- runs' log is kept a week.
create or replace function tracing.prune_sampling_history() returns void
language sql volatile as $$
  delete from tracing.trace_sampling where sampled_by = 'dropped' and decided_at < now() - interval '1 day';
  delete from tracing.retention_runs where operation = 'tail_sampling' and started_at < now() - interval '7 days';
$$;

create or replace procedure tracing.run_sampling(
  inout run_id bigint default null,
  inout traces_kept bigint default null,
  inout traces_dropped bigint default null
)
language plpgsql as $$
declare
  v_settings tracing.sampling_settings;
  v_env tracing.sampling_environments;
  v_since timestamptz;
  v_cutoff timestamptz;
  v_oldest_pending timestamptz;
  v_pending bigint;
  v_spans_dropped bigint := 0;
  v_error text;
  v_sqlstate text;
begin
  commit;
  traces_kept := 0;
  traces_dropped := 0;
  -- Runs every minute: when one is still at work the next simply skips.
  if not pg_try_advisory_lock(tracing.sampling_lock_key()) then
    return;
  end if;

  select * into v_settings from tracing.sampling_settings;
  select * into v_env from tracing.sampling_environments where environment = v_settings.environment;
  -- Spans recorded before the cutoff have waited out the tail window.
  v_cutoff := now() - coalesce(v_env.tail_window, interval '0');
  v_since := v_settings.watermark;
  run_id := tracing.start_retention_run('tail_sampling', false, v_cutoff,
    jsonb_build_object('environment', v_env.environment, 'since', v_since));
  commit;

  begin
    create temporary table sampling_candidates on commit drop as
      select * from tracing.sampling_decisions(v_env.environment, v_since, v_cutoff);

    insert into tracing.trace_sampling (trace_id, organization_id, sampled_by, sample_rate, environment)
    select trace_id, organization_id, sampled_by, case when sampled_by in ('head', 'dropped') then rate else 1 end, v_env.environment
      from sampling_candidates
     where sampled_by is not null
    on conflict (trace_id, organization_id) do nothing;

    select count(*) filter (where sampled_by is not null and sampled_by <> 'dropped'),
           count(*) filter (where sampled_by = 'dropped'),
           count(*) filter (where sampled_by is null),
           min(first_recorded) filter (where sampled_by is null)
      into traces_kept, traces_dropped, v_pending, v_oldest_pending
      from sampling_candidates;

    v_spans_dropped := tracing.drop_sampled_out_spans(v_since);

    -- The next run starts at the oldest span of a trace still waiting, or at
    -- the cutoff when none waits.
    update tracing.sampling_settings
       set watermark = least(v_cutoff, v_oldest_pending - interval '1 microsecond');

    perform tracing.prune_sampling_history();
  exception when query_canceled or others then
    v_error := sqlerrm;
    v_sqlstate := sqlstate;
  end;

  update tracing.retention_runs
     set details = details || jsonb_build_object(
           'traces_kept', run_sampling.traces_kept, 'traces_dropped', run_sampling.traces_dropped,
           'traces_waiting', coalesce(v_pending, 0), 'spans_dropped', v_spans_dropped)
   where id = run_id;
  perform tracing.finish_retention_run(run_id, v_error, v_sqlstate);
  commit;
  perform pg_advisory_unlock(tracing.sampling_lock_key());
  if v_error is not null then
    raise exception 'sampling run % failed: %', run_id, v_error using errcode = coalesce(v_sqlstate, 'XX000');
  end if;
end
$$;

comment on procedure tracing.run_sampling(bigint, bigint, bigint) is
  E'Decides the traces with spans recorded since the last run: kept for an error, a forced request or the head rate at once; otherwise after the tail window, kept if slower than the latency threshold, else their spans and summaries are deleted (domain events never are). Scheduled every minute with retention.';

-- The in-process twin of claim_retention_tick for the minute-by-minute
-- sampling job: due every minute while retention is scheduled here.
create or replace function tracing.claim_sampling_tick(p_at timestamptz default now()) returns boolean
language sql volatile as $$
  with claimed as (
    update tracing.sampling_settings
       set in_process_claimed_minute = date_trunc('minute', p_at)
     where tracing.retention_scheduler() = 'in_process'
       and in_process_claimed_minute is distinct from date_trunc('minute', p_at)
    returning true
  )
  select coalesce((select true from claimed), false)
$$;

-- The configuration of an environment (default: this database's) in the
-- shape ts/edge/sampling.ts reads (samplingConfigFromJson), so edge
-- functions follow the same settings as run_sampling. Security definer:
-- edge functions connect as tracegres_writer, which may read these settings
-- but not the tables behind them.
create or replace function tracing.sampling_config(p_environment text default null) returns jsonb
language sql stable security definer set search_path = pg_catalog, tracing as $$
  select jsonb_build_object(
    'environment', e.environment,
    -- As text: the exact decimal, which both sides turn into the threshold.
    'rate', e.rate::text,
    'honor_forced', e.honor_forced,
    'tail_window_ms', coalesce(extract(epoch from e.tail_window) * 1000, 0),
    'tail_latency_ms', e.tail_latency_ms,
    'overrides', coalesce((
      select jsonb_agg(jsonb_build_object('kind', o.kind, 'pattern', o.pattern, 'rate', o.rate::text) order by o.kind, o.pattern)
        from tracing.sampling_overrides o where o.environment = e.environment), '[]'))
  from tracing.sampling_environments e
  where e.environment = coalesce(p_environment, (select environment from tracing.sampling_settings))
$$;

comment on function tracing.sampling_config(text) is
  E'Sampling configuration of an environment (default: the one this database follows) as JSON for the edge toolkit''s samplingConfigFromJson.';
grant execute on function tracing.sampling_config(text) to tracegres_writer;
