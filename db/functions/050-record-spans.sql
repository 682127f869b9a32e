-- The one writer of spans: tracing.record_spans.
--
-- Built for the OTLP ingest (batches of hundreds of spans, tens of thousands
-- a second): one statement per batch, set-based, no per-span statements and
-- no per-span subtransactions. The pieces, one job each:
--
--   tracing.span_rows: a batch given as one array per field, as rows ready
--     to store: every field checked and converted, the caps of 040 applied;
--   tracing.merge_trace_summaries: how a trace's summary takes in more of
--     its spans (also used when archived traces meet again, 120);
--   tracing.record_span_columns: inserts the rows and folds the newly
--     inserted ones into tracing.trace_summaries, in one statement;
--   tracing.record_spans: the same batch as a JSON array of span objects,
--     for writers that hold spans as JSON (the edge, raw SQL).
--
-- OTLP ingest sends arrays: Postgres reads typed arrays in about half the
-- time it takes to parse one JSON document and pull its fields apart.
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
-- recorded span by sending its ids again. tracing.spans is partitioned by
-- start_time, so its unique key holds start_time too; a span re-sent with
-- another start time is found through its trace's summary instead.

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

-- span_rows replaced span_rows_from_json, which took the batch as JSON.
drop function if exists tracing.span_rows_from_json(jsonb);

