--! Previous: sha1:302830ce2633216f7fd08742354291f3ec4c760f
--! Hash: sha1:907ff6347e4434aafcf34d38e1b3118ee5d88fbe
--! Message: Alert repeat rows carry a count (alert_repeats.repeats) and tracing.alert_firing is what tracing.raise_alerts takes, so event alerts are raised once per statement instead of once per failed event

-- Event alerts raised per statement instead of per event (the trigger in
-- db/functions/221-alert-queue.sql now reads the statement's new rows as a
-- transition table). A statement that repeats an alert many times appends
-- one row that counts them, so a repeat row now says how many repeats it
-- stands for; the rows so far stand for one each.
alter table tracing.alert_repeats
  add column if not exists repeats integer not null default 1
    constraint alert_repeats_repeats_positive check (repeats >= 1);

comment on table tracing.alert_repeats is
  E'Repeats of an alert within its grouping window, appended (never counted in place): each row stands for repeats firings; the alert''s count is 1 plus their sum.';

-- What tracing.raise_alerts takes: firings of a rule with a fingerprint,
-- already matched, for the alert of the current grouping window. firings
-- is how many times it fired (a statement that fails 500 events with one
-- error fires once with 500); event_id and details are the first firing's.
drop type if exists tracing.alert_firing;
create type tracing.alert_firing as (
  rule_id bigint,
  fingerprint text,
  organization_id uuid,
  event_id bigint,
  details jsonb,
  firings integer
);

comment on type tracing.alert_firing is
  E'A rule firing for one fingerprint, what tracing.raise_alerts takes: how many times, and the first firing''s event id and details.';
