-- Which spans of a recorded batch conflict with a span stored before: same
-- ids in the same organization, other content. tracing.record_spans keeps
-- the first write of a span silently, which is right for a retry (the same
-- span again) but hides a second, different span sent with ids already
-- used; OTLP ingest asks this only when record_spans stored fewer spans
-- than it was given, and reports the conflicts in partial_success.
--
-- The batch is one record_spans accepted, so its fields are valid. The
-- content compared is what a timeline shows: parent, name, service, kind,
-- times and status.

create or replace function tracing.span_conflicts(p_spans jsonb)
returns setof bigint
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select r.n - 1
    from rows from (jsonb_to_recordset(p_spans) as (
           trace_id text, span_id text, parent_span_id text, name text, service text, kind text,
           start_time text, end_time text, status text, organization_id text)) with ordinality as r(
           trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status, organization_id, n)
    join tracing.spans s
      on s.trace_id = tracing.hex_to_trace_id(r.trace_id)
     and s.span_id = tracing.hex_to_span_id(r.span_id)
     and s.organization_id is not distinct from tracing.text_to_uuid(r.organization_id)
   where (s.parent_span_id, s.name, s.service, s.kind, s.start_time, s.end_time, s.status)
         is distinct from
         (tracing.hex_to_span_id(nullif(r.parent_span_id, '')), r.name, coalesce(nullif(r.service, ''), 'unknown_service'),
          coalesce(lower(r.kind), 'internal'), r.start_time::timestamptz, r.end_time::timestamptz, coalesce(lower(r.status), 'unset'))
   order by 1
$$;

comment on function tracing.span_conflicts(jsonb) is
  E'Indexes (0-based) of the spans of a batch whose ids are already recorded in their organization with other content (parent, name, service, kind, times or status).';

revoke all on function tracing.span_conflicts(jsonb) from public;
grant execute on function tracing.span_conflicts(jsonb) to tracegres_writer;
