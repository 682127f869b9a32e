-- The nodes of a trace's timeline: every recorded span, every span known
-- only from the events it emitted (inferred), and a placeholder for every
-- parent that is referenced but known neither way, numbered 1..n in start
-- order, each with its parent's number (0 for a root).
--
-- Real traces are messy, and the timeline shows them as they are:
--   * a span that emitted events but was never recorded (its process died)
--     starts at its first event, ends at its last, and hangs under the
--     parent its events name (the first that names one);
--   * a placeholder spans the children that reference it;
--   * the trace starts with its earliest node, and each event carries its
--     offset from that start.
--
-- A bounded part of the trace: the earliest p_span_limit recorded spans by
-- start time and the earliest p_event_limit domain events by creation time
-- (spans: the key (trace, span, organization, start), a top-N sort of the
-- trace's index entries; events: the trace index, in created_at order, so
-- the scan stops after the limit). Whether the trace was cut (trace_cut, the
-- same on every row) is a count of at most one entry more than the limit,
-- from the same indexes. The caller passes the limits as constants (an
-- immutable function, inlined), so a generic plan knows them: as
-- parameters, the plan estimated a few spans and chose a nested loop for
-- the placeholders' anti join, quadratic on 10,000 spans (1.8 s instead of
-- 0.2 s). Why the
-- earliest: a parent starts before its children, so the earliest spans hold
-- the roots and the ancestors of every span kept (only clock skew between
-- services breaks this; such a parent shows as a placeholder), and a trace
-- is read as a story from its start. Events of a recorded span that was cut
-- are dropped rather than shown as an inferred span (one key probe for each
-- span known only from events, only when the spans were cut).
--
-- One statement, `language sql` so the caller's statement inlines it (not
-- re-planned per call). Joins are full joins (always hash or merge: a
-- generic plan estimates about 10 rows for any trace, and a nested loop on
-- that estimate is quadratic on a 10,000-span trace). The parents are found
-- by a hash join, which keeps the nodes in number order, so the caller's
-- sort by number finds them sorted: 2.6 ms of CPU to gather 1,000 spans into
-- arrays, against 3.2 ms when the parents came from a sort of every node's
-- own row and link row. CPU time of the statement alone on a loaded 2-core
-- machine: 1.5 ms for 1,000 spans, 13 ms for 10,000.
-- The one-argument form read the whole trace.
drop function if exists tracing.trace_nodes(uuid);

create or replace function tracing.trace_nodes(p_trace_id uuid, p_span_limit integer, p_event_limit integer)
returns table (
  num integer, parent_num integer, span_id bigint, recorded_parent_span_id bigint,
  start_time timestamptz, end_time timestamptz, start_ms double precision, end_ms double precision,
  name text, service text, kind text, status text, status_message text, attributes jsonb,
  is_inferred boolean, is_placeholder boolean, event_count integer, events jsonb, trace_cut boolean)
language sql stable parallel safe as $$
  with read_spans as materialized (
    select * from tracing.spans x where x.trace_id = p_trace_id
     order by x.start_time, x.span_id, x.organization_id limit p_span_limit
  ),
  -- The limit counts every event of the trace, with a span or not, so a
  -- trace of many span-less events cannot make the scan long either.
  read_events as materialized (
    select * from tracing.domain_events x where x.trace_id = p_trace_id
     order by x.created_at, x.id limit p_event_limit
  ),
  -- Whether there is more: one more index entry than the limit, in any order.
  cuts as (
    select (select count(*) from (select from tracing.spans x where x.trace_id = p_trace_id limit p_span_limit + 1) c)
             > p_span_limit as spans_cut,
           (select count(*) from (select from tracing.domain_events x where x.trace_id = p_trace_id limit p_event_limit + 1) c)
             > p_event_limit as events_cut
  ),
  span_events as (
    select e.id, e.span_id, e.parent_span_id, e.created_at, e.event_type, e.stream_type, e.stream_id,
           e.processing_error, e.event_data
      from read_events e
     where e.span_id is not null
  ),
  events_by_span as (
    select ev.span_id, count(*)::integer as event_count, min(ev.created_at) as first_at, max(ev.created_at) as last_at,
           (array_agg(ev.parent_span_id order by ev.created_at, ev.id) filter (where ev.parent_span_id is not null))[1] as parent
      from span_events ev
     group by ev.span_id
  ),
  known as (
    select coalesce(s.span_id, g.span_id) as span_id,
           case when s.span_id is null then g.parent else s.parent_span_id end as parent,
           coalesce(s.start_time, g.first_at) as start_time,
           coalesce(s.end_time, g.last_at) as end_time,
           s.name, s.service, s.kind, s.status, s.status_message, s.attributes,
           s.span_id is null as is_inferred,
           coalesce(g.event_count, 0) as event_count
      from read_spans s
      full join events_by_span g on g.span_id = s.span_id
     where s.span_id is not null
        or not (select c.spans_cut from cuts c)
        or not exists (select from tracing.spans x where x.trace_id = p_trace_id and x.span_id = g.span_id)
  ),
  placeholders as (
    select r.parent as span_id, min(r.start_time) as start_time, max(r.end_time) as end_time
      from known r
      full join known k on k.span_id = r.parent
     where r.parent is not null and k.span_id is null
     group by r.parent
  ),
  nodes as (
    select u.*, row_number() over (order by u.start_time, u.span_id)::integer as num
      from (
        select k.span_id, k.parent, k.start_time, k.end_time, k.name, k.service, k.kind, k.status, k.status_message,
               k.attributes, k.is_inferred, false as is_placeholder, k.event_count
          from known k
        union all
        select ph.span_id, null, ph.start_time, ph.end_time, null, null, null, null, null, null, false, true, 0
          from placeholders ph
      ) u
  ),
  event_lists as (
    select ev.span_id,
           jsonb_agg(jsonb_build_object(
             'id', ev.id, 'event_type', ev.event_type, 'stream_type', ev.stream_type, 'stream_id', ev.stream_id,
             'created_at', ev.created_at,
             'offset_ms', extract(epoch from ev.created_at - (select min(k.start_time) from known k)) * 1000,
             'processing_error', ev.processing_error, 'event_data', ev.event_data
           ) order by ev.created_at, ev.id) as events
      from span_events ev
     group by ev.span_id
  )
  -- Every node's parent number. A span id recorded twice (in two
  -- organizations) is one parent: its later-numbered copy.
  select n.num, coalesce(p.num, 0), n.span_id, n.parent, n.start_time, n.end_time,
         (extract(epoch from n.start_time - (select min(k.start_time) from known k)) * 1000)::double precision,
         (extract(epoch from n.end_time - (select min(k.start_time) from known k)) * 1000)::double precision,
         n.name, n.service, n.kind, n.status, n.status_message, n.attributes, n.is_inferred, n.is_placeholder,
         n.event_count, coalesce(l.events, '[]'::jsonb), (select c.spans_cut or c.events_cut from cuts c)
    from nodes n
    full join (select d.span_id, max(d.num) as num from nodes d group by d.span_id) p on p.span_id = n.parent
    full join event_lists l on l.span_id = n.span_id
   where n.num is not null
$$;

comment on function tracing.trace_nodes(uuid, integer, integer) is
  E'The nodes of a trace''s timeline (recorded, inferred from events, placeholders for missing parents), numbered in start order with their parent''s number (0 for a root), from the earliest p_span_limit spans and p_event_limit events of the trace; trace_cut when it has more.';

grant execute on function tracing.trace_nodes(uuid, integer, integer) to tracegres_anonymous;
