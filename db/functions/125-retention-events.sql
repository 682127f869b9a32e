-- Event retention: the steps tracing.archive_events, tracing.purge_archive
-- and tracing.restore_events (130-retention.sql) take for events, under the
-- retention lock and in the run log of 115-retention-runs.sql, before the
-- span steps of 120-retention-spans.sql.
--
-- domain_events is partitioned by month of created_at (migration 000030,
-- 108-live-partitions.sql), and so is the archive. Events leave in two ways:
--
-- Whole months first: a live month partition whose whole month is older
-- than the horizon, holding no event a restore pins, and whose archive
-- month is missing or empty, is detached from domain_events and attached
-- to the archive as that month, renamed, with its indexes renamed to the
-- archive's (they are the same indexes): no row is read or written again,
-- and the live table is left without dead rows to vacuum. The live table's
-- ACCESS EXCLUSIVE lock is held only for catalog changes, under a
-- lock_timeout, in one transaction: each event is live or archived at
-- every commit. The CHECK constraint that lets ATTACH skip its scan is
-- added and validated beforehand, in transactions of its own that do not
-- block writers.
--
-- Then rows, for everything else older than the horizon: the month the
-- horizon falls in, the partition a table partitioned in place kept its
-- old rows in, the default partition, and months holding pinned events or
-- whose archive month already has rows. Events move to the monthly
-- partitions of tracing.domain_events_archive in batches, each its own
-- transaction, so a run killed at any moment loses only the batch in
-- flight, which stays live. A batch is a TID range of consecutive blocks of
-- one live partition: it reads only its own blocks, never rescans what
-- earlier batches emptied, and needs no index on created_at. Partitions
-- whose months all lie after the horizon are not read at all. Events a DBA
-- restored stay live while pinned (tracing.restored_events).

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

-- The live month partitions an archive run may move whole: a whole UTC
-- month, ended by p_horizon, oldest first.
create or replace function tracing.archive_whole_months(p_horizon timestamptz)
returns table (partition regclass, from_at timestamptz, to_at timestamptz)
language sql stable as $$
  select b.partition, b.from_at, b.to_at
    from tracing.partition_bounds('tracing.domain_events') b
   where tracing.is_utc_month(b.from_at, b.to_at)
     and b.to_at <= p_horizon
   order by b.from_at
$$;

-- The live partitions the row batches read, oldest first, with their size
-- in blocks as the run starts: those that can hold an event created before
-- p_horizon (the default partition can hold any). With p_whole_months
-- (retention_settings.archive_whole_months), a month partition the horizon
-- falls in is left alone: it moves whole once its month is past.
create or replace function tracing.archive_scan_partitions(p_horizon timestamptz, p_whole_months boolean)
returns table (partition regclass, blocks bigint)
language sql stable as $$
  select b.partition, pg_relation_size(b.partition) / current_setting('block_size')::int
    from tracing.partition_bounds('tracing.domain_events') b
   where (b.is_default or b.from_at is null or b.from_at < p_horizon)
     and not coalesce(p_whole_months and b.to_at > p_horizon and tracing.is_utc_month(b.from_at, b.to_at), false)
   order by b.is_default, b.from_at nulls first
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
           'batch_size', p_batch_size, 'traces_to_move', a.traces,
           'partitions_to_move_whole', (select coalesce(jsonb_agg(w.partition::text order by w.from_at), '[]')
                                          from tracing.archive_whole_months(p_horizon) w)),
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
             -- Not in a month partition left to move whole later.
             and e.tableoid in (select w.partition from tracing.archive_whole_months(p_horizon) w
                                union all
                                select s.partition from tracing.retention_settings rs
                                 cross join tracing.archive_scan_partitions(p_horizon, rs.archive_whole_months) s)
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
-- p_batch_size rows, from the partition's statistics (20 rows a block
-- without).
create or replace function tracing.archive_blocks_per_batch(p_partition regclass, p_batch_size integer) returns bigint
language sql stable as $$
  select greatest(1, ceil(p_batch_size / case when c.relpages > 0 and c.reltuples > 0 then c.reltuples / c.relpages else 20 end))::bigint
    from pg_class c where c.oid = p_partition
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

