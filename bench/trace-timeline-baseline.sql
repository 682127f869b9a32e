-- The timeline as one plpgsql function over arrays, as it was before it was
-- split into tracing.trace_nodes, span_tree, parent_loop_cuts,
-- children_cover and critical_path: the benchmark's baseline, so the old
-- and new figures come from one run on one machine. Not part of the schema;
-- the query_api suite creates it in its own database. It has no depth
-- limit, so it answers false for cut_at_depth_limit, and no size limit
-- (it builds the whole tree), so false for trace_cut_at_limit.

create or replace function tracing.trace_timeline_baseline(p_trace_id uuid) returns setof api.timeline_span
language plpgsql stable parallel safe
-- The statements are cheap, but their estimates can be high enough to make
-- the planner JIT-compile them, which costs far more than they run.
set jit = off
as $$
declare
  v_trace_start timestamptz;
  v_trace_hex text := tracing.trace_id_to_hex(p_trace_id);
  n integer;
  -- Per node, indexed by its number (1..n, in start order):
  v_span_id bigint[];
  v_recorded_parent bigint[];
  v_parent integer[];          -- parent's number; 0 for a root
  v_start timestamptz[];
  v_end timestamptz[];
  v_st double precision[];     -- start, ms after the trace start
  v_en double precision[];     -- end, ms after the trace start
  v_name text[];
  v_service text[];
  v_kind text[];
  v_status text[];
  v_status_message text[];
  v_attributes jsonb[];
  v_is_inferred boolean[];
  v_is_placeholder boolean[];
  v_event_count integer[];
  v_events jsonb[];
  -- Computed here:
  v_breaks_cycle boolean[];
  v_first_child integer[];
  v_last_child integer[];
  v_next_sibling integer[];    -- for roots: the next root
  v_sibling_index integer[];
  v_child_count integer[];
  v_depth integer[];
  v_position integer[];
  v_covered double precision[];
  v_covered_until double precision[];
  v_critical boolean[];
  v_by_end integer[];          -- children grouped by parent, latest clipped end first
  v_by_end_from integer[];
  v_by_end_count integer[];
  v_stack integer[];
  first_root integer := 0;
  last_root integer := 0;
  root_count integer := 0;
  trace_end_ms double precision;
  i integer; j integer; k integer; p integer; r integer; walk integer; best integer;
  d integer; pos integer; top integer; x integer; c integer;
  cs double precision; ce double precision; barrier double precision; added double precision;
