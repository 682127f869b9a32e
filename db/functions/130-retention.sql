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

-- Indexes every non-empty archive partition still without its indexes
-- (the months this run filled, or a killed run left). Runs one partition per
-- transaction; returns what it indexed and any error text.
create or replace procedure tracing.index_archive_partitions(inout indexed text[] default null, inout error text default null)
language plpgsql as $$
declare
  v_partition text;
  v_has_rows boolean;
begin
  indexed := '{}';
  for v_partition in select partition from tracing.archive_partitions where not archive_partitions.indexed order by from_at loop
    begin
      execute format('select exists (select from tracing.%I)', v_partition) into v_has_rows;
      if v_has_rows then
        -- A building index blocks writes to this partition only (readers
        -- go on); waiting long for the lock would queue readers behind it.
        set local lock_timeout = '10s';
        perform tracing.index_archive_partition(v_partition);
        indexed := indexed || v_partition;
      end if;
    exception
      when query_canceled then
        error := concat_ws('; ', error, format('indexing %s: cancelled', v_partition));
        exit;
      when others then
        error := concat_ws('; ', error, format('indexing %s: %s', v_partition, sqlerrm));
    end;
    commit;
  end loop;
end
$$;

comment on procedure tracing.index_archive_partitions(text[], text) is
  E'Builds the lookup indexes of every non-empty archive partition that lacks them, one partition per transaction.';

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
  v_columns text;
  v_mismatched text;
  v_sql text;
  v_block bigint := 0;
  v_blocks_total bigint;
  v_step bigint;
  v_step_max bigint;
  v_moved bigint;
  v_missing_partition boolean;
  v_new text[];
  v_created text[] := '{}';
  v_indexed text[];
  v_index_error text;
  v_error text;
  v_sqlstate text;
  v_details jsonb;
  v_spans bigint;
  v_started timestamptz := clock_timestamp();
  v_last_notice timestamptz := clock_timestamp();
