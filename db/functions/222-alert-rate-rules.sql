-- Rate rules: once a minute, the error rate or p95 duration of a service
-- (and operation) over each rule's window is compared with its threshold,
-- and a crossing raises an alert through tracing.raise_alerts, so grouping,
-- the hourly limit and mutes work as for event rules (a condition that
-- lasts counts repeats into its alert instead of sending every minute).
--
-- The numbers are api.red_metrics' (106-trace-metrics.sql), read with the
-- rights of the rule's tenant (tracegres_reader with its organization, or
-- tracegres_admin for a rule of every organization), so row-level security
-- decides which spans a rule sees, exactly as it does for that tenant's
-- dashboard, and the definition of a request is written once. A rule
-- reads its window once for the numbers and, when it crosses, once more
-- for an example trace of every crossing operation (it used to read it
-- again for each one). The crossings of all rules are raised in one call.
--
-- Who runs it: pg_cron, when it is installed in this database (the server
-- registers the job at start), otherwise the server's in-process scheduler,
-- which claims each minute here so several servers evaluate it once.

create or replace function tracing.evaluate_rate_rules(p_at timestamptz default now()) returns integer
language plpgsql volatile
-- Invoker rights on purpose: a security definer function may not switch roles.
set search_path = pg_catalog, pg_temp
as $$
declare
  v_rule tracing.alert_rules;
  v_role text := current_setting('role');
  v_claim text := coalesce(current_setting('jwt.claims.organization_id', true), '');
  v_from timestamptz;
  v_crossings jsonb;
  v_examples jsonb;
  v_firings tracing.alert_firing[] := '{}';
begin
  perform tracing.require_present(p_at, 'p_at');
  for v_rule in
    select r.* from tracing.alert_rules r where r.kind = 'rate' and r.enabled order by r.id
  loop
    v_from := p_at - make_interval(secs => v_rule.window_seconds);
    perform set_config('role', case when v_rule.organization_id is null then 'tracegres_admin' else 'tracegres_reader' end, true);
    perform set_config('jwt.claims.organization_id', coalesce(v_rule.organization_id::text, ''), true);
    -- One bucket the size of the window: the window's numbers per operation.
    select coalesce(jsonb_agg(jsonb_build_object(
             'service', m.service, 'operation', m.operation, 'metric', v_rule.metric,
             'value', case v_rule.metric when 'error_rate' then m.error_rate else m.p95_ms end,
             'threshold', v_rule.threshold, 'window_seconds', v_rule.window_seconds,
             'window_from', v_from, 'window_to', p_at,
             'requests', m.requests, 'errors', m.errors, 'error_rate', m.error_rate, 'p95_ms', m.p95_ms)), '[]')
      into v_crossings
      from api.red_metrics(v_from, p_at, v_rule.window_seconds, v_rule.service, v_rule.operation) m
     where m.requests >= v_rule.min_requests
       and case v_rule.metric when 'error_rate' then m.error_rate else m.p95_ms end > v_rule.threshold;
    -- An example to open for each crossing, all from one more pass over the
    -- window: the latest failed request, or the slowest one.
    v_examples := '{}';
    if v_crossings <> '[]' then
      select coalesce(jsonb_object_agg(x.service || '/' || x.name, tracing.trace_id_to_hex(x.trace_id)), '{}')
        into v_examples
        from (select distinct on (s.service, s.name) s.service, s.name, s.trace_id
                from tracing.window_spans(v_from, p_at) s
               where (s.service, s.name) in (select c ->> 'service', c ->> 'operation' from jsonb_array_elements(v_crossings) c)
                 and tracing.is_request(s.kind, s.parent_span_id)
                 and (v_rule.metric <> 'error_rate' or s.status = 'error')
               order by s.service, s.name,
                        case when v_rule.metric = 'error_rate' then extract(epoch from s.start_time) else s.duration_ms end desc) x;
    end if;
    perform set_config('role', v_role, true);
    perform set_config('jwt.claims.organization_id', v_claim, true);
    v_firings := v_firings || array(
      select row(v_rule.id, f.fingerprint, v_rule.organization_id, null,
                 c || jsonb_build_object('trace_id', v_examples ->> f.fingerprint), 1)::tracing.alert_firing
        from jsonb_array_elements(v_crossings) c
        cross join lateral (select (c ->> 'service') || '/' || (c ->> 'operation') as fingerprint) f);
  end loop;
  perform tracing.raise_alerts(v_firings);
  return cardinality(v_firings);
