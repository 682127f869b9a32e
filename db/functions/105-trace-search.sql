-- Trace search by anything a user knows: span intrinsics, attributes and
-- structure, as one structured filter (jsonb) that GraphQL, and later the
-- Tempo and Jaeger query APIs, hand to the same function.
--
--   {
--     "from": "2026-12-02T10:00:00Z", "to": "2026-12-02T11:00:00Z",  -- required, at most 7 days
--     "traces": <trace condition>,                                   -- optional: every trace of the window
--     "spans_per_trace": 3                                           -- matched spans returned a trace, 1-20
--   }
--
--   <trace condition> =
--       {"spans": <span condition>}          a span of the trace matches
--     | {"and": [...]} | {"or": [...]}       of trace conditions
--     | {"relation": "descendant" | "child" | "ancestor" | "parent" | "sibling",
--        "left": <span condition>, "right": <span condition>}
--                                            a span matching left has a
--                                            descendant (TraceQL >>), child (>),
--                                            ancestor (<<), parent (<) or
--                                            sibling (~) matching right
--     | {"trace_duration_ms": {"op": ">", "value": 2000}}
--     | {"events": {"stream_type": "order", "stream_id": "ord-1058"}}
--     | {"events": {"event_type": "payment.failed"}}
--     | {"events": {"data": {"key": "customer.id", "value": "c-42"}}}
--                                            an event of the trace is of that
--                                            aggregate, type, or has that
--                                            event_data value (a key declared
--                                            with tracing.add_search_key, or
--                                            any key within a 1-hour window)
--
--   <span condition> =
--       {"field": "service" | "name" | "kind" | "status" | "duration_ms", "op": ..., "value": ...}
--     | {"attribute": "http.route", "op": ..., "value": ...}
--     | {"and": [...]} | {"or": [...]} | {"not": <span condition>}
--
--   ops: = != (all), < <= > >= (numbers: duration_ms, numeric attributes),
--        =~ !~ (regular expressions on text: service, name, attributes),
--        exists, not_exists (attributes).
--
-- Resource attributes are stored with each span's attributes, so an
-- attribute condition finds either. A filter is compiled into SQL text with
-- every value quoted as a literal and every name taken from the fixed lists
-- above; the query runs with the caller's rights, so row-level security
-- decides which traces exist. Every bad input raises SQLSTATE 22023 naming
-- where in p_filter it is (p_filter.traces.and[1].spans.op, ...).
--
-- Bounds: at most 32 conditions and 8 levels of nesting, a window of at
-- most 7 days, regular expressions of at most 256 characters, events read
-- for an event condition only from an hour before the window to a day after
-- it (tracing.search_event_window); the GraphQL statement timeout bounds the
-- rest.

-- The first version of the trace compiler, without the window argument.
drop function if exists tracing.search_trace_predicate(jsonb, text, integer);
-- The versions that took the window's length alone, before event conditions
-- were bounded by the window itself.
drop function if exists tracing.search_trace_predicate(jsonb, text, interval, integer);
drop function if exists tracing.search_event_predicate(jsonb, text, interval);
drop function if exists tracing.search_key_events(text[], text);

create or replace function tracing.search_error(p_path text, p_message text) returns text
language plpgsql immutable parallel safe as $$
begin
  raise exception '% %', p_path, p_message using errcode = '22023';
end
$$;

-- Counts conditions so the whole filter stays within its budget.
create or replace function tracing.search_count_conditions(p_expr jsonb) returns integer
language sql immutable parallel safe as $$
  select case
    when jsonb_typeof(p_expr) = 'object' and (p_expr ? 'field' or p_expr ? 'attribute' or p_expr ? 'trace_duration_ms' or p_expr ? 'events') then 1
    when jsonb_typeof(p_expr) = 'object' then
      coalesce((select sum(tracing.search_count_conditions(v)) from jsonb_each(p_expr) e(k, v) where jsonb_typeof(v) in ('object', 'array')), 0)::integer
    when jsonb_typeof(p_expr) = 'array' then
      coalesce((select sum(tracing.search_count_conditions(v)) from jsonb_array_elements(p_expr) a(v)), 0)::integer
    else 0
  end
$$;

-- A regular expression, checked: a string of at most 256 characters that
-- Postgres accepts.
create or replace function tracing.search_regex(p_value jsonb, p_path text) returns text
language plpgsql immutable parallel safe as $$
declare
  v_pattern text;
