-- The one writer of spans: tracing.record_spans.
--
-- Built for the OTLP ingest (batches of hundreds of spans, tens of thousands
-- a second): one statement per batch, set-based, no per-span statements and
-- no per-span subtransactions. The pieces, one job each:
--
--   tracing.span_rows: a batch given as one typed array per field, as rows
--     ready to store, each with the first problem found in it (or null): the
--     checks are one CASE per span, the caps of 040 applied;
--   tracing.merge_trace_summaries: how a trace's summary takes in more of
--     its spans (also used when archived traces meet again, 120);
--   tracing.store_spans: inserts the rows without a problem, folds the newly
--     inserted ones into tracing.trace_summaries (one statement), and lists
--     the others with their problems and the conflicts of 060;
--   tracing.record_span_columns: the writers' form of store_spans, one typed
--     array per field (what OTLP ingest sends);
--   tracing.span_columns_from_json and tracing.record_spans: the same batch
--     as a JSON array of span objects with W3C hex ids and ISO 8601 times,
--     for writers that hold spans as JSON (the edge, raw SQL).
--
-- Typed arrays (uuid[], bigint[], timestamptz[]) because Postgres reads them
-- with its own input functions, while hex and time text had to be checked
-- and converted span by span: on a 500-span batch those text checks took
-- about two thirds of the call (docs/otlp.md, Performance).
--
-- One bad span is rejected alone: it is left out, and the call answers with
-- the spans it recorded and the ones it rejected, each named by its 0-based
-- index, its field and the rule it broke
-- (`{"index": 3, "field": "end_time", "reason": "end_time must not be before
-- start_time", ...}`), while the rest of the batch is stored. A batch used
-- to fail as a whole on its first bad span; a writer of many spans (OTLP,
-- raw SQL) then lost every good span to one bad one, and had to find and
-- drop it to retry, which OTLP ingest did in a loop of its own. Only a
-- malformed call still raises (SQLSTATE 22023 naming the argument): arrays
-- of different lengths, p_spans not a JSON array.
--
-- Idempotent: a span already stored (same trace_id and span_id) is left as
-- it is (`on conflict do nothing`), so a retried batch neither duplicates
-- spans nor counts them twice in the summaries, and nobody can overwrite a
-- recorded span by sending its ids again. tracing.spans is partitioned by
-- start_time, so its unique key holds start_time too; a span re-sent with
-- another start time is found through its trace's summary instead.

-- Replaced by the problem column of tracing.span_rows (a batch is no longer
-- failed by its first bad span) and by typed arguments.
drop function if exists tracing.reject_span_field(bigint, text, text, text);
drop function if exists tracing.span_rows_from_json(jsonb);
drop function if exists tracing.span_rows(
  text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], jsonb[], jsonb[], jsonb[], text[], text[], text[]);
drop function if exists tracing.record_span_columns(
  text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], jsonb[], jsonb[], jsonb[], text[], text[], text[]);
do $$
begin
  -- record_spans answered with a count alone before it answered with its
  -- rejections too; a function's result type can only change by dropping it.
  if (select p.prorettype = 'integer'::regtype from pg_proc p where p.oid = to_regprocedure('tracing.record_spans(jsonb)')) then
    drop function tracing.record_spans(jsonb);
  end if;
end
$$;

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

