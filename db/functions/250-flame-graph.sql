-- Where one operation spends its time in general, not in one trace: the
-- aggregated flame graph of an operation (a service's span name) over a
-- time range. Every outermost span of that operation in the traces that
-- started in the window is the root of a call tree; the trees are walked
-- down by a recursive CTE and summed per call path (the chain of
-- "service: operation" from the root), so "checkout -> chargePayment ->
-- INSERT payments" is one row with its calls, total time and self time over
-- all of them.
--
-- A call of the operation inside another call of it (a recursive call, or
-- the operation calling itself through others) is not a root of its own: it
-- is a call under its caller's path, e.g. ["edge: checkout", "edge:
-- checkout"]. Walking from it as well would count its subtree twice. The
-- operation's spans are first checked for an ancestor of the same
-- operation (walking up at most 64 parents; the operation's spans at the
-- top of a trace have none, so this costs nothing there). On a parent loop
-- (no span is outermost) the loop's earliest span of the operation is the
-- root.
--
-- Self time is a span's duration minus the time its children cover, with
-- overlapping children counted once and clipped to the span, by the rule
-- the timeline uses (tracing.cover_by_parent), applied to every call of the
-- walk in one pass. Each walked span carries a number unique in the walk
-- (row_number within its level of the walk, and its depth), so the cover
-- is matched to its parent without another join to find parents.
--
-- Cost: the traces are found through trace_summaries (start time index,
-- services array) and each span's children through the spans' key; at most
-- p_max_traces (default and most 10,000) operation spans, newest traces
-- first, are taken, so the work is bounded whatever the window holds. The
-- walk stops at depth 64 and at parent loops: a span has one parent, so a
-- walk down can only come back to a span it saw by coming back to its
-- root, and refusing the root as a child stops every loop at no cost.
-- Paths are summed by hash (first per trace, for the trace count, then per
-- path), never sorted: the previous version sorted the 70,000 calls by
-- their arrays of text. Invoker rights: row-level security decides which
-- traces count.
--
-- CPU time of a call on the bench's 10,000 traces of 7 spans (a tenant
-- reader, ten calls in one session; 2-core machine at load 10-11), against
-- the previous version in the same run: on Postgres 18 (the bench's)
-- 0.33-0.36 s against 0.47-0.51 s with a fresh plan and 0.79-0.83 s with the
-- generic plan it kept from its sixth call in a session; on Postgres 15
-- (CI's) 0.35-0.40 s against 0.33-0.38 s and 0.55-0.56 s. Measured before
-- tracing.spans was partitioned by month, at a lower load, a Postgres 15
-- call took 0.16 s: the operation's spans 12 ms, the walk 68 ms, self time
-- 30 ms, the sums 46 ms.

create or replace function api.operation_flame_graph(
  p_from timestamptz,
  p_to timestamptz,
  p_service text,
  p_operation text,
  p_max_traces integer default 10000
) returns table (
  path text[], depth integer, calls bigint, traces bigint, total_ms double precision, self_ms double precision, error_count bigint
)
language plpgsql stable parallel safe
-- The walk's 70,000 calls (10,000 traces of 7 spans) are hashed and sorted
-- in memory with this; at the default 4MB they spilled to disk.
set work_mem = '32MB'
-- Planned for each call's window and operation: from its sixth call in a
-- session plpgsql would otherwise keep a generic plan, which took 1.8 times
-- as long (planning a call takes 2-8 ms).
set plan_cache_mode = force_custom_plan
-- On a large table the estimates can pass jit_above_cost; compiled, a call
-- took five times as long (1.3 s of CPU against 0.24 s).
set jit = off
as $$
declare
  v_max integer := tracing.require_page_size(p_max_traces, 'p_max_traces', 10000, 10000);
begin
  perform tracing.require_metrics_window(p_from, p_to);
  perform tracing.require_present(p_service, 'p_service');
  perform tracing.require_present(p_operation, 'p_operation');
  return query
    with recursive
    operation_spans as materialized (
      select s.trace_id, s.organization_id, s.span_id, s.parent_span_id, s.start_time, s.end_time, s.duration_ms, s.status
        from tracing.trace_summaries t
        join tracing.spans s on s.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id
       where t.start_time >= p_from and t.start_time < p_to and p_service = any (t.services)
         and s.service = p_service and s.name = p_operation
       order by t.start_time desc, t.trace_id, t.organization_id, s.start_time, s.span_id
       limit v_max
    ),
    -- The parents of each operation span, up to 64 of them or back to the
    -- span itself (a parent loop). It starts from the span itself (step 0),
    -- so spans without a parent start nothing: joining them to their
    -- parents at once had Postgres 15 hash every span of the table first.
    ancestors (trace_id, organization_id, call_id, call_start, span_id, parent_span_id, start_time, is_operation, steps) as (
      select o.trace_id, o.organization_id, o.span_id, o.start_time, o.span_id, o.parent_span_id, o.start_time, false, 0
        from operation_spans o
       where o.parent_span_id is not null
      union all
      select a.trace_id, a.organization_id, a.call_id, a.call_start, p.span_id, p.parent_span_id, p.start_time,
             p.service = p_service and p.name = p_operation, a.steps + 1
        from ancestors a
        join tracing.spans p on p.trace_id = a.trace_id and p.span_id = a.parent_span_id
                            and p.organization_id is not distinct from a.organization_id
       where a.steps < 64 and (a.steps = 0 or a.span_id <> a.call_id)
    ),
    -- Calls inside another call of the operation: with an ancestor of the
    -- operation that starts earlier, or any such ancestor when the span is
    -- not on a parent loop.
    nested as (
      select a.trace_id, a.organization_id, a.call_id
        from ancestors a
       group by a.trace_id, a.organization_id, a.call_id
      having bool_or(a.is_operation and a.span_id <> a.call_id and (a.start_time, a.span_id) < (a.call_start, a.call_id))
          or (bool_or(a.is_operation and a.span_id <> a.call_id) and not bool_or(a.steps > 0 and a.span_id = a.call_id))
    ),
    -- Down the call trees, children found through the spans' key (trace
    -- prefix), each row carrying its interval in ms after its root started
    -- and its parent's number and interval.
    tree (trace_id, organization_id, root_span_id, root_start, num, parent_num, span_id, path, depth,
          duration_ms, status, start_ms, end_ms, parent_start_ms, parent_end_ms) as (
      select o.trace_id, o.organization_id, o.span_id, o.start_time, row_number() over () * 65, null::bigint, o.span_id,
             array[p_service || ': ' || p_operation], 0, o.duration_ms, o.status,
             0::double precision, date_part('epoch', o.end_time - o.start_time) * 1000, null::double precision, null::double precision
        from operation_spans o
       where not exists (select from nested n where n.trace_id = o.trace_id and n.call_id = o.span_id
                                                and n.organization_id is not distinct from o.organization_id)
      union all
      -- Numbered within the level, times 65 plus the depth: unique in the
      -- walk, and spread over the hash of a bigint (depth in the high bits
      -- collided there).
      select c.trace_id, c.organization_id, t.root_span_id, t.root_start, row_number() over () * 65 + t.depth + 1, t.num,
             c.span_id, t.path || (c.service || ': ' || c.name), t.depth + 1, c.duration_ms, c.status,
             date_part('epoch', c.start_time - t.root_start) * 1000, date_part('epoch', c.end_time - t.root_start) * 1000,
             t.start_ms, t.end_ms
        from tree t
        join tracing.spans c on c.trace_id = t.trace_id and c.parent_span_id = t.span_id
                            and c.organization_id is not distinct from t.organization_id
       where t.depth < 64 and c.span_id <> t.root_span_id
    ),
    -- What each call's children cover of it.
    cover as materialized (
      select cv.parent, cv.covered
        from (select array_agg(t.parent_num) as parent, array_agg(t.start_ms) as child_start, array_agg(t.end_ms) as child_end,
                     array_agg(t.parent_start_ms) as parent_start, array_agg(t.parent_end_ms) as parent_end
                from tree t
               where t.depth > 0) a,
             tracing.cover_by_parent(a.parent, a.child_start, a.child_end, a.parent_start, a.parent_end) cv
    ),
    per_trace as materialized (
      select t.path, t.depth, t.trace_id, count(*) as calls, sum(t.duration_ms) as total_ms,
             sum(t.duration_ms - coalesce(cv.covered, 0)) as self_ms, count(*) filter (where t.status = 'error') as error_count
        from tree t
        left join cover cv on cv.parent = t.num
       group by t.path, t.depth, t.trace_id
    ),
    paths as materialized (
      select p.path, p.depth, sum(p.calls)::bigint as calls, count(*) as traces, sum(p.total_ms) as total_ms,
             greatest(0, sum(p.self_ms)) as self_ms, sum(p.error_count)::bigint as error_count
        from per_trace p
       group by p.path, p.depth
    )
    select p.path, p.depth, p.calls, p.traces, p.total_ms, p.self_ms, p.error_count
      from paths p
     order by p.path
     limit 5000;
end
$$;

comment on function api.operation_flame_graph(timestamptz, timestamptz, text, text, integer) is
  E'The aggregated flame graph of one operation (p_service, p_operation) over the traces that started in [p_from, p_to) (at most 7 days): one row per call path below it (path: the "service: operation" chain from the operation down), with its calls, the traces it occurred in, total and self time in ms summed over all calls, and failed calls. A call of the operation inside another call of it counts under its caller''s path, not as a path of its own. At most p_max_traces (1-10000, default 10000) operation spans, newest traces first; at most 5,000 paths, depth 64.';

grant execute on function api.operation_flame_graph(timestamptz, timestamptz, text, text, integer) to tracegres_anonymous;