create or replace function tracing.span_rows(
  p_trace_id text[], p_span_id text[], p_parent_span_id text[], p_name text[], p_service text[], p_kind text[],
  p_start_time text[], p_end_time text[], p_status text[], p_status_message text[], p_attributes jsonb[],
  p_events jsonb[], p_links jsonb[], p_correlation_id text[], p_session_id text[], p_organization_id text[]
)
returns table (
  idx bigint, trace_id uuid, span_id bigint, parent_span_id bigint, name text, service text, kind text,
  start_time timestamptz, end_time timestamptz, status text, status_message text, attributes jsonb,
  span_events jsonb, links jsonb, correlation_id uuid, session_id uuid, organization_id uuid
)
-- Volatile: it raises through tracing.reject_span_field.
language sql volatile as $$
  with input as (
    -- A null array stands for a field none of the spans has.
    select r.*, r.n - 1 as i
    from unnest(
      p_trace_id, p_span_id, p_parent_span_id, p_name, p_service, p_kind, p_start_time, p_end_time, p_status,
      p_status_message, p_attributes, p_events, p_links, p_correlation_id, p_session_id, p_organization_id
    ) with ordinality as r(
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status,
      status_message, attributes, events, links, correlation_id, session_id, organization_id, n
    )
  ),
  parsed as materialized (
    select
      x.i,
      coalesce(tracing.hex_to_trace_id(x.trace_id),
        tracing.reject_span_field(x.i, 'trace_id', x.trace_id, 'must be 32 lowercase hex characters, not all zeros')::uuid) as trace_id,
      coalesce(tracing.hex_to_span_id(x.span_id),
        tracing.reject_span_field(x.i, 'span_id', x.span_id, 'must be 16 lowercase hex characters, not all zeros')::bigint) as span_id,
      -- OTLP gives a root span an empty parent id.
      case when x.parent_span_id is null or x.parent_span_id = '' then null
        else coalesce(tracing.hex_to_span_id(x.parent_span_id),
          tracing.reject_span_field(x.i, 'parent_span_id', x.parent_span_id, 'must be 16 lowercase hex characters, not all zeros, or null')::bigint)
      end as parent_span_id,
      coalesce(nullif(x.name, ''), tracing.reject_span_field(x.i, 'name', x.name, 'is required')) as name,
      -- OpenTelemetry's name for a service that did not say which it is.
      coalesce(nullif(x.service, ''), 'unknown_service') as service,
      case when x.kind is null then 'internal'
        when lower(x.kind) in ('internal', 'server', 'client', 'producer', 'consumer') then lower(x.kind)
        else tracing.reject_span_field(x.i, 'kind', x.kind, 'must be one of internal, server, client, producer, consumer')
      end as kind,
      -- ISO 8601 with an explicit offset: a time without one would be read
      -- in the session's time zone, i.e. silently shifted.
      case when x.start_time ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$'
        then x.start_time::timestamptz
        else tracing.reject_span_field(x.i, 'start_time', x.start_time, 'must be an ISO 8601 timestamp with a time zone offset')::timestamptz
      end as start_time,
      case when x.end_time ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$'
        then x.end_time::timestamptz
        else tracing.reject_span_field(x.i, 'end_time', x.end_time, 'must be an ISO 8601 timestamp with a time zone offset')::timestamptz
      end as end_time,
      x.end_time as end_time_text,
      case when x.status is null then 'unset'
        when lower(x.status) in ('unset', 'ok', 'error') then lower(x.status)
        else tracing.reject_span_field(x.i, 'status', x.status, 'must be one of unset, ok, error')
      end as status,
      x.status_message,
      case when x.attributes is null or x.attributes = 'null' then '{}'::jsonb
        when jsonb_typeof(x.attributes) = 'object' then x.attributes
        else tracing.reject_span_field(x.i, 'attributes', x.attributes::text, 'must be a JSON object')::jsonb
      end as attributes,
      case when x.events is null or x.events = 'null' or x.events = '[]' then null
        when jsonb_typeof(x.events) = 'array' then x.events
        else tracing.reject_span_field(x.i, 'events', x.events::text, 'must be a JSON array')::jsonb
      end as span_events,
      case when x.links is null or x.links = 'null' or x.links = '[]' then null
        when jsonb_typeof(x.links) = 'array' then x.links
        else tracing.reject_span_field(x.i, 'links', x.links::text, 'must be a JSON array')::jsonb
      end as links,
      case when x.correlation_id is null then null
        else coalesce(tracing.text_to_uuid(x.correlation_id),
          tracing.reject_span_field(x.i, 'correlation_id', x.correlation_id, 'must be a uuid (8-4-4-4-12 hex), not the nil uuid')::uuid)
      end as correlation_id,
      case when x.session_id is null then null
        else coalesce(tracing.text_to_uuid(x.session_id),
          tracing.reject_span_field(x.i, 'session_id', x.session_id, 'must be a uuid (8-4-4-4-12 hex), not the nil uuid')::uuid)
      end as session_id,
      case when x.organization_id is null then null
        else coalesce(tracing.text_to_uuid(x.organization_id),
          tracing.reject_span_field(x.i, 'organization_id', x.organization_id, 'must be a uuid (8-4-4-4-12 hex), not the nil uuid')::uuid)
      end as organization_id
    from input x
  ),
  checked as (
    -- The caps are checked once per span (offset 0 keeps the planner from
    -- copying the check into each of the three uses below).
    select p.*,
           tracing.span_json_within_caps(p.attributes) and tracing.span_json_within_caps(p.span_events)
             and tracing.span_json_within_caps(p.links) as within_caps
      from parsed p
    offset 0
  )
  select
    c.i, c.trace_id, c.span_id, c.parent_span_id, c.name, c.service, c.kind, c.start_time,
    case when c.end_time >= c.start_time then c.end_time
      else tracing.reject_span_field(c.i, 'end_time', c.end_time_text, 'must not be before start_time')::timestamptz
    end,
    c.status, c.status_message,
    -- Attributes, events and links beyond the caps of
    -- 040-span-attribute-caps.sql are cut, and the span says so.
    case when c.within_caps then c.attributes
      else tracing.span_json_capped(c.attributes) || jsonb_build_object('tracegres.truncated',
        'values nested deeper than 16 levels or strings longer than 4096 characters were cut (marked "[cut: ...]")')
    end,
    case when c.within_caps then c.span_events else tracing.span_json_capped(c.span_events) end,
    case when c.within_caps then c.links else tracing.span_json_capped(c.links) end,
    c.correlation_id, c.session_id, c.organization_id
  from checked c
$$;

comment on function tracing.span_rows(text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], jsonb[], jsonb[], jsonb[], text[], text[], text[]) is
  E'The spans of a batch given as one array per field (element i of every array is span i), as rows ready to store: every field checked and converted, the caps of 040 applied. idx is the span''s 0-based index. The first invalid field raises SQLSTATE 22023 naming it as p_spans[index].field, as tracing.record_spans does.';

