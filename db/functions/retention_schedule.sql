-- When retention runs: pg_cron when the server has it, otherwise the
-- in-process scheduler of `npm start`, both on the schedule stored in
-- tracing.retention_settings and both running `call tracing.run_retention()`.
--
-- The in-process scheduler asks this SQL whether a minute is due, so the
-- cron dialect is parsed in one place and both schedulers agree on it. Times
-- are UTC, as pg_cron's are.

-- Does one cron field (e.g. '*/15', '1-5', 'mon-fri', '0,30') allow value?
-- Raises on a malformed field, naming it.
create or replace function tracing.cron_field_matches(field text, value integer, low integer, high integer, field_name text)
returns boolean
language plpgsql immutable parallel safe as $$
declare
  item text;
  parts text[];
  range_text text;
  step integer := 1;
  range_low integer;
  range_high integer;
  matched boolean := false;
begin
  if field is null or field = '' then
    raise exception 'invalid cron expression: the % field is empty', field_name using errcode = '22023';
  end if;
  foreach item in array string_to_array(field, ',') loop
    parts := string_to_array(item, '/');
    if cardinality(parts) > 2 or parts[1] = '' or (cardinality(parts) = 2 and parts[2] !~ '^[0-9]+$') then
      raise exception 'invalid cron expression: "%" in the % field', item, field_name using errcode = '22023';
    end if;
    range_text := parts[1];
    if cardinality(parts) = 2 then
      step := parts[2]::integer;
      if step < 1 then
        raise exception 'invalid cron expression: step 0 in the % field', field_name using errcode = '22023';
      end if;
    else
      step := 1;
    end if;
    if range_text = '*' then
      range_low := low;
      range_high := high;
    elsif range_text ~ '^[0-9]+-[0-9]+$' then
      range_low := split_part(range_text, '-', 1)::integer;
      range_high := split_part(range_text, '-', 2)::integer;
    elsif range_text ~ '^[0-9]+$' then
      range_low := range_text::integer;
      -- "5/15" means from 5 to the end in steps of 15 (vixie cron).
      range_high := case when cardinality(parts) = 2 then high else range_low end;
    else
      raise exception 'invalid cron expression: "%" in the % field', item, field_name using errcode = '22023';
    end if;
    if range_low < low or range_high > high or range_low > range_high then
      raise exception 'invalid cron expression: "%" is outside %-% in the % field', item, low, high, field_name
        using errcode = '22023';
    end if;
    if value between range_low and range_high and (value - range_low) % step = 0 then
      matched := true;
    end if;
  end loop;
  return matched;
end
$$;

-- Month and weekday names as numbers, macros as their five fields.
create or replace function tracing.cron_normalize(expression text) returns text[]
language plpgsql immutable parallel safe as $$
declare
  e text := lower(btrim(coalesce(expression, '')));
  fields text[];
  name text;
  k integer;
begin
  e := case e
    when '@yearly' then '0 0 1 1 *'
    when '@annually' then '0 0 1 1 *'
    when '@monthly' then '0 0 1 * *'
    when '@weekly' then '0 0 * * 0'
    when '@daily' then '0 0 * * *'
    when '@midnight' then '0 0 * * *'
    when '@hourly' then '0 * * * *'
    else e
  end;
  if e ~ '^[0-9]+ seconds?$' or e like '@%' or e like '%$%' then
    raise exception 'cron expression "%" is not supported: retention schedules use the five standard fields (minute hour day-of-month month day-of-week), which both pg_cron and the in-process scheduler run', expression
      using errcode = '22023';
  end if;
  fields := regexp_split_to_array(e, '\s+');
  if cardinality(fields) <> 5 then
    raise exception 'invalid cron expression "%": expected 5 fields (minute hour day-of-month month day-of-week), got %',
      expression, case when e = '' then 0 else cardinality(fields) end
      using errcode = '22023';
  end if;
  k := 0;
  foreach name in array array['jan','feb','mar','apr','may','jun','jul','aug','sep','oct','nov','dec'] loop
    k := k + 1;
    fields[4] := replace(fields[4], name, k::text);
  end loop;
  k := 0;
  foreach name in array array['sun','mon','tue','wed','thu','fri','sat'] loop
    fields[5] := replace(fields[5], name, k::text);
    k := k + 1;
  end loop;
  return fields;
