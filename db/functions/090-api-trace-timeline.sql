-- The trace timeline: every span of a trace placed in its tree, with timing,
-- self time, the critical path and the events each span emitted. Built from
-- small pieces, one walk each:
--   tracing.trace_nodes       the recorded, inferred and placeholder spans,
--                             numbered in start order with parent numbers
--   tracing.span_tree         depth, depth-first position, sibling order
--                             (one pass over arrays; depth bounded)
--   tracing.parent_loop_cuts  where parent loops are cut (only when the
--                             walk left nodes out)
--   tracing.children_cover    the time children cover, for self time
--   tracing.critical_path     the chain that decided the trace's latency
--
-- The pieces pass parent numbers and times as arrays, indexed by node
-- number: this function gathers the nodes into arrays once, in one
-- statement, and zips them back into rows in depth-first order. Its
-- statements run with a cached generic plan (plan_cache_mode): planning the
-- composed statements afresh took about 9 ms a call, more than they run.
--
-- Depth is bounded: a span that would sit 1,000 levels deep starts a tree
-- of its own (cut_at_depth_limit; see tracing.span_tree). The bound was
-- set when the tree's walk cost the square of a chain's depth; every step
-- is linear now, and the bound stays as part of the answer.
--
-- Size is bounded before any work: the nodes come from the earliest 10,000
-- spans and 10,000 events of the trace (tracing.trace_nodes says why the
-- earliest), so a trace of a million spans (a bug, or spans written into
-- one trace id on purpose) builds a tree of 10,000 and no more; at most
-- 10,000 rows are returned, the first in depth-first order. Either cut sets
-- trace_cut_at_limit on every row. Before, the whole tree was built and
-- only the answer limited. npm run bench (query_api, bench/timeline.ts),
-- one run at a load average of 10-13 on the 2-core machine, p50 against
-- the baseline function (which builds the whole tree), samples alternating:
--   10,000 spans      381 ms / 432 ms (the same work)
--   50,000 spans      671 ms / 2,451 ms
--   100,000 spans     552 ms / 3,942 ms
-- and by hand, a random tree of 1,000,000 spans: 1.3-1.4 s against 39-79 s
-- for the previous version of this function. What still grows with the
-- trace is choosing its earliest spans: every index entry of the trace is
-- read for a top-N sort (0.3-0.5 s of the 1,000,000-span call at that
-- load), since no index orders a trace's spans by start.
--
-- Measured against the previous single plpgsql function (array passes),
-- CPU time per call in one session on a loaded 2-core machine:
--   1,000-span tree    7.6 ms (was 8.5)
--   10,000 spans      76 ms   (was 96)
--   1,000-deep chain  15 ms   (was 10: the walks take a step per level)
-- Of the 7.6 ms: gathering the nodes into arrays 2.6, the tree 1.7, self
-- time 0.3, critical path 0.7, the rows out about 2. npm run bench
-- (query_api) times both side by side (bench/timeline.ts).
--
-- With the tree and the critical path as plpgsql passes over the arrays
-- (they were recursive CTEs), CPU time per call against the version just
-- before, in one session each, calls interleaved, at a load average of
-- 6-8 on the 2-core machine (Postgres 18 / 15):
--   1,000 spans, fanout 8     8.2 / 7.5 ms   (was 9.2 / 9.7)
--   1,000 spans, fanout 2     8.4 / 7.8 ms   (was 9.6 / 10.4)
--   10,000 spans             68 / 63 ms      (was 75 / 78)
--   1,000-deep chain          9.9 / 9.2 ms   (was 19 / 18)
-- Of the 1,000-span call on Postgres 18 (fastest of 60): gathering the
-- nodes into arrays 4.1 ms, the tree 1.1, self time 0.65, critical path
-- 0.3, the rows out 1.0. Most of the first is tracing.trace_nodes'
-- relational steps over 1,000 rows (the placeholders' anti join, the
-- numbering window, the parents' join, the sort by number), each a few
-- tenths of a millisecond; cutting any one of them saved at most 0.8 ms.

-- The timeline's bound: spans and events read, rows returned. A function,
-- immutable, so a statement that calls it is planned with the number (see
-- tracing.trace_nodes on why that matters).
create or replace function tracing.timeline_limit() returns integer
language sql immutable parallel safe as $$ select 10000 $$;

comment on function tracing.timeline_limit() is
  E'The most spans and domain events the trace timeline reads of a trace, and the most rows it returns: 10,000.';

grant execute on function tracing.timeline_limit() to tracegres_anonymous;

create or replace function tracing.trace_timeline(p_trace_id uuid) returns setof api.timeline_span
language plpgsql stable parallel safe
set jit = off
set plan_cache_mode = force_generic_plan
as $$
declare
  depth_limit constant integer := 1000;
  row_limit constant integer := tracing.timeline_limit();
  v_trace_cut boolean;
  v_trace_hex text := tracing.trace_id_to_hex(p_trace_id);
  n integer;
  cut integer;
  -- Per node, indexed by its number (1..n, in start order):
  v_span_hex text[];
  v_parent integer[];           -- parent's number in the tree; 0 for a root
  v_recorded_parent integer[];  -- before loops and the depth limit were cut
  v_start timestamptz[]; v_end timestamptz[];
  v_st double precision[]; v_en double precision[];  -- ms after the trace start
  v_name text[]; v_service text[]; v_kind text[]; v_status text[]; v_status_message text[];
  v_attributes jsonb[]; v_is_inferred boolean[]; v_is_placeholder boolean[]; v_event_count integer[]; v_events jsonb[];
  v_breaks_cycle boolean[]; v_covered double precision[]; v_critical boolean[];
  -- Per row, in depth-first order:
  v_order integer[];            -- node number
  v_depth integer[]; v_sibling_index integer[]; v_child_count integer[]; v_depth_cut boolean[];
begin
  select array_agg(tracing.span_id_to_hex(t.span_id)), array_agg(t.parent_num),
         array_agg(t.start_time), array_agg(t.end_time), array_agg(t.start_ms), array_agg(t.end_ms),
         array_agg(t.name), array_agg(t.service), array_agg(t.kind), array_agg(t.status), array_agg(t.status_message),
         array_agg(t.attributes), array_agg(t.is_inferred), array_agg(t.is_placeholder), array_agg(t.event_count), array_agg(t.events),
         bool_or(t.trace_cut)
    into v_span_hex, v_parent, v_start, v_end, v_st, v_en, v_name, v_service, v_kind, v_status,
         v_status_message, v_attributes, v_is_inferred, v_is_placeholder, v_event_count, v_events, v_trace_cut
    from (select * from tracing.trace_nodes(p_trace_id, tracing.timeline_limit(), tracing.timeline_limit()) x order by x.num) t;
  n := coalesce(cardinality(v_span_hex), 0);
  if n = 0 then
    return;
  end if;
  v_recorded_parent := v_parent;
  v_breaks_cycle := array_fill(false, array[n]);
  -- Loops are never reached from a root: when the walk leaves nodes out,
  -- cut the loops and walk again.
  loop
    select array_agg(t.num), array_agg(t.depth), array_agg(t.sibling_index), array_agg(t.child_count), array_agg(t.cut_at_depth_limit)
      into v_order, v_depth, v_sibling_index, v_child_count, v_depth_cut
      from tracing.span_tree(v_parent, depth_limit) t;
    exit when cardinality(v_order) = n;
    foreach cut in array tracing.parent_loop_cuts(v_parent) loop
      v_parent[cut] := 0;
      v_breaks_cycle[cut] := true;
    end loop;
  end loop;
  -- A span cut at the depth limit is a root from here on, like a loop's cut.
  for cut in select d.num from unnest(v_depth_cut, v_order) d(is_cut, num) where d.is_cut loop
    v_parent[cut] := 0;
  end loop;
  v_covered := tracing.children_cover(v_parent, v_st, v_en);
  v_critical := tracing.critical_path(v_parent, v_st, v_en);
  v_trace_cut := v_trace_cut or n > row_limit;
  return query
  select v_trace_hex,
         v_span_hex[o.num],
         v_span_hex[nullif(v_parent[o.num], 0)],
         v_span_hex[nullif(v_recorded_parent[o.num], 0)],
         v_name[o.num], v_service[o.num], v_kind[o.num], v_status[o.num], v_status_message[o.num], v_attributes[o.num],
         v_start[o.num], v_end[o.num],
         o.depth, (o.position - 1)::integer, o.sibling_index, o.child_count,
         v_st[o.num], v_en[o.num] - v_st[o.num], v_en[o.num] - v_st[o.num] - v_covered[o.num],
         v_critical[o.num], v_is_inferred[o.num], v_is_placeholder[o.num], v_breaks_cycle[o.num], v_event_count[o.num], v_events[o.num], o.cut_at_depth_limit,
         v_trace_cut
    from unnest(v_order, v_depth, v_sibling_index, v_child_count, v_depth_cut)
         with ordinality as o(num, depth, sibling_index, child_count, cut_at_depth_limit, position)
   where o.position <= row_limit;
end
$$;

comment on function tracing.trace_timeline(uuid) is
  E'The spans of one trace as a tree (see api.get_trace_timeline), for a trace id already validated and converted: built from the earliest 10,000 spans and 10,000 events, at most 10,000 rows in depth-first order, trace_cut_at_limit on every row when the trace was cut.';

create or replace function api.get_trace_timeline(p_trace_id text) returns setof api.timeline_span
language plpgsql stable parallel safe as $$
declare
  v_trace_id uuid := tracing.require_trace_id(p_trace_id, 'p_trace_id');
begin
  -- Work and answer are bounded by tracing.trace_timeline (a GraphQL
  -- request may ask for the timeline only a few times within its cost
  -- budget).
  return query select * from tracing.trace_timeline(v_trace_id) t order by t.position;
end
$$;

comment on function api.get_trace_timeline(text) is
  E'The whole trace as a tree, one row per span in depth-first order (children by start time): depth, parent, position among siblings, offset from the trace start, duration, self time (duration minus the time its children cover), status, critical-path membership and the domain events the span emitted. Spans known only from their events are inferred (is_inferred); missing parents get placeholder rows (is_placeholder) so their children stay visible; parent cycles are broken (breaks_cycle); a span 1,000 levels deep starts a tree of its own (cut_at_depth_limit), so a pathological depth costs no more than a wide tree. A trace that does not exist, or that the caller may not see, returns no rows. Bounded work and size: the tree is built from the earliest 10,000 spans (by start time) and the earliest 10,000 domain events of the trace, and at most 10,000 rows are returned, the first in depth-first order; a trace cut either way has trace_cut_at_limit on every row. p_trace_id: 32 lowercase hex characters.';

grant execute on function tracing.trace_timeline(uuid), api.get_trace_timeline(text) to tracegres_anonymous;
