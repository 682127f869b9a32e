-- api.operation_flame_graph as it was before nested calls of the operation
-- were counted once and self time came from tracing.cover_by_parent: the
-- flame_and_live bench's baseline, so the old and new figures come from one
-- run on one machine, and the bench checks that both give the same rows on
-- its traces (which nest no call of the operation in another). Not part of
-- the schema; the bench creates it in its own database. Like the old
-- function, it keeps plpgsql's plan cache as is, so from its sixth call in
-- a session it runs a generic plan.

create or replace function tracing.operation_flame_graph_baseline(
  p_from timestamptz,
  p_to timestamptz,
  p_service text,
  p_operation text,
  p_max_traces integer default 10000
) returns table (
  path text[], depth integer, calls bigint, traces bigint, total_ms double precision, self_ms double precision, error_count bigint
)
language plpgsql stable parallel safe
-- The sorts of 70,000 call rows (10,000 traces of 7 spans) fit in memory
-- with this; at the default 4MB they spilled to disk.
set work_mem = '32MB'
as $$
declare
  v_max integer := tracing.require_page_size(p_max_traces, 'p_max_traces', 10000, 10000);
begin
  perform tracing.require_metrics_window(p_from, p_to);
  perform tracing.require_present(p_service, 'p_service');
  perform tracing.require_present(p_operation, 'p_operation');
  return query
    with recursive
    roots as materialized (
      select s.trace_id, s.span_id, s.organization_id, s.start_time, s.end_time, s.duration_ms, s.status
        from tracing.trace_summaries t
        join tracing.spans s on s.trace_id = t.trace_id and s.organization_id is not distinct from t.organization_id
       where t.start_time >= p_from and t.start_time < p_to and p_service = any (t.services)
         and s.service = p_service and s.name = p_operation
       order by t.start_time desc
       limit v_max
    ),
    -- Down the call trees, children found through the spans' key (trace
    -- prefix), each row carrying its parent's interval for the self time.
    --
    -- A span has one parent, so a walk down can only come back to a span
    -- it saw by coming back to its root (any repeat implies the root
    -- repeats); refusing the root as a child stops every parent loop, at
    -- no cost, where a CYCLE clause would carry an array of visited spans
    -- on every row.
    tree (trace_id, root_span_id, span_id, parent_span_id, organization_id, path, depth, start_time, end_time, duration_ms,
          status, parent_start, parent_end) as (
      select r.trace_id, r.span_id, r.span_id, null::bigint, r.organization_id, array[p_service || ': ' || p_operation], 0,
             r.start_time, r.end_time, r.duration_ms, r.status, null::timestamptz, null::timestamptz
        from roots r
      union all
      select c.trace_id, t.root_span_id, c.span_id, c.parent_span_id, c.organization_id, t.path || (c.service || ': ' || c.name),
             t.depth + 1, c.start_time, c.end_time, c.duration_ms, c.status, t.start_time, t.end_time
        from tree t
        join tracing.spans c on c.trace_id = t.trace_id and c.parent_span_id = t.span_id
                            and c.organization_id is not distinct from t.organization_id
       where t.depth < 64 and c.span_id <> t.root_span_id
    ),
    calls as (
      select t.path, t.depth, t.trace_id, t.duration_ms, t.status,
             -- What this call covers of its parent that no earlier sibling did.
             greatest(0, extract(epoch from (
               least(t.end_time, t.parent_end)
               - greatest(t.start_time, t.parent_start, coalesce(max(least(t.end_time, t.parent_end)) over siblings, '-infinity'))
             )) * 1000) as covered_ms
        from tree t
      window siblings as (partition by t.trace_id, t.organization_id, t.parent_span_id
                          order by t.start_time, t.span_id rows between unbounded preceding and 1 preceding)
    ),
    paths as (
      select c.path, c.depth, count(*) as calls, count(distinct c.trace_id) as traces, sum(c.duration_ms) as total_ms,
             count(*) filter (where c.status = 'error') as error_count
        from calls c
       group by c.path, c.depth
    ),
    -- A path's self time is its total minus what its children covered.
    covered as (
      select c.path[1:c.depth] as parent_path, sum(c.covered_ms) as covered_ms
        from calls c
       where c.depth > 0
       group by 1
    )
    select p.path, p.depth, p.calls, p.traces, p.total_ms, greatest(0, p.total_ms - coalesce(cv.covered_ms, 0)), p.error_count
      from paths p
      left join covered cv on cv.parent_path = p.path
     order by p.path
     limit 5000;
end
$$;

grant execute on function tracing.operation_flame_graph_baseline(timestamptz, timestamptz, text, text, integer) to tracegres_anonymous;
