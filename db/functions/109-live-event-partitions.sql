-- What each partition of tracing.domain_events has beyond what the parent
-- gives every partition: a unique index on id.
--
-- A unique index of a partitioned table must hold its partition key, so the
-- parent cannot say "id is unique" (migration 000030). Each partition says
-- it for its own rows instead, in <partition>_id_key, the name and shape
-- the archive's partitions use (110-archive-partitions.sql): a month moved
-- whole to the archive (125-retention-events.sql) arrives indexed. Across
-- partitions, ids are unique because only the sequence hands them out (the
-- writer role may not set id).

create or replace function tracing.index_live_event_partitions() returns setof text
language plpgsql volatile as $$
declare
  v_partition record;
begin
  for v_partition in
    select b.partition, c.relname
      from tracing.partition_bounds('tracing.domain_events') b
      join pg_class c on c.oid = b.partition
     where not exists (
       select from pg_index x
        where x.indrelid = b.partition and x.indisunique and x.indpred is null and x.indexprs is null
          and x.indnatts = 1 and x.indkey[0] = (select a.attnum from pg_attribute a where a.attrelid = b.partition and a.attname = 'id'))
  loop
    execute format('create unique index if not exists %I on %s (id)', v_partition.relname || '_id_key', v_partition.partition);
    return next v_partition.relname || '_id_key';
  end loop;
end
$$;

comment on function tracing.index_live_event_partitions() is
  E'Creates the unique index on id (<partition>_id_key) of every partition of tracing.domain_events that lacks one; returns the names it created. Called after partitions are created ahead.';