create or replace function tracing.merge_trace_summaries(
  p_start_time timestamptz, p_end_time timestamptz, p_root_span_id bigint, p_root_name text, p_root_service text,
  p_root_start_time timestamptz, p_services text[], p_span_count integer, p_error_count integer,
  p_session_id uuid, p_correlation_id uuid,
  p_added_start_time timestamptz, p_added_end_time timestamptz, p_added_root_span_id bigint, p_added_root_name text,
  p_added_root_service text, p_added_root_start_time timestamptz, p_added_services text[], p_added_span_count integer,
  p_added_error_count integer, p_added_session_id uuid, p_added_correlation_id uuid,
  out start_time timestamptz, out end_time timestamptz, out root_span_id bigint, out root_name text, out root_service text,
  out root_start_time timestamptz, out services text[], out span_count integer, out error_count integer,
  out session_id uuid, out correlation_id uuid
)
language sql immutable parallel safe as $$
  -- The rule written once, for every place two summaries of one trace meet:
  -- record_spans folding a batch into the live summary, archive_traces
  -- folding a trace's late spans into its archived summary. The span
  -- counts add up (each side counts spans the other does not hold).
  select
    least(p_start_time, p_added_start_time),
    greatest(p_end_time, p_added_end_time),
    -- The earliest root wins, whichever side brought it.
    case when r.added_wins then p_added_root_span_id else p_root_span_id end,
    case when r.added_wins then p_added_root_name else p_root_name end,
    case when r.added_wins then p_added_root_service else p_root_service end,
    case when r.added_wins then p_added_root_start_time else p_root_start_time end,
    -- Sorted and distinct; most batches bring no new service.
    case when p_added_services <@ p_services then p_services
      else array(select distinct u.service from unnest(p_services || p_added_services) as u(service) order by u.service) end,
    p_span_count + p_added_span_count,
    p_error_count + p_added_error_count,
    -- The first session and correlation seen stay.
    coalesce(p_session_id, p_added_session_id),
    coalesce(p_correlation_id, p_added_correlation_id)
  from (select tracing.is_earlier_root(p_added_root_start_time, p_added_root_span_id, p_root_start_time, p_root_span_id) as added_wins) as r
$$;

comment on function tracing.merge_trace_summaries(timestamptz, timestamptz, bigint, text, text, timestamptz, text[], integer, integer, uuid, uuid, timestamptz, timestamptz, bigint, text, text, timestamptz, text[], integer, integer, uuid, uuid) is
  E'One trace summary (the p_ fields) merged with another of the same trace covering other spans (the p_added_ fields): widest time range, earliest root, union of services (sorted), counts added, first session and correlation ids kept.';

create or replace function tracing.record_span_columns(
  p_trace_id text[], p_span_id text[], p_parent_span_id text[], p_name text[], p_service text[], p_kind text[],
  p_start_time text[], p_end_time text[], p_status text[], p_status_message text[], p_attributes jsonb[],
  p_events jsonb[], p_links jsonb[], p_correlation_id text[], p_session_id text[], p_organization_id text[]
) returns integer
language plpgsql volatile
-- Definer rights: writers call this function and need no grant on the tables.
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  recorded integer;
  spans integer := coalesce(cardinality(p_trace_id), 0);
  bad_index bigint;
  bad_time text;
  bad_field text;
