--! Previous: sha1:fb8103bf39bf0931232fc8b1597194a09d0e1d44
--! Hash: sha1:3635d07ade8fcf73605d2086be61d2bc2da80640
--! Message: Span identity, sampling decisions, export queue rows and idempotency keys scoped by organization; writers settle only their own organization events

-- Tenants never write into one another: span identity, sampling decisions,
-- export queue rows and idempotency keys are scoped by organization.
--
-- Span and trace ids are chosen by clients and travel in every traceparent,
-- so a global (trace_id, span_id) key let whoever recorded the ids first
-- make another tenant's later span silently vanish (on conflict do nothing).
-- organization_id stays nullable (a single-tenant deployment writes none),
-- so the keys are unique nulls not distinct, as trace_summaries already is.
-- trace_id stays first: the timeline and the export queue read a trace
-- through that prefix.

alter table tracing.spans drop constraint if exists spans_pkey;
alter table tracing.spans add constraint spans_trace_span_organization
  unique nulls not distinct (trace_id, span_id, organization_id);

-- One sampling decision per trace and organization: one tenant's trace
-- (and its error or latency) no longer decides another's spans.
alter table tracing.trace_sampling add column if not exists organization_id uuid;
alter table tracing.trace_sampling drop constraint if exists trace_sampling_pkey;
-- Upgraded databases: each tenant that has spans of a decided trace gets
-- that decision, so nothing already decided is decided again.
insert into tracing.trace_sampling (trace_id, organization_id, sampled_by, sample_rate, environment, decided_at)
select distinct d.trace_id, s.organization_id, d.sampled_by, d.sample_rate, d.environment, d.decided_at
  from tracing.trace_sampling d
  join tracing.spans s on s.trace_id = d.trace_id
 where d.organization_id is null and s.organization_id is not null;
alter table tracing.trace_sampling add constraint trace_sampling_trace_organization
  unique nulls not distinct (trace_id, organization_id);

drop policy if exists select_visible_trace on tracing.trace_sampling;
create policy select_own_organization on tracing.trace_sampling for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));

-- Queue rows name their span by the same key as tracing.spans.
alter table tracing.otlp_outbox add column if not exists organization_id uuid;
alter table tracing.otlp_dead_letters add column if not exists organization_id uuid;
update tracing.otlp_outbox o set organization_id = s.organization_id
  from tracing.spans s
 where s.trace_id = o.trace_id and s.span_id = o.span_id and s.organization_id is not null;
update tracing.otlp_dead_letters o set organization_id = s.organization_id
  from tracing.spans s
 where s.trace_id = o.trace_id and s.span_id = o.span_id and s.organization_id is not null;

-- An idempotency key is unique within its organization: another tenant's
-- key (keys are often predictable: an order id) must not stop a new event.
drop index if exists tracing.domain_events_idempotency_key_idx;
create unique index domain_events_idempotency_key_idx
  on tracing.domain_events (organization_id, (event_metadata->>'idempotency_key')) nulls not distinct
  where event_metadata ? 'idempotency_key';

-- Writers settle processing state of their own organization's events only
-- (the organization of the request's jwt.claims.organization_id; a writer
-- without one settles only events without an organization).
drop policy if exists update_processing_state on tracing.domain_events;
create policy update_processing_state on tracing.domain_events for update to tracegres_writer
  using (organization_id is not distinct from (select tracing.current_organization_id()))
  with check (organization_id is not distinct from (select tracing.current_organization_id()));
