--! Previous: sha1:1720ecd2868104f7c2e7841eb2c13fc1212e5469
--! Hash: sha1:c7196f7b03425f15e3e42b06c1b8c27c02a23cf3
--! Message: Alerts: rules, alerts grouped by fingerprint and window, the delivery queue with dead letters, settings

-- Alerts: rules, the alerts they raise (grouped by fingerprint), and the
-- delivery queue.
--
-- A failed event (processing_error set) that an event rule matches raises
-- or counts an alert in the event's own transaction (a trigger in
-- db/functions/221-alert-queue.sql), so an alert exists if and only if the
-- failure was committed. Rate rules are evaluated once a minute
-- (db/functions/222-alert-rate-rules.sql). server/alerts/ delivers.

create table tracing.alert_rules (
  id bigint generated always as identity primary key,
  -- null: the rule watches every organization (only admins see it).
  organization_id uuid,
  name text not null,
  kind text not null,
  -- Event rules: event_type and stream_type patterns, '*' matching any
  -- characters; null matches anything.
  event_type_pattern text,
  stream_type_pattern text,
  -- Rate rules: the RED metric of a service (and an operation, null: each
  -- of its operations) over the last window, compared with the threshold.
  service text,
  operation text,
  metric text,
  threshold double precision,
  window_seconds integer,
  -- Fewer requests than this in the window never fire (one slow request is
  -- not a p95).
  min_requests integer not null default 1,
  channel text not null,
  -- A Slack incoming-webhook URL, a webhook URL, or email addresses
  -- separated by commas.
  target text not null,
  -- The webhook's HMAC-SHA256 key; never readable over the api.
  secret text,
  has_secret boolean generated always as (secret is not null) stored,
  -- Repeats of one fingerprint within this many seconds are one alert.
  group_seconds integer not null default 300,
  -- At most this many alerts an hour are delivered; the rest are recorded.
  max_alerts_per_hour integer not null default 20,
  muted_until timestamptz,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint alert_rules_name_not_blank check (btrim(name) <> ''),
  constraint alert_rules_kind_check check (kind in ('event', 'rate')),
  constraint alert_rules_channel_check check (channel in ('slack', 'webhook', 'email')),
  constraint alert_rules_metric_check check (metric in ('error_rate', 'p95_ms')),
  constraint alert_rules_event_fields check (
    kind <> 'event' or (service is null and operation is null and metric is null and threshold is null and window_seconds is null)),
  constraint alert_rules_rate_fields check (
    kind <> 'rate' or (service is not null and metric is not null and threshold is not null and window_seconds is not null
                       and event_type_pattern is null and stream_type_pattern is null)),
  constraint alert_rules_window_range check (window_seconds between 60 and 86400),
  constraint alert_rules_group_range check (group_seconds between 0 and 86400),
  constraint alert_rules_rate_limit_range check (max_alerts_per_hour between 1 and 10000),
  constraint alert_rules_min_requests_positive check (min_requests >= 1)
);

comment on table tracing.alert_rules is
  E'Alert rules: event rules (a failed event matching an event-type or stream-type pattern) and rate rules (a service''s error rate or p95 duration over a window crossing a threshold), each with its channel, grouping window, rate limit and mute.';

-- The trigger looks up the enabled event rules of one organization (and
-- those of every organization) on each failed event.
create index alert_rules_event_idx on tracing.alert_rules (organization_id) where kind = 'event' and enabled;