-- One batch: moves the events of blocks [p_from_block, p_to_block) of the
-- live partition p_partition created before p_horizon and not pinned by a
-- restore, and returns how many moved. Rows of a month without an archive
-- partition fail the whole batch with check_violation 'no partition of
-- relation ...' (see ensure_archive_partitions_of_blocks).
create or replace function tracing.archive_event_blocks(
  p_partition regclass, p_columns text, p_from_block bigint, p_to_block bigint, p_horizon timestamptz
) returns bigint
language plpgsql volatile as $$
declare
  v_moved bigint;
begin
  execute format($sql$
    with moved as (
      delete from %2$s e
       where e.ctid >= $1 and e.ctid < $2
         and e.created_at < $3
         and not exists (select from tracing.restored_events r where r.event_id = e.id and r.keep_until > now())
      returning %1$s
    )
    insert into tracing.domain_events_archive (%1$s) select %1$s from moved
  $sql$, p_columns, p_partition)
  using format('(%s,0)', p_from_block)::tid, format('(%s,0)', p_to_block)::tid, p_horizon;
  get diagnostics v_moved = row_count;
  return v_moved;
end
$$;

-- Creates the archive partitions the events of blocks [p_from_block,
-- p_to_block) of p_partition need (a backlog, or events written with an old
-- created_at); returns the names it created.
create or replace function tracing.ensure_archive_partitions_of_blocks(
  p_partition regclass, p_from_block bigint, p_to_block bigint, p_horizon timestamptz
) returns text[]
language plpgsql volatile as $$
declare
  v_months timestamptz[];
begin
  execute format($sql$
    select array_agg(distinct tracing.archive_month_start(e.created_at))
      from %s e
     where e.ctid >= $1 and e.ctid < $2 and e.created_at < $3
  $sql$, p_partition)
  into v_months
  using format('(%s,0)', p_from_block)::tid, format('(%s,0)', p_to_block)::tid, p_horizon;
  return coalesce((select array_agg(made.name) filter (where made.name is not null)
                     from unnest(v_months) as m(month_start)
                     cross join lateral tracing.ensure_archive_partition(m.month_start) as made(name)), '{}');
end
$$;

-- The earlier forms: the column list from the caller; then one unpartitioned
-- live table, read by block numbers alone.
drop procedure if exists tracing.archive_events_of_run(bigint, timestamptz, integer, text, bigint, bigint, text[], text, text);
drop procedure if exists tracing.archive_events_of_run(bigint, timestamptz, integer, bigint, bigint, text[], text, text);
drop function if exists tracing.archive_blocks_per_batch(integer);
drop function if exists tracing.archive_event_blocks(text, bigint, bigint, timestamptz);
drop function if exists tracing.ensure_archive_partitions_of_blocks(bigint, bigint, timestamptz);

-- Whether an error is Postgres finding no partition of the archive for a
-- row (a month the archive lacks), told by its fields, not its text, which
-- lc_messages translates: SQLSTATE 23514 (check_violation) raised on the
-- partitioned table tracing.domain_events_archive itself, naming no
-- constraint. A CHECK constraint's violation names its constraint, and
-- one of a partition names the partition.
create or replace function tracing.is_missing_archive_partition_error(
  p_sqlstate text, p_schema text, p_table text, p_constraint text
) returns boolean
language sql immutable as $$
  select p_sqlstate = '23514' and p_schema = 'tracing' and p_table = 'domain_events_archive'
     and coalesce(p_constraint, '') = ''
$$;

comment on function tracing.is_missing_archive_partition_error(text, text, text, text) is
  E'Whether an error with SQLSTATE p_sqlstate and the schema, table and constraint names p_schema, p_table, p_constraint (GET STACKED DIAGNOSTICS) is the archive lacking the month partition for a row. Called by tracing.archive_events_of_run.';

