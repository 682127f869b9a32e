--! Previous: sha1:c7196f7b03425f15e3e42b06c1b8c27c02a23cf3
--! Hash: sha1:4f483ba2c5e5e0307101cde569899209645a65e2
--! Message: The timeline's flag for a span cut at the depth limit

-- The timeline bounds depth: a span that would sit 1,000 levels deep is
-- shown as the root of its own tree, and says so.
do $$
begin
  if not exists (
    select from pg_attribute
     where attrelid = 'api.timeline_span'::regclass and attname = 'cut_at_depth_limit' and not attisdropped
  ) then
    alter type api.timeline_span add attribute cut_at_depth_limit boolean;
  end if;
end
$$;

comment on column api.timeline_span.cut_at_depth_limit is
  E'Its parent chain is deeper than the timeline''s limit (1,000 levels): it is shown as a root of its own tree (parent_span_id null, recorded_parent_span_id kept), so a pathological depth stays cheap.';