begin
  if jsonb_typeof(p_value) is distinct from 'string' then
    perform tracing.search_error(p_path, 'must be a regular expression (a string)');
  end if;
  v_pattern := p_value #>> '{}';
  if length(v_pattern) > 256 then
    perform tracing.search_error(p_path, 'must be at most 256 characters');
  end if;
  begin
    perform '' ~ v_pattern;
  exception when invalid_regular_expression then
    perform tracing.search_error(p_path, format('is not a valid regular expression: %s', sqlerrm));
  end;
  return v_pattern;
end
$$;

-- The operands of an {"and": [...]} or {"or": [...]} condition, checked
-- (a non-empty array), each with its place in p_filter and the SQL word
-- that joins them: what both compilers below share.
create or replace function tracing.search_operands(p_expr jsonb, p_path text, p_what text)
returns table (n bigint, item jsonb, path text, joiner text)
language plpgsql immutable parallel safe as $$
declare
  v_key text := case when p_expr ? 'and' then 'and' else 'or' end;
begin
  if jsonb_typeof(p_expr -> v_key) is distinct from 'array' or jsonb_array_length(p_expr -> v_key) = 0 then
    perform tracing.search_error(p_path || '.' || v_key, format('must be a non-empty array of %s', p_what));
  end if;
  return query
    select e.n, e.item, format('%s.%s[%s]', p_path, v_key, e.n - 1), ' ' || v_key || ' '
      from jsonb_array_elements(p_expr -> v_key) with ordinality as e(item, n);
end
$$;

-- One span condition as SQL over the span alias p_alias.
create or replace function tracing.search_span_predicate(p_expr jsonb, p_alias text, p_path text, p_depth integer default 0)
returns text
language plpgsql immutable parallel safe as $$
declare
  v_op text;
  v_value jsonb;
  v_key text;
  v_column text;