create or replace function tracing.span_rows(
  p_trace_id uuid[], p_span_id bigint[], p_parent_span_id bigint[], p_name text[], p_service text[], p_kind text[],
  p_start_time timestamptz[], p_end_time timestamptz[], p_status text[], p_status_message text[], p_attributes jsonb[],
  p_events jsonb[], p_links jsonb[], p_correlation_id uuid[], p_session_id uuid[], p_organization_id uuid[],
  p_problem text[]
)
returns table (
  idx bigint, trace_id uuid, span_id bigint, parent_span_id bigint, name text, service text, kind text,
  start_time timestamptz, end_time timestamptz, status text, status_message text, attributes jsonb,
  span_events jsonb, links jsonb, correlation_id uuid, session_id uuid, organization_id uuid, problem text
)
-- Stable, not immutable, only because the caps check is (040).
language sql stable as $$
  with input as (
    -- A null array stands for a field none of the spans has.
    select r.*, r.n - 1 as i
    from unnest(
      p_trace_id, p_span_id, p_parent_span_id, p_name, p_service, p_kind, p_start_time, p_end_time, p_status,
      p_status_message, p_attributes, p_events, p_links, p_correlation_id, p_session_id, p_organization_id, p_problem
    ) with ordinality as r(
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status,
      status_message, attributes, events, links, correlation_id, session_id, organization_id, given_problem, n
    )
  ),
  checked as (
    select
      x.i, x.trace_id, x.span_id, x.parent_span_id, x.name,
      -- OpenTelemetry's name for a service that did not say which it is.
      coalesce(nullif(x.service, ''), 'unknown_service') as service,
      coalesce(lower(x.kind), 'internal') as kind,
      x.start_time, x.end_time,
      coalesce(lower(x.status), 'unset') as status,
      x.status_message,
      case when x.attributes is null or x.attributes = 'null' then '{}'::jsonb else x.attributes end as attributes,
      case when x.events is null or x.events = 'null' or x.events = '[]' then null else x.events end as span_events,
      case when x.links is null or x.links = 'null' or x.links = '[]' then null else x.links end as links,
      x.correlation_id, x.session_id, x.organization_id,
      -- The first rule the span breaks, starting with the field's name
      -- (what the caller already found, then the rules of tracing.spans'
      -- columns): one CASE, no function call per span.
      coalesce(x.given_problem, case
        when x.trace_id is null then 'trace_id is required'
        when x.trace_id = '00000000-0000-0000-0000-000000000000' then 'trace_id must not be all zeros'
        when x.span_id is null then 'span_id is required'
        when x.span_id = 0 then 'span_id must not be all zeros'
        when x.parent_span_id = 0 then 'parent_span_id must not be all zeros (a root has none)'
        when x.name is null or x.name = '' then 'name is required'
        when lower(x.kind) not in ('internal', 'server', 'client', 'producer', 'consumer') then
          'kind must be one of internal, server, client, producer, consumer'
        when x.start_time is null then 'start_time is required'
        when not isfinite(x.start_time) then 'start_time must be a finite time'
        when x.end_time is null then 'end_time is required'
        when not isfinite(x.end_time) then 'end_time must be a finite time'
        when x.end_time < x.start_time then 'end_time must not be before start_time'
        when lower(x.status) not in ('unset', 'ok', 'error') then 'status must be one of unset, ok, error'
        when jsonb_typeof(x.attributes) not in ('object', 'null') then 'attributes must be a JSON object'
        when jsonb_typeof(x.events) not in ('array', 'null') then 'events must be a JSON array'
        when jsonb_typeof(x.links) not in ('array', 'null') then 'links must be a JSON array'
        when x.correlation_id = '00000000-0000-0000-0000-000000000000' then 'correlation_id must not be the nil uuid'
        when x.session_id = '00000000-0000-0000-0000-000000000000' then 'session_id must not be the nil uuid'
        when x.organization_id = '00000000-0000-0000-0000-000000000000' then 'organization_id must not be the nil uuid'
      end) as problem
    from input x
  ),
  capped as (
    -- The caps are checked once per span (offset 0 keeps the planner from
    -- copying the check into each of the three uses below), and only for
    -- spans that will be stored.
    select c.*,
           c.problem is not null
             or (tracing.span_json_within_caps(c.attributes) and tracing.span_json_within_caps(c.span_events)
                 and tracing.span_json_within_caps(c.links)) as within_caps
      from checked c
    offset 0
  )
  select
    c.i, c.trace_id, c.span_id, c.parent_span_id, c.name, c.service, c.kind, c.start_time, c.end_time,
    c.status, c.status_message,
    -- Attributes, events and links beyond the caps of
    -- 040-span-attribute-caps.sql are cut, and the span says so.
    case when c.within_caps then c.attributes
      else tracing.span_json_capped(c.attributes) || jsonb_build_object('tracegres.truncated',
        'values nested deeper than 16 levels or strings longer than 4096 characters were cut (marked "[cut: ...]")')
    end,
    case when c.within_caps then c.span_events else tracing.span_json_capped(c.span_events) end,
    case when c.within_caps then c.links else tracing.span_json_capped(c.links) end,
    c.correlation_id, c.session_id, c.organization_id, c.problem
  from capped c
$$;

comment on function tracing.span_rows(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[], text[]) is
  E'The spans of a batch given as one array per field (element i of every array is span i), as rows ready to store, the caps of 040 applied. idx is the span''s 0-based index; problem is the first rule the span breaks (starting with the field''s name; p_problem[i] when the caller found one), null for a span to store.';

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


