--! Previous: sha1:c87bacdd8856a2799c79ccae58692d96a1836477
--! Hash: sha1:347a003cfb1e5e64a289bbea096c4c80913b5138
--! Message: Spans, trace summaries, row-level security

-- Spans, trace summaries and the read side's access control.
--
-- Who sees what (row-level security decides, the API functions run with the
-- caller's rights):
--   tracegres_anonymous  a request without a valid token: may call the api
--                        functions, but no policy lets it see a single row;
--   tracegres_reader     a tenant: rows whose organization_id is the
--                        request's jwt.claims.organization_id;
--   tracegres_admin      every row.
-- Each role is a member of the one above it, so the table and function
-- grants are made once, to tracegres_anonymous, and only the policies differ.

do $$
begin
  if not exists (select from pg_roles where rolname = 'tracegres_anonymous') then
    create role tracegres_anonymous nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'tracegres_admin') then
    create role tracegres_admin nologin;
  end if;
  -- The role the API server logs in as; it has no rights of its own
  -- (noinherit) and switches to one of the three per request (`set role`).
  -- Deployments give it a password and LOGIN.
  if not exists (select from pg_roles where rolname = 'tracegres_authenticator') then
    create role tracegres_authenticator nologin noinherit;
  end if;
end
$$;

grant tracegres_anonymous to tracegres_reader;
grant tracegres_reader to tracegres_admin;
grant tracegres_anonymous, tracegres_reader, tracegres_admin to tracegres_authenticator;

-- Invoker-rights api functions reach the tables and helper functions of
-- `tracing`; grants on individual objects still apply.
grant usage on schema api to tracegres_anonymous;
grant usage on schema tracing to tracegres_anonymous;