end
$$;

create or replace function tracing.cron_day_matches(fields text[], p_date date) returns boolean
language plpgsql immutable parallel safe as $$
declare
  dom boolean := tracing.cron_field_matches(fields[3], extract(day from p_date)::int, 1, 31, 'day-of-month');
  -- 0 and 7 both mean Sunday.
  dow boolean := tracing.cron_field_matches(fields[5], extract(dow from p_date)::int, 0, 7, 'day-of-week')
              or (extract(dow from p_date) = 0 and tracing.cron_field_matches(fields[5], 7, 0, 7, 'day-of-week'));
begin
  if not tracing.cron_field_matches(fields[4], extract(month from p_date)::int, 1, 12, 'month') then
    return false;
  end if;
  -- Vixie cron (and pg_cron): when both day fields are restricted, a day
  -- matching either one runs; when one starts with '*', both must match.
  if left(fields[3], 1) = '*' or left(fields[5], 1) = '*' then
    return dom and dow;
  end if;
  return dom or dow;
end
$$;

create or replace function tracing.cron_matches(expression text, at timestamptz) returns boolean
language plpgsql immutable parallel safe as $$
declare
  fields text[] := tracing.cron_normalize(expression);
  utc timestamp := at at time zone 'UTC';
begin
  return tracing.cron_field_matches(fields[1], extract(minute from utc)::int, 0, 59, 'minute')
     and tracing.cron_field_matches(fields[2], extract(hour from utc)::int, 0, 23, 'hour')
     and tracing.cron_day_matches(fields, utc::date);
end
$$;

comment on function tracing.cron_matches(text, timestamptz) is
  E'Whether a five-field cron expression (UTC, as pg_cron) fires in the minute of at.';

create or replace function tracing.check_cron_expression(expression text) returns text
language plpgsql immutable parallel safe as $$
begin
  -- Parsing every field against any time raises on whatever is malformed.
  perform tracing.cron_matches(expression, '2000-01-01 00:00:00+00');
  return btrim(expression);
end
$$;

comment on function tracing.check_cron_expression(text) is
  E'Returns the expression trimmed, or raises an error saying what is wrong with it.';

create or replace function tracing.cron_next_run(expression text, after timestamptz) returns timestamptz
language plpgsql immutable parallel safe as $$
declare
  fields text[] := tracing.cron_normalize(expression);
  start timestamp := date_trunc('minute', after at time zone 'UTC') + interval '1 minute';
  v_date date;
begin
  -- Day by day, then hour and minute within a matching day: at most a few
  -- thousand field checks even for a yearly schedule.
  for d in 0 .. 366 * 5 loop
    v_date := start::date + d;
    continue when not tracing.cron_day_matches(fields, v_date);
    for h in (case when d = 0 then extract(hour from start)::int else 0 end) .. 23 loop
      continue when not tracing.cron_field_matches(fields[2], h, 0, 23, 'hour');
      for m in (case when d = 0 and h = extract(hour from start) then extract(minute from start)::int else 0 end) .. 59 loop
        if tracing.cron_field_matches(fields[1], m, 0, 59, 'minute') then
          return (v_date + make_time(h, m, 0)) at time zone 'UTC';
        end if;
      end loop;
    end loop;
  end loop;
  return null;
end
$$;

comment on function tracing.cron_next_run(text, timestamptz) is
  E'The first minute after `after` in which the cron expression fires (null if none within five years, e.g. 30 February).';

-- pg_cron as this database sees it: loaded into the server (it defines
-- cron.database_name), and whether its extension lives in this database.
create or replace function tracing.pg_cron_status(out loaded boolean, out cron_database text, out installed_here boolean)
language sql stable as $$
  select current_setting('cron.database_name', true) is not null,
         current_setting('cron.database_name', true),
         to_regprocedure('cron.schedule(text,text,text)') is not null