begin
  -- The trace starts with its earliest span, recorded or inferred from events.
  select min(t) into v_trace_start from (
    select min(s.start_time) as t from tracing.spans s where s.trace_id = p_trace_id
    union all
    select min(e.created_at) from tracing.domain_events e
    where e.trace_id = p_trace_id and e.span_id is not null
      and not exists (select from tracing.spans s where s.trace_id = p_trace_id and s.span_id = e.span_id)
  ) firsts;
  if v_trace_start is null then
    return;  -- no such trace, or none the caller may see
  end if;

  -- 1. The nodes.
  with span_events as (
    select e.id, e.span_id, e.parent_span_id, e.created_at, e.event_type, e.stream_type, e.stream_id,
           e.processing_error, e.event_data
    from tracing.domain_events e
    where e.trace_id = p_trace_id and e.span_id is not null
  ),
  events_by_span as (
    select ev.span_id,
           count(*)::integer as event_count,
           min(ev.created_at) as first_at,
           max(ev.created_at) as last_at,
           -- The parent an inferred span's events name (the first that names one).
           (array_agg(ev.parent_span_id order by ev.created_at, ev.id) filter (where ev.parent_span_id is not null))[1] as parent,
           jsonb_agg(jsonb_build_object(
             'id', ev.id, 'event_type', ev.event_type, 'stream_type', ev.stream_type, 'stream_id', ev.stream_id,
             'created_at', ev.created_at, 'offset_ms', extract(epoch from ev.created_at - v_trace_start) * 1000,
             'processing_error', ev.processing_error, 'event_data', ev.event_data
           ) order by ev.created_at, ev.id) as events
    from span_events ev
    group by ev.span_id
  ),
  -- One row per span that was recorded or emitted events. A recorded span
  -- keeps its own parent and times; an inferred one takes them from its
  -- events. (A full join is always a hash or merge join: linear whatever
  -- the row estimates.)
  known as (
    select coalesce(s.span_id, g.span_id) as span_id,
           case when s.span_id is null then g.parent else s.parent_span_id end as parent,
           coalesce(s.start_time, g.first_at) as start_time,
           coalesce(s.end_time, g.last_at) as end_time,
           s.name, s.service, s.kind, s.status, s.status_message, s.attributes,
           s.span_id is null as is_inferred,
           coalesce(g.event_count, 0) as event_count,
           coalesce(g.events, '[]'::jsonb) as events
    from (select * from tracing.spans where trace_id = p_trace_id) s
    full join events_by_span g on g.span_id = s.span_id
  ),
  -- Each node once under its own id, and once more under its parent's id:
  -- a parent id under which no node sits is missing (placeholder).
  parent_refs as (
    select k.span_id as key, true as is_node, k.start_time, k.end_time from known k
    union all
    select k.parent, false, k.start_time, k.end_time from known k where k.parent is not null
  ),
  placeholders as (
    select key as span_id, min(start_time) as start_time, max(end_time) as end_time
    from (select pr.*, bool_or(pr.is_node) over (partition by pr.key) as key_known from parent_refs pr) x
    where not key_known
    group by key
  ),
  nodes as (
    select u.*, row_number() over (order by u.start_time, u.span_id) as num
    from (
      select k.span_id, k.parent, k.start_time, k.end_time, k.name, k.service, k.kind, k.status, k.status_message,
             k.attributes, k.is_inferred, false as is_placeholder, k.event_count, k.events
      from known k
      union all
      select ph.span_id, null, ph.start_time, ph.end_time, null, null, null, null, null, null, false, true, 0, '[]'::jsonb
      from placeholders ph
    ) u
  ),
  -- Every node's parent number, found by sorting instead of joining: each
  -- node's row under its own id and its link row under its parent's id
  -- (0: no parent, never a span id) share a partition.
  parent_numbers as (
    select l.num, l.key_num as parent_num
    from (
      select pl.*, max(pl.own_num) over (partition by pl.key) as key_num
      from (
        select n.span_id as key, n.num as own_num, null::bigint as num from nodes n
        union all
        select coalesce(n.parent, 0), null, n.num from nodes n
      ) pl
    ) l
    where l.num is not null
  )
  -- Arrays in node-number order: one pass over the sorted nodes.
  select a.*, (select array_agg(coalesce(pn.parent_num, 0)::integer order by pn.num) from parent_numbers pn)
  from (
    select array_agg(s.span_id), array_agg(s.parent), array_agg(s.start_time), array_agg(s.end_time),
           array_agg(s.name), array_agg(s.service), array_agg(s.kind), array_agg(s.status),
           array_agg(s.status_message), array_agg(s.attributes), array_agg(s.is_inferred),
           array_agg(s.is_placeholder), array_agg(s.event_count), array_agg(s.events),
           array_agg((extract(epoch from s.start_time - v_trace_start) * 1000)::double precision),
           array_agg((extract(epoch from s.end_time - v_trace_start) * 1000)::double precision)
    from (select * from nodes order by num) s
  ) a
  into v_span_id, v_recorded_parent, v_start, v_end, v_name, v_service, v_kind, v_status,
       v_status_message, v_attributes, v_is_inferred, v_is_placeholder, v_event_count, v_events, v_st, v_en, v_parent;

  n := coalesce(array_length(v_span_id, 1), 0);
  trace_end_ms := (select max(t) from unnest(v_en) t);

  v_breaks_cycle := array_fill(false, array[n]);
  v_first_child := array_fill(0, array[n]);
  v_last_child := array_fill(0, array[n]);
  v_next_sibling := array_fill(0, array[n]);
  v_sibling_index := array_fill(0, array[n]);
  v_child_count := array_fill(0, array[n]);
  v_depth := array_fill(0, array[n]);
  v_position := array_fill(0, array[n]);
  v_covered := array_fill(0::double precision, array[n]);
  v_covered_until := array_fill('-infinity'::double precision, array[n]);
  v_critical := array_fill(false, array[n]);

  -- 2a. Cut parent loops. Walk up from each node not yet seen, marking the
  -- walk; meeting the current walk's own mark means a loop, which is cut at
  -- its earliest-starting span (the lowest number). Every node is walked
  -- over once.
  declare
    seen integer[] := array_fill(0, array[n]);
  begin
    for i in 1..n loop
      continue when seen[i] <> 0;
      walk := i;
      j := i;
      loop
        seen[j] := walk;
        p := v_parent[j];
        exit when p = 0;
        if seen[p] = 0 then
          j := p;
          continue;
        end if;
        if seen[p] = walk then
          best := p;
          k := v_parent[p];
          while k <> p loop
            if k < best then best := k; end if;
            k := v_parent[k];
          end loop;
          v_parent[best] := 0;
          v_breaks_cycle[best] := true;
        end if;
        exit;
      end loop;
    end loop;
  end;

  -- 2b. Child lists in start order (nodes are numbered in start order), and
  -- self time: sweeping a parent's children by start, each adds to the
  -- covered time the part of it (clipped to the parent) that ends after
  -- everything before it, so overlapping children count once.
  for i in 1..n loop
    p := v_parent[i];
    if p = 0 then
      if last_root = 0 then first_root := i; else v_next_sibling[last_root] := i; end if;
      last_root := i;
      v_sibling_index[i] := root_count;
      root_count := root_count + 1;
    else
      if v_last_child[p] = 0 then v_first_child[p] := i; else v_next_sibling[v_last_child[p]] := i; end if;
      v_last_child[p] := i;
      v_sibling_index[i] := v_child_count[p];
      v_child_count[p] := v_child_count[p] + 1;
      cs := greatest(v_st[i], v_st[p]);
      ce := least(v_en[i], v_en[p]);
      if ce > cs then
        added := ce - greatest(cs, v_covered_until[p]);
        if added > 0 then
          v_covered[p] := v_covered[p] + added;
        end if;
        v_covered_until[p] := greatest(v_covered_until[p], ce);
      end if;
    end if;
  end loop;

  -- 2c. Depth-first order and depth, without a stack: down to the first
  -- child, else along to the next sibling, else back up.
  pos := 0;
  r := first_root;
  while r <> 0 loop
    j := r;
    d := 0;
    <<visit>>
    loop
      v_position[j] := pos;
      v_depth[j] := d;
      pos := pos + 1;
      if v_first_child[j] <> 0 then
        j := v_first_child[j];
        d := d + 1;
      else
        loop
          exit visit when j = r;
          if v_next_sibling[j] <> 0 then
            j := v_next_sibling[j];
            exit;
          end if;
          j := v_parent[j];
          d := d - 1;
        end loop;
      end if;
    end loop;
    r := v_next_sibling[r];
  end loop;

  -- 2d. Critical path, the classic backwards walk: in a critical span, the
  -- child that finished last (clipped to the span) is critical; then the
  -- child that finished last before that one started; and so on back to the
  -- span's start. The same inside each critical child. The roots are the
  -- children of the whole trace. Children are listed by clipped end, latest
  -- first, so each span's children are scanned once.
  select array_agg(u.num::integer order by u.parent, u.clip_end desc, u.clip_start desc, u.num desc)
  into v_by_end
  from (
    select o.num, o.parent,
           greatest(o.st, case when o.parent = 0 then o.st else v_st[o.parent] end) as clip_start,
           least(o.en, case when o.parent = 0 then o.en else v_en[o.parent] end) as clip_end
    from unnest(v_parent, v_st, v_en) with ordinality as o(parent, st, en, num)
  ) u
  where u.clip_start <= u.clip_end;

  declare
    -- The roots' list sits at index n + 1.
    from_idx integer[] := array_fill(0, array[n + 1]);
    counts integer[] := array_fill(0, array[n + 1]);
    slot integer;
  begin
    for k in 1..coalesce(array_length(v_by_end, 1), 0) loop
      slot := v_parent[v_by_end[k]];
      if slot = 0 then slot := n + 1; end if;
      if counts[slot] = 0 then from_idx[slot] := k; end if;
      counts[slot] := counts[slot] + 1;
    end loop;
    v_by_end_from := from_idx;
    v_by_end_count := counts;
  end;

  v_stack := array_fill(0, array[n + 1]);
  top := 1;
  v_stack[1] := n + 1;  -- the whole trace
  while top > 0 loop
    x := v_stack[top];
    top := top - 1;
    barrier := case when x = n + 1 then trace_end_ms else v_en[x] end;
    k := v_by_end_from[x];
    for m in 1..v_by_end_count[x] loop
      c := v_by_end[k + m - 1];
      if x = n + 1 then
        cs := v_st[c];
        ce := v_en[c];
      else
        cs := greatest(v_st[c], v_st[x]);
        ce := least(v_en[c], v_en[x]);
      end if;
      if ce <= barrier then
        v_critical[c] := true;
        top := top + 1;
        v_stack[top] := c;
        barrier := cs;
      end if;
    end loop;
  end loop;

  -- 3. Rows, depth-first.
  return query
  select
    v_trace_hex,
    tracing.span_id_to_hex(o.span_id),
    tracing.span_id_to_hex(v_span_id[nullif(v_parent[o.num], 0)]),
    tracing.span_id_to_hex(o.recorded_parent),
    o.name, o.service, o.kind, o.status, o.status_message, o.attributes,
    o.start_time, o.end_time,
    v_depth[o.num],
    v_position[o.num],
    v_sibling_index[o.num],
    v_child_count[o.num],
    v_st[o.num],
    v_en[o.num] - v_st[o.num],
    v_en[o.num] - v_st[o.num] - v_covered[o.num],
    v_critical[o.num],
    o.is_inferred,
    o.is_placeholder,
    v_breaks_cycle[o.num],
    o.event_count,
    o.events,
    false,
    false
  from unnest(v_span_id, v_recorded_parent, v_start, v_end, v_name, v_service, v_kind, v_status,
              v_status_message, v_attributes, v_is_inferred, v_is_placeholder, v_event_count, v_events)
       with ordinality as o(span_id, recorded_parent, start_time, end_time, name, service, kind, status,
                            status_message, attributes, is_inferred, is_placeholder, event_count, events, num)
  order by v_position[o.num];
end
$$;
