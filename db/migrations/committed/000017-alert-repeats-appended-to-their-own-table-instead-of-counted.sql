--! Previous: sha1:4f483ba2c5e5e0307101cde569899209645a65e2
--! Hash: sha1:c73f8cd3d3da6dd1e871d5bd7358f626ce1f7e44
--! Message: Alert repeats appended to their own table instead of counted in place, one summary per alert, the hourly limit read from an index of sent alerts

-- Alert repeats appended, not counted in place: a repeat of an alert is a
-- row of tracing.alert_repeats instead of an update of the alert's
-- repeat_count. Ten thousand failures of one fingerprint in one statement
-- updated one row ten thousand times in one transaction, and each update
-- walked the row's growing chain of versions: 30 s where the events alone
-- took 0.1 s. Appending is linear, and concurrent repeats no longer wait
-- for each other on the alert's row.
create table tracing.alert_repeats (
  alert_id bigint not null references tracing.alerts (id) on delete cascade,
  at timestamptz not null default now()
);

create index alert_repeats_alert_at_idx on tracing.alert_repeats (alert_id, at);

comment on table tracing.alert_repeats is
  E'One row per repeat of an alert within its grouping window; the alert''s count is 1 plus its repeats.';

-- The counts so far become repeat rows (at the alert's last firing).
insert into tracing.alert_repeats (alert_id, at)
select a.id, a.last_at from tracing.alerts a, generate_series(2, a.repeat_count);

alter table tracing.alerts drop column repeat_count, drop column last_at;

alter table tracing.alert_repeats enable row level security;
create policy select_own_organization on tracing.alert_repeats for select to tracegres_reader
  using (exists (select from tracing.alerts a where a.id = alert_id));
create policy select_all on tracing.alert_repeats for select to tracegres_admin using (true);
grant select on tracing.alert_repeats to tracegres_reader;

-- One summary per alert, queued by its first repeat (insert ... on
-- conflict do nothing on every later one).
create unique index alert_deliveries_one_summary_idx on tracing.alert_deliveries (alert_id) where kind = 'summary';

-- The hourly limit counts a rule's sent alerts: an index of those alone, so
-- a storm of rate-limited alerts is never walked to find them.
drop index tracing.alerts_rule_first_at_idx;
create index alerts_rule_queued_first_at_idx on tracing.alerts (rule_id, first_at) where state = 'queued';
