-- Event retention: the steps tracing.archive_events, tracing.purge_archive
-- and tracing.restore_events (130-retention.sql) take for events, under the
-- retention lock and in the run log of 115-retention-runs.sql, before the
-- span steps of 120-retention-spans.sql.
--
-- Events move from tracing.domain_events to the monthly partitions of
-- tracing.domain_events_archive in batches, each its own transaction, so a
-- run killed at any moment loses only the batch in flight, which stays live.
-- A batch is a TID range of consecutive blocks of the live table: it reads
-- only its own blocks, never rescans what earlier batches emptied, and needs
-- no index on created_at. Events a DBA restored stay live while pinned
-- (tracing.restored_events).

-- The archive must have every column of domain_events with the same type,
-- or moving would drop data. The column list is read from the catalog, so a
-- column added to both tables is archived without touching this code;
-- mismatched names what the archive lacks (null when nothing).
create or replace function tracing.archived_event_columns(out column_list text, out mismatched text)
language sql stable as $$
  select string_agg(quote_ident(l.attname), ', ' order by l.attnum),
         string_agg(format('%s %s', l.attname, format_type(l.atttypid, l.atttypmod)), ', ')
           filter (where a.attname is null or format_type(a.atttypid, a.atttypmod) <> format_type(l.atttypid, l.atttypmod))
    from pg_attribute l
    left join pg_attribute a
      on a.attrelid = 'tracing.domain_events_archive'::regclass and a.attname = l.attname and not a.attisdropped
   where l.attrelid = 'tracing.domain_events'::regclass and l.attnum > 0 and not l.attisdropped
$$;

-- Before an archive run's first batch: the archive must have the live
-- table's columns, and the partitions from the horizon's month to
-- p_months_ahead months past it are created (older months, a backlog, when
-- a batch meets their rows). Records the partitions it created; a failure
-- is handed back to the caller to record.
create or replace function tracing.prepare_archive_run(
  p_run_id bigint, p_horizon timestamptz, p_months_ahead integer,
  out partitions_created text[], out error text, out error_sqlstate text
)
language plpgsql volatile as $$
declare
  v_mismatched text := (select c.mismatched from tracing.archived_event_columns() c);
begin
  partitions_created := '{}';
  if v_mismatched is not null then
    error := format('tracing.domain_events_archive lacks columns of tracing.domain_events (or has other types): %s; add them to the archive before archiving', v_mismatched);
  else
    begin
      set local lock_timeout = '10s';
      partitions_created := tracing.ensure_archive_partitions(p_horizon, p_months_ahead);
    exception when query_canceled or others then
      error := sqlerrm;
      error_sqlstate := sqlstate;
    end;
  end if;
  update tracing.retention_runs set partitions_created = prepare_archive_run.partitions_created where id = p_run_id;
end
$$;

-- What a real archive run would move now, for a dry run: events per month,
-- the partitions it would create, and the traces and spans of
-- 120-retention-spans.sql.
create or replace function tracing.archive_events_plan(
  p_horizon timestamptz, p_batch_size integer,
  out details jsonb, out events bigint, out spans bigint
)
language sql stable as $$
  select jsonb_build_object(
           'events_by_month', m.events_by_month, 'partitions_to_create', m.partitions_to_create,
           'batch_size', p_batch_size, 'traces_to_move', a.traces),
         m.events, a.spans
    from (
      select coalesce(jsonb_object_agg(tracing.archive_partition_name(by_month.month_start), by_month.n), '{}') as events_by_month,
             coalesce(
               jsonb_agg(tracing.archive_partition_name(by_month.month_start))
                 filter (where to_regclass('tracing.' || tracing.archive_partition_name(by_month.month_start)) is null),
               '[]') as partitions_to_create,
             coalesce(sum(by_month.n), 0) as events
        from (
          select tracing.archive_month_start(e.created_at) as month_start, count(*) as n
            from tracing.domain_events e
           where e.created_at < p_horizon
             and not exists (select from tracing.restored_events r where r.event_id = e.id and r.keep_until > now())
           group by 1
        ) as by_month
    ) as m
    cross join tracing.archivable_spans(p_horizon) as a
$$;

-- A dry run of tracing.archive_events: records the plan in the run log,
-- which is all it changes, and says what a real run would do.
create or replace function tracing.archive_events_dry_run(
  p_horizon timestamptz, p_batch_size integer, out run_id bigint, out events bigint
)
language plpgsql volatile as $$
declare
  v_plan record;