-- The row part of an archive run (tracing.archive_events calls it holding
-- the retention lock): batches over the first p_blocks[i] blocks of each
-- live partition p_partitions[i] (tracing.archive_scan_partitions), each
-- batch its own transaction with its progress in the run log (blocks_done
-- counts over all of them). A batch that meets a month without an archive
-- partition is rolled back whole, the months it needs are created, and it
-- runs again. A failure or cancel rolls back only the batch in flight and
-- is handed back to the caller to record.
create or replace procedure tracing.archive_events_of_run(
  p_run_id bigint, p_horizon timestamptz, p_batch_size integer, p_partitions regclass[], p_blocks bigint[],
  inout events_moved bigint default 0, inout partitions_created text[] default '{}',
  inout error text default null, inout error_sqlstate text default null
)
language plpgsql as $$
declare
  v_columns text := (select c.column_list from tracing.archived_event_columns() c);
  v_blocks_total bigint := coalesce((select sum(b) from unnest(p_blocks) as b), 0);
  v_done_before bigint := 0;
  v_partition regclass;
  v_partition_blocks bigint;
  v_block bigint;
  v_blocks bigint;
  v_max_blocks bigint;
  v_moved bigint;
  v_missing_partition boolean;
  v_error_schema text;
  v_error_table text;
  v_error_constraint text;
  v_new text[];
  v_started timestamptz := clock_timestamp();
  v_last_notice timestamptz := clock_timestamp();
  v_batch_started timestamptz;
begin
  for i in 1 .. coalesce(cardinality(p_partitions), 0) loop
    exit when error is not null;
    v_partition := p_partitions[i];
    v_partition_blocks := p_blocks[i];
    v_block := 0;
    v_blocks := tracing.archive_blocks_per_batch(v_partition, p_batch_size);
    v_max_blocks := greatest(v_blocks * 8, 128);
    while error is null and v_block < v_partition_blocks loop
      v_batch_started := clock_timestamp();
      loop
        v_missing_partition := false;
        begin
          v_moved := tracing.archive_event_blocks(v_partition, v_columns, v_block, v_block + v_blocks, p_horizon);
          -- Progress in the same subtransaction as the batch: both or neither.
          update tracing.retention_runs
             set events_moved = archive_events_of_run.events_moved + v_moved, batches = batches + 1,
                 blocks_done = v_done_before + least(v_block + v_blocks, v_partition_blocks)
           where id = p_run_id;
        exception
          when check_violation then
            get stacked diagnostics v_error_schema = schema_name, v_error_table = table_name,
                                    v_error_constraint = constraint_name;
            if tracing.is_missing_archive_partition_error(sqlstate, v_error_schema, v_error_table, v_error_constraint) then
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
          v_new := tracing.ensure_archive_partitions_of_blocks(v_partition, v_block, v_block + v_blocks, p_horizon);
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
      if v_done_before + v_block < v_blocks_total then
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
          p_run_id, events_moved, v_done_before + least(v_block, v_partition_blocks), v_blocks_total,
          round(100.0 * (v_done_before + least(v_block, v_partition_blocks)) / greatest(v_blocks_total, 1)),
          round(events_moved / greatest(extract(epoch from clock_timestamp() - v_started), 0.001));
      end if;
    end loop;
    v_done_before := v_done_before + v_partition_blocks;
  end loop;
end
$$;

-- Moves one whole live month to the archive, in the caller's transaction:
-- releases its idempotency keys, detaches it from domain_events, checks
-- under that lock that no restore pins one of its events, replaces an empty
-- archive partition of the month, gives it the archive's archived_at column
-- (a default, so no row is rewritten) and the archive's names for its table
-- and indexes (those the archive lacks are dropped), and attaches it to the
-- archive. Returns the archive partition's name, or raises (the caller
-- rolls back to before the release). p_bound_check names the validated CHECK constraint matching the
-- month, which lets ATTACH skip its scan.
create or replace function tracing.move_event_month_to_archive(
  p_partition regclass, p_from timestamptz, p_to timestamptz, p_bound_check text
) returns text
language plpgsql volatile as $$
declare
  v_archive_name text := tracing.archive_partition_name(p_from);
  v_archive regclass := to_regclass('tracing.' || v_archive_name);
  v_indexes jsonb;
  v_index record;
  v_suffix text;
  v_found boolean;
