-- The tag names and values a trace search form offers to pick from, as
-- Grafana's Tempo data source asks for them (server/tempo): which attribute
-- keys the spans of a window carry, and which values one tag takes,
-- optionally among the spans a TraceQL spanset selects.
--
-- Bounds: a window of at most 7 days (tracing.require_metrics_window), at
-- most 10,000 spans read, from the newest traces of the window down, and a
-- row limit on the answer; the request's statement timeout bounds the rest.
-- A form needs the common names and values, which the newest traces carry;
-- a name seen only on older spans of a busy window may be left out.
--
-- Invoker rights: each call runs as the role of the request, so row-level
-- security decides which spans count.

-- The spans of the newest traces that started in [p_from, p_to), at most
-- p_max_spans of them: the trace index read newest first, each trace's
-- spans through their key within the trace's time range (so only the
-- partitions of that range are probed), stopped at the limit.
create or replace function tracing.newest_window_spans(p_from timestamptz, p_to timestamptz, p_max_spans integer)
returns setof tracing.spans
language sql stable parallel safe as $$
  select s.*
    from (select t.trace_id, t.organization_id, t.start_time, t.end_time
            from tracing.trace_summaries t
           where t.start_time >= p_from and t.start_time < p_to
           order by t.start_time desc, t.trace_id desc) t
    cross join lateral (
      select * from tracing.spans s
       where s.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id
         and s.start_time between t.start_time and t.end_time
    ) s
   limit p_max_spans
$$;

comment on function tracing.newest_window_spans(timestamptz, timestamptz, integer) is
  E'The spans of the newest traces that started in [p_from, p_to), at most p_max_spans: a bounded sample of a window, newest traces first.';

create or replace function tracing.tag_names(p_from timestamptz, p_to timestamptz, p_limit integer default null)
returns table (tag text)
language plpgsql stable parallel safe as $$
declare
  v_limit integer := tracing.require_page_size(p_limit, 'p_limit', 1000, 5000);
begin
  perform tracing.require_metrics_window(p_from, p_to);
  return query
    select distinct k.key
      from tracing.newest_window_spans(p_from, p_to, 10000) s
     cross join lateral jsonb_object_keys(s.attributes) k(key)
     order by 1
     limit v_limit;
end
$$;

comment on function tracing.tag_names(timestamptz, timestamptz, integer) is
  E'The attribute keys of the spans of the newest traces that started in [p_from, p_to) (at most 7 days; at most 10,000 spans read), in name order, at most p_limit (1-5000, default 1000).';

-- p_tag in TraceQL's spelling: name, status, kind, resource.service.name,
-- or an attribute as span.<key>, resource.<key> or .<key> (resource
-- attributes are stored with the span's own, so all three read the same).
-- p_query, when given, is one spanset whose conditions select the spans
-- whose values count; { } selects all.
create or replace function tracing.tag_values(
  p_from timestamptz,
  p_to timestamptz,
  p_tag text,
  p_query text default null,
  p_limit integer default null
) returns table (type text, value text)
language plpgsql stable parallel safe as $$
declare
  v_limit integer := tracing.require_page_size(p_limit, 'p_limit', 1000, 5000);
  v_value text;
  v_type text;
  v_where text := 'true';
  v_filter jsonb;
begin
  perform tracing.require_metrics_window(p_from, p_to);
  perform tracing.require_present(p_tag, 'p_tag');
  if p_tag in ('name', 'resource.service.name') then
    v_value := case p_tag when 'name' then 's.name' else 's.service' end;
    v_type := quote_literal('string');
  elsif p_tag in ('status', 'kind') then
    v_value := 's.' || p_tag;
    v_type := quote_literal('keyword');
  elsif p_tag ~ '^(span|resource)?\.[^.]' then
    v_value := format('s.attributes ->> %L', regexp_replace(p_tag, '^(span|resource)?\.', ''));
    -- Integers and other numbers apart, as TraceQL's int and float.
    v_type := format($t$case jsonb_typeof(s.attributes -> %1$L)
                        when 'string' then 'string' when 'boolean' then 'bool'
                        when 'number' then case when (s.attributes ->> %1$L)::numeric = trunc((s.attributes ->> %1$L)::numeric) then 'int' else 'float' end
                      end$t$, regexp_replace(p_tag, '^(span|resource)?\.', ''));
  else
    raise exception 'p_tag must be name, status, kind, resource.service.name or an attribute (span.<key>, resource.<key>, .<key>)'
      using errcode = '22023', detail = format('got %s', left(p_tag, 100));
  end if;
  if nullif(btrim(p_query), '') is not null then
    v_filter := tracing.traceql_to_filter(p_query);
    if not v_filter ? 'spans' then
      raise exception 'p_query must be one spanset of span conditions, such as { resource.service.name = "checkout" }' using errcode = '22023';
    end if;
    v_where := tracing.search_span_predicate(v_filter -> 'spans', 's', 'p_query');
  end if;
  return query execute format($q$
    select distinct on (v.value) v.type, v.value
      from (select %1$s as type, %2$s as value
              from tracing.newest_window_spans($1, $2, 10000) s
             where %3$s) v
     where v.type is not null and v.value is not null
     order by v.value
     limit $3
  $q$, v_type, v_value, v_where)
  using p_from, p_to, v_limit;
end
$$;

comment on function tracing.tag_values(timestamptz, timestamptz, text, text, integer) is
  E'The values one tag takes on the spans of the newest traces that started in [p_from, p_to) (at most 7 days; at most 10,000 spans read), with their TraceQL type (string, int, float, bool, keyword), in value order, at most p_limit (1-5000, default 1000). p_tag: name, status, kind, resource.service.name, span.<key>, resource.<key> or .<key>; p_query: one TraceQL spanset selecting the spans that count (none or { } for all).';

grant execute on function
  tracing.newest_window_spans(timestamptz, timestamptz, integer),
  tracing.tag_names(timestamptz, timestamptz, integer),
  tracing.tag_values(timestamptz, timestamptz, text, text, integer)
to tracegres_anonymous;