begin
  run_id := tracing.start_retention_run('archive', true, p_horizon, null);
  select * into v_plan from tracing.archive_events_plan(p_horizon, p_batch_size);
  events := v_plan.events;
  update tracing.retention_runs
     set status = 'succeeded', finished_at = clock_timestamp(), events_moved = v_plan.events,
         spans_moved = v_plan.spans, details = v_plan.details
   where id = run_id;
  raise notice 'archive dry run %: % events created before % and % spans of % traces ended before it would move to the archive; partitions to create: %',
    run_id, v_plan.events, p_horizon, v_plan.spans, v_plan.details->'traces_to_move', v_plan.details->'partitions_to_create';
end
$$;

-- The first batch's width in blocks: the count expected to hold
-- p_batch_size rows, from the table's statistics (20 rows a block without).
create or replace function tracing.archive_blocks_per_batch(p_batch_size integer) returns bigint
language sql stable as $$
  select greatest(1, ceil(p_batch_size / case when c.relpages > 0 and c.reltuples > 0 then c.reltuples / c.relpages else 20 end))::bigint
    from pg_class c where c.oid = 'tracing.domain_events'::regclass
$$;

-- The next batch's width: sparse blocks (recent events, space emptied by
-- earlier runs) are cheap to scan, so take twice as many after a batch that
-- moved under a quarter of p_batch_size; halve after one that moved over
-- twice it.
create or replace function tracing.next_archive_blocks(
  p_blocks bigint, p_moved bigint, p_batch_size integer, p_max_blocks bigint
) returns bigint
language sql immutable parallel safe as $$
  select case
           when p_moved < p_batch_size / 4 then least(p_blocks * 2, p_max_blocks)
           when p_moved > p_batch_size * 2 then greatest(p_blocks / 2, 1)
           else p_blocks
         end
$$;

-- One batch: moves the events of blocks [p_from_block, p_to_block) created
-- before p_horizon and not pinned by a restore, and returns how many moved.
-- Rows of a month without a partition fail the whole batch with
-- check_violation 'no partition of relation ...' (see
-- ensure_archive_partitions_of_blocks).
create or replace function tracing.archive_event_blocks(
  p_columns text, p_from_block bigint, p_to_block bigint, p_horizon timestamptz
) returns bigint
language plpgsql volatile as $$
declare
  v_moved bigint;
begin
  execute format($sql$
    with moved as (
      delete from tracing.domain_events e
       where e.ctid >= $1 and e.ctid < $2
         and e.created_at < $3
         and not exists (select from tracing.restored_events r where r.event_id = e.id and r.keep_until > now())
      returning %1$s
    )
    insert into tracing.domain_events_archive (%1$s) select %1$s from moved
  $sql$, p_columns)
  using format('(%s,0)', p_from_block)::tid, format('(%s,0)', p_to_block)::tid, p_horizon;
  get diagnostics v_moved = row_count;
  return v_moved;
end
$$;

-- Creates the archive partitions the events of blocks [p_from_block,
-- p_to_block) need (a backlog, or events written with an old created_at);
-- returns the names it created.
create or replace function tracing.ensure_archive_partitions_of_blocks(
  p_from_block bigint, p_to_block bigint, p_horizon timestamptz
) returns text[]
language sql volatile as $$
  select coalesce(array_agg(made.name) filter (where made.name is not null), '{}')
    from (
      select tracing.ensure_archive_partition(months.month_start) as name
        from (select distinct tracing.archive_month_start(e.created_at) as month_start
                from tracing.domain_events e
               where e.ctid >= format('(%s,0)', p_from_block)::tid and e.ctid < format('(%s,0)', p_to_block)::tid
                 and e.created_at < p_horizon) as months
    ) as made
$$;

-- The earlier form, which took the column list from its caller.
drop procedure if exists tracing.archive_events_of_run(bigint, timestamptz, integer, text, bigint, bigint, text[], text, text);

