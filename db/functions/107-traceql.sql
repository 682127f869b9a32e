-- A subset of TraceQL (Grafana Tempo's trace query language), read into the
-- structured filter of 105-trace-search.sql. In SQL, beside the engine, so
-- GraphQL, and later the Tempo and Jaeger APIs, all read it the same way.
--
-- Supported:
--   spansets      { }  { cond }  { cond && cond }  { cond || cond }  ( ... )
--   conditions    name, status, kind, duration, resource.service.name,
--                 span.<attr>, resource.<attr>, .<attr>   with = != < <= > >= =~ !~
--                 traceDuration (only joined with && in a spanset)
--   values        "strings" (\" and \\ escaped), numbers, durations
--                 (ns us µs ms s m h), true, false, and the bare words of
--                 status (ok error unset) and kind (server client ...)
--   between spansets   && ||  and the structural  >> > << < ~
--
-- Anything else (select(), pipelines, aggregates, !>> and friends, ...) is
-- refused with SQLSTATE 22023 naming the construct and its position: an
-- unsupported query never runs as if it were a different one.

-- The first form of the parser, one expression function per level.
drop function if exists tracing.traceql_span_expression(jsonb[], integer, integer);
drop function if exists tracing.traceql_trace_expression(jsonb[], integer, integer);

-- The tokens of a query: {kind, text, at} with kind one of punct, op,
-- string, number, duration, word.
create or replace function tracing.traceql_tokens(p_query text) returns jsonb[]
language plpgsql immutable parallel safe as $$
declare
  v_tokens jsonb[] := '{}';
  v_i integer := 1;
  v_n integer := length(p_query);
  v_c text;
  v_start integer;
  v_text text;
  v_two text;
begin
  if v_n > 4096 then
    raise exception 'p_query must be at most 4096 characters' using errcode = '22023';
  end if;
  while v_i <= v_n loop
    v_c := substr(p_query, v_i, 1);
    v_two := substr(p_query, v_i, 2);
    if v_c in (' ', E'\t', E'\n', E'\r') then
      v_i := v_i + 1;
    elsif v_two in ('&&', '||', '>>', '<<', '!=', '<=', '>=', '=~', '!~') then
      v_tokens := v_tokens || jsonb_build_object('kind', 'op', 'text', v_two, 'at', v_i);
      v_i := v_i + 2;
    elsif v_c in ('{', '}', '(', ')') then
      v_tokens := v_tokens || jsonb_build_object('kind', 'punct', 'text', v_c, 'at', v_i);
      v_i := v_i + 1;
    elsif v_c in ('=', '<', '>', '~', '|', '!', ',') then
      v_tokens := v_tokens || jsonb_build_object('kind', 'op', 'text', v_c, 'at', v_i);
      v_i := v_i + 1;
    elsif v_c = '"' then
      v_start := v_i;
      v_text := '';
      v_i := v_i + 1;
      loop
        if v_i > v_n then
          raise exception 'p_query has an unterminated string at position %', v_start using errcode = '22023';
        end if;
        v_c := substr(p_query, v_i, 1);
        exit when v_c = '"';
        if v_c = '\' then
          v_i := v_i + 1;
          v_c := substr(p_query, v_i, 1);
          if v_c not in ('"', '\') then
            raise exception 'p_query has an unsupported escape \% at position %', v_c, v_i - 1 using errcode = '22023';
          end if;
        end if;
        v_text := v_text || v_c;
        v_i := v_i + 1;
      end loop;
      v_tokens := v_tokens || jsonb_build_object('kind', 'string', 'text', v_text, 'at', v_start);
      v_i := v_i + 1;
    elsif v_c ~ '[0-9]' or (v_c = '-' and substr(p_query, v_i + 1, 1) ~ '[0-9]') then
      v_start := v_i;
      v_i := v_i + 1;
      while v_i <= v_n and substr(p_query, v_i, 1) ~ '[0-9.]' loop
        v_i := v_i + 1;
      end loop;
      v_text := substr(p_query, v_start, v_i - v_start);
      if substr(p_query, v_i) ~ '^(ns|us|µs|ms|s|m|h)([^a-zA-Z0-9_.]|$)' then
        v_two := substring(substr(p_query, v_i) from '^(ns|us|µs|ms|s|m|h)');
        v_tokens := v_tokens || jsonb_build_object('kind', 'duration', 'text', v_text || v_two, 'at', v_start,
          'ms', v_text::numeric * case v_two when 'ns' then 0.000001 when 'us' then 0.001 when 'µs' then 0.001
                                            when 'ms' then 1 when 's' then 1000 when 'm' then 60000 else 3600000 end);
        v_i := v_i + length(v_two);
      else
        if v_text !~ '^-?[0-9]+(\.[0-9]+)?$' then
          raise exception 'p_query has a malformed number % at position %', v_text, v_start using errcode = '22023';
        end if;
        v_tokens := v_tokens || jsonb_build_object('kind', 'number', 'text', v_text, 'at', v_start);
      end if;
    elsif v_c ~ '[a-zA-Z_.]' then
      v_start := v_i;
      while v_i <= v_n and substr(p_query, v_i, 1) ~ '[a-zA-Z0-9_.:/-]' loop
        v_i := v_i + 1;
      end loop;
      v_tokens := v_tokens || jsonb_build_object('kind', 'word', 'text', substr(p_query, v_start, v_i - v_start), 'at', v_start);
    else
      raise exception 'p_query has an unsupported character % at position %', v_c, v_i using errcode = '22023';
    end if;
  end loop;
  return v_tokens;
end
$$;

create or replace function tracing.traceql_unsupported(p_token jsonb, p_expected text) returns void
language plpgsql immutable parallel safe as $$
begin
  if p_token is null then
    raise exception 'p_query ends early: expected %', p_expected using errcode = '22023';
  end if;
  raise exception 'p_query has an unsupported construct "%" at position % (expected %)', p_token ->> 'text', p_token ->> 'at', p_expected
    using errcode = '22023', hint = 'The supported subset of TraceQL is described in docs/event-observability.md.';
end
$$;

-- One comparison inside a spanset, as a span condition (or, for
-- traceDuration, a trace condition marked {"trace": ...}).
create or replace function tracing.traceql_comparison(p_tokens jsonb[], inout pos integer, out condition jsonb)
language plpgsql immutable parallel safe as $$
declare
  v_field jsonb := p_tokens[pos];
  v_op jsonb := p_tokens[pos + 1];
  v_value jsonb := p_tokens[pos + 2];
  v_name text := v_field ->> 'text';
  v_literal jsonb;
begin
  if v_field is null or v_field ->> 'kind' <> 'word' then
    perform tracing.traceql_unsupported(v_field, 'a field such as name, status, duration, span.<attribute>');
  end if;
  if v_op is null or v_op ->> 'kind' <> 'op' or v_op ->> 'text' not in ('=', '!=', '<', '<=', '>', '>=', '=~', '!~') then
    perform tracing.traceql_unsupported(v_op, 'a comparison: = != < <= > >= =~ !~');
  end if;
  if v_value is null then
    perform tracing.traceql_unsupported(null, 'a value');
  end if;
  v_literal := case v_value ->> 'kind'
    when 'string' then to_jsonb(v_value ->> 'text')
    when 'number' then to_jsonb((v_value ->> 'text')::numeric)
    when 'duration' then to_jsonb((v_value ->> 'ms')::numeric)
    when 'word' then case when v_value ->> 'text' in ('true', 'false') then to_jsonb((v_value ->> 'text')::boolean)
                          else to_jsonb(v_value ->> 'text') end
  end;
  if v_literal is null then
    perform tracing.traceql_unsupported(v_value, 'a value: a string, number, duration, true, false or a status or kind');
  end if;
  if v_value ->> 'kind' = 'word' and v_name not in ('status', 'kind') and v_value ->> 'text' not in ('true', 'false') then
    perform tracing.traceql_unsupported(v_value, 'a quoted string');
  end if;
  condition := case
    when v_name = 'name' then jsonb_build_object('field', 'name')
    when v_name = 'status' then jsonb_build_object('field', 'status')
    when v_name = 'kind' then jsonb_build_object('field', 'kind')
    when v_name = 'duration' then jsonb_build_object('field', 'duration_ms')
    when v_name = 'resource.service.name' then jsonb_build_object('field', 'service')
    when v_name = 'traceDuration' then jsonb_build_object('trace', true)
    when v_name ~ '^(span|resource)\.[^.].*' then jsonb_build_object('attribute', regexp_replace(v_name, '^(span|resource)\.', ''))
    when v_name ~ '^\.[^.]' then jsonb_build_object('attribute', substr(v_name, 2))
  end;
  if condition is null then
    perform tracing.traceql_unsupported(v_field, 'a field such as name, status, kind, duration, resource.service.name, span.<attribute>, resource.<attribute>, .<attribute>, traceDuration');
  end if;
  if condition ? 'trace' then
    condition := jsonb_build_object('trace', jsonb_build_object('trace_duration_ms', jsonb_build_object('op', v_op ->> 'text', 'value', v_literal)));
  else
    condition := condition || jsonb_build_object('op', v_op ->> 'text', 'value', v_literal);
  end if;
  pos := pos + 3;
end
$$;

-- Operands joined by && (tighter) and ||, in parentheses: the one grammar
-- of both levels. p_level 'span' reads comparisons inside a spanset,
-- 'trace' reads spansets and their structural relations.
create or replace function tracing.traceql_expression(p_tokens jsonb[], inout pos integer, out condition jsonb, p_level text, p_depth integer default 0)
language plpgsql immutable parallel safe as $$
declare
  v_or jsonb[] := '{}';
  v_and jsonb[];
  v_item jsonb;
begin
  if p_depth > 8 then
    raise exception 'p_query nests deeper than 8 levels' using errcode = '22023';
  end if;
  loop
    v_and := '{}';
    loop
      if p_tokens[pos] ->> 'kind' = 'punct' and p_tokens[pos] ->> 'text' = '(' then
        select e.pos, e.condition into pos, v_item from tracing.traceql_expression(p_tokens, pos + 1, p_level, p_depth + 1) e;
        if p_tokens[pos] ->> 'text' is distinct from ')' then
          perform tracing.traceql_unsupported(p_tokens[pos], ')');
        end if;
        pos := pos + 1;
      elsif p_level = 'span' then
        select c.pos, c.condition into pos, v_item from tracing.traceql_comparison(p_tokens, pos) c;
      else
        select t.pos, t.condition into pos, v_item from tracing.traceql_trace_term(p_tokens, pos) t;
      end if;
      v_and := v_and || v_item;
      exit when p_tokens[pos] ->> 'text' is distinct from '&&';
      pos := pos + 1;
    end loop;
    v_or := v_or || case when cardinality(v_and) = 1 then v_and[1] else jsonb_build_object('and', to_jsonb(v_and)) end;
    exit when p_tokens[pos] ->> 'text' is distinct from '||';
    pos := pos + 1;
  end loop;
  condition := case when cardinality(v_or) = 1 then v_or[1] else jsonb_build_object('or', to_jsonb(v_or)) end;
end
$$;

-- A spanset { ... } as a trace condition: a span of the trace matches, and
-- a traceDuration comparison (joined with &&) holds for the trace.
create or replace function tracing.traceql_spanset(p_tokens jsonb[], inout pos integer, out span_condition jsonb, out trace_condition jsonb)
language plpgsql immutable parallel safe as $$
declare
  v_expr jsonb;
  v_parts jsonb;
  v_span jsonb := '[]';
  v_trace jsonb := '[]';
begin
  if p_tokens[pos] ->> 'text' is distinct from '{' then
    perform tracing.traceql_unsupported(p_tokens[pos], 'a spanset { ... }');
  end if;
  pos := pos + 1;
  if p_tokens[pos] ->> 'text' = '}' then
    -- { }: any span.
    span_condition := jsonb_build_object('field', 'duration_ms', 'op', '>=', 'value', 0);
    pos := pos + 1;
    return;
  end if;
  select e.pos, e.condition into pos, v_expr from tracing.traceql_expression(p_tokens, pos, 'span') e;
  if p_tokens[pos] ->> 'text' is distinct from '}' then
    perform tracing.traceql_unsupported(p_tokens[pos], '} or a condition joined with && or ||');
  end if;
  pos := pos + 1;
  -- traceDuration may stand only among the &&-joined conditions of the spanset.
  v_parts := case when v_expr ? 'and' then v_expr -> 'and' else jsonb_build_array(v_expr) end;
  select coalesce(jsonb_agg(p) filter (where not p ? 'trace'), '[]'), coalesce(jsonb_agg(p -> 'trace') filter (where p ? 'trace'), '[]')
    into v_span, v_trace from jsonb_array_elements(v_parts) x(p);
  if v_expr::text ~ '"trace":' and jsonb_array_length(v_trace) = 0 then
    raise exception 'p_query may join traceDuration only with && in a spanset' using errcode = '22023';
  end if;
  span_condition := case jsonb_array_length(v_span) when 0 then null when 1 then v_span -> 0 else jsonb_build_object('and', v_span) end;
  trace_condition := case jsonb_array_length(v_trace) when 0 then null when 1 then v_trace -> 0 else jsonb_build_object('and', v_trace) end;
end
$$;

-- A spanset, or two joined by a structural operator (>> > << < ~), as a
-- trace condition.
create or replace function tracing.traceql_trace_term(p_tokens jsonb[], inout pos integer, out condition jsonb)
language plpgsql immutable parallel safe as $$
declare
  v_left jsonb;
  v_left_trace jsonb;
  v_right jsonb;
  v_right_trace jsonb;
  v_op text;
begin
  select s.pos, s.span_condition, s.trace_condition into pos, v_left, v_left_trace from tracing.traceql_spanset(p_tokens, pos) s;
  v_op := p_tokens[pos] ->> 'text';
  if p_tokens[pos] ->> 'kind' = 'op' and v_op in ('>>', '>', '<<', '<', '~') then
    select s.pos, s.span_condition, s.trace_condition into pos, v_right, v_right_trace from tracing.traceql_spanset(p_tokens, pos + 1) s;
    if v_left is null or v_right is null then
      raise exception 'p_query needs span conditions on both sides of a structural operator, not only traceDuration' using errcode = '22023';
    end if;
    condition := jsonb_build_object('relation', case v_op when '>>' then 'descendant' when '>' then 'child' when '<<' then 'ancestor'
                                                         when '<' then 'parent' else 'sibling' end,
                                    'left', v_left, 'right', v_right);
    if v_left_trace is not null or v_right_trace is not null then
      condition := jsonb_build_object('and', (select jsonb_agg(x) from jsonb_array_elements(jsonb_build_array(condition, v_left_trace, v_right_trace)) x
                                               where x <> 'null'::jsonb));
    end if;
  else
    condition := case when v_left is null then v_left_trace
                      when v_left_trace is null then jsonb_build_object('spans', v_left)
                      else jsonb_build_object('and', jsonb_build_array(jsonb_build_object('spans', v_left), v_left_trace)) end;
  end if;
end
$$;

-- A TraceQL query as the trace condition ("traces") of a search filter.
create or replace function tracing.traceql_to_filter(p_query text) returns jsonb
language plpgsql immutable parallel safe as $$
declare
  v_tokens jsonb[] := tracing.traceql_tokens(p_query);
  v_pos integer;
  v_condition jsonb;
begin
  if cardinality(v_tokens) = 0 then
    raise exception 'p_query is empty: write a spanset such as { status = error }' using errcode = '22023';
  end if;
  select e.pos, e.condition into v_pos, v_condition from tracing.traceql_expression(v_tokens, 1, 'trace') e;
  if v_pos <= cardinality(v_tokens) then
    perform tracing.traceql_unsupported(v_tokens[v_pos], 'the end of the query, && or ||');
  end if;
  return v_condition;
end
$$;

comment on function tracing.traceql_to_filter(text) is
  E'Reads a TraceQL query of the supported subset into the "traces" condition of api.find_traces'' filter; anything else raises 22023 naming the construct.';

create or replace function api.find_traces_by_traceql(
  p_query text,
  p_from timestamptz,
  p_to timestamptz,
  p_first integer default 20,
  p_after_start_time timestamptz default null,
  p_after_trace_id text default null
) returns setof api.found_trace
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_present(p_query, 'p_query');
  perform tracing.require_present(p_from, 'p_from');
  perform tracing.require_present(p_to, 'p_to');
  return query select * from api.find_traces(
    jsonb_build_object('from', p_from, 'to', p_to, 'traces', tracing.traceql_to_filter(p_query)),
    p_first, p_after_start_time, p_after_trace_id);
end
$$;

comment on function api.find_traces_by_traceql(text, timestamptz, timestamptz, integer, timestamptz, text) is
  E'Traces of [p_from, p_to) (at most 7 days) that match a TraceQL query, newest first, with the spans that matched (see findTraces). The subset: spansets { } with conditions on name, status, kind, duration, resource.service.name, span.x, resource.x, .x (= != < <= > >= =~ !~; strings, numbers, durations such as 200ms, status and kind words) joined by && and ||, traceDuration joined with &&, and between spansets && || and the structural >> > << < ~. Anything else is refused with an error naming it, e.g. { resource.service.name = "checkout" } >> { status = error }.';

grant execute on function
  tracing.traceql_tokens(text),
  tracing.traceql_unsupported(jsonb, text),
  tracing.traceql_comparison(jsonb[], integer),
  tracing.traceql_expression(jsonb[], integer, text, integer),
  tracing.traceql_spanset(jsonb[], integer),
  tracing.traceql_trace_term(jsonb[], integer),
  tracing.traceql_to_filter(text),
  api.find_traces_by_traceql(text, timestamptz, timestamptz, integer, timestamptz, text)
to tracegres_anonymous;
