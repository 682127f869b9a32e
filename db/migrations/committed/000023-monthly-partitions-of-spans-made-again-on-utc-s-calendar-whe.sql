--! Previous: sha1:c95667d015ac247d15773c0d893235a0aa21dc60
--! Hash: sha1:3585664adbe5384e7319135f699bdfd5666cc0a7
--! Message: Monthly partitions of spans made again on UTC's calendar where migration 000020 counted them in the session's time zone

-- Migration 000020 counted its two months ahead by adding interval '1 month'
-- to a timestamptz, which follows the session's time zone: run in a zone
-- with a daylight-saving change or a shorter month in those two months, a
-- partition's bounds fall hours off a UTC midnight (e.g. migrated in
-- February in New York, spans_YYYYm03 ended on March 28th 23:00 UTC), and
-- the upkeep, which skips a month another partition covers in part, would
-- leave the rest of that month in the default partition. Here the monthly
-- partitions of tracing.spans whose bounds are not their UTC month are
-- made again on UTC's calendar while they are still empty (they were
-- created moments before, in the same upgrade). One that already holds
-- rows is left as it is, with a warning.
do $$
declare
  r record;
  v_month timestamp;
  v_misaligned text[] := '{}';
  v_name text;
begin
  -- All or nothing: if one month cannot be made again (another partition
  -- overlaps it, or the default partition holds spans of it), every
  -- partition stays as it was and tracing.ensure_live_partitions is left
  -- to fill the months around them.
  begin
    for r in
      select c.relname, regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) as bounds
        from pg_inherits i
        join pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'tracing.spans'::regclass and c.relname ~ '^spans_\d{4}m\d\d$'
    loop
      v_month := to_date(substr(r.relname, 7), 'YYYY"m"MM');
      continue when r.bounds is null
        or (r.bounds[1]::timestamptz = v_month at time zone 'UTC'
            and r.bounds[2]::timestamptz = (v_month + interval '1 month') at time zone 'UTC');
      if exists (select from tracing.spans s where s.tableoid = format('tracing.%I', r.relname)::regclass) then
        raise warning 'tracing.% holds spans and keeps its bounds %', r.relname, r.bounds;
        continue;
      end if;
      execute format('drop table tracing.%I', r.relname);
      v_misaligned := v_misaligned || r.relname;
    end loop;

    foreach v_name in array v_misaligned loop
      v_month := to_date(substr(v_name, 7), 'YYYY"m"MM');
      execute format('create table tracing.%I partition of tracing.spans for values from (%L) to (%L)',
        v_name, v_month at time zone 'UTC', (v_month + interval '1 month') at time zone 'UTC');
      execute format('alter table tracing.%I enable row level security', v_name);
    end loop;
  exception when invalid_object_definition or check_violation then
    raise warning 'the partitions of tracing.spans keep their bounds: %', sqlerrm;
  end;
end
$$;