-- The event part of an archive run (tracing.archive_events calls it holding
-- the retention lock): batches over the first p_blocks_total blocks of the
-- live table, each its own transaction with its progress in the run log. A
-- batch that meets a month without a partition is rolled back whole, the
-- months it needs are created, and it runs again. A failure or cancel rolls
-- back only the batch in flight and is handed back to the caller to record.
create or replace procedure tracing.archive_events_of_run(
  p_run_id bigint, p_horizon timestamptz, p_batch_size integer, p_blocks_total bigint,
  inout events_moved bigint default 0, inout partitions_created text[] default '{}',
  inout error text default null, inout error_sqlstate text default null
)
language plpgsql as $$
declare
  v_columns text := (select c.column_list from tracing.archived_event_columns() c);
  v_block bigint := 0;
  v_blocks bigint := tracing.archive_blocks_per_batch(p_batch_size);
  v_max_blocks bigint := greatest(v_blocks * 8, 128);
  v_moved bigint;
  v_missing_partition boolean;
  v_new text[];
  v_started timestamptz := clock_timestamp();
  v_last_notice timestamptz := clock_timestamp();
  v_batch_started timestamptz;
begin
  while error is null and v_block < p_blocks_total loop
    v_batch_started := clock_timestamp();
    loop
      v_missing_partition := false;
      begin
        v_moved := tracing.archive_event_blocks(v_columns, v_block, v_block + v_blocks, p_horizon);
        -- Progress in the same subtransaction as the batch: both or neither.
        update tracing.retention_runs
           set events_moved = archive_events_of_run.events_moved + v_moved, batches = batches + 1,
               blocks_done = least(v_block + v_blocks, p_blocks_total)
         where id = p_run_id;
      exception
        when check_violation then
          if sqlerrm like 'no partition of relation%' then
            v_missing_partition := true;
          else
            error := sqlerrm;
            error_sqlstate := sqlstate;
          end if;
        -- Cancelling (Ctrl-C, pg_cancel_backend) rolls back the batch in
        -- flight; catching it lets the run record itself and release the
        -- lock rather than leave both to the session's end.
        when query_canceled or others then
          error := sqlerrm;
          error_sqlstate := sqlstate;
      end;
      exit when not v_missing_partition;
      begin
        set local lock_timeout = '10s';
        v_new := tracing.ensure_archive_partitions_of_blocks(v_block, v_block + v_blocks, p_horizon);
      exception when query_canceled or others then
        error := sqlerrm;
        error_sqlstate := sqlstate;
      end;
      exit when error is not null;
      if cardinality(v_new) = 0 then
        error := 'a batch found no archive partition for its rows, and none was missing';
        exit;
      end if;
      partitions_created := partitions_created || v_new;
      update tracing.retention_runs set partitions_created = archive_events_of_run.partitions_created where id = p_run_id;
      commit;
    end loop;
    exit when error is not null;

    events_moved := events_moved + v_moved;
    v_block := v_block + v_blocks;
    commit;
    v_blocks := tracing.next_archive_blocks(v_blocks, v_moved, p_batch_size, v_max_blocks);

    -- Pacing (retention_settings.batch_pause_ratio), after the commit.
    if v_block < p_blocks_total then
      begin
        perform tracing.pause_after_archive_step(v_batch_started);
      exception when query_canceled then
        error := sqlerrm;
        error_sqlstate := sqlstate;
      end;
    end if;

    if clock_timestamp() - v_last_notice > interval '2 seconds' then
      v_last_notice := clock_timestamp();
      raise notice 'archive run %: % events moved, % of % blocks scanned (% %%), % events/s',
        p_run_id, events_moved, least(v_block, p_blocks_total), p_blocks_total,
        round(100.0 * least(v_block, p_blocks_total) / greatest(p_blocks_total, 1)),
        round(events_moved / greatest(extract(epoch from clock_timestamp() - v_started), 0.001));
    end if;
  end loop;
end
$$;

-- The event part of a purge run (tracing.purge_archive calls it before the
-- spans of 120-retention-spans.sql): whole months only, a partition goes
-- when every event it can hold is older than the horizon. Dropping a
-- partition frees its space at once, where deleting row by row would leave
-- dead tuples for vacuum. One transaction a partition, its progress in the
-- run log; a dry run lists the partitions with their counts instead.
-- partitions counts those dropped (or that would be); a failure stops at
-- that partition and is handed back to the caller to record.
create or replace procedure tracing.purge_events_of_run(
  p_run_id bigint, p_horizon timestamptz, p_dry_run boolean,
  inout events_dropped bigint default 0, inout partitions integer default 0,
  inout error text default null, inout error_sqlstate text default null
)
language plpgsql as $$
declare
  v_partition record;
  v_count bigint;
  v_dropped text[] := '{}';
  v_planned jsonb := '[]';
