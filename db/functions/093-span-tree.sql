-- A trace's tree laid out: depth, depth-first position (children in start
-- order) and sibling order, from the nodes' parent numbers
-- (tracing.trace_nodes numbers nodes in start order).
--
-- One pass over arrays in plpgsql, linear in the nodes whatever the shape:
-- child lists as first child and next sibling (nodes visited in number
-- order, so siblings come in start order), then a walk without a stack:
-- down to the first child, else along to the next sibling, else back up.
-- It replaced a recursive CTE that walked level by level over child slices
-- and sorted the rows by their path of node numbers: grouping the children
-- took three sorts and a join, and a path grows by 4 bytes a level, so a
-- chain cost the square of its depth. CPU time per call in one run, both
-- interleaved, on a loaded 2-core machine (Postgres 15 / 18):
--   1,000-span tree     1.0 / 1.2 ms   (was 1.8 / 1.9)
--   1,000-deep chain    1.2 / 1.3 ms   (was 5.7 / 5.4)
--   10,000 spans        9.5 / 11 ms    (was 19 / 19)
--
-- p_depth_limit bounds the depth: a node that would sit at that depth
-- starts a tree of its own (depth 0, placed among the roots by start) and
-- is flagged cut_at_depth_limit; its parent shows no children. Nodes on a
-- parent loop are never reached from a root, so the walk cannot loop; the
-- caller cuts the loop (tracing.parent_loop_cuts) and walks again.
create or replace function tracing.span_tree(p_parent integer[], p_depth_limit integer)
returns table (num integer, depth integer, "position" integer, sibling_index integer, child_count integer, cut_at_depth_limit boolean)
language plpgsql immutable parallel safe as $$
declare
  n constant integer := coalesce(cardinality(p_parent), 0);
  -- Per node, indexed by its number:
  first_child integer[] := array_fill(0, array[n]);
  last_child integer[] := array_fill(0, array[n]);
  next_sibling integer[] := array_fill(0, array[n]);
  v_sibling_index integer[] := array_fill(0, array[n]);
  v_child_count integer[] := array_fill(0, array[n]);
  v_depth integer[] := array_fill(0, array[n]);
  v_cut boolean[] := array_fill(false, array[n]);
  unit_from integer[] := array_fill(0, array[n]);  -- of a head: its walk's first and last slot in walked
  unit_to integer[] := array_fill(0, array[n]);
  -- The heads, each walked as a tree of its own: the roots, then the nodes
  -- cut at the depth limit as the walk meets them.
  heads integer[] := array_fill(0, array[n]);
  head_count integer := 0;
  root_count integer;
  walked integer[] := array_fill(0, array[n]);      -- nodes in walk order
  walked_count integer := 0;
  v_order integer[];
  h integer; head integer; node integer; child integer; parent integer; d integer; slot integer;
begin
  -- Child lists in number (start) order.
  for i in 1..n loop
    parent := p_parent[i];
    if parent = 0 then
      head_count := head_count + 1;
      heads[head_count] := i;
      v_sibling_index[i] := head_count - 1;
    else
      if last_child[parent] = 0 then first_child[parent] := i; else next_sibling[last_child[parent]] := i; end if;
      last_child[parent] := i;
      v_sibling_index[i] := v_child_count[parent];
      v_child_count[parent] := v_child_count[parent] + 1;
    end if;
  end loop;
  root_count := head_count;
  -- Depth-first from each head, without a stack: down to the first child,
  -- else along to the next sibling, else back up. Children that would sit
  -- at the depth limit are not entered but become heads.
  h := 0;
  while h < head_count loop
    h := h + 1;
    head := heads[h];
    unit_from[head] := walked_count + 1;
    node := head;
    d := 0;
    <<visit>>
    loop
      walked_count := walked_count + 1;
      walked[walked_count] := node;
      v_depth[node] := d;
      if first_child[node] = 0 then
        null;
      elsif d + 1 < p_depth_limit then
        node := first_child[node];
        d := d + 1;
        continue visit;
      else
        v_child_count[node] := 0;
        child := first_child[node];
        while child <> 0 loop
          head_count := head_count + 1;
          heads[head_count] := child;
          v_cut[child] := true;
          child := next_sibling[child];
        end loop;
      end if;
      loop
        exit visit when node = head;
        if next_sibling[node] <> 0 then
          node := next_sibling[node];
          exit;
        end if;
        node := p_parent[node];
        d := d - 1;
      end loop;
    end loop;
    unit_to[head] := walked_count;
  end loop;
  if head_count = root_count then
    v_order := walked[1:walked_count];
  else
    -- Heads cut at the depth limit sit among the roots by number: the walk
    -- of each head, heads in number order.
    v_order := array_fill(0, array[walked_count]);
    slot := 0;
    h := 0;
    for head in select x.node from unnest(heads[1:head_count]) x(node) order by x.node loop
      v_sibling_index[head] := h;
      h := h + 1;
      for i in unit_from[head]..unit_to[head] loop
        slot := slot + 1;
        v_order[slot] := walked[i];
      end loop;
    end loop;
  end if;
  return query
  select o.node, v_depth[o.node], (o.position - 1)::integer, v_sibling_index[o.node], v_child_count[o.node], v_cut[o.node]
    from unnest(v_order) with ordinality o(node, position);
end
$$;

comment on function tracing.span_tree(integer[], integer) is
  E'The depth-first layout of a tree given as parent numbers (p_parent[i] is node i''s parent, 0 for a root; nodes numbered in start order): depth, position, sibling index and child count per node, rows in depth-first order. A node at depth p_depth_limit becomes a root of its own (cut_at_depth_limit). Nodes on a parent loop are left out.';

grant execute on function tracing.span_tree(integer[], integer) to tracegres_anonymous;
