-- The partitions of the archive of old events: monthly, created ahead of
-- need by the archive run (130-retention.sql) and indexed once they hold rows.
--
-- Months are UTC months whatever the session's TimeZone, so a pg_cron job,
-- the CLI and a psql session all agree on which partition a row belongs to.

create or replace function tracing.archive_month_start(at timestamptz) returns timestamptz
language sql immutable parallel safe as $$
  select date_trunc('month', at at time zone 'UTC') at time zone 'UTC'
$$;

-- Whether [p_from, p_to) is one whole UTC month, as a monthly partition's
-- bounds are (live or archived); null when a bound is (MINVALUE, MAXVALUE).
create or replace function tracing.is_utc_month(p_from timestamptz, p_to timestamptz) returns boolean
language sql immutable parallel safe as $$
  select p_from = tracing.archive_month_start(p_from)
     and p_to = ((p_from at time zone 'UTC') + interval '1 month') at time zone 'UTC'
$$;

comment on function tracing.is_utc_month(timestamptz, timestamptz) is
  E'Whether [p_from, p_to) is exactly one UTC month (null when either bound is null).';

create or replace function tracing.archive_partition_name(month_start timestamptz) returns text
language sql immutable parallel safe as $$
  -- domain_events_archive_2026m05: sorts by month, and leaves room under
  -- the 63-character identifier limit for the index-name suffixes.
  select 'domain_events_archive_'
    || extract(year from month_start at time zone 'UTC')::int
    || 'm' || lpad(extract(month from month_start at time zone 'UTC')::int::text, 2, '0')
$$;

-- The partitions of the archive with their bounds, size and whether they
-- carry the lookup indexes yet.
create or replace view tracing.archive_partitions as
  select c.relname::text as partition,
         bounds.from_at,
         bounds.to_at,
         greatest(c.reltuples, 0)::bigint as estimated_events,
         pg_total_relation_size(c.oid) as total_bytes,
         (select count(*) from pg_index x join pg_class ix on ix.oid = x.indexrelid
           where x.indrelid = c.oid
             and ix.relname in (c.relname || '_id_key', c.relname || '_correlation_id_idx',
                                c.relname || '_session_id_idx', c.relname || '_trace_id_idx')) = 4 as indexed
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    cross join lateral (
      select m[1]::timestamptz as from_at, m[2]::timestamptz as to_at
        from regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) as m
    ) as bounds
   where i.inhparent = 'tracing.domain_events_archive'::regclass;

comment on view tracing.archive_partitions is
  E'Monthly partitions of tracing.domain_events_archive: bounds, estimated rows, size, and whether their lookup indexes exist yet.';

create or replace function tracing.ensure_archive_partition(p_month timestamptz) returns text
language plpgsql volatile as $$
declare
  v_from timestamptz := tracing.archive_month_start(p_month);
  v_to timestamptz := (date_trunc('month', p_month at time zone 'UTC') + interval '1 month') at time zone 'UTC';
  v_name text := tracing.archive_partition_name(v_from);
begin
  if to_regclass(format('tracing.%I', v_name)) is not null then
    return null;
  end if;
  -- Without indexes: the run that first fills it indexes it at its end
  -- (tracing.index_archive_partition); an empty partition needs none.
  execute format(
    'create table if not exists tracing.%I partition of tracing.domain_events_archive for values from (%L) to (%L)',
    v_name, v_from, v_to);
  -- RLS on the partition too, so reading it directly shows nothing to a
  -- role that could only read the parent through its policies.
  execute format('alter table tracing.%I enable row level security', v_name);
  return v_name;
end
$$;

comment on function tracing.ensure_archive_partition(timestamptz) is
  E'Creates the archive partition of the (UTC) month containing p_month unless it exists; returns its name when created, else null.';

create or replace function tracing.ensure_archive_partitions(p_horizon timestamptz, p_months_ahead integer) returns text[]
language plpgsql volatile as $$
declare
  v_created text[] := '{}';
  v_name text;
  v_month timestamptz;