create or replace function tracing.store_spans(
  p_trace_id uuid[], p_span_id bigint[], p_parent_span_id bigint[], p_name text[], p_service text[], p_kind text[],
  p_start_time timestamptz[], p_end_time timestamptz[], p_status text[], p_status_message text[], p_attributes jsonb[],
  p_events jsonb[], p_links jsonb[], p_correlation_id uuid[], p_session_id uuid[], p_organization_id uuid[],
  p_problem text[], out recorded integer, out rejected jsonb
)
language plpgsql volatile
-- Definer rights: record_span_columns and record_spans call it for writers,
-- who need no grant on the tables; nobody else may call it.
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  valid integer;
begin
  with checked as materialized (
    select *
    from tracing.span_rows(
      p_trace_id, p_span_id, p_parent_span_id, p_name, p_service, p_kind, p_start_time, p_end_time, p_status,
      p_status_message, p_attributes, p_events, p_links, p_correlation_id, p_session_id, p_organization_id, p_problem
    )
  ),
  inserted as (
    insert into tracing.spans (
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time,
      status, status_message, attributes, span_events, links, correlation_id, session_id, organization_id
    )
    select
      r.trace_id, r.span_id, r.parent_span_id, r.name, r.service, r.kind, r.start_time, r.end_time,
      r.status, r.status_message, r.attributes, r.span_events, r.links, r.correlation_id, r.session_id, r.organization_id
    from (
      -- A span sent twice in one batch is stored once (its first copy).
      select distinct on (b.trace_id, b.span_id, b.organization_id) b.*,
             t.start_time as trace_start, t.end_time as trace_end
        from checked as b
        left join tracing.trace_summaries t
          on t.trace_id = b.trace_id and t.organization_id is not distinct from b.organization_id
       where b.problem is null
       order by b.trace_id, b.span_id, b.organization_id, b.idx
    ) as r
    -- The unique key holds start_time (tracing.spans is partitioned by it),
    -- so a span stored before with the same ids and another start time is
    -- looked for here: only in traces seen before, and there only inside
    -- the trace's time range (its summary's), which the probe gets as a
    -- parameter, so only the partitions of that range are read. A span
    -- that does not exist yet in another transaction is not seen: two such
    -- spans committed at once with different start times are both kept
    -- (docs/scaling.md).
    where r.trace_start is null
       or not exists (
         select from tracing.spans s
          where s.trace_id = r.trace_id and s.span_id = r.span_id
            and s.organization_id is not distinct from r.organization_id
            and s.start_time between r.trace_start and r.trace_end
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
  select
    (select count(*) from inserted),
    (select count(*) from checked c where c.problem is null),
    coalesce((
      select jsonb_agg(tracing.span_rejection(c.idx, c.trace_id, c.span_id, split_part(c.problem, ' ', 1), c.problem) order by c.idx)
        from checked c
       where c.problem is not null), '[]')
  into recorded, valid, rejected;

  -- Fewer stored than valid: retries (silent), or spans whose ids their
  -- organization already used for another span (rejected, 060).
  if recorded < valid then
    rejected := rejected || coalesce((
      select jsonb_agg(tracing.span_rejection(
               c.index, p_trace_id[c.index + 1], p_span_id[c.index + 1], null,
               'a different span with these ids is already recorded; the first one is kept') order by c.index)
        from tracing.span_conflicts(
          p_trace_id, p_span_id, p_parent_span_id, p_name, p_service, p_kind, p_start_time, p_end_time, p_status,
          p_status_message, p_attributes, p_events, p_links, p_correlation_id, p_session_id, p_organization_id, p_problem
        ) as c(index)), '[]');
  end if;
end
$$;

comment on function tracing.store_spans(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[], text[]) is
  E'The one insert of spans, behind tracing.record_span_columns and tracing.record_spans: stores the spans of the batch without a problem (p_problem[i] is one the caller found), folds them into tracing.trace_summaries, and answers with how many were newly recorded and the rejected ones (tracing.span_rejection objects, by index).';

revoke all on function tracing.store_spans(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[], text[]) from public;

create or replace function tracing.span_rejection(p_index bigint, p_trace_id uuid, p_span_id bigint, p_field text, p_reason text)
returns jsonb
language sql immutable parallel safe as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'index', p_index, 'trace_id', tracing.trace_id_to_hex(p_trace_id), 'span_id', tracing.span_id_to_hex(p_span_id),
    'field', p_field, 'reason', p_reason))