begin
  -- Which index of the month is which, by the partitioned index it belongs to.
  select coalesce(jsonb_object_agg(ci.relname, coalesce(cp.relname, '')), '{}') into v_indexes
    from pg_index x
    join pg_class ci on ci.oid = x.indexrelid
    left join pg_inherits h on h.inhrelid = x.indexrelid
    left join pg_class cp on cp.oid = h.inhparent
   where x.indrelid = p_partition;

  -- The month's idempotency keys leave with it, in this transaction (a
  -- separate one after the commit, cut short, would leave them held by
  -- archived events for good). Deleted before the detach's lock is taken:
  -- no writer can add an event to a month this old.
  delete from tracing.domain_event_idempotency_keys k where k.created_at >= p_from and k.created_at < p_to;
  execute format('alter table tracing.domain_events detach partition %s', p_partition);
  -- Under the detach's lock: a restore that committed while we waited is seen.
  if exists (select from tracing.restored_events r where r.keep_until > now()) then
    execute format('select exists (select from %s e where e.id in (select r.event_id from tracing.restored_events r where r.keep_until > now()))',
                   p_partition) into strict v_found;
    if v_found then
      raise exception 'it holds events a restore keeps live' using errcode = 'P0001';
    end if;
  end if;
  if v_archive is not null then
    execute format('select exists (select from %s)', v_archive) into strict v_found;
    if v_found then
      raise exception 'its archive month % already holds events', v_archive_name using errcode = 'P0001';
    end if;
    execute format('drop table %s', v_archive);
  end if;

  execute format('alter table %s alter column id drop default', p_partition);
  execute format('alter table %s add column archived_at timestamptz not null default now()', p_partition);
  execute format('alter table %s rename to %I', p_partition, v_archive_name);
  for v_index in select key as child, value as parent from jsonb_each_text(v_indexes) loop
    v_suffix := substring(v_index.parent from '^domain_events_(correlation_id|session_id|trace_id)_idx$');
    if v_suffix is not null then
      execute format('alter index tracing.%I rename to %I', v_index.child, v_archive_name || '_' || v_suffix || '_idx');
    elsif v_index.parent = '' and v_index.child like '%\_id\_key' then
      execute format('alter index tracing.%I rename to %I', v_index.child, v_archive_name || '_id_key');
    else
      -- The archive has no such index (failed events, streams).
      execute format('drop index tracing.%I', v_index.child);
    end if;
  end loop;
  execute format('alter table tracing.domain_events_archive attach partition tracing.%I for values from (%L) to (%L)',
                 v_archive_name, p_from, p_to);
  execute format('alter table tracing.%I drop constraint %I', v_archive_name, p_bound_check);
  return v_archive_name;
end
$$;

-- The whole-month part of an archive run, before the row batches
-- (tracing.archive_events calls it holding the retention lock). For each
-- month of tracing.archive_whole_months: the CHECK constraint proving its
-- bounds, added NOT VALID and validated in transactions of their own (the
-- validation scans the month without blocking writers); then the move, in
-- one transaction whose wait for the live table's lock is cut short at 1 s,
-- since writers queue behind a waiting ACCESS EXCLUSIVE lock, with the
-- release of its idempotency keys; then its count. A month that cannot move
-- (pinned events, an archive month with rows, a lock not granted) is left
-- to the row batches, with the reason in the run's details; a cancel ends
-- the run like a failure.
create or replace procedure tracing.archive_event_months_of_run(
  p_run_id bigint, p_horizon timestamptz,
  inout events_moved bigint default 0, inout months_moved text[] default '{}',
  inout error text default null, inout error_sqlstate text default null
)
language plpgsql as $$
declare
  v_month record;
  v_check text;
  v_archive_name text;
  v_count bigint;
  v_not_moved jsonb := '[]';
  v_step text;
  v_step_failed boolean;