-- The tenant of the current request. The API server sets
-- jwt.claims.organization_id from the verified token; anything that is not a
-- uuid (absent, empty after a pooled connection's earlier request, garbage)
-- means "no tenant" rather than an error, so such a request sees nothing.
-- Defined here, not in db/functions, because the policies below depend on it.
create or replace function tracing.current_organization_id() returns uuid
language sql stable parallel safe as $$
  select case
    when claim ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    then claim::uuid
  end
  from (select current_setting('jwt.claims.organization_id', true) as claim) as setting
$$;

comment on function tracing.current_organization_id() is
  E'The organization (tenant) of the current request, from the jwt.claims.organization_id setting; null when absent or not a uuid.';

grant execute on function tracing.current_organization_id() to tracegres_anonymous;

----------------------------------------------------------------------------
-- Spans: one row per finished operation, OpenTelemetry's span model.

create table tracing.spans (
  -- Ids in their binary size, like tracing.domain_events; the API speaks W3C hex.
  trace_id uuid not null,
  span_id bigint not null,
  parent_span_id bigint,
  name text not null,
  -- OpenTelemetry's service.name resource attribute.
  service text not null,
  kind text not null default 'internal',
  start_time timestamptz not null,
  end_time timestamptz not null,
  -- Derived so it can never disagree with the two timestamps.
  duration_ms double precision generated always as (extract(epoch from (end_time - start_time)) * 1000) stored,
  status text not null default 'unset',
  status_message text,
  attributes jsonb not null default '{}',
  -- OpenTelemetry span events ([{name, time, attributes}]) and links
  -- ([{trace_id, span_id, attributes}]), kept as recorded for export;
  -- null when the span has none, which costs no space.
  span_events jsonb,
  links jsonb,
  correlation_id uuid,
  session_id uuid,
  organization_id uuid,
  recorded_at timestamptz not null default now(),
  -- A trace id plus a span id names a span (W3C); it is also what makes a
  -- retried write idempotent (tracing.record_spans: on conflict do nothing).
  primary key (trace_id, span_id),
  constraint spans_kind_check check (kind in ('internal', 'server', 'client', 'producer', 'consumer')),
  constraint spans_status_check check (status in ('unset', 'ok', 'error')),
  constraint spans_name_not_blank check (name <> ''),
  constraint spans_service_not_blank check (service <> ''),
  constraint spans_end_after_start check (end_time >= start_time),
  constraint spans_attributes_object check (jsonb_typeof(attributes) = 'object'),
  constraint spans_span_events_array check (jsonb_typeof(span_events) = 'array'),
  constraint spans_links_array check (jsonb_typeof(links) = 'array'),
  -- W3C: all-zero ids are invalid.
  constraint spans_ids_not_zero check (
    trace_id <> '00000000-0000-0000-0000-000000000000' and span_id <> 0 and parent_span_id <> 0
  )
);

comment on table tracing.spans is
  E'Finished spans (OpenTelemetry model), written only through tracing.record_spans. Domain events belong to a span through (trace_id, span_id).';

-- No index beyond the primary key: the timeline reads a trace through its
-- (trace_id, ...) prefix, and search goes through tracing.trace_summaries.
-- Every extra index here would be paid on the ingest path (20k spans/s).

alter table tracing.spans enable row level security;

----------------------------------------------------------------------------
-- One row per trace (and organization), maintained by tracing.record_spans,
-- so that trace search ("traces of service X slower than 2 s in the last
-- hour") reads one narrow row per trace instead of aggregating every span of
-- the time window at query time.

create table tracing.trace_summaries (
  trace_id uuid not null,
  -- A trace id is chosen by clients, so two tenants may (maliciously or by
  -- accident) use the same one: each gets their own summary.
  organization_id uuid,
  -- The whole trace: earliest start and latest end of its recorded spans.
  start_time timestamptz not null,
  end_time timestamptz not null,
  duration_ms double precision generated always as (extract(epoch from (end_time - start_time)) * 1000) stored,
  -- The earliest span without a parent (null while no root is recorded).
  root_span_id bigint,
  root_name text,
  root_service text,
  root_start_time timestamptz,
  services text[] not null default '{}',
  span_count integer not null default 0,
  error_count integer not null default 0,
  -- The first session and correlation ids seen on the trace's spans.
  session_id uuid,
  correlation_id uuid,
  updated_at timestamptz not null default now(),
  constraint trace_summaries_trace_organization unique nulls not distinct (trace_id, organization_id)
);

comment on table tracing.trace_summaries is
  E'Per-trace aggregates of tracing.spans (start, end, duration, root, services, counts), maintained by tracing.record_spans for trace search.';

-- Search lists traces newest first with a (start_time, trace_id) cursor.
create index trace_summaries_start_time_idx on tracing.trace_summaries (start_time desc, trace_id desc);
-- A tenant's search: the policy's organization_id equality plus the order.
create index trace_summaries_organization_start_time_idx
  on tracing.trace_summaries (organization_id, start_time desc, trace_id desc) where organization_id is not null;
-- "Traces with errors" is the most common filter and errors are rare.
create index trace_summaries_failed_start_time_idx
  on tracing.trace_summaries (start_time desc, trace_id desc) where error_count > 0;
-- The dashboard's session view.
create index trace_summaries_session_id_idx
  on tracing.trace_summaries (session_id, start_time) where session_id is not null;

alter table tracing.trace_summaries enable row level security;

----------------------------------------------------------------------------
-- Policies (written before the grants they make useful). Permissive
-- policies add up: an admin, being a member of tracegres_reader, also
-- matches the tenant policy, which changes nothing. tracegres_anonymous has
-- no policy at all, so it sees no row of any table.

create policy select_own_organization on tracing.domain_events for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.domain_events for select to tracegres_admin
  using (true);

create policy select_own_organization on tracing.spans for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.spans for select to tracegres_admin
  using (true);

create policy select_own_organization on tracing.trace_summaries for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.trace_summaries for select to tracegres_admin
  using (true);

-- Read-only: the api functions run with the caller's rights and need SELECT;
-- no role of the read side may insert, update or delete. Spans and summaries
-- are written only by tracing.record_spans (security definer), so writers
-- need no grant on them either.
grant select on tracing.domain_events, tracing.spans, tracing.trace_summaries to tracegres_anonymous;

----------------------------------------------------------------------------
-- Row types of the api functions. Named types (rather than `returns table`)
-- so that every function returning events returns the same GraphQL type.
-- Ids are W3C hex text, as callers write them.

create type api.event as (
  id bigint,
  stream_type text,
  stream_id text,
  event_type text,
  event_data jsonb,
  event_metadata jsonb,
  organization_id uuid,
  created_at timestamptz,
  processed_at timestamptz,
  processing_error text,
  correlation_id uuid,
  session_id uuid,
  trace_id text,
  span_id text,
  parent_span_id text,
  trace_field_errors jsonb
);

comment on type api.event is E'A domain event with its trace context (ids as W3C hex).';
comment on column api.event.processing_error is E'Why processing this event failed; null when it did not fail.';
comment on column api.event.trace_id is E'W3C trace id, 32 lowercase hex characters.';
comment on column api.event.span_id is E'W3C span id of the span that emitted the event, 16 lowercase hex characters.';
comment on column api.event.trace_field_errors is E'Trace fields of event_metadata that were malformed and not promoted: {"field": {"value": ..., "reason": ...}}.';

create type api.trace_summary as (
  trace_id text,
  organization_id uuid,
  root_span_id text,
  root_name text,
  root_service text,
  services text[],
  start_time timestamptz,
  end_time timestamptz,
  duration_ms double precision,
  span_count integer,
  inferred_span_count integer,
  error_count integer,
  event_count integer,
  status text,
  session_id uuid,
  correlation_id uuid
);

comment on type api.trace_summary is E'One trace at a glance: its root, services, time span and counts.';
comment on column api.trace_summary.root_name is E'Name (operation) of the earliest span without a parent; null when no root span was recorded.';
comment on column api.trace_summary.duration_ms is E'Duration of the whole trace: latest span end minus earliest span start (not the root span''s duration).';
comment on column api.trace_summary.span_count is E'Recorded spans.';
comment on column api.trace_summary.inferred_span_count is E'Spans known only from the events they emitted (never recorded, e.g. the process died).';
comment on column api.trace_summary.error_count is E'Spans with status error.';
comment on column api.trace_summary.event_count is E'Domain events of the trace.';
comment on column api.trace_summary.status is E'error when any span has status error, ok otherwise.';

create type api.timeline_span as (
  trace_id text,
  span_id text,
  parent_span_id text,
  recorded_parent_span_id text,
  name text,
  service text,
  kind text,
  status text,
  status_message text,
  attributes jsonb,
  start_time timestamptz,
  end_time timestamptz,
  depth integer,
  position integer,
  sibling_index integer,
  child_count integer,
  offset_ms double precision,
  duration_ms double precision,
  self_time_ms double precision,
  on_critical_path boolean,
  is_inferred boolean,
  is_placeholder boolean,
  breaks_cycle boolean,
  event_count integer,
  events jsonb
);

comment on type api.timeline_span is E'A span placed in its trace''s tree, with timing relative to the trace.';
comment on column api.timeline_span.parent_span_id is E'Parent in the tree as shown: the recorded parent, a placeholder for a missing parent, or null for a root.';
comment on column api.timeline_span.recorded_parent_span_id is E'Parent as recorded; differs from parent_span_id only where a parent cycle was broken.';
comment on column api.timeline_span.depth is E'0 for roots.';
comment on column api.timeline_span.position is E'Depth-first position in the tree (0-based); rows come in this order.';
comment on column api.timeline_span.sibling_index is E'Order among the children of the same parent, by start time (0-based).';
comment on column api.timeline_span.offset_ms is E'Start relative to the start of the trace.';
comment on column api.timeline_span.self_time_ms is E'Duration minus the time covered by its children (overlapping children counted once, clipped to this span).';
comment on column api.timeline_span.on_critical_path is E'On the chain of spans that determined the trace''s total latency.';
comment on column api.timeline_span.is_inferred is E'Never recorded as a span; inferred from the events it emitted (start at its first event, end at its last).';
comment on column api.timeline_span.is_placeholder is E'Stands for a parent span that is referenced but was never recorded nor emitted events; spans the time of its children.';
comment on column api.timeline_span.breaks_cycle is E'Its recorded parent chain loops back on itself; it is shown as a root to break the cycle.';
comment on column api.timeline_span.events is E'The domain events this span emitted, oldest first: [{id, event_type, stream_type, stream_id, created_at, offset_ms, processing_error, event_data}].';
