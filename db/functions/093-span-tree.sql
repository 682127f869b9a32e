-- A trace's tree laid out: depth, depth-first position (children in start
-- order) and sibling order, as a recursive CTE over the nodes' parent
-- numbers (tracing.trace_nodes numbers nodes in start order).
--
-- Each step of the walk reads only the children of the nodes it reached:
-- the nodes are listed grouped by parent once (one sort), and a node's
-- children are a slice of that list (its first slot and count, looked up by
-- its number). Joining each level to all nodes instead re-reads every node
-- per level (measured at 250 ms for a 1,000-deep chain). Depth-first order is a sort on
-- the path of node numbers as 4-byte big-endian bytea (memcmp), not on
-- int[] (about 1 µs per comparison).
--
-- A path grows by 4 bytes a level, so a chain's cost grows with the square
-- of its depth (wall time on a loaded machine, 1,000 levels: 25 ms; 5,000:
-- 350 ms; 10,000: 1.1 s; with a limit of 1,000 levels, 10,000: 160 ms).
-- p_depth_limit bounds
-- it: a node that would sit at that depth starts a tree of its own (depth
-- 0, placed among the roots by start) and is flagged cut_at_depth_limit;
-- its parent shows no children. Nodes on a parent loop are never reached
-- from a root, so the walk cannot loop; the caller cuts the loop
-- (tracing.parent_loop_cuts) and walks again.
--
-- CPU time on a loaded 2-core machine: 1.7 ms for a 1,000-span tree,
-- 3.3 ms for a 1,000-deep chain, 17 ms for 10,000 spans.
create or replace function tracing.span_tree(p_parent integer[], p_depth_limit integer)
returns table (num integer, depth integer, "position" integer, sibling_index integer, child_count integer, cut_at_depth_limit boolean)
language sql immutable parallel safe as $$
  with recursive
  children as materialized (
    select k.num, k.parent, row_number() over (order by k.parent, k.num)::integer as slot
      from unnest(p_parent) with ordinality k(parent, num)
  ),
  lists as materialized (
    select (select array_agg(c.num order by c.slot) from children c) as list,
           array_agg(coalesce(g.first_slot, 1) order by p.parent) as first_slot,
           array_agg(coalesce(g.child_count, 0) order by p.parent) as child_count
      from generate_series(0, cardinality(p_parent)) p(parent)
      full join (select c.parent, min(c.slot)::integer as first_slot, count(*)::integer as child_count
                   from children c group by c.parent) g on g.parent = p.parent
  ),
  walk(num, depth, path, sibling_index, child_count, cut) as (
    select k.num::integer, 0, int4send(k.num::integer), (k.ord - 1)::integer, l.child_count[k.num + 1], false
      from lists l, unnest(l.list[l.first_slot[1] : l.first_slot[1] + l.child_count[1] - 1]) with ordinality k(num, ord)
    union all
    select k.num::integer,
           case when w.depth + 1 < p_depth_limit then w.depth + 1 else 0 end,
           case when w.depth + 1 < p_depth_limit then w.path else '\x'::bytea end || int4send(k.num::integer),
           (k.ord - 1)::integer,
           l.child_count[k.num + 1],
           w.depth + 1 >= p_depth_limit
      from walk w, lists l,
           unnest(l.list[l.first_slot[w.num + 1] : l.first_slot[w.num + 1] + l.child_count[w.num + 1] - 1]) with ordinality k(num, ord)
     where l.child_count[w.num + 1] > 0
  )
  select w.num,
         w.depth,
         (row_number() over tree_order - 1)::integer,
         case when w.depth = 0 then (count(*) filter (where w.depth = 0) over tree_order - 1)::integer else w.sibling_index end,
         case when w.depth + 1 < p_depth_limit then w.child_count else 0 end,
         w.cut
    from walk w
  window tree_order as (order by w.path rows unbounded preceding)
  order by w.path
$$;

comment on function tracing.span_tree(integer[], integer) is
  E'The depth-first layout of a tree given as parent numbers (p_parent[i] is node i''s parent, 0 for a root; nodes numbered in start order): depth, position, sibling index and child count per node, rows in depth-first order. A node at depth p_depth_limit becomes a root of its own (cut_at_depth_limit). Nodes on a parent loop are left out.';

grant execute on function tracing.span_tree(integer[], integer) to tracegres_anonymous;