begin
  events_dropped := coalesce(events_dropped, 0);
  partitions := 0;
  for v_partition in
    select partition, from_at, to_at from tracing.archive_partitions where to_at <= p_horizon order by from_at
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
      error := format('dropping %s: %s', v_partition.partition, sqlerrm);
      error_sqlstate := sqlstate;
    end;
    exit when error is not null;
    partitions := partitions + 1;
    update tracing.retention_runs
       set events_dropped = purge_events_of_run.events_dropped, partitions_dropped = v_dropped,
           details = case when p_dry_run then details || jsonb_build_object('partitions_to_drop', v_planned) else details end
     where id = p_run_id;
    commit;
  end loop;
end
$$;

-- A restore's events (tracing.restore_events): the archived events whose
-- p_column (trace_id, correlation_id or session_id, from
-- tracing.restore_selector) is p_value move back into domain_events, pinned
-- there until p_keep_until. With p_dry_run, only counts them. Returns how
-- many.
create or replace function tracing.restore_archived_events(
  p_column text, p_value uuid, p_keep_until timestamptz, p_run_id bigint, p_dry_run boolean default false
) returns bigint
language plpgsql volatile as $$
declare
  v_rows tracing.domain_events_archive[];
  v_count bigint;
begin
  if p_dry_run then
    execute format('select count(*) from tracing.domain_events_archive where %I = $1', p_column)
      into v_count using p_value;
    return v_count;
  end if;
  -- Other triggers on domain_events (exports, queues) can tell a restored
  -- event from a new one by this setting.
  perform set_config('tracegres.restoring', 'on', true);
  execute format('with moved as (delete from tracing.domain_events_archive where %I = $1 returning *) select array_agg(moved) from moved', p_column)
    into v_rows using p_value;
  if cardinality(v_rows) > 0 then
    execute format('insert into tracing.domain_events (%1$s) select %1$s from unnest($1)', (select c.column_list from tracing.archived_event_columns() c))
      using v_rows;
    -- The promotion trigger recomputes trace_field_errors from the fields as
    -- they are now; put back what was recorded when the event was first
    -- written (updating only that column fires no trigger).
    update tracing.domain_events l
       set trace_field_errors = r.trace_field_errors
      from unnest(v_rows) as r
     where l.id = r.id and l.trace_field_errors is distinct from r.trace_field_errors;
    insert into tracing.restored_events (event_id, keep_until, run_id)
    select r.id, p_keep_until, p_run_id from unnest(v_rows) as r
    on conflict (event_id) do update set keep_until = excluded.keep_until, run_id = excluded.run_id, restored_at = now();
  end if;
  perform set_config('tracegres.restoring', 'off', true);
  return coalesce(cardinality(v_rows), 0);
end
$$;

comment on function tracing.archived_event_columns() is
  E'The columns of tracing.domain_events (quoted, comma-separated) and those the archive lacks or types differently (null when none). Read by tracing.archive_events.';
comment on function tracing.archive_events_plan(timestamptz, integer) is
  E'What an archive run with this horizon would move now: events per month, partitions to create, traces to move (details), and the event and span counts. The dry run of tracing.archive_events.';
comment on function tracing.archive_event_blocks(text, bigint, bigint, timestamptz) is
  E'One event batch of an archive run: moves the unpinned events created before p_horizon in blocks [p_from_block, p_to_block) of tracing.domain_events to the archive; returns how many moved.';
comment on procedure tracing.archive_events_of_run(bigint, timestamptz, integer, bigint, bigint, text[], text, text) is
  E'The event part of an archive run: archive_event_blocks over the live table''s blocks, creating missing month partitions; progress in retention_runs. Called by tracing.archive_events.';
comment on procedure tracing.purge_events_of_run(bigint, timestamptz, boolean, bigint, integer, text, text) is
  E'The event part of a purge run: drops the archive partitions whose whole month is older than p_horizon, one transaction each (a dry run lists them with their counts); progress in retention_runs. Called by tracing.purge_archive.';
comment on function tracing.restore_archived_events(text, uuid, timestamptz, bigint, boolean) is
  E'Moves the archived events whose p_column (trace_id, correlation_id or session_id) is p_value back into domain_events and pins them until p_keep_until; p_dry_run counts them. Returns how many. Called by tracing.restore_events.';
