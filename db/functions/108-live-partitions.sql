-- The monthly partitions of live tables partitioned by time (range on one
-- timestamptz column), created ahead of need: one function for every such
-- table, so domain_events and spans are kept the same way.
--
-- A partition is named <parent>_YYYYmMM after its UTC month, like the
-- archive's (110-archive-partitions.sql, whose tracing.archive_month_start
-- this reuses; plpgsql resolves it when called, after that file is applied).
--
-- Each month is made as a plain table like the parent, with a CHECK
-- constraint matching its bounds, then ATTACHed: ATTACH PARTITION takes
-- only a SHARE UPDATE EXCLUSIVE lock on the parent, where CREATE TABLE ...
-- PARTITION OF would take an ACCESS EXCLUSIVE one; the CHECK constraint
-- lets ATTACH skip scanning the new table. It still takes an ACCESS
-- EXCLUSIVE lock on the DEFAULT partition, whose constraint changes, and
-- scans it (it is small: rows of a month without a partition) until the
-- transaction ends: inserts, which lock only the partition they go to, go
-- on, but a read that cannot leave the default partition out (a lookup by
-- trace or correlation id) waits, and queues behind the attach while it
-- waits for a long read of that partition to finish. Hence one table a
-- transaction, under a lock_timeout (tracing.archive_events).
--
-- A month another partition already covers, wholly or in part, is skipped
-- (a table partitioned in place keeps its old rows in one partition up to a
-- month boundary). Rows of the month that wait in the parent's DEFAULT
-- partition (written before the month had a partition: clocks months off,
-- upkeep that did not run) move into the new table before it is attached,
-- in the same subtransaction, so each row is in exactly one partition at
-- every commit. While they move, the transaction-local setting
-- tracegres.moving_partition_rows is 'on': a row trigger that keeps a side
-- table on DELETE (domain_events' idempotency keys, 030) leaves it alone,
-- since the rows stay in the parent.

-- The partitions of a range-partitioned parent with their bounds: from_at
-- null for MINVALUE, to_at null for MAXVALUE, both null for the DEFAULT
-- partition. Bounds are printed in the session's TimeZone with its offset,
-- so reading them back as timestamptz gives the instant whatever the zone.
create or replace function tracing.partition_bounds(p_parent regclass)
returns table (partition regclass, from_at timestamptz, to_at timestamptz, is_default boolean)
language sql stable as $$
  select c.oid::regclass,
         nullif(m[1], 'MINVALUE')::timestamptz,
         nullif(m[2], 'MAXVALUE')::timestamptz,
         pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    left join lateral regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                   $re$FROM \('?([^')]+)'?\) TO \('?([^')]+)'?\)$re$) as m on true
   where i.inhparent = p_parent
$$;

comment on function tracing.partition_bounds(regclass) is
  E'The partitions of the range-partitioned table p_parent with their bounds (from_at null for MINVALUE, to_at null for MAXVALUE) and whether each is the DEFAULT partition.';

create or replace function tracing.live_partition_name(p_parent regclass, p_month_start timestamptz) returns text
language sql stable parallel safe as $$
  -- domain_events_2026m05: sorts by month, like the archive's names.
  select c.relname || '_' || extract(year from p_month_start at time zone 'UTC')::int
         || 'm' || lpad(extract(month from p_month_start at time zone 'UTC')::int::text, 2, '0')
    from pg_class c where c.oid = p_parent
$$;

comment on function tracing.live_partition_name(regclass, timestamptz) is
  E'The name of the monthly partition of p_parent for the UTC month starting at p_month_start: <parent>_YYYYmMM.';

-- A partition's copies of its parent's indexes are named after the parent's
-- index and the partition's month (domain_events_trace_id_idx_2026m05),
-- rather than Postgres' choice (domain_events_2026m05_trace_id_created_at_idx),
-- so a plan names the index a query meant, whichever months it reads.
-- Renames those of p_table's partitions (or of p_table, a partition) that
-- are named otherwise; returns the new names.
create or replace function tracing.name_partition_indexes(p_table regclass) returns setof text
language plpgsql volatile as $$
declare
  v_index record;
