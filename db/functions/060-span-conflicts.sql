-- Which spans of a recorded batch conflict with a span stored before: same
-- ids in the same organization, other content. tracing.store_spans keeps
-- the first write of a span silently, which is right for a retry (the same
-- span again) but hides a second, different span sent with ids already
-- used; store_spans asks this only when it stored fewer spans than were
-- valid, and lists the conflicts among its rejected spans.
--
-- The content compared is what a timeline shows: parent, name, service,
-- kind, times and status, as tracing.span_rows reads them.

-- The batch used to come as JSON, checked again here.
drop function if exists tracing.span_conflicts(jsonb);

create or replace function tracing.span_conflicts(
  p_trace_id uuid[], p_span_id bigint[], p_parent_span_id bigint[], p_name text[], p_service text[], p_kind text[],
  p_start_time timestamptz[], p_end_time timestamptz[], p_status text[], p_status_message text[], p_attributes jsonb[],
  p_events jsonb[], p_links jsonb[], p_correlation_id uuid[], p_session_id uuid[], p_organization_id uuid[],
  p_problem text[]
)
returns setof bigint
language sql stable
as $$
  select r.idx
    from tracing.span_rows(
           p_trace_id, p_span_id, p_parent_span_id, p_name, p_service, p_kind, p_start_time, p_end_time, p_status,
           p_status_message, p_attributes, p_events, p_links, p_correlation_id, p_session_id, p_organization_id, p_problem
         ) as r
    -- Every stored span of a trace starts within its summary's range, so
    -- the probe gets that range and reads only its monthly partitions, as
    -- store_spans' does (a retried batch asks this for every span).
    join tracing.trace_summaries t
      on t.trace_id = r.trace_id
     and t.organization_id is not distinct from r.organization_id
    join tracing.spans s
      on s.trace_id = r.trace_id
     and s.span_id = r.span_id
     and s.organization_id is not distinct from r.organization_id
     and s.start_time between t.start_time and t.end_time
   where r.problem is null
     and (s.parent_span_id, s.name, s.service, s.kind, s.start_time, s.end_time, s.status)
         is distinct from (r.parent_span_id, r.name, r.service, r.kind, r.start_time, r.end_time, r.status)
   order by 1
$$;

comment on function tracing.span_conflicts(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[], text[]) is
  E'Indexes (0-based) of the spans of a batch (the arguments of tracing.store_spans) whose ids are already recorded in their organization with other content (parent, name, service, kind, times or status).';

revoke all on function tracing.span_conflicts(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[], text[]) from public;
