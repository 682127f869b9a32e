-- The retention run log and lock, shared by every retention procedure
-- (130-retention.sql) and the sampling run (160-sampling.sql).
--
-- A run records itself in tracing.retention_runs when it starts
-- (start_retention_run), or as skipped when another run holds the lock
-- (skip_retention_run), and states its outcome once at the end
-- (finish_retention_run), so every procedure words the same status the same
-- way: cancelled is 'interrupted', an error is 'failed', else 'succeeded'.
-- Archive and purge runs hold one session-level advisory lock, which lasts
-- across their COMMITs and ends with the session: a killed run never leaves
-- a lock behind, and the next run marks it interrupted and carries on.

-- The key of the session-level advisory lock that archive and purge runs
-- take, so two runs never work at once (restores need no lock: a row moves
-- in one statement, and a row deleted by one mover is not returned to another).
create or replace function tracing.retention_lock_key() returns bigint
language sql immutable parallel safe as $$
  select ('x' || left(md5('tracegres retention'), 16))::bit(64)::bigint
$$;

-- Runs whose state is 'running' but whose session is gone were killed; a
-- DBA reads this view rather than the table to see that at once.
create or replace view tracing.retention_run_status as
  select r.id, r.operation, r.dry_run,
         case
           when r.status = 'running' and not exists (
             select from pg_stat_activity a where a.pid = r.backend_pid and a.backend_start is not distinct from r.backend_start
           ) then 'interrupted'
           else r.status
         end as status,
         r.started_at, r.finished_at,
         coalesce(r.finished_at, clock_timestamp()) - r.started_at as duration,
         r.horizon, r.events_moved, r.events_dropped, r.batches, r.blocks_done, r.blocks_total,
         r.partitions_created, r.partitions_indexed, r.partitions_dropped, r.error, r.details,
         r.backend_pid, r.run_by, r.application_name,
         -- Added with span retention: create or replace view takes new columns at the end only.
         r.spans_moved, r.spans_dropped
    from tracing.retention_runs r;

comment on view tracing.retention_run_status is
  E'Retention runs, newest last, with runs whose session died shown as interrupted.';

-- Records a run and returns its id; the session columns let a reader tell a
-- live run from one whose session was killed.
create or replace function tracing.start_retention_run(
  p_operation text, p_dry_run boolean, p_horizon timestamptz, p_details jsonb
) returns bigint
language sql volatile as $$
  insert into tracing.retention_runs (operation, dry_run, horizon, details, backend_start)
  values (p_operation, p_dry_run, p_horizon, p_details,
          (select backend_start from pg_stat_activity where pid = pg_backend_pid()))
  returning id
$$;

-- Takes the retention lock for this session; false when another session
-- holds it. The lock is session-level so it survives the COMMITs between
-- batches; killing the session releases it.
create or replace function tracing.try_retention_lock() returns boolean
language plpgsql volatile as $$
begin
  if not pg_try_advisory_lock(tracing.retention_lock_key()) then
    return false;
  end if;
  -- Holding the lock (and called before a run records itself), no archive
  -- or purge run is alive: any still marked running lost its session.
  update tracing.retention_runs
     set status = 'interrupted',
         error = coalesce(error, 'its session ended before the run finished; the next run carried on'),
         finished_at = coalesce(finished_at, clock_timestamp())
   where status = 'running' and not dry_run and operation in ('archive', 'purge');
  return true;
end
$$;

create or replace function tracing.release_retention_lock() returns void
language plpgsql volatile as $$
begin
  -- Session locks stack; release every hold this session took, including
  -- one left behind by an earlier call that failed in this session.
  while exists (
    select from pg_locks
     where locktype = 'advisory' and pid = pg_backend_pid() and granted and objsubid = 1
       and classid::bigint = (tracing.retention_lock_key() >> 32) & 4294967295
       and objid::bigint = tracing.retention_lock_key() & 4294967295
  ) loop
    perform pg_advisory_unlock(tracing.retention_lock_key());
  end loop;
end
$$;

-- For a session whose retention call was cancelled or failed outside the
-- steps that record it (a client that keeps its connection, like the
-- in-process scheduler's pool): mark its runs interrupted and drop its lock.
create or replace function tracing.abandon_retention_runs() returns integer
language plpgsql volatile as $$
declare
  v_count integer;
begin
  update tracing.retention_runs
     set status = 'interrupted', finished_at = clock_timestamp(),
         error = coalesce(error, 'cancelled or failed before it could record the outcome; the next run carries on')
   where status = 'running' and backend_pid = pg_backend_pid();
  get diagnostics v_count = row_count;
  perform tracing.release_retention_lock();
  return v_count;
end
$$;

comment on function tracing.abandon_retention_runs() is
  E'Marks the runs of this session still shown as running as interrupted and releases the retention lock; for clients that keep their connection after cancelling a run.';

-- Records a run that did not start because another archive or purge run
-- holds the retention lock, and says so.
create or replace function tracing.skip_retention_run(p_operation text, p_horizon timestamptz) returns bigint
language plpgsql volatile as $$
declare
  v_run_id bigint := tracing.start_retention_run(p_operation, false, p_horizon, null);
begin
  update tracing.retention_runs
     set status = 'skipped', finished_at = clock_timestamp(),
         error = 'another archive or purge run holds the retention lock'
   where id = v_run_id;
  raise notice '% run % skipped: another archive or purge run is in progress', p_operation, v_run_id;
  return v_run_id;
end
$$;

-- Records how a run ended: cancelled (SQLSTATE 57014) is interrupted, any
-- other error failed, none succeeded. Counters are the caller's to set.
create or replace function tracing.finish_retention_run(p_run_id bigint, p_error text, p_sqlstate text) returns void
language sql volatile as $$
  update tracing.retention_runs
     set status = case when p_sqlstate = '57014' then 'interrupted' when p_error is null then 'succeeded' else 'failed' end,
         finished_at = clock_timestamp(),
         error = p_error
   where id = p_run_id
$$;