begin
  <<months>>
  for v_month in select * from tracing.archive_whole_months(p_horizon) loop
    v_check := (select c.relname from pg_class c where c.oid = v_month.partition) || '_bounds';
    v_archive_name := null;
    -- Each step in a transaction of its own. A step that fails leaves the
    -- month to the row batches, with the reason; a cancel ends the run.
    foreach v_step in array array['add check', 'validate check', 'move'] loop
      v_step_failed := false;
      begin
        case v_step
          when 'add check' then
            if not exists (select from pg_constraint k where k.conrelid = v_month.partition and k.conname = v_check) then
              set local lock_timeout = '1s';
              execute format('alter table %s add constraint %I check (created_at >= %L and created_at < %L) not valid',
                             v_month.partition, v_check, v_month.from_at, v_month.to_at);
            end if;
          when 'validate check' then
            if not (select k.convalidated from pg_constraint k where k.conrelid = v_month.partition and k.conname = v_check) then
              execute format('alter table %s validate constraint %I', v_month.partition, v_check);
            end if;
          when 'move' then
            set local lock_timeout = '1s';
            v_archive_name := tracing.move_event_month_to_archive(v_month.partition, v_month.from_at, v_month.to_at, v_check);
        end case;
      exception
        when query_canceled then
          error := sqlerrm;
          error_sqlstate := sqlstate;
        when others then
          v_not_moved := v_not_moved || jsonb_build_object('partition', v_month.partition::text, 'reason', sqlerrm);
          v_step_failed := true;
      end;
      commit;
      exit months when error is not null;
      continue months when v_step_failed;
    end loop;

    -- Outside the live table's lock: the month's count.
    execute format('select count(*) from tracing.%I', v_archive_name) into v_count;
    events_moved := events_moved + v_count;
    months_moved := months_moved || v_archive_name;
    update tracing.retention_runs
       set events_moved = archive_event_months_of_run.events_moved,
           details = details || jsonb_build_object('partitions_moved', to_jsonb(archive_event_months_of_run.months_moved))
     where id = p_run_id;
    commit;
  end loop;
  if jsonb_array_length(v_not_moved) > 0 then
    update tracing.retention_runs set details = details || jsonb_build_object('partitions_not_moved', v_not_moved) where id = p_run_id;
    commit;
  end if;
end
$$;

comment on function tracing.archive_whole_months(timestamptz) is
  E'The live month partitions of domain_events whose whole UTC month ended by p_horizon: what an archive run tries to move whole.';
comment on function tracing.move_event_month_to_archive(regclass, timestamptz, timestamptz, text) is
  E'Moves one live month partition of domain_events to the archive as that month (release of its idempotency keys, detach, checks, rename, attach), in the caller''s transaction; returns the archive partition''s name or raises. Called by tracing.archive_event_months_of_run.';
comment on procedure tracing.archive_event_months_of_run(bigint, timestamptz, bigint, text[], text, text) is
  E'The whole-month part of an archive run: moves each live month partition older than p_horizon to the archive as a partition when it can, one transaction each; the rest is left to the row batches. Progress and reasons in retention_runs. Called by tracing.archive_events.';

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
comment on function tracing.archive_event_blocks(regclass, text, bigint, bigint, timestamptz) is
  E'One event batch of an archive run: moves the unpinned events created before p_horizon in blocks [p_from_block, p_to_block) of the live partition p_partition to the archive; returns how many moved.';
comment on procedure tracing.archive_events_of_run(bigint, timestamptz, integer, regclass[], bigint[], bigint, text[], text, text) is
  E'The row part of an archive run: archive_event_blocks over the blocks of each given live partition, creating missing archive month partitions; progress in retention_runs. Called by tracing.archive_events.';
comment on function tracing.archive_scan_partitions(timestamptz, boolean) is
  E'The live partitions of domain_events that can hold events created before p_horizon, oldest first, with their size in blocks: what the row batches of an archive run read. With p_whole_months, month partitions the horizon falls in are left to move whole later.';
comment on procedure tracing.purge_events_of_run(bigint, timestamptz, boolean, bigint, integer, text, text) is
  E'The event part of a purge run: drops the archive partitions whose whole month is older than p_horizon, one transaction each (a dry run lists them with their counts); progress in retention_runs. Called by tracing.purge_archive.';
comment on function tracing.restore_archived_events(text, uuid, timestamptz, bigint, boolean) is
  E'Moves the archived events whose p_column (trace_id, correlation_id or session_id) is p_value back into domain_events and pins them until p_keep_until; p_dry_run counts them. Returns how many. Called by tracing.restore_events.';
