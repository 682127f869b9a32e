-- Caps on what a span's attributes, events and links may hold, applied by
-- tracing.record_spans so every writer (OTLP ingest, the edge's recordSpan,
-- raw SQL) gets them.
--
-- Why: the OTLP exporter encodes a JSON level as three protobuf messages
-- (AnyValue, KeyValueList, KeyValue), and protobuf encoders stop at 100
-- nested messages, so an attribute about 32 levels deep could never be
-- exported. 16 levels leave room for the envelope. Strings are cut at
-- 4,096 characters, which keeps one span from filling a batch.
--
-- A span is never rejected for this: what is cut is replaced in place by a
-- string saying what was there, and record_spans adds the attribute
-- `tracegres.truncated` to the span. Spans within the caps (nearly all) pay
-- for two cheap checks and are stored as sent.

create or replace function tracing.span_json_capped(p_value jsonb, p_depth integer default 0) returns jsonb
language sql immutable parallel safe as $$
  select case
    when jsonb_typeof(p_value) in ('object', 'array') and p_depth >= 16 and p_value not in ('{}', '[]') then
      to_jsonb(format('[cut: a %s nested deeper than 16 levels]', jsonb_typeof(p_value)))
    when jsonb_typeof(p_value) = 'object' then
      (select coalesce(jsonb_object_agg(key, tracing.span_json_capped(value, p_depth + 1)), '{}') from jsonb_each(p_value))
    when jsonb_typeof(p_value) = 'array' then
      (select coalesce(jsonb_agg(tracing.span_json_capped(value, p_depth + 1) order by n), '[]') from jsonb_array_elements(p_value) with ordinality as e(value, n))
    when jsonb_typeof(p_value) = 'string' and length(p_value #>> '{}') > 4096 then
      to_jsonb(left(p_value #>> '{}', 4096) || format('[cut: %s more characters]', length(p_value #>> '{}') - 4096))
    else p_value
  end
$$;

comment on function tracing.span_json_capped(jsonb, integer) is
  E'p_value with containers nested deeper than 16 levels and strings longer than 4096 characters replaced by strings that say what was cut. p_depth is the level of p_value itself (0 for a span''s attributes).';

-- The walk above touches every value, so only values that exceed a cap
-- take it. A non-empty container at level 16 means something sits at level
-- 17; a string over the cap makes the whole value larger than 4 KB, so
-- smaller values skip the search for one.
--
-- The search is a function of its own so that span_json_within_caps stays
-- one expression without a subquery, which the planner inlines into the
-- caller: called as a function instead, it took half of record_spans' time.
-- It is stable, not immutable, only because pg_column_size is stable, and a
-- function is inlined only when its body is no more volatile than itself.
create or replace function tracing.span_json_has_long_string(p_value jsonb) returns boolean
language sql immutable parallel safe as $$
  select exists (select from jsonb_path_query(p_value, 'strict $.** ? (@.type() == "string")') as s(value)
                  where length(s.value #>> '{}') > 4096)
$$;

comment on function tracing.span_json_has_long_string(jsonb) is
  E'True when p_value holds a string longer than 4096 characters at any depth.';

create or replace function tracing.span_json_within_caps(p_value jsonb) returns boolean
language sql stable parallel safe as $$
  select p_value is null
    or (not jsonb_path_exists(p_value, 'strict $.**{17}')
        and (pg_column_size(p_value) <= 4096 or not tracing.span_json_has_long_string(p_value)))
$$;

comment on function tracing.span_json_within_caps(jsonb) is
  E'True when tracing.span_json_capped would leave p_value as it is.';