begin
  -- Fail at once when CALLed inside a transaction block, where the COMMITs
  -- below would fail only after the lock was taken.
  commit;

  select * into v_settings from tracing.retention_settings;
  if p_older_than is not null and p_older_than <= interval '0' then
    raise exception 'p_older_than must be a positive interval, got %', p_older_than using errcode = '22023';
  end if;
  if p_batch_size is not null and p_batch_size < 1 then
    raise exception 'p_batch_size must be at least 1, got %', p_batch_size using errcode = '22023';
  end if;
  -- Fixed for the whole run: every batch moves the same rows it would have
  -- at the start, however long the run takes.
  v_horizon := now() - coalesce(p_older_than, v_settings.archive_after);
  v_batch := coalesce(p_batch_size, v_settings.batch_size);
  events_moved := 0;

  if p_dry_run then
    -- What a real run would move now, per month, and which partitions it
    -- would create; nothing is changed but the run log.
    run_id := tracing.start_retention_run('archive', true, v_horizon, null);
    select jsonb_build_object(
             'events_by_month', coalesce(jsonb_object_agg(tracing.archive_partition_name(m.month_start), m.n), '{}'),
             'partitions_to_create', coalesce(
               jsonb_agg(tracing.archive_partition_name(m.month_start))
                 filter (where to_regclass('tracing.' || tracing.archive_partition_name(m.month_start)) is null),
               '[]'),
             'batch_size', v_batch),
           coalesce(sum(m.n), 0)
      into v_details, events_moved
      from (
        select tracing.archive_month_start(e.created_at) as month_start, count(*) as n
          from tracing.domain_events e
         where e.created_at < v_horizon
           and not exists (select from tracing.restored_events r where r.event_id = e.id and r.keep_until > now())
         group by 1
      ) as m;
    select v_details || jsonb_build_object('traces_to_move', a.traces), a.spans into v_details, v_spans
      from tracing.archivable_spans(v_horizon) a;
    update tracing.retention_runs
       set status = 'succeeded', finished_at = clock_timestamp(), events_moved = archive_events.events_moved,
           spans_moved = v_spans, details = v_details
     where id = run_id;
    raise notice 'archive dry run %: % events created before % and % spans of % traces ended before it would move to the archive; partitions to create: %',
      run_id, events_moved, v_horizon, v_spans, v_details->'traces_to_move', v_details->'partitions_to_create';
    return;
  end if;

  if not tracing.try_retention_lock() then
    run_id := tracing.start_retention_run('archive', false, v_horizon, null);
    update tracing.retention_runs
       set status = 'skipped', finished_at = clock_timestamp(),
           error = 'another archive or purge run holds the retention lock'
     where id = run_id;
    commit;
    raise notice 'archive run % skipped: another archive or purge run is in progress', run_id;
    return;
  end if;

  -- The archive must have every column of domain_events with the same type,
  -- or moving would drop data; the column list is read from the catalog so
  -- a column added to both tables is archived without touching this code.
  select string_agg(quote_ident(l.attname), ', ' order by l.attnum),
         string_agg(format('%s %s', l.attname, format_type(l.atttypid, l.atttypmod)), ', ')
           filter (where a.attname is null or format_type(a.atttypid, a.atttypmod) <> format_type(l.atttypid, l.atttypmod))
    into v_columns, v_mismatched
    from pg_attribute l
    left join pg_attribute a
      on a.attrelid = 'tracing.domain_events_archive'::regclass and a.attname = l.attname and not a.attisdropped
   where l.attrelid = 'tracing.domain_events'::regclass and l.attnum > 0 and not l.attisdropped;

  -- Blocks of the live table as the run starts. Rows inserted later are new,
  -- not old (or, if written with an old created_at, wait for the next run).
  v_blocks_total := pg_relation_size('tracing.domain_events') / current_setting('block_size')::int;
  -- Each batch is a TID range scan over consecutive blocks: it reads only
  -- its own blocks, never rescans what earlier batches emptied, and needs no
  -- index on created_at. Start with the block count expected to hold
  -- p_batch_size rows; adjust to what the batches actually move.
  select greatest(1, ceil(v_batch / case when c.relpages > 0 and c.reltuples > 0 then c.reltuples / c.relpages else 20 end))::bigint
    into v_step
    from pg_class c where c.oid = 'tracing.domain_events'::regclass;
  v_step_max := greatest(v_step * 8, 128);

  run_id := tracing.start_retention_run('archive', false, v_horizon,
    jsonb_build_object('batch_size', v_batch, 'older_than', coalesce(p_older_than, v_settings.archive_after)::text));
  update tracing.retention_runs set blocks_total = v_blocks_total, blocks_done = 0 where id = run_id;

  if v_mismatched is not null then
    v_error := format('tracing.domain_events_archive lacks columns of tracing.domain_events (or has other types): %s; add them to the archive before archiving', v_mismatched);
  else
    begin
      set local lock_timeout = '10s';
      v_created := tracing.ensure_archive_partitions(v_horizon, v_settings.months_ahead);
    exception when query_canceled or others then
      v_error := sqlerrm;
      v_sqlstate := sqlstate;
    end;
  end if;
  update tracing.retention_runs set partitions_created = v_created where id = run_id;
  commit;

  v_sql := format($sql$
    with moved as (
      delete from tracing.domain_events e
       where e.ctid >= $1 and e.ctid < $2
         and e.created_at < $3
         and not exists (select from tracing.restored_events r where r.event_id = e.id and r.keep_until > $4)
      returning %1$s
    )
    insert into tracing.domain_events_archive (%1$s) select %1$s from moved
  $sql$, v_columns);

  while v_error is null and v_block < v_blocks_total loop
    loop
      v_missing_partition := false;
      begin
        execute v_sql using format('(%s,0)', v_block)::tid, format('(%s,0)', v_block + v_step)::tid, v_horizon, now();
        get diagnostics v_moved = row_count;
        -- Progress in the same subtransaction as the batch: both or neither.
        update tracing.retention_runs
           set events_moved = archive_events.events_moved + v_moved, batches = batches + 1,
               blocks_done = least(v_block + v_step, v_blocks_total)
         where id = run_id;
      exception
        when check_violation then
          if sqlerrm like 'no partition of relation%' then
            v_missing_partition := true;
          else
            v_error := sqlerrm;
            v_sqlstate := sqlstate;
          end if;
        -- Cancelling (Ctrl-C, pg_cancel_backend) rolls back the batch in
        -- flight; catching it lets the run record itself and release the
        -- lock rather than leave both to the session's end.
        when query_canceled or others then
          v_error := sqlerrm;
          v_sqlstate := sqlstate;
      end;
      exit when not v_missing_partition;
      -- Rows of a month without a partition yet (a backlog, or events
      -- written with an old created_at): the batch was rolled back whole;
      -- create the months it needs and run it again.
      begin
        set local lock_timeout = '10s';
        select coalesce(array_agg(n) filter (where n is not null), '{}') into v_new
          from (
            select tracing.ensure_archive_partition(m) as n
              from (select distinct tracing.archive_month_start(e.created_at) as m
                      from tracing.domain_events e
                     where e.ctid >= format('(%s,0)', v_block)::tid and e.ctid < format('(%s,0)', v_block + v_step)::tid
                       and e.created_at < v_horizon) as months
          ) as made;
      exception when query_canceled or others then
        v_error := sqlerrm;
        v_sqlstate := sqlstate;
      end;
      exit when v_error is not null;
      if cardinality(v_new) = 0 then
        v_error := 'a batch found no archive partition for its rows, and none was missing';
        exit;
      end if;
      v_created := v_created || v_new;
      update tracing.retention_runs set partitions_created = v_created where id = run_id;
      commit;
    end loop;
    exit when v_error is not null;

    events_moved := events_moved + v_moved;
    v_block := v_block + v_step;
    commit;

    -- Sparse blocks (recent events, space emptied by earlier runs) are cheap
    -- to scan, so take more of them per batch; shrink when a batch moved far
    -- more than a batch's worth.
    if v_moved < v_batch / 4 then
      v_step := least(v_step * 2, v_step_max);
    elsif v_moved > v_batch * 2 then
      v_step := greatest(v_step / 2, 1);
    end if;

    if clock_timestamp() - v_last_notice > interval '2 seconds' then
      v_last_notice := clock_timestamp();
      raise notice 'archive run %: % events moved, % of % blocks scanned (% %%), % events/s',
        run_id, events_moved, least(v_block, v_blocks_total), v_blocks_total,
        round(100.0 * least(v_block, v_blocks_total) / greatest(v_blocks_total, 1)),
        round(events_moved / greatest(extract(epoch from clock_timestamp() - v_started), 0.001));
    end if;
  end loop;

  -- Then whole traces of spans that ended before the horizon
  -- (120-retention-spans.sql), batch by batch under the same lock.
  if v_error is null then
    call tracing.archive_spans_of_run(run_id, v_horizon, v_batch, v_error, v_sqlstate);
  end if;

  -- Index the months this run (or a killed one) filled; done even after a
  -- failure, so lookups into what did move stay fast.
  if v_sqlstate is distinct from '57014' then
    call tracing.index_archive_partitions(v_indexed, v_index_error);
  end if;

  update tracing.retention_runs
     set status = case
                    when v_sqlstate = '57014' then 'interrupted'
                    when v_error is null and v_index_error is null then 'succeeded'
                    else 'failed'
                  end,
         finished_at = clock_timestamp(),
         partitions_indexed = coalesce(v_indexed, '{}'),
         error = nullif(concat_ws('; ', v_error, v_index_error), '')
   where id = run_id;
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
  raise notice 'archive run %: % events created before % and % spans of traces ended before it moved in %; partitions created: %, indexed: %',
    run_id, events_moved, v_horizon, v_spans, date_trunc('second', clock_timestamp() - v_started), v_created, v_indexed;