begin
  for v_index in
    select ci.oid as index, n.nspname as schema, ci.relname as name,
           left(cpi.relname, 62 - length(suffix.text)) || '_' || suffix.text as wanted
      from pg_inherits p
      join pg_class cp on cp.oid = p.inhparent
      join pg_class cc on cc.oid = p.inhrelid
      join pg_index x on x.indrelid = cc.oid
      join pg_class ci on ci.oid = x.indexrelid
      join pg_namespace n on n.oid = ci.relnamespace
      join pg_inherits pi on pi.inhrelid = ci.oid
      join pg_class cpi on cpi.oid = pi.inhparent
      cross join lateral (select case when cc.relname like cp.relname || '\_%'
                                      then substr(cc.relname, length(cp.relname) + 2) else cc.relname end as text) as suffix
     where p_table in (p.inhparent, p.inhrelid)
  loop
    continue when v_index.name = v_index.wanted
               or to_regclass(format('%I.%I', v_index.schema, v_index.wanted)) is not null;
    execute format('alter index %I.%I rename to %I', v_index.schema, v_index.name, v_index.wanted);
    return next v_index.wanted;
  end loop;
end
$$;

comment on function tracing.name_partition_indexes(regclass) is
  E'Names the indexes of the partitions of p_table (or of p_table, a partition) that belong to a parent index after it and the partition: <parent index>_<month>. Returns the new names.';

create or replace function tracing.ensure_live_partitions(p_parent regclass, p_through timestamptz)
returns setof text
language plpgsql volatile as $$
declare
  v_schema text;
  v_key text;
  v_default regclass := (select b.partition from tracing.partition_bounds(p_parent) b where b.is_default);
  v_columns text;
  v_moved bigint;
  v_month timestamptz;
  v_to timestamptz;
  v_name text;
begin
  if p_parent is null then
    raise exception 'p_parent must name a table partitioned by range on a timestamptz column' using errcode = '22023';
  end if;
  select n.nspname, a.attname into v_schema, v_key
    from pg_partitioned_table pt
    join pg_class c on c.oid = pt.partrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = pt.partrelid and a.attnum = pt.partattrs[0]
   where pt.partrelid = p_parent and pt.partstrat = 'r' and pt.partnatts = 1
     and a.atttypid = 'timestamptz'::regtype;
  if v_key is null then
    raise exception 'p_parent must name a table partitioned by range on one timestamptz column, got %', p_parent
      using errcode = '22023';
  end if;
  if p_through is null then
    raise exception 'p_through must be a time (the last month to create is the one containing it)' using errcode = '22023';
  end if;
  -- A bounded amount of work: at most five years of months.
  if p_through > now() + interval '5 years' then
    raise exception 'p_through must be at most five years ahead, got %', p_through using errcode = '22023';
  end if;

  -- The columns a row is written with (generated ones are computed again).
  select string_agg(quote_ident(a.attname), ', ' order by a.attnum) into v_columns
    from pg_attribute a
   where a.attrelid = p_parent and a.attnum > 0 and not a.attisdropped and a.attgenerated = '';

  v_month := tracing.archive_month_start(now());
  while v_month <= p_through loop
    -- Month arithmetic in UTC, so every partition is exactly one UTC month.
    v_to := ((v_month at time zone 'UTC') + interval '1 month') at time zone 'UTC';
    v_name := tracing.live_partition_name(p_parent, v_month);
    if to_regclass(format('%I.%I', v_schema, v_name)) is null
       -- Covered, wholly or in part, by another partition (not the default).
       and not exists (
         select from tracing.partition_bounds(p_parent) b
          where not b.is_default
            and coalesce(b.from_at < v_to, true) and coalesce(b.to_at > v_month, true)) then
      begin
        execute format('create table %I.%I (like %s including defaults including generated including constraints including storage including compression)',
                       v_schema, v_name, p_parent);
        execute format('alter table %I.%I add constraint %I check (%I >= %L and %I < %L)',
                       v_schema, v_name, v_name || '_bounds', v_key, v_month, v_key, v_to);
        if v_default is not null then
          perform set_config('tracegres.moving_partition_rows', 'on', true);
          execute format('with moved as (delete from %1$s where %2$I >= $1 and %2$I < $2 returning %3$s) '
                         'insert into %4$I.%5$I (%3$s) select %3$s from moved',
                         v_default, v_key, v_columns, v_schema, v_name)
            using v_month, v_to;
          get diagnostics v_moved = row_count;
          perform set_config('tracegres.moving_partition_rows', 'off', true);
          if v_moved > 0 then
            raise notice 'partition % of %: % rows moved in from %', v_name, p_parent, v_moved, v_default;
          end if;
        end if;
        execute format('alter table %s attach partition %I.%I for values from (%L) to (%L)',
                       p_parent, v_schema, v_name, v_month, v_to);
        -- The partition constraint now says the same.
        execute format('alter table %I.%I drop constraint %I', v_schema, v_name, v_name || '_bounds');
        perform tracing.name_partition_indexes(format('%I.%I', v_schema, v_name)::regclass);
        -- RLS on the partition too, so reading it directly shows nothing to a
        -- role that could only read the parent through its policies.
        execute format('alter table %I.%I enable row level security', v_schema, v_name);
        return next v_name;
      exception
        -- Another session created it first.
        when duplicate_table then
          null;
      end;
    end if;
    v_month := v_to;
  end loop;
