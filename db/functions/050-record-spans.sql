-- The one writer of spans: tracing.record_spans.
--
-- Built for the OTLP ingest (about 20k spans/s arriving as batches of 1,000):
-- one statement parses the whole JSON array (jsonb_to_recordset), validates
-- and converts every field inline, inserts the spans and folds the newly
-- inserted ones into tracing.trace_summaries. No per-span statements, no
-- per-span subtransactions.
--
-- Bad input fails the whole batch with an error naming the span's index and
-- the field (for example `p_spans[3].span_id must be ...`), and nothing of
-- the batch is stored. Failing loudly was chosen over skipping: a malformed
-- id from a tracer is a bug to fix, a skipped span would be a silent hole in
-- a timeline, and the batch is atomic so the corrected retry is clean.
--
-- Idempotent: a span already stored (same trace_id and span_id) is left as
-- it is (`on conflict do nothing`), so a retried batch neither duplicates
-- spans nor counts them twice in the summaries, and nobody can overwrite a
-- recorded span by sending its ids again.

create or replace function tracing.reject_span_field(p_index bigint, p_field text, p_value text, p_rule text)
returns text
language plpgsql volatile parallel safe as $$
begin
  -- Returns text only so it can stand in an expression of any type (cast);
  -- it never returns.
  raise exception 'p_spans[%].% %', p_index, p_field, p_rule
    using errcode = '22023',
          detail = case when p_value is null then 'got null' else format('got %s', left(p_value, 200)) end;
end
$$;

comment on function tracing.reject_span_field(bigint, text, text, text) is
  E'Raises the error of tracing.record_spans for one invalid field of one span (index 0-based).';

create or replace function tracing.is_earlier_root(
  p_start timestamptz, p_span_id bigint, p_than_start timestamptz, p_than_span_id bigint
) returns boolean
language sql immutable parallel safe as $$
  -- Whether a newly seen root span should replace the current root of a
  -- summary: there is a new root and no current one, or the new one starts
  -- earlier (the span id breaks ties so the choice never depends on order).
  select p_start is not null
     and (p_than_start is null or (p_start, p_span_id) < (p_than_start, p_than_span_id))
$$;

create or replace function tracing.record_spans(p_spans jsonb) returns integer
language plpgsql volatile
-- Definer rights: writers call this function and need no grant on the tables.
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  recorded integer;
  bad_index bigint;
  bad_time text;
  bad_field text;
