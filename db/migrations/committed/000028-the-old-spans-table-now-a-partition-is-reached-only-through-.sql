--! Previous: sha1:67af8e0bb2b046145a7d6e624efd6aebbfb67791
--! Hash: sha1:50a8950acc4cb1fbb18339cda9d7f2715f0e9c83
--! Message: The old spans table, now a partition, is reached only through tracing.spans: its own grant and policy copies go

-- The old spans table, attached by migration 000020 as the partition of
-- everything before its month, kept its own grant to tracegres_anonymous
-- and its own copies of the row-level security policies. Like every other
-- partition it is now reached only through tracing.spans, whose grant and
-- policies decide what a reader sees (row-level security stays enabled on
-- it, so without a policy a direct read returns nothing).
do $$
declare
  v_partition regclass;
begin
  for v_partition in
    select c.oid::regclass
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'tracing.spans'::regclass and c.relname ~ '^spans_before_\d{4}m\d\d$'
  loop
    execute format('revoke all on %s from tracegres_anonymous', v_partition);
    execute format('drop policy if exists select_own_organization on %s', v_partition);
    execute format('drop policy if exists select_all on %s', v_partition);
    execute format('comment on table %s is %L', v_partition,
      'The spans that started before this partition''s upper bound: the table tracing.spans was before it was partitioned (migration 000020).');
  end loop;
end
$$;