end
$$;

comment on procedure tracing.archive_events(interval, boolean, integer, bigint, bigint) is
  E'Moves events created more than p_older_than ago (default retention_settings.archive_after) from domain_events to the monthly archive, then whole traces whose spans ended before that to tracing.spans_archive, in batches of about p_batch_size rows, each its own transaction. p_dry_run counts what would move. Records the run (events_moved, spans_moved) in tracing.retention_runs.';

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
  v_partition record;
  v_count bigint;
  v_dropped text[] := '{}';
  v_planned jsonb := '[]';
  v_batch integer;
  v_spans bigint;
  v_error text;
  v_sqlstate text;
begin
  commit;
  if p_older_than is not null and p_older_than <= interval '0' then
    raise exception 'p_older_than must be a positive interval, got %', p_older_than using errcode = '22023';
  end if;
  select coalesce(p_older_than, s.purge_after), s.batch_size into v_after, v_batch from tracing.retention_settings s;
  events_dropped := 0;
  if v_after is null then
    raise notice 'purge is off: set tracing.retention_settings.purge_after, or pass p_older_than';
    return;
  end if;
  v_horizon := now() - v_after;

  if not p_dry_run and not tracing.try_retention_lock() then
    run_id := tracing.start_retention_run('purge', false, v_horizon, null);
    update tracing.retention_runs
       set status = 'skipped', finished_at = clock_timestamp(),
           error = 'another archive or purge run holds the retention lock'
     where id = run_id;
    commit;
    raise notice 'purge run % skipped: another archive or purge run is in progress', run_id;
    return;
  end if;

  run_id := tracing.start_retention_run('purge', p_dry_run, v_horizon, jsonb_build_object('older_than', v_after::text));
  commit;

  -- Whole months only: a partition goes when every event it can hold is
  -- older than the horizon. Dropping a partition frees its space at once,
  -- where deleting row by row would leave dead tuples for vacuum.
  for v_partition in
    select partition, from_at, to_at from tracing.archive_partitions where to_at <= v_horizon order by from_at
  loop
    begin
      execute format('select count(*) from tracing.%I', v_partition.partition) into v_count;
      if p_dry_run then
        v_planned := v_planned || jsonb_build_object('partition', v_partition.partition, 'events', v_count);
      else
        -- Dropping needs a brief exclusive lock on the archive; never queue
        -- readers behind a long wait for it.
        set local lock_timeout = '10s';
        execute format('drop table tracing.%I', v_partition.partition);
        v_dropped := v_dropped || v_partition.partition::text;
      end if;
      events_dropped := events_dropped + v_count;
    exception when query_canceled or others then
      v_error := format('dropping %s: %s', v_partition.partition, sqlerrm);
      v_sqlstate := sqlstate;
    end;
    exit when v_error is not null;
    update tracing.retention_runs
       set events_dropped = purge_archive.events_dropped, partitions_dropped = v_dropped,
           details = case when p_dry_run then details || jsonb_build_object('partitions_to_drop', v_planned) else details end
     where id = run_id;
    commit;
  end loop;

  -- Archived traces that ended before the horizon, row by row with their
  -- spans (120-retention-spans.sql).
  if v_error is null then
    call tracing.purge_spans_of_run(run_id, v_horizon, v_batch, p_dry_run, v_error, v_sqlstate);
  end if;
  select r.spans_dropped into v_spans from tracing.retention_runs r where r.id = run_id;

  update tracing.retention_runs
     set status = case when v_sqlstate = '57014' then 'interrupted' when v_error is null then 'succeeded' else 'failed' end,
         finished_at = clock_timestamp(), error = v_error
   where id = run_id;
  commit;
  if not p_dry_run then
    perform tracing.release_retention_lock();
  end if;
  if v_error is not null then
    raise exception 'purge run % failed: %', run_id, v_error using errcode = coalesce(v_sqlstate, 'XX000');
  end if;
  raise notice 'purge %run %: % archive partitions ending before % %, % events, and % archived spans',
    case when p_dry_run then 'dry ' else '' end, run_id,
    case when p_dry_run then jsonb_array_length(v_planned) else cardinality(v_dropped) end,
    v_horizon, case when p_dry_run then 'would be dropped' else 'dropped' end, events_dropped, v_spans;
