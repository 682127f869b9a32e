--! Previous: sha1:211ca73238ef200762db5b7b2aad34ed660fe34f
--! Hash: sha1:621f58c2aba06b9cc11c28875441547cb8028d9a
--! Message: The old domain_events table, now a partition, is reached only through tracing.domain_events: its own grants go

-- The old domain_events table, attached by migration 000030 as the
-- partition of everything before its month, kept its own grants to
-- tracegres_writer and tracegres_anonymous (000030 dropped its policies).
-- Like every other partition it is now reached only through
-- tracing.domain_events, whose grants and policies decide what a caller
-- reads and writes (row-level security stays enabled on it, so without a
-- policy a direct read returned nothing anyway).
do $$
declare
  v_partition regclass;
begin
  for v_partition in
    select c.oid::regclass
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'tracing.domain_events'::regclass and c.relname ~ '^domain_events_before_\d{4}m\d\d$'
  loop
    execute format('revoke all on %s from tracegres_anonymous, tracegres_writer', v_partition);
    execute format('comment on table %s is %L', v_partition,
      'The events created before this partition''s upper bound: the table tracing.domain_events was before it was partitioned (migration 000030).');
  end loop;
end
$$;