begin
  if p_depth > 8 then
    perform tracing.search_error(p_path, 'nests deeper than 8 levels');
  end if;
  if jsonb_typeof(p_expr) is distinct from 'object' then
    perform tracing.search_error(p_path, 'must be an object: a field, attribute, and, or or not condition');
  end if;
  if p_expr ? 'and' or p_expr ? 'or' then
    return (select '(' || string_agg(tracing.search_span_predicate(o.item, p_alias, o.path, p_depth + 1), o.joiner order by o.n) || ')'
              from tracing.search_operands(p_expr, p_path, 'span conditions') o);
  end if;
  if p_expr ? 'not' then
    return format('(not %s)', tracing.search_span_predicate(p_expr -> 'not', p_alias, p_path || '.not', p_depth + 1));
  end if;

  if not (p_expr ? 'field' or p_expr ? 'attribute') then
    perform tracing.search_error(p_path, 'must have field, attribute, and, or or not');
  end if;
  v_op := p_expr ->> 'op';
  v_value := p_expr -> 'value';
  if v_op is null then
    perform tracing.search_error(p_path || '.op', 'is required');
  end if;

  if p_expr ? 'field' then
    v_key := p_expr ->> 'field';
    if v_key in ('service', 'name') then
      v_column := format('%I.%I', p_alias, v_key);
      if v_op in ('=~', '!~') then
        return format('(%s %s %L)', v_column, case when v_op = '=~' then '~' else '!~' end, tracing.search_regex(v_value, p_path || '.value'));
      elsif v_op in ('=', '!=') then
        if jsonb_typeof(v_value) is distinct from 'string' then
          perform tracing.search_error(p_path || '.value', 'must be a string');
        end if;
        return format('(%s %s %L)', v_column, case when v_op = '=' then '=' else '<>' end, v_value #>> '{}');
      end if;
      perform tracing.search_error(p_path || '.op', format('must be =, !=, =~ or !~ for %s, got %s', v_key, v_op));
    elsif v_key in ('kind', 'status') then
      if v_op not in ('=', '!=') then
        perform tracing.search_error(p_path || '.op', format('must be = or != for %s, got %s', v_key, v_op));
      end if;
      if v_key = 'kind' and not coalesce((v_value #>> '{}') = any (array['internal', 'server', 'client', 'producer', 'consumer']), false) then
        perform tracing.search_error(p_path || '.value', 'must be internal, server, client, producer or consumer');
      end if;
      if v_key = 'status' and not coalesce((v_value #>> '{}') = any (array['unset', 'ok', 'error']), false) then
        perform tracing.search_error(p_path || '.value', 'must be unset, ok or error');
      end if;
      return format('(%I.%I %s %L)', p_alias, v_key, case when v_op = '=' then '=' else '<>' end, v_value #>> '{}');
    elsif v_key = 'duration_ms' then
      if v_op not in ('=', '!=', '<', '<=', '>', '>=') then
        perform tracing.search_error(p_path || '.op', format('must be =, !=, <, <=, > or >= for duration_ms, got %s', v_op));
      end if;
      if jsonb_typeof(v_value) is distinct from 'number' then
        perform tracing.search_error(p_path || '.value', 'must be a number of milliseconds');
      end if;
      return format('(%I.duration_ms %s %s)', p_alias, case when v_op = '!=' then '<>' else v_op end, (v_value #>> '{}')::double precision);
    end if;
    perform tracing.search_error(p_path || '.field', format('must be service, name, kind, status or duration_ms, got %s', coalesce(v_key, 'null')));
  end if;

  if p_expr ? 'attribute' then
    v_key := p_expr ->> 'attribute';
    if v_key is null or v_key = '' then
      perform tracing.search_error(p_path || '.attribute', 'must be a non-empty attribute name');
    end if;
    v_column := format('%I.attributes', p_alias);
    case
      when v_op = 'exists' then
        return format('(%s ? %L)', v_column, v_key);
      when v_op = 'not_exists' then
        return format('(not %s ? %L)', v_column, v_key);
      when v_op in ('=~', '!~') then
        return format('(%s ->> %L %s %L)', v_column, v_key, case when v_op = '=~' then '~' else '!~' end,
                      tracing.search_regex(v_value, p_path || '.value'));
      when v_op in ('=', '!=') then
        if jsonb_typeof(v_value) not in ('string', 'number', 'boolean') then
          perform tracing.search_error(p_path || '.value', 'must be a string, number or boolean');
        end if;
        -- != means: the attribute is there, with another value (TraceQL's).
        return format('(%s -> %L %s %L::jsonb)', v_column, v_key, case when v_op = '=' then '=' else '<>' end, v_value::text);
      when v_op in ('<', '<=', '>', '>=') then
        if jsonb_typeof(v_value) is distinct from 'number' then
          perform tracing.search_error(p_path || '.value', format('must be a number for %s', v_op));
        end if;
        return format('(jsonb_typeof(%1$s -> %2$L) = ''number'' and (%1$s ->> %2$L)::numeric %3$s %4$s)',
                      v_column, v_key, v_op, (v_value #>> '{}')::numeric);
      else
        perform tracing.search_error(p_path || '.op', format('must be =, !=, <, <=, >, >=, =~, !~, exists or not_exists, got %s', v_op));
    end case;
  end if;
end
$$;

-- A path into event_data, written with dots ("customer.id"), as text[].
create or replace function tracing.search_key_path(p_key text, p_path text) returns text[]
language plpgsql immutable parallel safe as $$
declare
  v_path text[] := string_to_array(p_key, '.');
begin
  if p_key is null or p_key = '' or cardinality(v_path) > 8 or array_position(v_path, '') is not null then
    perform tracing.search_error(p_path, 'must be a key of event_data: names joined by dots, at most 8 of them');
  end if;
  return v_path;
end
$$;

create or replace function tracing.search_key_declared(p_path text[]) returns boolean
language sql stable parallel safe as $$
  select exists (select from tracing.search_keys k where k.path = p_path)
$$;

-- A reader's events whose declared key p_path has the value p_value, of the
-- reader's organization, by the key's index: their id and created_at.
--
-- Why definer rights: under row-level security the planner may not use the
-- key's expression index, because `#>>` is not leakproof and so may not run
-- before the tenant policy; a reader's lookup became a scan of the events
-- (the search bench, 1M spans and 200,000 events: 46.9 / 119.8 ms p50 / p99
-- before, 1.12 / 1.62 after, docs/event-observability.md; an aggregate's
-- stream_id, whose text equality is leakproof, kept its index). Here, as the
-- tables' owner, the index is used and the reader's policy is applied
-- explicitly, with the function it uses (tracing.current_organization_id);
-- only readers may call it. The caller reads the events named again, under
-- its own policy, so what it gets back is still decided by row-level
-- security. Only declared keys: an undeclared one would be a scan.
create or replace function tracing.search_key_events(p_path text[], p_value text, p_from timestamptz, p_to timestamptz)
returns table (id bigint, created_at timestamptz)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
rows 10
as $$
begin
  if not tracing.search_key_declared(p_path) then
    perform tracing.search_error('p_path', format('%s is not a declared search key (tracing.add_search_key)', array_to_string(p_path, '.')));
  end if;
  perform tracing.require_bounded_time_range(p_from, p_to);
  -- The widest window api.find_traces asks for: 7 days, widened by
  -- tracing.search_event_window.
  if p_to - p_from > interval '8 days 1 hour' then
    perform tracing.search_error('p_to', 'must be at most 8 days 1 hour after p_from');
  end if;
  -- The path as a literal, so the statement matches the index's expression;
  -- the bounds as parameters of a one-off plan, so only their months'
  -- partitions are read.
  return query execute format(
    'select e.id, e.created_at from tracing.domain_events e
      where (e.event_data #>> %L::text[]) = $1 and e.trace_id is not null
        and e.created_at >= $2 and e.created_at < $3
        and e.organization_id = tracing.current_organization_id()', p_path)
  using p_value, p_from, p_to;
end
$$;

comment on function tracing.search_key_events(text[], text, timestamptz, timestamptz) is
  E'The events of the caller''s organization (tracing.current_organization_id) created from p_from to before p_to (at most 8 days 1 hour apart) whose declared search key p_path has the text value p_value, by the key''s index: id and created_at. For readers, whose row-level security keeps the index out of the plan; api.find_traces reads the events named again under that security.';

revoke all on function tracing.search_key_events(text[], text, timestamptz, timestamptz) from public;
grant execute on function tracing.search_key_events(text[], text, timestamptz, timestamptz) to tracegres_reader;

-- The events an event condition reads for traces that start from p_from to
-- before p_to: those created from an hour before the window (clock skew:
-- a span's start is the sender's clock, an event's created_at the
-- database's) to a day after it (a trace that starts near the end of the
-- window goes on recording events). A trace's events outside this range
-- are not searched; without a bound a common value cost a scan of every
-- event with it, and every month's partition.
create or replace function tracing.search_event_window(p_from timestamptz, p_to timestamptz, out r_from timestamptz, out r_to timestamptz)
language sql immutable parallel safe as $$
  select p_from - interval '1 hour', p_to + interval '1 day'
$$;

comment on function tracing.search_event_window(timestamptz, timestamptz) is
  E'The created_at range of the events an api.find_traces event condition reads for traces starting from p_from to before p_to: an hour before to a day after.';

-- An event condition as SQL over the event alias e: its aggregate
-- (stream_type with stream_id), its type, or a value in its event_data.
create or replace function tracing.search_event_predicate(p_expr jsonb, p_path text, p_from timestamptz, p_to timestamptz) returns text
language plpgsql stable parallel safe as $$
declare
  v_parts text[];
  v_key text;
  v_data_path text[];
  v_events record := tracing.search_event_window(p_from, p_to);
begin
  if jsonb_typeof(p_expr) is distinct from 'object' or not (p_expr ?| array['stream_type', 'stream_id', 'event_type', 'data']) then
    perform tracing.search_error(p_path, 'must have stream_type and stream_id, event_type, or data');
  end if;
  for v_key in select k from jsonb_object_keys(p_expr) k loop
    if v_key not in ('stream_type', 'stream_id', 'event_type', 'data') then
      perform tracing.search_error(p_path || '.' || v_key, 'is not an event condition (stream_type, stream_id, event_type, data)');
    end if;
  end loop;
  if (p_expr ? 'stream_id') and not (p_expr ? 'stream_type') then
    perform tracing.search_error(p_path || '.stream_type', 'is required with stream_id: an aggregate is named by both');
  end if;
  foreach v_key in array array['stream_type', 'stream_id', 'event_type'] loop
    if p_expr ? v_key then
      if jsonb_typeof(p_expr -> v_key) is distinct from 'string' then
        perform tracing.search_error(p_path || '.' || v_key, 'must be a string');
      end if;
      v_parts := v_parts || format('e.%I = %L', v_key, p_expr ->> v_key);
    end if;
  end loop;
  if p_expr ? 'data' then
    v_data_path := tracing.search_key_path(p_expr #>> '{data,key}', p_path || '.data.key');
    if jsonb_typeof(p_expr #> '{data,value}') not in ('string', 'number', 'boolean') then
      perform tracing.search_error(p_path || '.data.value', 'must be a string, number or boolean');
    end if;
    if p_to - p_from > interval '1 hour' and not tracing.search_key_declared(v_data_path) then
      perform tracing.search_error(p_path || '.data.key',
        format('%s is not a declared search key: declare it with tracing.add_search_key(%L), or search a window of at most 1 hour',
               p_expr #>> '{data,key}', p_expr #>> '{data,key}'));
    end if;
    -- A reader's declared key is looked up through tracing.search_key_events
    -- (its comment says why) and the events it names are read again under
    -- row-level security; anyone else's policy lets the planner use the
    -- key's index directly. The text form, as the index has it.
    if tracing.search_key_declared(v_data_path)
       and pg_has_role('tracegres_reader', 'member') and not pg_has_role('tracegres_admin', 'member') then
      v_parts := v_parts || format('(e.id, e.created_at) in (select k.id, k.created_at from tracing.search_key_events(%L::text[], %L, %L::timestamptz, %L::timestamptz) k)',
                                   v_data_path, p_expr #>> '{data,value}', v_events.r_from, v_events.r_to);
    else
      v_parts := v_parts || format('(e.event_data #>> %L::text[]) = %L', v_data_path, p_expr #>> '{data,value}');
    end if;
  end if;
  -- Every event condition reads the events of the search's window only
  -- (tracing.search_event_window), which also prunes the other months.
  v_parts := v_parts || format('e.created_at >= %L::timestamptz and e.created_at < %L::timestamptz', v_events.r_from, v_events.r_to);
  return '(' || array_to_string(v_parts, ' and ') || ')';
end
$$;

-- The statistics object beside a search key's index: the planner ignores
-- the expression statistics of a partial index, and without statistics of
-- its own it guessed a key value matches 0.5% of the events (1,000 of
-- 200,000), so it walked the window's traces newest first probing each for
-- events (1M spans, 200,000 events: 600 ms; with the statistics 70-120 ms).
create or replace function tracing.search_key_statistics_name(p_index text) returns text
language sql immutable parallel safe as $$
  select regexp_replace(p_index, '_idx$', '_stat')
$$;

-- Declares a key of event_data searchable: creates its expression index
-- (one per key; the table is locked against writes while it builds, so run
-- it when writes are quiet) and its statistics, and records it. Returns the
-- index name.
create or replace function tracing.add_search_key(p_path text) returns text
language plpgsql as $$
declare
  v_path text[] := tracing.search_key_path(p_path, 'p_path');
  v_index text := 'domain_events_data_' || left(md5(array_to_string(v_path, '.')), 12) || '_idx';
begin
  execute format('create index if not exists %I on tracing.domain_events ((event_data #>> %L::text[]), created_at desc) where trace_id is not null',
                 v_index, v_path);
  -- domain_events is partitioned by month: each partition's copy of the
  -- index takes the index's name (108-live-partitions.sql).
  perform tracing.name_partition_indexes('tracing.domain_events');
  execute format('comment on index tracing.%I is %L', v_index, format('Search key event_data.%s (tracing.add_search_key)', p_path));
  execute format('create statistics if not exists tracing.%I on ((event_data #>> %L::text[])) from tracing.domain_events',
                 tracing.search_key_statistics_name(v_index), v_path);
  -- A sample of the table, so the first searches are planned with them.
  analyze tracing.domain_events;
  insert into tracing.search_keys (path, index_name) values (v_path, v_index) on conflict (path) do nothing;
  return v_index;
end
$$;

create or replace function tracing.drop_search_key(p_path text) returns boolean
language plpgsql as $$
declare
  v_index text;
begin
  delete from tracing.search_keys where path = tracing.search_key_path(p_path, 'p_path') returning index_name into v_index;
  if v_index is null then
    return false;
  end if;
  execute format('drop index if exists tracing.%I', v_index);
  execute format('drop statistics if exists tracing.%I', tracing.search_key_statistics_name(v_index));
  return true;
end
$$;

comment on function tracing.add_search_key(text) is
  E'Declares a key of event_data (dotted path, e.g. customer.id) searchable by api.find_traces over any window: creates its expression index and records it in tracing.search_keys. Returns the index name.';
comment on function tracing.drop_search_key(text) is
  E'Removes a search key declared with tracing.add_search_key and drops its index. Returns whether the key was declared.';

-- One trace condition as SQL over the trace summary alias t.
create or replace function tracing.search_trace_predicate(p_expr jsonb, p_path text, p_from timestamptz, p_to timestamptz, p_depth integer default 0)
returns text
language plpgsql stable parallel safe as $$
declare
  v_relation text;
  v_left text;
  v_right text;
  v_same_trace constant text := 's.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id';
  v_op text;
begin
  if p_depth > 8 then
    perform tracing.search_error(p_path, 'nests deeper than 8 levels');
  end if;
  if jsonb_typeof(p_expr) is distinct from 'object' then
    perform tracing.search_error(p_path, 'must be an object: a spans, events, relation, trace_duration_ms, and or or condition');
  end if;
  if p_expr ? 'and' or p_expr ? 'or' then
    return (select '(' || string_agg(tracing.search_trace_predicate(o.item, o.path, p_from, p_to, p_depth + 1), o.joiner order by o.n) || ')'
              from tracing.search_operands(p_expr, p_path, 'trace conditions') o);
  end if;
  -- A span condition is checked trace by trace, through the spans' (trace,
  -- span, organization) key: "select ... limit 1" keeps the planner from
  -- turning it into a scan of every span that matches anywhere, which costs
  -- the whole table where the window holds a sliver of it.
  if p_expr ? 'spans' then
    return format('coalesce((select true from tracing.spans s where %s and %s limit 1), false)', v_same_trace,
                  tracing.search_span_predicate(p_expr -> 'spans', 's', p_path || '.spans'));
  end if;
  -- An event condition is selective by nature (an aggregate, a type, a
  -- declared key): the traces come from the events' own indexes.
  if p_expr ? 'events' then
    return format('t.trace_id in (select e.trace_id from tracing.domain_events e where e.trace_id is not null and %s)',
                  tracing.search_event_predicate(p_expr -> 'events', p_path || '.events', p_from, p_to));
  end if;
  if p_expr ? 'trace_duration_ms' then
    v_op := p_expr #>> '{trace_duration_ms,op}';
    if not coalesce(v_op = any (array['=', '!=', '<', '<=', '>', '>=']), false) then
      perform tracing.search_error(p_path || '.trace_duration_ms.op', format('must be =, !=, <, <=, > or >=, got %s', coalesce(v_op, 'null')));
    end if;
    if jsonb_typeof(p_expr #> '{trace_duration_ms,value}') is distinct from 'number' then
      perform tracing.search_error(p_path || '.trace_duration_ms.value', 'must be a number of milliseconds');
    end if;
    return format('(t.duration_ms %s %s)', case when v_op = '!=' then '<>' else v_op end, (p_expr #>> '{trace_duration_ms,value}')::double precision);
  end if;
  if p_expr ? 'relation' then
    v_relation := p_expr ->> 'relation';
    if not coalesce(v_relation = any (array['descendant', 'child', 'ancestor', 'parent', 'sibling']), false) then
      perform tracing.search_error(p_path || '.relation', format('must be descendant, child, ancestor, parent or sibling, got %s', coalesce(v_relation, 'null')));
    end if;
    v_left := tracing.search_span_predicate(p_expr -> 'left', 'a', p_path || '.left');
    v_right := tracing.search_span_predicate(p_expr -> 'right', 'b', p_path || '.right');
    -- b: a span of the same trace and organization as a.
    return format('coalesce((select true from tracing.spans a where %s and %s and exists (%s) limit 1), false)',
      replace(v_same_trace, 's.', 'a.'), v_left,
      case v_relation
        when 'child' then format('select from tracing.spans b where b.trace_id = a.trace_id and b.organization_id is not distinct from a.organization_id and b.parent_span_id = a.span_id and %s', v_right)
        when 'parent' then format('select from tracing.spans b where b.trace_id = a.trace_id and b.organization_id is not distinct from a.organization_id and b.span_id = a.parent_span_id and %s', v_right)
        when 'sibling' then format('select from tracing.spans b where b.trace_id = a.trace_id and b.organization_id is not distinct from a.organization_id and b.parent_span_id = a.parent_span_id and b.span_id <> a.span_id and %s', v_right)
        when 'descendant' then format('select from tracing.span_descendants(a.trace_id, a.span_id) w join tracing.spans b on b.trace_id = a.trace_id and b.span_id = w.span_id and b.organization_id is not distinct from w.organization_id where w.organization_id is not distinct from a.organization_id and %s', v_right)
        when 'ancestor' then format('select from tracing.span_ancestors(a.trace_id, a.span_id) w join tracing.spans b on b.trace_id = a.trace_id and b.span_id = w.span_id and b.organization_id is not distinct from w.organization_id where w.organization_id is not distinct from a.organization_id and %s', v_right)
      end);
  end if;
  perform tracing.search_error(p_path, 'must have spans, events, relation, trace_duration_ms, and or or');
end
$$;

-- The span conditions of a trace condition, for the matched spans of a
-- result: a span matches when it meets any of them.
create or replace function tracing.search_span_conditions(p_expr jsonb) returns jsonb
language sql immutable parallel safe as $$
  select case
    when p_expr ? 'spans' then jsonb_build_array(p_expr -> 'spans')
    when p_expr ? 'relation' then jsonb_build_array(p_expr -> 'left', p_expr -> 'right')
    when p_expr ? 'and' or p_expr ? 'or' then
      coalesce((select jsonb_agg(c) from jsonb_array_elements(coalesce(p_expr -> 'and', p_expr -> 'or')) e(v),
                     jsonb_array_elements(tracing.search_span_conditions(v)) x(c)), '[]')
    else '[]'
  end
$$;

create or replace function tracing.find_traces(
  p_filter jsonb,
  p_first integer default 20,
  p_after_start_time timestamptz default null,
  p_after_trace_id uuid default null
) returns setof api.found_trace
language plpgsql stable parallel safe
-- Many small lookups, trace by trace: starting parallel workers for one of
-- them costs more than the lookup.
set max_parallel_workers_per_gather = 0
as $$
declare
  v_from timestamptz;
  v_to timestamptz;
  v_where text := 'true';
  v_match text;
  v_spans_per_trace integer := 3;
  v_conditions jsonb;
begin
  if jsonb_typeof(p_filter) is distinct from 'object' then
    perform tracing.search_error('p_filter', 'must be an object with from, to and optionally traces');
  end if;
  begin
    v_from := (p_filter ->> 'from')::timestamptz;
    v_to := (p_filter ->> 'to')::timestamptz;
  exception when invalid_datetime_format or datetime_field_overflow then
    perform tracing.search_error('p_filter.from/to', 'must be ISO 8601 timestamps');
  end;
  if v_from is null or v_to is null then
    perform tracing.search_error('p_filter.from and p_filter.to', 'are required: search reads a bounded time window');
  end if;
  if v_from >= v_to then
    perform tracing.search_error('p_filter.from', 'must be before p_filter.to');
  end if;
  if v_to - v_from > interval '7 days' then
    perform tracing.search_error('p_filter.to', 'must be at most 7 days after p_filter.from');
  end if;
  if p_filter ? 'spans_per_trace' then
    if jsonb_typeof(p_filter -> 'spans_per_trace') is distinct from 'number'
       or (p_filter ->> 'spans_per_trace')::numeric not between 1 and 20
       or (p_filter ->> 'spans_per_trace')::numeric <> trunc((p_filter ->> 'spans_per_trace')::numeric) then
      perform tracing.search_error('p_filter.spans_per_trace', 'must be an integer from 1 to 20');
    end if;
    v_spans_per_trace := (p_filter ->> 'spans_per_trace')::integer;
  end if;
  if p_filter ? 'traces' then
    if tracing.search_count_conditions(p_filter -> 'traces') > 32 then
      perform tracing.search_error('p_filter.traces', 'has more than 32 conditions');
    end if;
    v_where := tracing.search_trace_predicate(p_filter -> 'traces', 'p_filter.traces', v_from, v_to);
    v_conditions := tracing.search_span_conditions(p_filter -> 'traces');
    if jsonb_array_length(v_conditions) > 0 then
      select string_agg(tracing.search_span_predicate(c, 's', 'p_filter.traces'), ' or ') into v_match
        from jsonb_array_elements(v_conditions) x(c);
    end if;
  end if;

  return query execute format($q$
    select tracing.trace_id_to_hex(t.trace_id), t.root_service, t.root_name, t.start_time, t.duration_ms,
           t.span_count, t.error_count, %1$s
      from tracing.trace_summaries t
     where t.start_time >= $1 and t.start_time < $2
       and ($3::timestamptz is null or (t.start_time, t.trace_id) < ($3, $4))
       and %2$s
     order by t.start_time desc, t.trace_id desc
     limit $5
  $q$,
    -- The matched spans of each trace found; none to show without span conditions.
    case when v_match is null then $m$'[]'::jsonb$m$ else format($m$
      (select coalesce(jsonb_agg(m.span order by m.start_time), '[]')
         from (select s.start_time, jsonb_build_object(
                        'span_id', tracing.span_id_to_hex(s.span_id), 'parent_span_id', tracing.span_id_to_hex(s.parent_span_id),
                        'name', s.name, 'service', s.service, 'kind', s.kind, 'status', s.status,
                        'start_time', s.start_time, 'duration_ms', s.duration_ms, 'attributes', s.attributes) as span
                 from tracing.spans s
                where s.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id and (%s)
                order by s.start_time, s.span_id
                limit %s) m)$m$, v_match, v_spans_per_trace) end,
    v_where)
  using v_from, v_to, p_after_start_time, p_after_trace_id, p_first;
end
$$;

create or replace function api.find_traces(
  p_filter jsonb,
  p_first integer default 20,
  p_after_start_time timestamptz default null,
  p_after_trace_id text default null
) returns setof api.found_trace
language plpgsql stable parallel safe as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 20, 100);
  v_after_trace_id uuid;
begin
  perform tracing.require_cursor(p_after_start_time, 'p_after_start_time', p_after_trace_id, 'p_after_trace_id');
  if p_after_trace_id is not null then
    v_after_trace_id := tracing.require_trace_id(p_after_trace_id, 'p_after_trace_id');
  end if;
  return query select * from tracing.find_traces(p_filter, v_first, p_after_start_time, v_after_trace_id);
end
$$;

comment on function api.find_traces(jsonb, integer, timestamptz, text) is
  E'Traces of a time window that match a structured filter, newest first, each with the spans that matched. p_filter: {"from", "to" (ISO 8601, required, at most 7 days apart), "traces": condition, "spans_per_trace": 1-20 (default 3)}. A condition is {"spans": span condition} (a span of the trace matches), {"events": {"stream_type", "stream_id"} | {"event_type"} | {"data": {"key", "value"}}} (an event of the trace belongs to that aggregate, has that type, or that event_data value: a key declared with tracing.add_search_key, or any key within a 1-hour window; only events created from an hour before the window to a day after it are read), {"and"|"or": [conditions]}, {"relation": "descendant"|"child"|"ancestor"|"parent"|"sibling", "left": span condition, "right": span condition} (TraceQL >> > << < ~), or {"trace_duration_ms": {"op", "value"}}. A span condition is {"field": "service"|"name"|"kind"|"status"|"duration_ms", "op", "value"}, {"attribute": key, "op", "value"} (ops = != < <= > >= =~ !~ exists not_exists), or {"and"|"or": [...]} / {"not": ...}. At most 32 conditions. Page with p_first (1-100, default 20); for the next page pass the start_time and trace_id of the last trace received. Bad input raises an error naming the place in p_filter.';

grant execute on function
  tracing.search_error(text, text),
  tracing.search_count_conditions(jsonb),
  tracing.search_regex(jsonb, text),
  tracing.search_operands(jsonb, text, text),
  tracing.search_span_predicate(jsonb, text, text, integer),
  tracing.search_trace_predicate(jsonb, text, timestamptz, timestamptz, integer),
  tracing.search_key_path(text, text),
  tracing.search_key_declared(text[]),
  tracing.search_event_window(timestamptz, timestamptz),
  tracing.search_event_predicate(jsonb, text, timestamptz, timestamptz),
  tracing.search_span_conditions(jsonb),
  tracing.find_traces(jsonb, integer, timestamptz, uuid),
  tracing.span_ancestors(uuid, bigint),
  tracing.span_descendants(uuid, bigint),
  api.find_traces(jsonb, integer, timestamptz, text)
to tracegres_anonymous;