begin
  if p_spans is null or jsonb_typeof(p_spans) <> 'array' then
    raise exception 'p_spans must be a JSON array of span objects'
      using errcode = '22023', detail = format('got %s', coalesce(jsonb_typeof(p_spans), 'null'));
  end if;
  -- jsonb_to_recordset would refuse a non-object without saying which one.
  if jsonb_path_exists(p_spans, 'strict $[*] ? (@.type() != "object")') then
    select e.n - 1 into bad_index
    from jsonb_array_elements(p_spans) with ordinality as e(span, n)
    where jsonb_typeof(e.span) <> 'object'
    order by e.n limit 1;
    raise exception 'p_spans[%] must be a JSON object', bad_index using errcode = '22023';
  end if;

  with input as (
    select r.*, r.n - 1 as idx
    from rows from (
      jsonb_to_recordset(p_spans) as (
        trace_id text, span_id text, parent_span_id text, name text, service text, kind text,
        start_time text, end_time text, status text, status_message text, attributes jsonb,
        events jsonb, links jsonb, correlation_id text, session_id text, organization_id text
      )
    ) with ordinality as r(
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status,
      status_message, attributes, events, links, correlation_id, session_id, organization_id, n
    )
  ),
  parsed as (
    select
      idx,
      coalesce(tracing.hex_to_trace_id(trace_id),
        tracing.reject_span_field(idx, 'trace_id', trace_id, 'must be 32 lowercase hex characters, not all zeros')::uuid) as trace_id,
      coalesce(tracing.hex_to_span_id(span_id),
        tracing.reject_span_field(idx, 'span_id', span_id, 'must be 16 lowercase hex characters, not all zeros')::bigint) as span_id,
      -- OTLP gives a root span an empty parent id.
      case when parent_span_id is null or parent_span_id = '' then null
        else coalesce(tracing.hex_to_span_id(parent_span_id),
          tracing.reject_span_field(idx, 'parent_span_id', parent_span_id, 'must be 16 lowercase hex characters, not all zeros, or null')::bigint)
      end as parent_span_id,
      coalesce(nullif(name, ''), tracing.reject_span_field(idx, 'name', name, 'is required')) as name,
      -- OpenTelemetry's name for a service that did not say which it is.
      coalesce(nullif(service, ''), 'unknown_service') as service,
      case when kind is null then 'internal'
        when lower(kind) in ('internal', 'server', 'client', 'producer', 'consumer') then lower(kind)
        else tracing.reject_span_field(idx, 'kind', kind, 'must be one of internal, server, client, producer, consumer')
      end as kind,
      -- ISO 8601 with an explicit offset: a time without one would be read
      -- in the session's time zone, i.e. silently shifted.
      case when start_time ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$'
        then start_time::timestamptz
        else tracing.reject_span_field(idx, 'start_time', start_time, 'must be an ISO 8601 timestamp with a time zone offset')::timestamptz
      end as start_time,
      case when end_time ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$'
        then end_time::timestamptz
        else tracing.reject_span_field(idx, 'end_time', end_time, 'must be an ISO 8601 timestamp with a time zone offset')::timestamptz
      end as end_time,
      end_time as end_time_text,
      case when status is null then 'unset'
        when lower(status) in ('unset', 'ok', 'error') then lower(status)
        else tracing.reject_span_field(idx, 'status', status, 'must be one of unset, ok, error')
      end as status,
      status_message,
      case when attributes is null or attributes = 'null' then '{}'::jsonb
        when jsonb_typeof(attributes) = 'object' then attributes
        else tracing.reject_span_field(idx, 'attributes', attributes::text, 'must be a JSON object')::jsonb
      end as attributes,
      case when events is null or events = 'null' or events = '[]' then null
        when jsonb_typeof(events) = 'array' then events
        else tracing.reject_span_field(idx, 'events', events::text, 'must be a JSON array')::jsonb
      end as span_events,
      case when links is null or links = 'null' or links = '[]' then null
        when jsonb_typeof(links) = 'array' then links
        else tracing.reject_span_field(idx, 'links', links::text, 'must be a JSON array')::jsonb
      end as links,
      case when correlation_id is null then null
        else coalesce(tracing.text_to_uuid(correlation_id),
          tracing.reject_span_field(idx, 'correlation_id', correlation_id, 'must be a uuid (8-4-4-4-12 hex), not the nil uuid')::uuid)
      end as correlation_id,
      case when session_id is null then null
        else coalesce(tracing.text_to_uuid(session_id),
          tracing.reject_span_field(idx, 'session_id', session_id, 'must be a uuid (8-4-4-4-12 hex), not the nil uuid')::uuid)
      end as session_id,
      case when organization_id is null then null
        else coalesce(tracing.text_to_uuid(organization_id),
          tracing.reject_span_field(idx, 'organization_id', organization_id, 'must be a uuid (8-4-4-4-12 hex), not the nil uuid')::uuid)
      end as organization_id
    from input
  ),
  inserted as (
    insert into tracing.spans (
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time,
      status, status_message, attributes, span_events, links, correlation_id, session_id, organization_id
    )
    select
      trace_id, span_id, parent_span_id, name, service, kind, start_time,
      case when end_time >= start_time then end_time
        else tracing.reject_span_field(idx, 'end_time', end_time_text, 'must not be before start_time')::timestamptz
      end,
      status, status_message,
      -- Attributes, events and links beyond the caps of
      -- 040-span-attribute-caps.sql are cut, and the span says so.
      case when caps.within then parsed.attributes
        else tracing.span_json_capped(parsed.attributes) || jsonb_build_object('tracegres.truncated',
          'values nested deeper than 16 levels or strings longer than 4096 characters were cut (marked "[cut: ...]")')
      end,
      case when caps.within then parsed.span_events else tracing.span_json_capped(parsed.span_events) end,
      case when caps.within then parsed.links else tracing.span_json_capped(parsed.links) end,
      correlation_id, session_id, organization_id
    from parsed
    cross join lateral (
      select tracing.span_json_within_caps(parsed.attributes) and tracing.span_json_within_caps(parsed.span_events)
             and tracing.span_json_within_caps(parsed.links) as within
    ) caps
    -- Concurrent batches take row locks in one global order, so two
    -- batches sharing spans wait for each other instead of deadlocking.
    order by trace_id, span_id
    -- A span is named by its ids within its organization: another tenant
    -- cannot take ids that travel in every traceparent.
    on conflict (trace_id, span_id, organization_id) do nothing
    returning trace_id, span_id, parent_span_id, name, service, start_time, end_time, status,
              session_id, correlation_id, organization_id
  ),
  -- Only the spans this call inserted count: a retry adds nothing.
  batch as (
    select
      trace_id,
      organization_id,
      min(start_time) as start_time,
      max(end_time) as end_time,
      (array_agg(span_id order by start_time, span_id) filter (where parent_span_id is null))[1] as root_span_id,
      (array_agg(name order by start_time, span_id) filter (where parent_span_id is null))[1] as root_name,
      (array_agg(service order by start_time, span_id) filter (where parent_span_id is null))[1] as root_service,
      min(start_time) filter (where parent_span_id is null) as root_start_time,
      array_agg(distinct service) as services,
      count(*)::integer as span_count,
      (count(*) filter (where status = 'error'))::integer as error_count,
      (array_agg(session_id order by start_time, span_id) filter (where session_id is not null))[1] as session_id,
      (array_agg(correlation_id order by start_time, span_id) filter (where correlation_id is not null))[1] as correlation_id
    from inserted
    group by trace_id, organization_id
  ),
  summarized as (
    insert into tracing.trace_summaries as s (
      trace_id, organization_id, start_time, end_time, root_span_id, root_name, root_service,
      root_start_time, services, span_count, error_count, session_id, correlation_id
    )
    select
      trace_id, organization_id, start_time, end_time, root_span_id, root_name, root_service,
      root_start_time, services, span_count, error_count, session_id, correlation_id
    from batch
    -- The same global lock order as above, for the summary rows.
    order by trace_id, organization_id
    on conflict (trace_id, organization_id) do update set
      start_time = least(s.start_time, excluded.start_time),
      end_time = greatest(s.end_time, excluded.end_time),
      -- The earliest root wins, whichever batch brought it.
      root_span_id = case when tracing.is_earlier_root(excluded.root_start_time, excluded.root_span_id, s.root_start_time, s.root_span_id)
        then excluded.root_span_id else s.root_span_id end,
      root_name = case when tracing.is_earlier_root(excluded.root_start_time, excluded.root_span_id, s.root_start_time, s.root_span_id)
        then excluded.root_name else s.root_name end,
      root_service = case when tracing.is_earlier_root(excluded.root_start_time, excluded.root_span_id, s.root_start_time, s.root_span_id)
        then excluded.root_service else s.root_service end,
      root_start_time = case when tracing.is_earlier_root(excluded.root_start_time, excluded.root_span_id, s.root_start_time, s.root_span_id)
        then excluded.root_start_time else s.root_start_time end,
      services = case when excluded.services <@ s.services then s.services
        else array(select distinct service from unnest(s.services || excluded.services) as u(service) order by service) end,
      span_count = s.span_count + excluded.span_count,
      error_count = s.error_count + excluded.error_count,
      session_id = coalesce(s.session_id, excluded.session_id),
      correlation_id = coalesce(s.correlation_id, excluded.correlation_id),
      updated_at = now()
  )
  select count(*) into recorded from inserted;

  return recorded;