end
$$;

comment on procedure tracing.purge_archive(interval, boolean, bigint, bigint) is
  E'Drops the archive partitions whose whole month is older than p_older_than (default retention_settings.purge_after; null there means purge is off), then deletes the archived traces that ended before it, spans included. p_dry_run lists the partitions with their event counts and counts the spans. Records the run (events_dropped, spans_dropped) in tracing.retention_runs.';

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
  v_trace_ids uuid[];
  v_traces bigint;
  v_spans bigint;
  v_column text;
  v_value uuid;
  v_keep interval;
  v_columns text;
  v_rows tracing.domain_events_archive[];
  v_error text;
  v_sqlstate text;
begin
  commit;
  if num_nonnulls(p_trace_id, p_correlation_id, p_session_id) <> 1 then
    raise exception 'restore_events needs exactly one of p_trace_id, p_correlation_id, p_session_id'
      using errcode = '22023';
  end if;
  if p_trace_id is not null then
    v_column := 'trace_id';
    v_value := tracing.hex_to_trace_id(p_trace_id);
    if v_value is null then
      raise exception 'p_trace_id must be a W3C trace id (32 lowercase hex characters, not all zeros), got "%"', p_trace_id
        using errcode = '22023';
    end if;
  elsif p_correlation_id is not null then
    v_column := 'correlation_id';
    v_value := p_correlation_id;
  else
    v_column := 'session_id';
    v_value := p_session_id;
  end if;
  if p_keep_for is not null and p_keep_for <= interval '0' then
    raise exception 'p_keep_for must be a positive interval, got %', p_keep_for using errcode = '22023';
  end if;
  select coalesce(p_keep_for, s.restore_keep_for) into v_keep from tracing.retention_settings s;

  run_id := tracing.start_retention_run('restore', p_dry_run, null,
    jsonb_build_object(v_column, coalesce(p_trace_id, v_value::text), 'keep_for', v_keep::text));
  commit;

  begin
    -- The traces to bring back with the events: the one asked for, or
    -- every trace the correlation or session touched (by its archived
    -- events, or by the ids its spans carried).
    if v_column = 'trace_id' then
      v_trace_ids := array[v_value];
    else
      execute format($sql$
        select coalesce(array_agg(distinct t.trace_id), '{}') from (
          select e.trace_id from tracing.domain_events_archive e where e.%1$I = $1 and e.trace_id is not null
          union all
          select a.trace_id from tracing.trace_summaries_archive a where a.%1$I = $1
        ) t$sql$, v_column)
        into v_trace_ids using v_value;
    end if;
    if p_dry_run then
      execute format('select count(*) from tracing.domain_events_archive where %I = $1', v_column)
        into events_restored using v_value;
    else
      select string_agg(quote_ident(attname), ', ' order by attnum) into v_columns
        from pg_attribute where attrelid = 'tracing.domain_events'::regclass and attnum > 0 and not attisdropped;
      -- Other triggers on domain_events (exports, queues) can tell a
      -- restored event from a new one by this setting.
      perform set_config('tracegres.restoring', 'on', true);
      execute format('with moved as (delete from tracing.domain_events_archive where %I = $1 returning *) select array_agg(moved) from moved', v_column)
        into v_rows using v_value;
      events_restored := coalesce(cardinality(v_rows), 0);
      if events_restored > 0 then
        execute format('insert into tracing.domain_events (%1$s) select %1$s from unnest($1)', v_columns) using v_rows;
        -- The promotion trigger recomputes trace_field_errors from the
        -- fields as they are now; put back what was recorded when the event
        -- was first written (updating only that column fires no trigger).
        update tracing.domain_events l
           set trace_field_errors = r.trace_field_errors
          from unnest(v_rows) as r
         where l.id = r.id and l.trace_field_errors is distinct from r.trace_field_errors;
        insert into tracing.restored_events (event_id, keep_until, run_id)
        select r.id, now() + v_keep, restore_events.run_id from unnest(v_rows) as r
        on conflict (event_id) do update set keep_until = excluded.keep_until, run_id = excluded.run_id, restored_at = now();
      end if;
      perform set_config('tracegres.restoring', 'off', true);
    end if;
    select r.traces_restored, r.spans_restored into v_traces, v_spans
      from tracing.restore_traces(v_trace_ids, now() + v_keep, run_id, p_dry_run) r;
  exception when query_canceled or others then
    v_error := sqlerrm;
    v_sqlstate := sqlstate;
  end;

  update tracing.retention_runs
     set status = case when v_sqlstate = '57014' then 'interrupted' when v_error is null then 'succeeded' else 'failed' end,
         finished_at = clock_timestamp(), events_moved = coalesce(events_restored, 0),
         spans_moved = case when v_error is null then coalesce(v_spans, 0) else 0 end,
         details = details || jsonb_build_object('traces', case when v_error is null then coalesce(v_traces, 0) else 0 end),
         error = v_error
   where id = run_id;
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