begin
  -- From the horizon's month to p_months_ahead months past it: the months
  -- the next runs will fill. Older months (a backlog) are created by the
  -- archive run when it meets their rows.
  for v_month in
    select (date_trunc('month', p_horizon at time zone 'UTC') + make_interval(months => k)) at time zone 'UTC'
      from generate_series(0, p_months_ahead) as k
  loop
    v_name := tracing.ensure_archive_partition(v_month);
    if v_name is not null then
      v_created := v_created || v_name;
    end if;
  end loop;
  return v_created;
end
$$;

comment on function tracing.ensure_archive_partitions(timestamptz, integer) is
  E'Creates the archive partitions from the month of p_horizon to p_months_ahead months later; returns the names it created.';

create or replace function tracing.index_archive_partition(p_partition text) returns text[]
language plpgsql volatile as $$
declare
  v_created text[] := '{}';
  v_index record;
begin
  -- The lookups the archive serves (restore and include-archive queries by
  -- correlation, session and trace id, newest first) and the id, unique
  -- per partition, which with created_at fixing the partition makes an
  -- event unique in the whole archive.
  for v_index in
    select * from (values
      ('_id_key', 'create unique index if not exists %I on tracing.%I (id)'),
      ('_correlation_id_idx', 'create index if not exists %I on tracing.%I (correlation_id, created_at desc) where correlation_id is not null'),
      ('_session_id_idx', 'create index if not exists %I on tracing.%I (session_id, created_at desc) where session_id is not null'),
      ('_trace_id_idx', 'create index if not exists %I on tracing.%I (trace_id, created_at desc) where trace_id is not null')
    ) as wanted(suffix, ddl)
  loop
    if to_regclass(format('tracing.%I', p_partition || v_index.suffix)) is null then
      execute format(v_index.ddl, p_partition || v_index.suffix, p_partition);
      v_created := v_created || (p_partition || v_index.suffix);
    end if;
  end loop;
  return v_created;
end
$$;

comment on function tracing.index_archive_partition(text) is
  E'Creates the lookup indexes of one archive partition that are missing; returns the names it created.';

-- Pacing of an archive run (retention_settings.batch_pause_ratio): after a
-- step (a batch of events, a partition's indexes), sleeps that many times
-- the step's own time, so live writers have the cores and the WAL to
-- themselves in between; a step slowed by their load earns a longer pause.
-- Called between transactions, never holding a batch's or a build's locks.
create or replace function tracing.pause_after_archive_step(p_step_started timestamptz) returns void
language plpgsql volatile as $$
begin
  perform pg_sleep(extract(epoch from clock_timestamp() - p_step_started) * s.batch_pause_ratio)
     from tracing.retention_settings s
    where s.batch_pause_ratio > 0;
end
$$;

comment on function tracing.pause_after_archive_step(timestamptz) is
  E'Sleeps retention_settings.batch_pause_ratio times the time since p_step_started (not at all when the ratio is 0). Called by the archive run between its batches and index builds.';

-- Indexes every non-empty archive partition still without its indexes
-- (the months this run filled, or a killed run left). Runs one partition per
-- transaction; returns what it indexed and any error text.
create or replace procedure tracing.index_archive_partitions(inout indexed text[] default null, inout error text default null)
language plpgsql as $$
declare
  v_partition text;
  v_has_rows boolean;
  v_started timestamptz;
  v_paced boolean := (select s.batch_pause_ratio > 0 from tracing.retention_settings s);
begin
  indexed := '{}';
  for v_partition in select partition from tracing.archive_partitions where not archive_partitions.indexed order by from_at loop
    v_started := clock_timestamp();
    v_has_rows := false;
    begin
      execute format('select exists (select from tracing.%I)', v_partition) into v_has_rows;
      if v_has_rows then
        -- A building index blocks writes to this partition only (readers
        -- go on); waiting long for the lock would queue readers behind it.
        set local lock_timeout = '10s';
        -- A paced run leaves the other cores to live writers: parallel
        -- workers of a build would take them all.
        if v_paced then
          set local max_parallel_maintenance_workers = 0;
        end if;
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
    if v_has_rows then
      begin
        perform tracing.pause_after_archive_step(v_started);
      exception when query_canceled then
        error := concat_ws('; ', error, 'indexing: cancelled');
        exit;
      end;
    end if;
  end loop;
end
$$;

comment on procedure tracing.index_archive_partitions(text[], text) is
  E'Builds the lookup indexes of every non-empty archive partition that lacks them, one partition per transaction.';