end
$$;

comment on function tracing.evaluate_rate_rules(timestamptz) is
  E'Evaluates every enabled rate rule over the window ending at p_at (default now) with its tenant''s rights, and raises (or counts) an alert per service and operation whose error rate or p95 duration is above the threshold; returns how many crossings it found.';

create or replace function tracing.alert_rates_cron_job() returns table (job_name text, schedule text, command text)
language sql stable as $$
  -- One pg_cron database can serve several application databases.
  values ('tracegres-alert-rates:' || current_database(), '* * * * *', 'select tracing.evaluate_rate_rules()')
$$;

comment on function tracing.alert_rates_cron_job() is
  E'The pg_cron job that evaluates the rate rules every minute (name, schedule, command).';

-- 'pg_cron' when the job is registered with pg_cron in this database,
-- otherwise 'in_process' (the server evaluates the rules itself).
create or replace function tracing.alert_rates_scheduler() returns text
language plpgsql stable as $$
declare
  v_found boolean := false;
begin
  if (select c.installed_here from tracing.pg_cron_status() c) then
    execute 'select exists (select from cron.job where jobname = $1)' into v_found using (select j.job_name from tracing.alert_rates_cron_job() j);
  end if;
  return case when v_found then 'pg_cron' else 'in_process' end;
end
$$;

comment on function tracing.alert_rates_scheduler() is
  E'Who evaluates the rate rules: pg_cron (its job is registered in this database) or in_process (the tracegres server).';

create or replace function tracing.schedule_alert_rates() returns text
language plpgsql volatile as $$
declare
  v_job record;
begin
  select * into v_job from tracing.alert_rates_cron_job();
  if (select c.installed_here from tracing.pg_cron_status() c) then
    -- Named jobs are upserted by pg_cron: calling again changes nothing.
    execute 'select cron.schedule($1, $2, $3)' using v_job.job_name, v_job.schedule, v_job.command;
    return format('pg_cron job %s runs %s every minute', v_job.job_name, v_job.command);
  end if;
  return 'no pg_cron in this database: the tracegres server evaluates the rate rules every minute';
end
$$;

comment on function tracing.schedule_alert_rates() is
  E'Registers the every-minute evaluation of the rate rules with pg_cron when it is installed in this database (the server calls this at start); otherwise says that the server''s scheduler runs it.';

-- The in-process scheduler asks once a minute; true means "evaluate now",
-- for one caller per minute, and never while pg_cron runs the job.
create or replace function tracing.claim_alert_rate_tick(p_at timestamptz default now()) returns boolean
language sql volatile as $$
  with claimed as (
    update tracing.alert_settings
       set rate_rules_claimed_minute = date_trunc('minute', p_at)
     where tracing.alert_rates_scheduler() = 'in_process'
       and rate_rules_claimed_minute is distinct from date_trunc('minute', p_at)
    returning true
  )
  select coalesce((select true from claimed), false)
$$;

comment on function tracing.claim_alert_rate_tick(timestamptz) is
  E'For the in-process scheduler: true once per minute across all callers when the rate rules are due and pg_cron does not evaluate them.';

revoke all on function tracing.evaluate_rate_rules(timestamptz) from public;
revoke all on function tracing.schedule_alert_rates() from public;
revoke all on function tracing.claim_alert_rate_tick(timestamptz) from public;
