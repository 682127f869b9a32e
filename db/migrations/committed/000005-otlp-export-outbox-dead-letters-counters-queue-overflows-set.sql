--! Previous: sha1:c0ce617f3b4d21472742c519cdec92e2cc929621
--! Hash: sha1:b4b4c85f98f4f55b1c18a14f1fae0277c3836124
--! Message: OTLP export: outbox, dead letters, counters, queue overflows, settings

-- OTLP export: spans waiting to be sent to an OpenTelemetry collector, the
-- spans a collector refused for good, and the exporter's counters.
--
-- The queue is filled by a trigger on tracing.spans in the transaction that
-- records the span (db/functions/otlp_export.sql), so a span is queued if
-- and only if it was stored. Whether it is sent waits for its trace's
-- sampling decision: the exporter skips spans of undecided traces and
-- discards those of dropped ones. Delivery is at-least-once.

create table tracing.otlp_export_settings (
  singleton boolean primary key default true constraint otlp_export_settings_singleton check (singleton),
  -- Off until an exporter is configured and starts (it turns this on), so a
  -- deployment that never exports never pays for the queue.
  enabled boolean not null default false,
  -- The queue's bound in spans. Past it new spans are not queued (the span
  -- itself is stored as always), a warning is raised and the shortfall is
  -- counted in tracing.otlp_queue_overflows.
  max_queued_spans bigint not null default 10000000
    constraint otlp_export_settings_max_queued_positive check (max_queued_spans > 0),
  -- Send only spans whose trace sampling kept (the default), or every span.
  follow_sampling boolean not null default true,
  -- How long a span whose trace awaits its sampling decision is set aside
  -- before the exporter looks at it again.
  undecided_recheck interval not null default interval '10 seconds'
    constraint otlp_export_settings_recheck_positive check (undecided_recheck > interval '0')
);

insert into tracing.otlp_export_settings default values;

comment on table tracing.otlp_export_settings is
  E'OTLP export: whether spans are queued, the queue bound, whether export follows sampling decisions.';

create table tracing.otlp_outbox (
  id bigint generated always as identity primary key,
  trace_id uuid not null,
  span_id bigint not null,
  enqueued_at timestamptz not null default now(),
  -- Not before this: pushed back by retries (backoff) and by undecided traces.
  available_at timestamptz not null default now(),
  attempts integer not null default 0
);

-- The exporter's claim order.
create index otlp_outbox_available_at_idx on tracing.otlp_outbox (available_at, id);

comment on table tracing.otlp_outbox is
  E'Spans waiting for OTLP export, one row per span, queued by the span''s own transaction and deleted once a collector accepted it.';

create table tracing.otlp_dead_letters (
  id bigint generated always as identity primary key,
  trace_id uuid not null,
  span_id bigint not null,
  enqueued_at timestamptz not null,
  dead_lettered_at timestamptz not null default now(),
  attempts integer not null,
  -- The collector's answer: HTTP status (null for a partial success) and its message.
  http_status integer,
  reason text not null,
  endpoint text
);

create index otlp_dead_letters_at_idx on tracing.otlp_dead_letters (dead_lettered_at);

comment on table tracing.otlp_dead_letters is
  E'Spans a collector refused for good (a 4xx other than 429, or a partial-success rejection), with its reason; tracing.otlp_requeue_dead_letters sends them again.';

create table tracing.otlp_export_counters (
  singleton boolean primary key default true constraint otlp_export_counters_singleton check (singleton),
  exported_spans bigint not null default 0,
  -- Span sends that failed and were scheduled again (one span retried
  -- three times counts three).
  retried_spans bigint not null default 0,
  dead_lettered_spans bigint not null default 0,
  batches bigint not null default 0,
  last_exported_at timestamptz,
  last_error text,
  last_error_at timestamptz
);

insert into tracing.otlp_export_counters default values;

comment on table tracing.otlp_export_counters is
  E'Running totals of the OTLP exporters (all processes together).';

-- Append-only, so a full queue never makes inserting transactions wait on
-- one counter row.
create table tracing.otlp_queue_overflows (
  at timestamptz not null default now(),
  spans_not_queued bigint not null
);

create index otlp_queue_overflows_at_idx on tracing.otlp_queue_overflows (at);

comment on table tracing.otlp_queue_overflows is
  E'Statements whose spans were not queued for export because the queue was at its bound.';

alter table tracing.otlp_export_settings enable row level security;
alter table tracing.otlp_outbox enable row level security;
alter table tracing.otlp_dead_letters enable row level security;
alter table tracing.otlp_export_counters enable row level security;
alter table tracing.otlp_queue_overflows enable row level security;

-- Operators (admins) read everything; only the owner (the exporter and the
-- span trigger, security definer) writes.
create policy select_all on tracing.otlp_export_settings for select to tracegres_admin using (true);
create policy select_all on tracing.otlp_outbox for select to tracegres_admin using (true);
create policy select_all on tracing.otlp_dead_letters for select to tracegres_admin using (true);
create policy select_all on tracing.otlp_export_counters for select to tracegres_admin using (true);
create policy select_all on tracing.otlp_queue_overflows for select to tracegres_admin using (true);
grant select on tracing.otlp_export_settings, tracing.otlp_outbox, tracing.otlp_dead_letters,
  tracing.otlp_export_counters, tracing.otlp_queue_overflows to tracegres_admin;