$$;

comment on function tracing.span_rejection(bigint, uuid, bigint, text, text) is
  E'One element of the rejected list of tracing.record_spans: {index (0-based), trace_id and span_id (W3C hex, when they could be read), field (the one at fault; absent when the span as a whole is), reason}.';

create or replace function tracing.jsonb_elements_array(p_array jsonb) returns jsonb[]
language sql immutable strict parallel safe as $$
  -- How OTLP ingest sends the attributes, events and links of a batch: one
  -- JSON array (a JSON null for a span without any), read with one jsonb
  -- parse. As a jsonb[] literal every quote of the JSON had to be escaped by
  -- the server and unescaped here: 500 spans' attributes cost Postgres about
  -- 0.8 ms that way and 0.4 ms this way, and the server about 0.2 ms to escape.
  -- Null when no span has the field (record_span_columns takes a null array).
  select array(select e.value from jsonb_array_elements(p_array) with ordinality as e(value, n) order by e.n)
$$;

comment on function tracing.jsonb_elements_array(jsonb) is
  E'The elements of the JSON array p_array, in order, as a jsonb[] (a JSON null stays a JSON null; null for null): how a writer sends one jsonb argument per span of tracing.record_span_columns as a single JSON text.';

create or replace function tracing.record_span_columns(
  p_trace_id uuid[], p_span_id bigint[], p_parent_span_id bigint[], p_name text[], p_service text[], p_kind text[],
  p_start_time timestamptz[], p_end_time timestamptz[], p_status text[], p_status_message text[], p_attributes jsonb[],
  p_events jsonb[], p_links jsonb[], p_correlation_id uuid[], p_session_id uuid[], p_organization_id uuid[],
  out recorded integer, out rejected jsonb
)
language plpgsql volatile
-- Definer rights: writers call this function and need no grant on the tables.
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  spans integer := coalesce(cardinality(p_trace_id), 0);
  bad_field text;
begin
  -- unnest would pad a short array with nulls, i.e. move fields to other spans.
  select a.name into bad_field
    from (values ('p_span_id', cardinality(p_span_id)), ('p_parent_span_id', cardinality(p_parent_span_id)),
                 ('p_name', cardinality(p_name)), ('p_service', cardinality(p_service)), ('p_kind', cardinality(p_kind)),
                 ('p_start_time', cardinality(p_start_time)), ('p_end_time', cardinality(p_end_time)),
                 ('p_status', cardinality(p_status)), ('p_status_message', cardinality(p_status_message)),
                 ('p_attributes', cardinality(p_attributes)), ('p_events', cardinality(p_events)), ('p_links', cardinality(p_links)),
                 ('p_correlation_id', cardinality(p_correlation_id)), ('p_session_id', cardinality(p_session_id)),
                 ('p_organization_id', cardinality(p_organization_id))) as a(name, items)
   where a.items <> spans
   limit 1;
  if bad_field is not null then
    raise exception '% must be null or have one element per span (% in p_trace_id)', bad_field, spans using errcode = '22023';
  end if;
  if spans = 0 then
    recorded := 0;
    rejected := '[]';
    return;
  end if;
  select s.recorded, s.rejected into recorded, rejected
    from tracing.store_spans(
      p_trace_id, p_span_id, p_parent_span_id, p_name, p_service, p_kind, p_start_time, p_end_time, p_status,
      p_status_message, p_attributes, p_events, p_links, p_correlation_id, p_session_id, p_organization_id, null
    ) as s;
end
$$;

comment on function tracing.record_span_columns(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[]) is
  E'Records finished spans given as one array per field (element i of every array is span i; an array may be null when no span has that field): the fields and rules of tracing.record_spans, with ids and times already typed (trace ids as uuid, span ids as the signed 64-bit value of their 8 bytes). Spans already recorded are left unchanged, so retries are safe. Answers recorded (spans newly recorded) and rejected: a JSON array of the spans not stored, each {index (0-based), trace_id, span_id, field, reason}, while the rest of the batch is stored. Arrays of different lengths raise SQLSTATE 22023 naming the argument.';

