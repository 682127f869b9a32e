-- When retention runs: pg_cron when the server has it, otherwise the
-- in-process scheduler of `npm start`, both on the schedule stored in
-- tracing.retention_settings (checked by 140-cron.sql) and both running
-- `call tracing.run_retention()`.

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
