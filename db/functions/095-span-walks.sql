-- Walks up and down the recorded spans of a trace: the building blocks of
-- structural search ("a span of checkout with a failed descendant in
-- payments", "the parent of a slow query"). Recursive CTEs over
-- tracing.spans; a walk stays within the starting span's organization, and
-- the CYCLE clause stops it where a parent loop would repeat a span.
--
-- Walking up reads one span per step through the (trace, span,
-- organization) key. Walking down joins each level to the trace's spans by
-- parent, which is linear for the bushy trees real traces are and grows with
-- depth times size on a pathological chain; the statement timeout bounds it.

create or replace function tracing.span_ancestors(p_trace_id uuid, p_span_id bigint)
returns table (span_id bigint, organization_id uuid, distance integer)
language sql stable parallel safe as $$
  with recursive up(span_id, organization_id, parent_span_id, distance) as (
    select s.span_id, s.organization_id, s.parent_span_id, 0
      from tracing.spans s where s.trace_id = p_trace_id and s.span_id = p_span_id
    union all
    select s.span_id, s.organization_id, s.parent_span_id, u.distance + 1
      from up u
      join tracing.spans s
        on s.trace_id = p_trace_id and s.span_id = u.parent_span_id and s.organization_id is not distinct from u.organization_id
  ) cycle span_id set is_loop using visited
  select span_id, organization_id, distance from up where distance > 0 and not is_loop
$$;

create or replace function tracing.span_descendants(p_trace_id uuid, p_span_id bigint)
returns table (span_id bigint, organization_id uuid, distance integer)
language sql stable parallel safe as $$
  with recursive
  spans as (select s.span_id, s.parent_span_id, s.organization_id from tracing.spans s where s.trace_id = p_trace_id),
  down(span_id, organization_id, distance) as (
    select s.span_id, s.organization_id, 0 from spans s where s.span_id = p_span_id
    union all
    select s.span_id, s.organization_id, d.distance + 1
      from down d
      join spans s on s.parent_span_id = d.span_id and s.organization_id is not distinct from d.organization_id
  ) cycle span_id set is_loop using visited
  select span_id, organization_id, distance from down where distance > 0 and not is_loop
$$;

comment on function tracing.span_ancestors(uuid, bigint) is
  E'The recorded ancestors of a span (same trace and organization), nearest first by distance (1 = parent); stops at a parent loop.';
comment on function tracing.span_descendants(uuid, bigint) is
  E'The recorded descendants of a span (same trace and organization), with their distance (1 = child); stops at a parent loop.';
