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
  v_event_overrides boolean;
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
  v_event_overrides := exists (
    select from tracing.sampling_overrides where environment = v_env.environment and kind = 'event_type');
  run_id := tracing.start_retention_run('tail_sampling', false, v_cutoff,
    jsonb_build_object('environment', v_env.environment, 'since', v_since));
  commit;

  begin
    create temporary table sampling_candidates on commit drop as
      with recent as (
        -- Traces with spans recorded since the last run (BRIN on recorded_at),
        -- one per organization: tenants sharing a trace id are decided apart.
        select s.trace_id, s.organization_id, min(s.recorded_at) as first_recorded, max(s.recorded_at) as last_recorded
          from tracing.spans s
         where s.recorded_at > v_since
         group by s.trace_id, s.organization_id
      ),
      undecided as (
        select r.* from recent r
         where not exists (select from tracing.trace_sampling d
                             where d.trace_id = r.trace_id and d.organization_id is not distinct from r.organization_id)
      ),
      facts as (
        select u.trace_id, u.organization_id, u.first_recorded, u.last_recorded,
               bool_or(s.status = 'error') as span_error,
               -- OpenTracing's sampling.priority convention: >= 1 asks to keep.
               bool_or(case jsonb_typeof(s.attributes -> 'sampling.priority')
                         when 'number' then (s.attributes ->> 'sampling.priority')::numeric >= 1
                         when 'string' then (s.attributes ->> 'sampling.priority') ~ '^[1-9][0-9]*$'
                         else false
                       end) as forced,
               extract(epoch from max(s.end_time) - min(s.start_time)) * 1000 as duration_ms,
               -- The trace's operation: its earliest root span.
               (array_agg(s.name order by s.start_time, s.span_id) filter (where s.parent_span_id is null))[1] as root_name
          from undecided u
          join tracing.spans s on s.trace_id = u.trace_id and s.organization_id is not distinct from u.organization_id
         group by u.trace_id, u.organization_id, u.first_recorded, u.last_recorded
      ),
      rated as (
        select f.*,
               tracing.sampling_rate(v_env.environment, f.root_name,
                 case when v_event_overrides
                   then array(select distinct e.event_type from tracing.domain_events e
                               where e.trace_id = f.trace_id and e.organization_id is not distinct from f.organization_id)
                   else '{}'::text[] end) as rate,
               -- A failed domain event makes its trace an error trace too.
               f.span_error or exists (
                 select from tracing.domain_events e
                  where e.trace_id = f.trace_id and e.organization_id is not distinct from f.organization_id
                    and e.processing_error is not null
               ) as has_error
          from facts f
      )
      select r.trace_id, r.organization_id, r.first_recorded, r.rate,
             case
               -- Errors are always kept.
               when r.has_error then 'error'
               when r.forced and v_env.honor_forced then 'forced'
               when tracing.trace_kept_at(r.trace_id, r.rate) then 'head'
               -- Not kept up front: wait until the trace has been quiet
               -- for the tail window, then keep it only if it was slow.
               when r.last_recorded > v_cutoff then null
               when v_env.tail_latency_ms is not null and r.duration_ms > v_env.tail_latency_ms then 'latency'
               else 'dropped'
             end as sampled_by
        from rated r;

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

    -- The spans of dropped traces, including spans that arrived after their
    -- trace was dropped, and the summaries those spans fed.
    with gone as (
      delete from tracing.spans s
       using tracing.trace_sampling d
       where s.recorded_at > v_since and d.trace_id = s.trace_id
         and d.organization_id is not distinct from s.organization_id and d.sampled_by = 'dropped'
      returning s.trace_id, s.organization_id
    ),
    counted as (
      select count(*) as n from gone
    ),
    summaries as (
      delete from tracing.trace_summaries t
       where exists (select from gone g
                      where g.trace_id = t.trace_id and g.organization_id is not distinct from t.organization_id)
    )
    select n into v_spans_dropped from counted;

    -- The next run starts at the oldest span of a trace still waiting, or at
    -- the cutoff when none waits.
    update tracing.sampling_settings
       set watermark = least(v_cutoff, v_oldest_pending - interval '1 microsecond');

    -- Dropped decisions only serve spans that arrive late; after a day a
    -- straggler is decided afresh (the same way, by its trace id).
    delete from tracing.trace_sampling where sampled_by = 'dropped' and decided_at < now() - interval '1 day';
    delete from tracing.retention_runs where operation = 'tail_sampling' and started_at < now() - interval '7 days';
  exception when query_canceled or others then
    v_error := sqlerrm;
    v_sqlstate := sqlstate;
  end;

  update tracing.retention_runs
     set status = case when v_sqlstate = '57014' then 'interrupted' when v_error is null then 'succeeded' else 'failed' end,
         finished_at = clock_timestamp(),
         error = v_error,
         details = details || jsonb_build_object(
           'traces_kept', run_sampling.traces_kept, 'traces_dropped', run_sampling.traces_dropped,
           'traces_waiting', coalesce(v_pending, 0), 'spans_dropped', v_spans_dropped)
   where id = run_id;
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