$$;

comment on function tracing.pg_cron_status() is
  E'Whether pg_cron is loaded into the server, which database holds its jobs, and whether that is this database.';

create or replace function tracing.retention_job_name() returns text
language sql stable as $$
  -- One pg_cron database can serve several application databases.
  select 'tracegres-retention:' || current_database()
$$;

create or replace function tracing.retention_job_command() returns text
language sql immutable as $$
  select 'call tracing.run_retention()'
$$;

-- The pg_cron jobs retention consists of: the retention pass on its
-- schedule, and the sampling decisions every minute (the tail window is
-- minutes long). Both schedulers, and the CLI, register exactly these.
create or replace function tracing.retention_cron_jobs(p_cron text)
returns table (job_name text, schedule text, command text)
language sql stable as $$
  values (tracing.retention_job_name(), p_cron, tracing.retention_job_command()),
         ('tracegres-sampling:' || current_database(), '* * * * *', 'call tracing.run_sampling()')
$$;

comment on function tracing.retention_cron_jobs(text) is
  E'The pg_cron jobs of retention (name, schedule, command) for a retention cron expression: run_retention on it, run_sampling every minute.';

-- Who runs retention now: 'pg_cron' (a job was registered and pg_cron is
-- there), 'in_process' (npm start does, on the stored schedule), or 'off'.
create or replace function tracing.retention_scheduler() returns text
language sql stable as $$
  select case
    when s.schedule is null then 'off'
    when s.pg_cron_job is not null and (c.loaded or c.installed_here) then 'pg_cron'
    else 'in_process'
  end
  from tracing.retention_settings s, tracing.pg_cron_status() c
$$;

comment on function tracing.retention_scheduler() is
  E'pg_cron when a retention job is registered with pg_cron, in_process when npm start runs retention itself on the stored schedule, off when unscheduled.';

-- Records the schedule and the pg_cron job, if any, that runs it. The CLI
-- calls this after registering the job in pg_cron's own database.
create or replace function tracing.note_retention_schedule(p_cron text, p_pg_cron_job text) returns void
language sql volatile as $$
  update tracing.retention_settings
     set schedule = case when p_cron is null then null else tracing.check_cron_expression(p_cron) end,
         pg_cron_job = p_pg_cron_job
$$;

create or replace function tracing.schedule_retention(p_cron text default '17 3 * * *', p_in_process boolean default false)
returns text
language plpgsql volatile as $$
declare
  v_cron text;
  v_pg_cron record;
  v_entry record;
  v_calls text;
  v_job text := tracing.retention_job_name();