exception
  -- A timestamp of the right shape can still be impossible (2024-02-30,
  -- 25:00). The cast's own error names neither span nor field, so find the
  -- first offending one and say so.
  when invalid_datetime_format or datetime_field_overflow then
    for bad_index, bad_field, bad_time in
      select e.n - 1, f.field, e.span ->> f.field
      from jsonb_array_elements(p_spans) with ordinality as e(span, n)
      cross join (values (1, 'start_time'), (2, 'end_time')) as f(ord, field)
      order by e.n, f.ord
    loop
      begin
        perform bad_time::timestamptz;
      exception when invalid_datetime_format or datetime_field_overflow then
        perform tracing.reject_span_field(bad_index, bad_field, bad_time, 'is not a valid timestamp');
      end;
    end loop;
    raise;
end
$$;

comment on function tracing.record_spans(jsonb) is
  E'Records finished spans. p_spans is a JSON array of {trace_id, span_id, parent_span_id (W3C hex; parent null or empty for a root), name, service, kind (internal|server|client|producer|consumer, default internal), start_time, end_time (ISO 8601 with offset), status (unset|ok|error, default unset), status_message, attributes (object), events and links (OpenTelemetry span events and links, arrays), correlation_id, session_id, organization_id (uuids)}. Spans already recorded are left unchanged, so retries are safe. Returns the number of spans newly recorded. Invalid input raises SQLSTATE 22023 naming the span index (0-based) and field, and stores nothing.';

revoke all on function tracing.record_spans(jsonb) from public;
grant execute on function tracing.record_spans(jsonb) to tracegres_writer;