revoke all on function tracing.record_span_columns(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[]) from public;
grant execute on function tracing.record_span_columns(uuid[], bigint[], bigint[], text[], text[], text[], timestamptz[], timestamptz[], text[], text[], jsonb[], jsonb[], jsonb[], uuid[], uuid[], uuid[]) to tracegres_writer;

create or replace function tracing.span_columns_from_json(
  p_spans jsonb, p_unreadable_start_times bigint[] default '{}', p_unreadable_end_times bigint[] default '{}'
)
returns table (
  trace_id uuid[], span_id bigint[], parent_span_id bigint[], name text[], service text[], kind text[],
  start_time timestamptz[], end_time timestamptz[], status text[], status_message text[], attributes jsonb[],
  events jsonb[], links jsonb[], correlation_id uuid[], session_id uuid[], organization_id uuid[], problem text[]
)
language sql stable as $$
  -- The JSON batch as the typed arrays of tracing.store_spans, plus the
  -- first problem of each span's text (hex ids, ISO 8601 times, uuids);
  -- the rest of the rules are store_spans' own. A field whose text is
  -- malformed goes on as null. p_unreadable_*_times are spans whose time
  -- has the right shape but no such instant (2025-02-30): the cast below
  -- would raise, so record_spans finds them first when it does.
  -- Materialized: each conversion is used twice (its column and the
  -- problem), and inlined it was computed twice, doubling the cost.
  with span as materialized (
    select
      e.n - 1 as i,
      jsonb_typeof(e.value) = 'object' as is_object,
      r.*,
      tracing.hex_to_trace_id(r.trace_id) as trace_uuid,
      tracing.hex_to_span_id(r.span_id) as span_bigint,
      -- OTLP gives a root span an empty parent id.
      case when r.parent_span_id <> '' then tracing.hex_to_span_id(r.parent_span_id) end as parent_bigint,
      -- ISO 8601 with an explicit offset: a time without one would be read
      -- in the session's time zone, i.e. silently shifted.
      coalesce(r.start_time ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$', false) as start_shaped,
      coalesce(r.end_time ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$', false) as end_shaped,
      tracing.text_to_uuid(r.correlation_id) as correlation_uuid,
      tracing.text_to_uuid(r.session_id) as session_uuid,
      tracing.text_to_uuid(r.organization_id) as organization_uuid
    from jsonb_array_elements(p_spans) with ordinality as e(value, n)
    -- jsonb_to_record would refuse a non-object and fail the whole batch.
    cross join lateral jsonb_to_record(case when jsonb_typeof(e.value) = 'object' then e.value else '{}' end) as r(
      trace_id text, span_id text, parent_span_id text, name text, service text, kind text,
      start_time text, end_time text, status text, status_message text, attributes jsonb,
      events jsonb, links jsonb, correlation_id text, session_id text, organization_id text
    )
  )
  select
    array_agg(s.trace_uuid order by s.i), array_agg(s.span_bigint order by s.i), array_agg(s.parent_bigint order by s.i),
    array_agg(s.name order by s.i), array_agg(s.service order by s.i), array_agg(s.kind order by s.i),
    array_agg(case when s.start_shaped and s.i <> all (p_unreadable_start_times) then s.start_time::timestamptz end order by s.i),
    array_agg(case when s.end_shaped and s.i <> all (p_unreadable_end_times) then s.end_time::timestamptz end order by s.i),
    array_agg(s.status order by s.i), array_agg(s.status_message order by s.i), array_agg(s.attributes order by s.i),
    array_agg(s.events order by s.i), array_agg(s.links order by s.i),
    array_agg(s.correlation_uuid order by s.i), array_agg(s.session_uuid order by s.i), array_agg(s.organization_uuid order by s.i),
    array_agg(case
      when not s.is_object then 'span must be a JSON object'
      when s.trace_uuid is null then 'trace_id must be 32 lowercase hex characters, not all zeros'
      when s.span_bigint is null then 'span_id must be 16 lowercase hex characters, not all zeros'
      when s.parent_span_id <> '' and s.parent_bigint is null then
        'parent_span_id must be 16 lowercase hex characters, not all zeros, or null'
      when s.name is null or s.name = '' then 'name is required'
      when not s.start_shaped then 'start_time must be an ISO 8601 timestamp with a time zone offset'
      when s.i = any (p_unreadable_start_times) then 'start_time is not a valid timestamp'
      when not s.end_shaped then 'end_time must be an ISO 8601 timestamp with a time zone offset'
      when s.i = any (p_unreadable_end_times) then 'end_time is not a valid timestamp'
      when s.correlation_id is not null and s.correlation_uuid is null then 'correlation_id must be a uuid (8-4-4-4-12 hex), not the nil uuid'
      when s.session_id is not null and s.session_uuid is null then 'session_id must be a uuid (8-4-4-4-12 hex), not the nil uuid'
      when s.organization_id is not null and s.organization_uuid is null then
        'organization_id must be a uuid (8-4-4-4-12 hex), not the nil uuid'
    end order by s.i)
  from span s
$$;

comment on function tracing.span_columns_from_json(jsonb, bigint[], bigint[]) is
  E'A JSON array of span objects (the p_spans of tracing.record_spans) as one typed array per field, plus problem: the first malformed text of each span (hex id, ISO 8601 time, uuid), null when there is none. p_unreadable_start_times / p_unreadable_end_times: 0-based indexes of spans whose time has the right shape but names no instant.';

create or replace function tracing.is_timestamptz(p_value text) returns boolean
-- Stable: how a time without an offset reads depends on the session's zone.
language plpgsql stable parallel safe as $$
begin
  -- Only record_spans' fallback calls it, for a batch whose times do not
  -- all cast: a subtransaction per call is too dear for every span.
  perform p_value::timestamptz;
  return true;
exception when invalid_datetime_format or datetime_field_overflow then
  return false;
end
$$;

comment on function tracing.is_timestamptz(text) is
  E'Whether p_value casts to timestamptz without an error.';

create or replace function tracing.record_spans(p_spans jsonb, out recorded integer, out rejected jsonb)
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  c record;
  unreadable_start bigint[];
  unreadable_end bigint[];
begin
  if p_spans is null or jsonb_typeof(p_spans) <> 'array' then
    raise exception 'p_spans must be a JSON array of span objects'
      using errcode = '22023', detail = format('got %s', coalesce(jsonb_typeof(p_spans), 'null'));
  end if;
  if jsonb_array_length(p_spans) = 0 then
    recorded := 0;
    rejected := '[]';
    return;
  end if;
  begin
    select * into c from tracing.span_columns_from_json(p_spans);
  exception
    -- A time of the right shape can still name no instant (2024-02-30,
    -- 25:00), and its cast fails the statement: find those spans, one cast
    -- at a time, and read the batch again without their times.
    when invalid_datetime_format or datetime_field_overflow then
      select array_agg(e.n - 1) filter (where not tracing.is_timestamptz(e.value ->> 'start_time')),
             array_agg(e.n - 1) filter (where not tracing.is_timestamptz(e.value ->> 'end_time'))
        into unreadable_start, unreadable_end
        from jsonb_array_elements(p_spans) with ordinality as e(value, n)
       where jsonb_typeof(e.value) = 'object';
      select * into c
        from tracing.span_columns_from_json(p_spans, coalesce(unreadable_start, '{}'), coalesce(unreadable_end, '{}'));
  end;
  select s.recorded, s.rejected into recorded, rejected
    from tracing.store_spans(
      c.trace_id, c.span_id, c.parent_span_id, c.name, c.service, c.kind, c.start_time, c.end_time, c.status,
      c.status_message, c.attributes, c.events, c.links, c.correlation_id, c.session_id, c.organization_id, c.problem
    ) as s;
end
$$;

comment on function tracing.record_spans(jsonb) is
  E'Records finished spans. p_spans is a JSON array of {trace_id, span_id, parent_span_id (W3C hex; parent null or empty for a root), name, service, kind (internal|server|client|producer|consumer, default internal), start_time, end_time (ISO 8601 with offset), status (unset|ok|error, default unset), status_message, attributes (object), events and links (OpenTelemetry span events and links, arrays), correlation_id, session_id, organization_id (uuids)}. Spans already recorded are left unchanged, so retries are safe. Answers recorded (spans newly recorded) and rejected: a JSON array of the spans not stored, each {index (0-based), trace_id, span_id, field, reason}, while the rest of the batch is stored; call it as select * from tracing.record_spans(...). p_spans not a JSON array raises SQLSTATE 22023.';

revoke all on function tracing.record_spans(jsonb) from public;
grant execute on function tracing.record_spans(jsonb) to tracegres_writer;