begin
  if p_cron is null then
    raise exception 'p_cron must be a cron expression such as ''17 3 * * *''; to stop scheduled retention call tracing.unschedule_retention()'
      using errcode = '22023';
  end if;
  begin
    v_cron := tracing.check_cron_expression(p_cron);
  exception when invalid_parameter_value then
    raise exception 'p_cron: %', sqlerrm using errcode = '22023';
  end;
  select * into v_pg_cron from tracing.pg_cron_status();

  if v_pg_cron.installed_here then
    -- Named jobs are upserted by pg_cron: calling again replaces the schedule.
    for v_entry in select * from tracing.retention_cron_jobs(v_cron) loop
      execute 'select cron.schedule($1, $2, $3)' using v_entry.job_name, v_entry.schedule, v_entry.command;
    end loop;
    perform tracing.note_retention_schedule(v_cron, v_job);
    return format('pg_cron job %s runs %s at "%s" (UTC), and tracegres-sampling:%s runs call tracing.run_sampling() every minute',
      v_job, tracing.retention_job_command(), v_cron, current_database());
  end if;

  if p_in_process then
    perform tracing.note_retention_schedule(v_cron, null);
    return format('no pg_cron here: the tracegres server (npm start) runs %s at "%s" (UTC)', tracing.retention_job_command(), v_cron);
  end if;

  if v_pg_cron.loaded then
    select string_agg(format('select cron.schedule_in_database(%L, %L, %L, %L);', j.job_name, j.schedule, j.command, current_database()), ' ')
      into v_calls from tracing.retention_cron_jobs(v_cron) j;
    raise exception 'pg_cron keeps its jobs in database "%", not in "%"', v_pg_cron.cron_database, current_database()
      using errcode = '55000',
            hint = format(
              'Run `npx tracegres retention schedule ''%s''`, which registers the jobs there for you, or in database "%s" run: %s '
              || 'then here: select tracing.note_retention_schedule(%L, %L);',
              v_cron, v_pg_cron.cron_database, v_calls, v_cron, v_job);
  end if;

  raise exception 'pg_cron is not installed on this server, so retention cannot be scheduled with it'
    using errcode = '55000',
          hint = format(
            'To install it: add the pg_cron package for PostgreSQL %s (Debian/Ubuntu: apt install postgresql-%s-cron), '
            || 'set shared_preload_libraries = ''pg_cron'' and cron.database_name = %L in postgresql.conf, restart Postgres, '
            || 'then run `create extension pg_cron;` in that database. '
            || 'Without pg_cron, call tracing.schedule_retention(%L, p_in_process => true) and `npm start` runs retention itself on that schedule.',
            current_setting('server_version_num')::int / 10000, current_setting('server_version_num')::int / 10000,
            current_database(), v_cron);
end
$$;

comment on function tracing.schedule_retention(text, boolean) is
  E'Schedules call tracing.run_retention() with pg_cron (creating or replacing the job), on a cron expression in UTC. Raises with install instructions when pg_cron is absent; p_in_process => true then stores the schedule for the npm start scheduler instead.';

create or replace function tracing.unschedule_retention() returns text
language plpgsql volatile as $$
declare
  v_job text;
  v_pg_cron record;
begin
  select pg_cron_job into v_job from tracing.retention_settings;
  select * into v_pg_cron from tracing.pg_cron_status();
  if v_job is not null and v_pg_cron.installed_here then
    execute 'select cron.unschedule(jobid) from cron.job where jobname in (select job_name from tracing.retention_cron_jobs(null))';
  elsif v_job is not null and v_pg_cron.loaded then
    raise exception 'the retention jobs live in pg_cron''s database "%"', v_pg_cron.cron_database
      using errcode = '55000',
            hint = format(
              'Run `npx tracegres retention schedule --off`, or in database "%s" run: %s then here: select tracing.note_retention_schedule(null, null);',
              v_pg_cron.cron_database,
              (select string_agg(format('select cron.unschedule(%L);', job_name), ' ') from tracing.retention_cron_jobs(null)));
  end if;
  perform tracing.note_retention_schedule(null, null);
  return 'retention is no longer scheduled; run it by hand with call tracing.run_retention()';
end
$$;

comment on function tracing.unschedule_retention() is
  E'Stops scheduled retention: removes the pg_cron job and the in-process schedule.';

-- The in-process scheduler calls this once a minute; true means "run now".
-- Claiming the minute in the settings row makes several app instances run
-- each scheduled minute once (the retention lock would skip a second run
-- anyway, but it would still be recorded).
create or replace function tracing.claim_retention_tick(p_at timestamptz default now()) returns boolean
language sql volatile as $$
  with claimed as (
    update tracing.retention_settings
       set in_process_claimed_minute = date_trunc('minute', p_at)
     where tracing.retention_scheduler() = 'in_process'
       and tracing.cron_matches(schedule, p_at)
       and in_process_claimed_minute is distinct from date_trunc('minute', p_at)
    returning true
  )
  select coalesce((select true from claimed), false)
$$;

comment on function tracing.claim_retention_tick(timestamptz) is
  E'For the in-process scheduler: true, once per minute across all callers, when retention is due in the minute of p_at and pg_cron does not run it.';
