-- Retention entry points a DBA calls by name (see docs/retention-and-sampling.md):
--
--   call tracing.archive_events(p_older_than, p_dry_run, p_batch_size)
--   call tracing.purge_archive(p_older_than, p_dry_run)
--   call tracing.restore_events(p_trace_id | p_correlation_id | p_session_id, p_keep_for, p_dry_run)
--   call tracing.run_retention(p_dry_run)         -- what the schedule runs
--
-- They are procedures, not functions, because a function runs in one
-- transaction: these COMMIT after every batch, so each step is a short
-- transaction, the run log shows progress as it happens, and a run killed at
-- any moment loses only its current batch, which simply stays live.
-- Being procedures, they must be CALLed outside an explicit transaction.
--
-- Each reads as a list of steps that live apart: the run log and lock in
-- 115-retention-runs.sql, the event batches in 125-retention-events.sql,
-- the span batches in 120-retention-spans.sql, the month partitions and
-- their indexes in 110-archive-partitions.sql.

create or replace procedure tracing.archive_events(
  p_older_than interval default null,
  p_dry_run boolean default false,
  p_batch_size integer default null,
  inout run_id bigint default null,
  inout events_moved bigint default null
)
language plpgsql as $$
declare
  v_settings tracing.retention_settings;
  v_horizon timestamptz;
  v_batch integer;
  v_partitions regclass[];
  v_blocks bigint[];
  v_months text[] := '{}';
  v_parent regclass;
  v_live_created text[] := '{}';
  v_live_not_created jsonb := '[]';
  v_created text[] := '{}';
  v_indexed text[];
  v_index_error text;
  v_error text;
  v_sqlstate text;
  v_spans bigint;
  v_started timestamptz := clock_timestamp();
