--! Previous: sha1:50a8950acc4cb1fbb18339cda9d7f2715f0e9c83
--! Hash: sha1:adbcbd83ad7b000906016b9a168ee5de7488be6d
--! Message: The timeline's flag for a trace cut at its span, event or row limit

-- The timeline reads a bounded part of a trace (the earliest 10,000 spans
-- and events) and shows at most 10,000 rows; every row of a cut answer
-- says so.
do $$
begin
  if not exists (
    select from pg_attribute
     where attrelid = 'api.timeline_span'::regclass and attname = 'trace_cut_at_limit' and not attisdropped
  ) then
    alter type api.timeline_span add attribute trace_cut_at_limit boolean;
  end if;
end
$$;

comment on column api.timeline_span.trace_cut_at_limit is
  E'The trace is larger than the timeline reads or shows (10,000 spans, 10,000 domain events, 10,000 rows): this answer is its earliest part, the same on every row. A placeholder may then stand for a recorded parent that was not read.';