begin
  -- unnest would pad a short array with nulls, i.e. move fields to other spans.
  select a.name into bad_field
    from (values ('p_span_id', p_span_id), ('p_parent_span_id', p_parent_span_id), ('p_name', p_name),
                 ('p_service', p_service), ('p_kind', p_kind), ('p_start_time', p_start_time), ('p_end_time', p_end_time),
                 ('p_status', p_status), ('p_status_message', p_status_message), ('p_correlation_id', p_correlation_id),
                 ('p_session_id', p_session_id), ('p_organization_id', p_organization_id)) as a(name, items)
   where a.items is not null and cardinality(a.items) <> spans
   union all
  select a.name
    from (values ('p_attributes', p_attributes), ('p_events', p_events), ('p_links', p_links)) as a(name, items)
   where a.items is not null and cardinality(a.items) <> spans
   limit 1;
  if bad_field is not null then
    raise exception '% must be null or have one element per span (% in p_trace_id)', bad_field, spans using errcode = '22023';
  end if;
  if spans = 0 then
    return 0;
  end if;

  with inserted as (
    insert into tracing.spans (
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time,
      status, status_message, attributes, span_events, links, correlation_id, session_id, organization_id
    )
    select
      r.trace_id, r.span_id, r.parent_span_id, r.name, r.service, r.kind, r.start_time, r.end_time,
      r.status, r.status_message, r.attributes, r.span_events, r.links, r.correlation_id, r.session_id, r.organization_id
    from (
      -- A span sent twice in one batch is stored once (its first copy).
      select distinct on (b.trace_id, b.span_id, b.organization_id) b.*
        from tracing.span_rows(
          p_trace_id, p_span_id, p_parent_span_id, p_name, p_service, p_kind, p_start_time, p_end_time, p_status,
          p_status_message, p_attributes, p_events, p_links, p_correlation_id, p_session_id, p_organization_id
        ) as b
       order by b.trace_id, b.span_id, b.organization_id, b.idx
    ) as r
    -- The unique key holds start_time (tracing.spans is partitioned by it),
    -- so a span stored before with the same ids and another start time is
    -- looked for here: inside its trace's time range, which the trace's
    -- summary bounds, so only the partitions of that range are probed, and
    -- only for traces seen before. A span that does not exist yet in
    -- another transaction is not seen: two such spans committed at once
    -- with different start times are both kept (docs/scaling.md).
    where not exists (
      select
        from tracing.trace_summaries t
        join tracing.spans s
          on s.trace_id = t.trace_id and s.span_id = r.span_id
         and s.organization_id is not distinct from t.organization_id
         and s.start_time between t.start_time and t.end_time
       where t.trace_id = r.trace_id and t.organization_id is not distinct from r.organization_id
    )
    -- Concurrent batches take row locks in one global order, so two
    -- batches sharing spans wait for each other instead of deadlocking.
    order by r.trace_id, r.span_id
    -- A span is named by its ids within its organization: another tenant
    -- cannot take ids that travel in every traceparent. A re-sent span
    -- (same ids and start) meets its stored copy here.
    on conflict (trace_id, span_id, organization_id, start_time) do nothing
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
      (start_time, end_time, root_span_id, root_name, root_service, root_start_time, services, span_count,
       error_count, session_id, correlation_id) = (
        select m.* from tracing.merge_trace_summaries(
          s.start_time, s.end_time, s.root_span_id, s.root_name, s.root_service, s.root_start_time, s.services,
          s.span_count, s.error_count, s.session_id, s.correlation_id,
          excluded.start_time, excluded.end_time, excluded.root_span_id, excluded.root_name, excluded.root_service,
          excluded.root_start_time, excluded.services, excluded.span_count, excluded.error_count, excluded.session_id,
          excluded.correlation_id) as m),
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
      select t.n - 1, f.field, case f.ord when 1 then t.start_time else t.end_time end
      from unnest(p_start_time, p_end_time) with ordinality as t(start_time, end_time, n)
      cross join (values (1, 'start_time'), (2, 'end_time')) as f(ord, field)
      order by t.n, f.ord
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

comment on function tracing.record_span_columns(text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], jsonb[], jsonb[], jsonb[], text[], text[], text[]) is
  E'Records finished spans given as one array per field (element i of every array is span i; an array may be null when no span has that field): the fields and rules of tracing.record_spans, which is this function for spans held as JSON. Spans already recorded are left unchanged, so retries are safe. Returns the number of spans newly recorded. Invalid input raises SQLSTATE 22023 naming the span index (0-based) and field, and stores nothing.';

revoke all on function tracing.record_span_columns(text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], jsonb[], jsonb[], jsonb[], text[], text[], text[]) from public;
grant execute on function tracing.record_span_columns(text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], jsonb[], jsonb[], jsonb[], text[], text[], text[]) to tracegres_writer;

create or replace function tracing.record_spans(p_spans jsonb) returns integer
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  bad_index bigint;
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
  return (
    select tracing.record_span_columns(
      array_agg(r.trace_id order by r.n), array_agg(r.span_id order by r.n), array_agg(r.parent_span_id order by r.n),
      array_agg(r.name order by r.n), array_agg(r.service order by r.n), array_agg(r.kind order by r.n),
      array_agg(r.start_time order by r.n), array_agg(r.end_time order by r.n), array_agg(r.status order by r.n),
      array_agg(r.status_message order by r.n), array_agg(r.attributes order by r.n), array_agg(r.events order by r.n),
      array_agg(r.links order by r.n), array_agg(r.correlation_id order by r.n), array_agg(r.session_id order by r.n),
      array_agg(r.organization_id order by r.n))
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
  );
end
$$;

comment on function tracing.record_spans(jsonb) is
  E'Records finished spans. p_spans is a JSON array of {trace_id, span_id, parent_span_id (W3C hex; parent null or empty for a root), name, service, kind (internal|server|client|producer|consumer, default internal), start_time, end_time (ISO 8601 with offset), status (unset|ok|error, default unset), status_message, attributes (object), events and links (OpenTelemetry span events and links, arrays), correlation_id, session_id, organization_id (uuids)}. Spans already recorded are left unchanged, so retries are safe. Returns the number of spans newly recorded. Invalid input raises SQLSTATE 22023 naming the span index (0-based) and field, and stores nothing.';

revoke all on function tracing.record_spans(jsonb) from public;
grant execute on function tracing.record_spans(jsonb) to tracegres_writer;