create table tracing.alerts (
  id bigint generated always as identity primary key,
  rule_id bigint not null references tracing.alert_rules (id) on delete cascade,
  organization_id uuid,
  -- What makes two firings of a rule the same alert: for an event rule the
  -- event type, stream type and error; for a rate rule service/operation.
  fingerprint text not null,
  -- The fixed grouping window the alert belongs to (date_bin of its first
  -- firing by the rule's group_seconds): repeats in it count here.
  group_start timestamptz not null,
  first_at timestamptz not null default now(),
  last_at timestamptz not null default now(),
  repeat_count integer not null default 1,
  -- queued: delivery is queued; muted / rate_limited: recorded, not sent;
  -- test: a sample of `tracegres alerts test`, outside the rate limit.
  state text not null,
  -- The first firing: for event rules its event id and what it said.
  event_id bigint,
  details jsonb not null default '{}',
  constraint alerts_state_check check (state in ('queued', 'muted', 'rate_limited', 'test')),
  constraint alerts_group unique (rule_id, fingerprint, group_start)
);

comment on table tracing.alerts is
  E'Alerts raised by rules, one per rule, fingerprint and grouping window, with how often it repeated.';

create index alerts_first_at_idx on tracing.alerts (first_at desc, id desc);
-- The rate limit counts a rule's alerts of the last hour.
create index alerts_rule_first_at_idx on tracing.alerts (rule_id, first_at desc);

create table tracing.alert_deliveries (
  id bigint generated always as identity primary key,
  alert_id bigint not null references tracing.alerts (id) on delete cascade,
  -- first: the alert as raised; summary: its repeats, once its window ends;
  -- test: a sample sent by `tracegres alerts test`.
  kind text not null,
  status text not null default 'queued',
  enqueued_at timestamptz not null default now(),
  -- Not before this: the end of the window for a summary, backoff after a failure.
  available_at timestamptz not null default now(),
  attempts integer not null default 0,
  sent_at timestamptz,
  last_error text,
  -- The receiver's answer, when it gave one.
  http_status integer,
  constraint alert_deliveries_kind_check check (kind in ('first', 'summary', 'test')),
  constraint alert_deliveries_status_check check (status in ('queued', 'sent', 'dead_letter'))
);

comment on table tracing.alert_deliveries is
  E'Alert messages to send and sent: the delivery queue (status queued), what was sent, and the dead letters (refused for good or out of attempts).';

-- The delivery loop's claim order, over the queued rows only.
create index alert_deliveries_queued_idx on tracing.alert_deliveries (available_at, id) where status = 'queued';
create index alert_deliveries_alert_idx on tracing.alert_deliveries (alert_id);

create table tracing.alert_settings (
  singleton boolean primary key default true constraint alert_settings_singleton check (singleton),
  -- Attempts before a delivery becomes a dead letter.
  max_attempts integer not null default 10 constraint alert_settings_max_attempts_range check (max_attempts between 1 and 1000),
  -- Backoff after a failed attempt: backoff_initial doubled per attempt, at
  -- most backoff_max, half of it random (so senders do not retry in step).
  backoff_initial interval not null default interval '1 second'
    constraint alert_settings_backoff_initial_positive check (backoff_initial > interval '0'),
  backoff_max interval not null default interval '5 minutes'
    constraint alert_settings_backoff_max_positive check (backoff_max >= backoff_initial),
  -- The minute the in-process scheduler last evaluated the rate rules.
  rate_rules_claimed_minute timestamptz
);

insert into tracing.alert_settings default values;

comment on table tracing.alert_settings is
  E'Alert delivery settings (attempts before a dead letter, backoff) and the in-process rate-rule schedule''s last claimed minute.';

alter table tracing.alert_rules enable row level security;
alter table tracing.alerts enable row level security;
alter table tracing.alert_deliveries enable row level security;
alter table tracing.alert_settings enable row level security;

-- Readers see the rules and alerts of their organization; admins see and
-- manage all. Only admins write rules (the api's mutations run with the
-- caller's rights); alerts and deliveries are written by the owner (the
-- trigger, the scheduler and the delivery loop).
create policy select_own_organization on tracing.alert_rules for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.alert_rules for select to tracegres_admin using (true);
create policy insert_all on tracing.alert_rules for insert to tracegres_admin with check (true);
create policy update_all on tracing.alert_rules for update to tracegres_admin using (true) with check (true);
create policy delete_all on tracing.alert_rules for delete to tracegres_admin using (true);

create policy select_own_organization on tracing.alerts for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.alerts for select to tracegres_admin using (true);

create policy select_own_organization on tracing.alert_deliveries for select to tracegres_reader
  using (exists (select from tracing.alerts a where a.id = alert_id));
create policy select_all on tracing.alert_deliveries for select to tracegres_admin using (true);

create policy select_all on tracing.alert_settings for select to tracegres_admin using (true);

grant select (id, organization_id, name, kind, event_type_pattern, stream_type_pattern, service, operation, metric, threshold,
              window_seconds, min_requests, channel, target, has_secret, group_seconds, max_alerts_per_hour, muted_until,
              enabled, created_at, updated_at)
  on tracing.alert_rules to tracegres_reader;
grant insert (organization_id, name, kind, event_type_pattern, stream_type_pattern, service, operation, metric, threshold,
              window_seconds, min_requests, channel, target, secret, group_seconds, max_alerts_per_hour, muted_until, enabled)
  on tracing.alert_rules to tracegres_admin;
grant update (organization_id, name, event_type_pattern, stream_type_pattern, service, operation, metric, threshold,
              window_seconds, min_requests, channel, target, secret, group_seconds, max_alerts_per_hour, muted_until, enabled,
              updated_at)
  on tracing.alert_rules to tracegres_admin;
grant delete on tracing.alert_rules to tracegres_admin;
grant select on tracing.alerts, tracing.alert_deliveries to tracegres_reader;
grant select on tracing.alert_settings to tracegres_admin;

-- The api's row types: a rule as callers see it (no secret) and an alert
-- with its latest delivery.
create type api.alert_rule as (
  id bigint,
  organization_id uuid,
  name text,
  kind text,
  event_type_pattern text,
  stream_type_pattern text,
  service text,
  operation text,
  metric text,
  threshold double precision,
  window_seconds integer,
  min_requests integer,
  channel text,
  target text,
  has_secret boolean,
  group_seconds integer,
  max_alerts_per_hour integer,
  muted_until timestamptz,
  enabled boolean,
  created_at timestamptz,
  updated_at timestamptz
);

comment on type api.alert_rule is E'An alert rule: what it watches, where it sends, how it groups and limits.';
comment on column api.alert_rule.kind is E'event (a failed event matching the patterns) or rate (a metric of a service over a window crossing a threshold).';
comment on column api.alert_rule.event_type_pattern is E'Event rules: the event types that fire, * matching any characters; null matches every type.';
comment on column api.alert_rule.stream_type_pattern is E'Event rules: the stream types that fire, * matching any characters; null matches every type.';
comment on column api.alert_rule.metric is E'Rate rules: error_rate (0 to 1) or p95_ms.';
comment on column api.alert_rule.operation is E'Rate rules: one operation of the service; null watches each of its operations.';
comment on column api.alert_rule.target is E'Where alerts go: a Slack incoming-webhook URL, a webhook URL, or email addresses separated by commas.';
comment on column api.alert_rule.has_secret is E'Whether webhook deliveries are signed (HMAC-SHA256); the secret itself is never returned.';
comment on column api.alert_rule.group_seconds is E'Repeats of the same fingerprint within this window are one alert with a count.';
comment on column api.alert_rule.max_alerts_per_hour is E'Alerts beyond this many in an hour are recorded but not sent.';
comment on column api.alert_rule.muted_until is E'Until then the rule''s alerts are recorded but not sent.';

create type api.alert as (
  id bigint,
  rule_id bigint,
  rule_name text,
  organization_id uuid,
  fingerprint text,
  first_at timestamptz,
  last_at timestamptz,
  repeat_count integer,
  state text,
  details jsonb,
  trace_id text,
  delivery_status text,
  delivery_attempts integer,
  delivered_at timestamptz,
  delivery_error text
);

comment on type api.alert is E'An alert a rule raised, with its repeats and the state of its delivery.';
comment on column api.alert.state is E'queued (sent or to be sent), muted (the rule was muted), rate_limited (over the rule''s hourly limit; neither of these is sent) or test (a sample sent by tracegres alerts test).';
comment on column api.alert.details is E'What fired: event type, stream, error message, correlation, session and trace ids (event rules), or the metric and its value (rate rules).';
comment on column api.alert.trace_id is E'W3C trace id of the failed event''s trace; null when it had none.';
comment on column api.alert.delivery_status is E'The latest delivery: queued, sent or dead_letter; null when nothing is sent.';