end
$$;

comment on function tracing.ensure_live_partitions(regclass, timestamptz) is
  E'Creates the missing monthly UTC partitions of the range-partitioned table p_parent from the current month through the month of p_through, named <parent>_YYYYmMM, with row-level security on, moving in the rows of that month from the default partition; returns the names it created. Skips months another partition covers.';

-- The live tables partitioned by month, and how far ahead their partitions
-- are kept: retention_settings.months_ahead months past the current one,
-- the same horizon the archive's partitions are created to. The archive run
-- (tracing.archive_events) calls this for each table, one transaction each,
-- so pg_cron and the in-process scheduler both keep them. Without scheduled
-- retention, new months' rows still land in each table's DEFAULT partition
-- (nothing fails, reads find them), and the next call moves them into their
-- months.
create or replace function tracing.live_partitioned_tables() returns setof regclass
language sql stable as $$
  select t.parent
    from unnest(array[to_regclass('tracing.domain_events'), to_regclass('tracing.spans')]) with ordinality as t(parent, n)
   where exists (select from pg_partitioned_table p where p.partrelid = t.parent)
   order by t.n
$$;

comment on function tracing.live_partitioned_tables() is
  E'The live tables partitioned by month whose partitions are created ahead: tracing.domain_events and tracing.spans.';

-- The earlier form, which did every table in one transaction.
drop function if exists tracing.ensure_live_partitions_ahead();

create or replace function tracing.ensure_live_partitions_ahead(p_parent regclass) returns setof text
language plpgsql volatile as $$
begin
  return query select * from tracing.ensure_live_partitions(p_parent,
    (select ((tracing.archive_month_start(now()) at time zone 'UTC') + make_interval(months => s.months_ahead)) at time zone 'UTC'
       from tracing.retention_settings s));
  -- What each event partition has beyond the parent's indexes
  -- (109-live-event-partitions.sql).
  if p_parent = to_regclass('tracing.domain_events') then
    perform tracing.index_live_event_partitions();
  end if;
end
$$;

comment on function tracing.ensure_live_partitions_ahead(regclass) is
  E'Creates the missing monthly partitions of the live table p_parent from the current month to retention_settings.months_ahead months past it; returns the names it created. Called by every archive run for each of tracing.live_partitioned_tables().';
