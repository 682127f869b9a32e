-- The critical path, the classic backwards walk: in a critical span, the
-- child that finished last (clipped to the span) is critical; then the
-- child that finished last before that one started; and so on back to the
-- span's start. The same inside each critical child. The roots are the
-- children of the whole trace, which ends with its latest span.
--
-- A recursive CTE that visits only the path: the children are listed once,
-- grouped by parent, latest clipped end first; each step scans on from the
-- last critical child of a span to the next one that ended before it
-- started (a LIMIT 1 probe), and steps into that child. Every child is
-- scanned at most once, so the walk is linear; a walk that re-scans all
-- children per step was measured at 8.8 s for 10,000 spans. CPU time on a
-- loaded 2-core machine: 0.7 ms for a 1,000-span tree, 5.7 ms for a
-- 1,000-deep chain (a step per level), 5 ms for 10,000 spans.

create or replace function tracing.critical_path(p_parent integer[], p_start double precision[], p_end double precision[])
returns boolean[]
language sql immutable parallel safe as $$
  with recursive
  ranked as materialized (
    select u.parent, u.num::integer as num, c.clip_start, c.clip_end,
           row_number() over (order by u.parent, c.clip_end desc, c.clip_start desc, u.num desc)::integer as slot
      from unnest(p_parent) with ordinality u(parent, num),
           lateral (select case when u.parent = 0 then p_start[u.num] else greatest(p_start[u.num], p_start[u.parent]) end as clip_start,
                           case when u.parent = 0 then p_end[u.num] else least(p_end[u.num], p_end[u.parent]) end as clip_end) c
     where c.clip_start <= c.clip_end
  ),
  lists as materialized (
    select r.list, r.clip_start, r.clip_end, g.first_slot, g.last_slot
      from (select array_agg(r.num order by r.slot) as list, array_agg(r.clip_start order by r.slot) as clip_start,
                   array_agg(r.clip_end order by r.slot) as clip_end
              from ranked r) r,
           (select array_agg(coalesce(g.first_slot, 1) order by p.parent) as first_slot,
                   array_agg(coalesce(g.last_slot, 0) order by p.parent) as last_slot
              from generate_series(0, cardinality(p_parent)) p(parent)
              full join (select r.parent, min(r.slot) as first_slot, max(r.slot) as last_slot from ranked r group by r.parent) g
                on g.parent = p.parent) g
  ),
  walk(span, slot, barrier, critical) as (
    select 0, l.first_slot[1] - 1, (select max(e) from unnest(p_end) e), 0
      from lists l
    union all
    select v.span, v.slot, v.barrier, v.critical
      from walk w, lists l,
           lateral (select s from generate_series(w.slot + 1, l.last_slot[w.span + 1]) s
                     where l.clip_end[s] <= w.barrier limit 1) hit,
           lateral (values (w.span, hit.s, l.clip_start[hit.s], 0),
                           (l.list[hit.s], l.first_slot[l.list[hit.s] + 1] - 1, p_end[l.list[hit.s]], l.list[hit.s])) v(span, slot, barrier, critical)
  )
  select array_agg(c.num is not null order by g.num)
    from generate_series(1, cardinality(p_parent)) g(num)
    full join (select distinct w.critical as num from walk w where w.critical <> 0) c on c.num = g.num
$$;

comment on function tracing.critical_path(integer[], double precision[], double precision[]) is
  E'Per node of a tree given as parent numbers (p_parent[i], 0 for a root; nodes numbered in start order) and times (p_start, p_end, in ms), whether it is on the critical path.';

grant execute on function tracing.critical_path(integer[], double precision[], double precision[]) to tracegres_anonymous;