begin
  -- Fail at once when CALLed inside a transaction block, where the COMMITs
  -- below would fail only after the lock was taken.
  commit;

  select * into v_settings from tracing.retention_settings;
  perform tracing.require_positive_interval(p_older_than, 'p_older_than');
  if p_batch_size is not null and p_batch_size < 1 then
    raise exception 'p_batch_size must be at least 1, got %', p_batch_size using errcode = '22023';
  end if;
  -- Fixed for the whole run: every batch moves the same rows it would have
  -- at the start, however long the run takes.
  v_horizon := now() - coalesce(p_older_than, v_settings.archive_after);
  v_batch := coalesce(p_batch_size, v_settings.batch_size);

  if p_dry_run then
    select d.run_id, d.events into run_id, events_moved from tracing.archive_events_dry_run(v_horizon, v_batch) d;
    return;
  end if;

  events_moved := 0;
  if not tracing.try_retention_lock() then
    run_id := tracing.skip_retention_run('archive', v_horizon);
    commit;
    return;
  end if;

  run_id := tracing.start_retention_run('archive', false, v_horizon,
    jsonb_build_object('batch_size', v_batch, 'older_than', coalesce(p_older_than, v_settings.archive_after)::text));
  -- What the row batches would scan now; measured again once whole months
  -- have moved.
  update tracing.retention_runs
     set blocks_total = (select coalesce(sum(s.blocks), 0)
                           from tracing.archive_scan_partitions(v_horizon, v_settings.archive_whole_months) s),
         blocks_done = 0
   where id = run_id;

  -- The live tables' months ahead (108-live-partitions.sql): this run is
  -- their upkeep, whichever scheduler runs it. One table a transaction, and
  -- apart from the archive's partitions below, so a reader of several of
  -- them never waits in a cycle with this run's locks. Its wait for a lock
  -- is cut short at 10 s (or the session's lock_timeout, if shorter). A
  -- table whose upkeep fails (a lock not granted, say) is recorded in the
  -- run's details and the server log, and the run goes on archiving: the
  -- months ahead are not needed yet (the current month is kept months_ahead
  -- in advance, and rows of a month without one land in the default
  -- partition), and the next run tries again. A cancel ends the run.
  foreach v_parent in array array(select tracing.live_partitioned_tables()) loop
    begin
      if current_setting('lock_timeout')::interval not between interval '1 microsecond' and interval '10 seconds' then
        set local lock_timeout = '10s';
      end if;
      v_live_created := v_live_created || array(select tracing.ensure_live_partitions_ahead(v_parent));
    exception
      when query_canceled then
        v_error := format('creating partitions of %s ahead: %s', v_parent, sqlerrm);
        v_sqlstate := sqlstate;
      when others then
        v_live_not_created := v_live_not_created
          || jsonb_build_object('table', v_parent::text, 'reason', sqlerrm, 'sqlstate', sqlstate);
        raise warning 'archive run %: creating partitions of % ahead failed, the next run tries again: % (SQLSTATE %)',
          run_id, v_parent, sqlerrm, sqlstate;
    end;
    update tracing.retention_runs
       set details = details || jsonb_build_object('live_partitions_created', v_live_created)
                     || case when jsonb_array_length(v_live_not_created) > 0
                             then jsonb_build_object('live_partitions_not_created', v_live_not_created) else '{}' end
     where id = run_id;
    commit;
    exit when v_error is not null;
  end loop;

  if v_error is null then
    select p.partitions_created, p.error, p.error_sqlstate into v_created, v_error, v_sqlstate
      from tracing.prepare_archive_run(run_id, v_horizon, v_settings.months_ahead) p;
    commit;
  end if;

  -- Events (125-retention-events.sql): whole live months older than the
  -- horizon move as partitions, then the rest row by row in batches over
  -- the live partitions that can hold old events, with their blocks as
  -- they are now (rows inserted later are new, not old, or, if written with
  -- an old created_at, wait for the next run). Then whole traces of spans
  -- that ended before the horizon (120-retention-spans.sql), batch by batch
  -- under the same lock.
  if v_error is null then
    call tracing.archive_event_months_of_run(run_id, v_horizon, events_moved, v_months, v_error, v_sqlstate);
  end if;
  if v_error is null then
    select array_agg(s.partition order by s.n), array_agg(s.blocks order by s.n) into v_partitions, v_blocks
      from tracing.archive_scan_partitions(v_horizon, v_settings.archive_whole_months) with ordinality as s(partition, blocks, n);
    update tracing.retention_runs
       set blocks_total = coalesce((select sum(b) from unnest(v_blocks) as b), 0), blocks_done = 0
     where id = run_id;
    commit;
    call tracing.archive_events_of_run(run_id, v_horizon, v_batch, v_partitions, v_blocks, events_moved, v_created, v_error, v_sqlstate);
  end if;
  if v_error is null then
    call tracing.archive_spans_of_run(run_id, v_horizon, v_batch, v_error, v_sqlstate);
  end if;

  -- Index the months this run (or a killed one) filled; done even after a
  -- failure, so lookups into what did move stay fast.
  if v_sqlstate is distinct from '57014' then
    call tracing.index_archive_partitions(v_indexed, v_index_error);
  end if;

  update tracing.retention_runs set partitions_indexed = coalesce(v_indexed, '{}') where id = run_id;
  perform tracing.finish_retention_run(run_id, nullif(concat_ws('; ', v_error, v_index_error), ''), v_sqlstate);
  commit;
  perform tracing.release_retention_lock();

  if v_sqlstate = '57014' then
    raise exception 'archive run % was cancelled after moving % events; the next run carries on', run_id, events_moved
      using errcode = '57014';
  end if;
  if v_error is not null or v_index_error is not null then
    raise exception 'archive run % failed after moving % events: %', run_id, events_moved, concat_ws('; ', v_error, v_index_error)
      using errcode = coalesce(v_sqlstate, 'XX000'),
            hint = 'The events it moved are in the archive; the rest are still live. Fix the cause and run it again.';
  end if;
  select r.spans_moved into v_spans from tracing.retention_runs r where r.id = run_id;
  raise notice 'archive run %: % events created before % (whole months moved as partitions: %) and % spans of traces ended before it moved in %; partitions created: %, indexed: %',
    run_id, events_moved, v_horizon, v_months, v_spans, date_trunc('second', clock_timestamp() - v_started), v_created, v_indexed;
end
$$;

comment on procedure tracing.archive_events(interval, boolean, integer, bigint, bigint) is
  E'Moves events created more than p_older_than ago (default retention_settings.archive_after) from domain_events to the monthly archive (a live month older than that as a whole partition; one the horizon falls in waits until it is whole unless retention_settings.archive_whole_months is off), then whole traces whose spans ended before that to tracing.spans_archive, in batches of about p_batch_size rows, each its own transaction. p_dry_run counts what would move. Records the run (events_moved, spans_moved) in tracing.retention_runs.';

create or replace procedure tracing.purge_archive(
  p_older_than interval default null,
  p_dry_run boolean default false,
  inout run_id bigint default null,
  inout events_dropped bigint default null
)
language plpgsql as $$
declare
  v_after interval;
  v_horizon timestamptz;
  v_partitions integer;
  v_batch integer;
  v_spans bigint;
  v_error text;
  v_sqlstate text;
begin
  commit;
  perform tracing.require_positive_interval(p_older_than, 'p_older_than');
  select coalesce(p_older_than, s.purge_after), s.batch_size into v_after, v_batch from tracing.retention_settings s;
  events_dropped := 0;
  if v_after is null then
    raise notice 'purge is off: set tracing.retention_settings.purge_after, or pass p_older_than';
    return;
  end if;
  v_horizon := now() - v_after;

  if not p_dry_run and not tracing.try_retention_lock() then
    run_id := tracing.skip_retention_run('purge', v_horizon);
    commit;
    return;
  end if;

  run_id := tracing.start_retention_run('purge', p_dry_run, v_horizon, jsonb_build_object('older_than', v_after::text));
  commit;

  -- The archive's whole months of events (125-retention-events.sql), then
  -- archived traces that ended before the horizon, row by row with their
  -- spans (120-retention-spans.sql).
  call tracing.purge_events_of_run(run_id, v_horizon, p_dry_run, events_dropped, v_partitions, v_error, v_sqlstate);
  if v_error is null then
    call tracing.purge_spans_of_run(run_id, v_horizon, v_batch, p_dry_run, v_error, v_sqlstate);
  end if;
  select r.spans_dropped into v_spans from tracing.retention_runs r where r.id = run_id;

  perform tracing.finish_retention_run(run_id, v_error, v_sqlstate);
  commit;
  if not p_dry_run then
    perform tracing.release_retention_lock();
  end if;
  if v_error is not null then
    raise exception 'purge run % failed: %', run_id, v_error using errcode = coalesce(v_sqlstate, 'XX000');
  end if;
  raise notice 'purge %run %: % archive partitions ending before % %, % events, and % archived spans',
    case when p_dry_run then 'dry ' else '' end, run_id, v_partitions,
    v_horizon, case when p_dry_run then 'would be dropped' else 'dropped' end, events_dropped, v_spans;
end
$$;

comment on procedure tracing.purge_archive(interval, boolean, bigint, bigint) is
  E'Drops the archive partitions whose whole month is older than p_older_than (default retention_settings.purge_after; null there means purge is off), then deletes the archived traces that ended before it, spans included. p_dry_run lists the partitions with their event counts and counts the spans. Records the run (events_dropped, spans_dropped) in tracing.retention_runs.';

-- What restore_events brings back, from its three exclusive arguments: the
-- column to match in the archive and the value, the trace id parsed from
-- its W3C spelling.
create or replace function tracing.restore_selector(
  p_trace_id text, p_correlation_id uuid, p_session_id uuid,
  out key_column text, out key_value uuid
)
language plpgsql immutable as $$
begin
  if num_nonnulls(p_trace_id, p_correlation_id, p_session_id) <> 1 then
    raise exception 'restore_events needs exactly one of p_trace_id, p_correlation_id, p_session_id'
      using errcode = '22023';
  end if;
  if p_trace_id is not null then
    key_column := 'trace_id';
    key_value := tracing.hex_to_trace_id(p_trace_id);
    if key_value is null then
      raise exception 'p_trace_id must be a W3C trace id (32 lowercase hex characters, not all zeros), got "%"', p_trace_id
        using errcode = '22023';
    end if;
  elsif p_correlation_id is not null then
    key_column := 'correlation_id';
    key_value := p_correlation_id;
  else
    key_column := 'session_id';
    key_value := p_session_id;
  end if;
end
$$;

comment on function tracing.restore_selector(text, uuid, uuid) is
  E'Checks the arguments of tracing.restore_events (exactly one of p_trace_id, p_correlation_id, p_session_id; a W3C trace id) and names the archive column and value to restore by.';

create or replace procedure tracing.restore_events(
  p_trace_id text default null,
  p_correlation_id uuid default null,
  p_session_id uuid default null,
  p_keep_for interval default null,
  p_dry_run boolean default false,
  inout run_id bigint default null,
  inout events_restored bigint default null
)
language plpgsql as $$
declare
  v_column text;
  v_value uuid;
  v_keep interval;
  v_trace_ids uuid[];
  v_traces bigint;
  v_spans bigint;
  v_error text;
  v_sqlstate text;
begin
  commit;
  select k.key_column, k.key_value into v_column, v_value
    from tracing.restore_selector(p_trace_id, p_correlation_id, p_session_id) k;
  perform tracing.require_positive_interval(p_keep_for, 'p_keep_for');
  select coalesce(p_keep_for, s.restore_keep_for) into v_keep from tracing.retention_settings s;

  run_id := tracing.start_retention_run('restore', p_dry_run, null,
    jsonb_build_object(v_column, coalesce(p_trace_id, v_value::text), 'keep_for', v_keep::text));
  commit;

  -- The events (125-retention-events.sql), then the traces they belong to
  -- (120-retention-spans.sql), in one transaction: all or nothing.
  -- The trace ids are read first, while the events that name them are
  -- still in the archive.
  begin
    v_trace_ids := tracing.archived_trace_ids(v_column, v_value);
    events_restored := tracing.restore_archived_events(v_column, v_value, now() + v_keep, run_id, p_dry_run);
    select r.traces_restored, r.spans_restored into v_traces, v_spans
      from tracing.restore_traces(v_trace_ids, now() + v_keep, run_id, p_dry_run) r;
  exception when query_canceled or others then
    v_error := sqlerrm;
    v_sqlstate := sqlstate;
  end;

  update tracing.retention_runs
     set events_moved = coalesce(events_restored, 0),
         spans_moved = case when v_error is null then coalesce(v_spans, 0) else 0 end,
         details = details || jsonb_build_object('traces', case when v_error is null then coalesce(v_traces, 0) else 0 end)
   where id = run_id;
  perform tracing.finish_retention_run(run_id, v_error, v_sqlstate);
  commit;
  if v_error is not null then
    raise exception 'restore run % failed, nothing was restored: %', run_id, v_error using errcode = coalesce(v_sqlstate, 'XX000');
  end if;
  raise notice 'restore %run %: % archived events and % spans of % traces with % = % %',
    case when p_dry_run then 'dry ' else '' end, run_id, events_restored, v_spans, v_traces, v_column, coalesce(p_trace_id, v_value::text),
    case when p_dry_run then 'would be restored' else format('restored, kept live until %s', now() + v_keep) end;
end
$$;

comment on procedure tracing.restore_events(text, uuid, uuid, interval, boolean, bigint, bigint) is
  E'Moves the archived events of one trace (W3C hex id), correlation or session back into domain_events, and the archived spans of the traces they belong to back into spans, where they stay for p_keep_for (default retention_settings.restore_keep_for) before the archive takes them again. p_dry_run counts them. Records the run (events_moved, spans_moved) in tracing.retention_runs.';

-- The one-argument version of run_retention, replaced by the one below.
drop procedure if exists tracing.run_retention(boolean);

create or replace procedure tracing.run_retention(
  p_dry_run boolean default false,
  p_older_than interval default null,
  p_batch_size integer default null
)
language plpgsql as $$
declare
  v_run bigint;
  v_count bigint;
  v_purge boolean;
begin
  commit;
  call tracing.archive_events(p_older_than, p_dry_run, p_batch_size, v_run, v_count);
  select purge_after is not null into v_purge from tracing.retention_settings;
  if v_purge then
    call tracing.purge_archive(null, p_dry_run, v_run, v_count);
  end if;
  if not p_dry_run then
    -- Restores whose keep period ended: the next archive run takes them back.
    delete from tracing.restored_events where keep_until <= now();
    delete from tracing.restored_traces where keep_until <= now();
    commit;
  end if;
end
$$;

comment on procedure tracing.run_retention(boolean, interval, integer) is
  E'One retention pass: archive_events (p_older_than and p_batch_size override the settings), then purge_archive when purge is on, then expired restore pins. pg_cron and the in-process scheduler run exactly this, without arguments.';
