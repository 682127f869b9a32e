-- Raising alerts and queueing their delivery, the database side. The
-- tables are in migrations 000015, 000017 (alert_repeats) and 000021
-- (repeat counts, tracing.alert_firing); server/alerts/delivery-loop.ts
-- sends.
--
-- Never lose an alert: a failed event matching an event rule raises (or
-- counts) its alert in the event's own transaction, and the delivery is
-- queued there too, so a committed failure always has its alert and a
-- rolled-back one never does. Delivery is at-least-once, like the OTLP
-- export (180-otlp-export.sql): a delivery is claimed with `for update skip
-- locked`, sent while the claim is open, and marked sent in that
-- transaction; a sender that dies in between sends it again (receivers can
-- drop the repeat by its delivery id).
--
-- No storms: an alert is one rule, one fingerprint and one fixed grouping
-- window (date_bin of the time by the rule's group_seconds). Its first
-- firing is sent at once; repeats in the window only count, and the first
-- repeat queues one summary for the window's end that reports the final
-- count. So a fingerprint costs at most two messages per window, and a
-- rule at most max_alerts_per_hour new alerts an hour; past that, or while
-- the rule is muted, alerts are recorded (state rate_limited / muted) and
-- not sent. Repeats are rows appended to tracing.alert_repeats, never an
-- update of the alert (migration 000017 says why); the unique (rule,
-- fingerprint, window) key makes concurrent first firings one alert.
--
-- Cost on the insert path: alerts are raised once per statement, from its
-- new rows (a transition table), not once per event. The statement's
-- failed events are grouped by what makes their fingerprint, and only then
-- matched with the rules and looked up or raised, so 10,000 failed events
-- repeating 20 errors cost 20 lookups and 20 appended repeat rows, not
-- 10,000 of each: +0.5 µs an event of CPU against +40 to 45 µs with the
-- row trigger this replaced (ratios 1.09 against 9, docs/alerts.md). A
-- statement that failed nothing stops at one look at its rows (about 4 µs,
-- nothing measurable in a bulk insert). What this costs: about 17 µs more
-- than the row trigger for an insert of one failed event, the price of
-- reading and grouping the statement's rows. An update that fails an event
-- stays a row trigger: Postgres keeps no transition table for a trigger on
-- chosen columns, and a trigger on every update would tax the processors'
-- every write.

-- The enabled event rules that a failed event of this organization, type
-- and stream matches. A pattern's '*' stands for any characters.
create or replace function tracing.matching_event_rules(p_organization_id uuid, p_event_type text, p_stream_type text)
returns setof tracing.alert_rules
language sql stable as $$
  select r.* from tracing.alert_rules r
   where r.kind = 'event' and r.enabled
     and (r.organization_id is null or r.organization_id = p_organization_id)
     and (r.event_type_pattern is null or p_event_type like tracing.alert_pattern_to_like(r.event_type_pattern))
     and (r.stream_type_pattern is null or p_stream_type like tracing.alert_pattern_to_like(r.stream_type_pattern))
$$;

comment on function tracing.matching_event_rules(uuid, text, text) is
  E'The enabled event rules that a failed event of this organization, event type and stream type matches.';

-- What makes two failures the same alert of an event rule.
create or replace function tracing.event_alert_fingerprint(p_event_type text, p_stream_type text, p_error text) returns text
language sql immutable parallel safe as $$
  select md5(p_event_type || chr(31) || p_stream_type || chr(31) || left(p_error, 2000))
$$;

comment on function tracing.event_alert_fingerprint(text, text, text) is
  E'The fingerprint of an event rule''s alert: a hash of the event type, the stream type and the error (its first 2,000 characters).';

-- What an event alert records of its first failed event.
create or replace function tracing.event_alert_details(p_event tracing.domain_events) returns jsonb
language sql stable as $$
  select jsonb_build_object(
    'event_id', p_event.id,
    'event_type', p_event.event_type,
    'stream_type', p_event.stream_type,
    'stream_id', p_event.stream_id,
    'error', left(p_event.processing_error, 2000),
    'failed_at', now(),
    'created_at', p_event.created_at,
    'correlation_id', p_event.correlation_id,
    'session_id', p_event.session_id,
    'trace_id', tracing.trace_id_to_hex(p_event.trace_id),
    'span_id', tracing.span_id_to_hex(p_event.span_id))
$$;

comment on function tracing.event_alert_details(tracing.domain_events) is
  E'The details an event alert keeps of its failed event: ids, types, the error, when it failed, and its correlation, session, trace and span ids.';

-- Raises the alerts of a batch of firings, or counts them as repeats, and
-- queues their deliveries: one firing at a time. A batch has about one
-- firing per alert (the insert trigger groups a statement's failed events
-- first), so 10,000 failed events repeating 20 errors are 20 turns here;
-- and most inserts fail one event, for which a few plain statements cost a
-- third of the set-based statements this once was (they wrote three tables
-- from one plan, for every batch).
create or replace function tracing.raise_alerts(p_firings tracing.alert_firing[]) returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
-- One plan a statement per session: with the default, the planner could
-- make a new plan on every call (rating the one for the call's own array
-- cheaper), which cost more than the statements' run.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_firing record;
  v_alert_id bigint;
  v_state text;
  v_repeats bigint;
  v_queued boolean := false;
begin
  -- In the order of their first events: the hourly limit goes to the
  -- earliest new errors, and of two firings of one alert (a rule of every
  -- organization, failed in two of them) the earlier raises it and the
  -- other counts into it.
  for v_firing in
    select f.rule_id, f.fingerprint, f.organization_id, f.event_id, f.details, f.firings,
           case when r.group_seconds > 0
             then date_bin(make_interval(secs => r.group_seconds), now(), timestamptz '2000-01-01 00:00:00+00') else now() end
             as group_start,
           r.group_seconds, r.muted_until, r.max_alerts_per_hour
      from unnest(p_firings) f
      join tracing.alert_rules r on r.id = f.rule_id
     order by f.event_id nulls last, f.fingerprint
  loop
    v_alert_id := null;
    select a.id, a.state into v_alert_id, v_state
      from tracing.alerts a
     where a.rule_id = v_firing.rule_id and a.fingerprint = v_firing.fingerprint and a.group_start = v_firing.group_start;
    v_repeats := v_firing.firings;
    if v_alert_id is null then
      v_state := case
        when v_firing.muted_until > now() then 'muted'
        when (select count(*) from (
                select from tracing.alerts a
                 where a.rule_id = v_firing.rule_id and a.state = 'queued' and a.first_at > now() - interval '1 hour'
                 limit v_firing.max_alerts_per_hour) as recent) >= v_firing.max_alerts_per_hour then 'rate_limited'
        else 'queued' end;
      -- An event rule's details are read from the event only here, for a
      -- new alert.
      insert into tracing.alerts (rule_id, organization_id, fingerprint, group_start, state, event_id, details)
      values (v_firing.rule_id, v_firing.organization_id, v_firing.fingerprint, v_firing.group_start, v_state, v_firing.event_id,
              coalesce(v_firing.details,
                       (select tracing.event_alert_details(e) from tracing.domain_events e where e.id = v_firing.event_id), '{}'))
      on conflict (rule_id, fingerprint, group_start) do nothing
      returning id into v_alert_id;
      if v_alert_id is not null then
        v_repeats := v_repeats - 1;
        if v_state = 'queued' then
          insert into tracing.alert_deliveries (alert_id, kind) values (v_alert_id, 'first');
          v_queued := true;
        end if;
      else
        -- Another transaction raised it first (and committed), while this
        -- insert waited on its key: these firings are its repeats. This
        -- statement sees that commit.
        select a.id, a.state into v_alert_id, v_state
          from tracing.alerts a
         where a.rule_id = v_firing.rule_id and a.fingerprint = v_firing.fingerprint and a.group_start = v_firing.group_start;
      end if;
    end if;
    if v_repeats > 0 then
      insert into tracing.alert_repeats (alert_id, repeats) values (v_alert_id, v_repeats);
      -- The first repeat of a sent alert queues its summary for the end of
      -- the window (looked up first: cheaper than the insert's conflict).
      if v_state = 'queued' and v_firing.group_seconds > 0
         and not exists (select from tracing.alert_deliveries d where d.alert_id = v_alert_id and d.kind = 'summary') then
        insert into tracing.alert_deliveries (alert_id, kind, available_at)
        values (v_alert_id, 'summary', v_firing.group_start + make_interval(secs => v_firing.group_seconds))
        on conflict (alert_id) where kind = 'summary' do nothing;
      end if;
    end if;
  end loop;
  if v_queued then
    -- Wakes the delivery loop at commit (a rolled-back NOTIFY is never sent).
    perform pg_notify('tracegres_alerts', '');
  end if;
end
$$;

comment on function tracing.raise_alerts(tracing.alert_firing[]) is
  E'Raises the alert of each rule and fingerprint in its current grouping window, or counts the firings as repeats of it, and queues deliveries: the first firing at once, one summary at the window''s end; none while the rule is muted or over its hourly limit.';

-- Events restore_events brings back from the archive failed long ago: the
-- triggers raise nothing for them.
--
-- The insert trigger runs with the inserter's rights, unlike the update
-- trigger below. Only the owner may insert an event with a
-- processing_error (the writer role's insert grant leaves the column out),
-- so a statement that goes past the first look is the owner's, which holds
-- the rights raising takes; the look itself, made for every insert
-- statement, reads only the statement's own rows and needs none. Definer
-- rights with a pinned search_path cost each single-row insert 2-7 us of
-- CPU (setting and restoring search_path around the call; Postgres 15,
-- synchronous_commit off, batches of 150 alternating with the old
-- function, machine loaded). Should another role be granted the column,
-- its failed inserts would be refused (42501 on tracing.raise_alerts),
-- never stored without their alert.
create or replace function tracing.tg_domain_events__raise_alerts_on_insert() returns trigger
language plpgsql volatile
as $$
begin
  -- A statement that failed nothing (most) stops at this look.
  if current_setting('tracegres.restoring', true) = 'on'
     or not exists (select from new_events e where e.processing_error is not null) then
    return null;
  end if;
  perform tracing.raise_alerts(array(
    with failed as (
      select e.organization_id, e.event_type, e.stream_type, left(e.processing_error, 2000) as error,
             count(*)::integer as events, min(e.id) as first_event_id
        from new_events e
       where e.processing_error is not null
       group by 1, 2, 3, 4
    )
    select row(r.id, tracing.event_alert_fingerprint(f.event_type, f.stream_type, f.error), f.organization_id,
               f.first_event_id, null, f.events)::tracing.alert_firing
      from failed f
      cross join lateral tracing.matching_event_rules(f.organization_id, f.event_type, f.stream_type) r));
  return null;
end
$$;

comment on function tracing.tg_domain_events__raise_alerts_on_insert() is
  E'Trigger: raises or counts the event-rule alerts of the failed events a statement inserted, grouped by fingerprint.';

create or replace function tracing.tg_domain_events__raise_alerts_on_failure() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if current_setting('tracegres.restoring', true) = 'on' then
    return null;
  end if;
  perform tracing.raise_alerts(array(
    select row(r.id, tracing.event_alert_fingerprint(new.event_type, new.stream_type, new.processing_error), new.organization_id,
               new.id, null, 1)::tracing.alert_firing
      from tracing.matching_event_rules(new.organization_id, new.event_type, new.stream_type) r));
  return null;
end
$$;

comment on function tracing.tg_domain_events__raise_alerts_on_failure() is
  E'Trigger: raises or counts the event-rule alerts of an event whose processing failed (or failed with another error).';

-- One statement-level trigger for inserts, with no WHEN clause (a
-- statement trigger cannot look at rows): its function finds the failed
-- rows, and a statement without any returns after one pass over its rows.
create or replace trigger _600_raise_alerts_on_insert
  after insert on tracing.domain_events
  referencing new table as new_events
  for each statement
  execute function tracing.tg_domain_events__raise_alerts_on_insert();

create or replace trigger _600_raise_alerts_on_failure
  after update of processing_error on tracing.domain_events
  for each row when (new.processing_error is not null and old.processing_error is distinct from new.processing_error)
  execute function tracing.tg_domain_events__raise_alerts_on_failure();

-- The per-event functions that the triggers above replaced. Dropped here,
-- after the triggers no longer call them, rather than in the migration:
-- between a migration and this file, an insert of a failed event would
-- have found its trigger calling a missing function, and failed.
drop function if exists tracing.tg_domain_events__raise_alerts();
drop function if exists tracing.raise_alert(tracing.alert_rules, text, bigint, jsonb, uuid);
-- A helper of an earlier set-based tracing.raise_alerts.
drop function if exists tracing.alert_firing_windows(tracing.alert_firing[]);

-- An alert's count (1 plus its repeats) and its last firing, for every
-- reader of alerts.
create or replace function tracing.alert_repeat_totals(p_alert_id bigint, p_first_at timestamptz)
returns table (repeat_count integer, last_at timestamptz)
language sql stable as $$
  select (1 + coalesce(sum(x.repeats), 0))::integer, coalesce(max(x.at), p_first_at)
    from tracing.alert_repeats x
   where x.alert_id = p_alert_id
$$;

comment on function tracing.alert_repeat_totals(bigint, timestamptz) is
  E'An alert''s repeat count (1 plus its appended repeats) and last firing (its first, when it never repeated).';

-- Readers count the repeats of the alerts they may see (api.recent_alerts).
grant execute on function tracing.alert_repeat_totals(bigint, timestamptz) to tracegres_reader;

-- What an alert says: the rule, the firing and, for a trace, its root
-- operation and duration and the failed span (read at send time, since an
-- event is usually written before its span ends).
create or replace function tracing.alert_message(p_alert_id bigint) returns jsonb
-- plpgsql, whose body is checked when it runs, not when it is created: the
-- file is applied before and after the migrations that shape its tables.
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return (select jsonb_build_object(
    'alert_id', a.id,
    'rule', jsonb_build_object('id', r.id, 'name', r.name, 'kind', r.kind),
    'organization_id', a.organization_id,
    'fingerprint', a.fingerprint,
    'first_at', a.first_at,
    'last_at', rp.last_at,
    'repeat_count', rp.repeat_count,
    'details', a.details,
    'trace', case when t.trace_id is not null then jsonb_build_object(
      'trace_id', a.details ->> 'trace_id',
      'root_operation', ts.root_name,
      'root_service', ts.root_service,
      'duration_ms', ts.duration_ms,
      'failed_span', case when fs.span_id is not null then jsonb_build_object(
        'span_id', tracing.span_id_to_hex(fs.span_id), 'name', fs.name, 'service', fs.service,
        'status', fs.status, 'status_message', fs.status_message, 'duration_ms', fs.duration_ms) end) end)
    from tracing.alerts a
    join tracing.alert_rules r on r.id = a.rule_id
    cross join lateral tracing.alert_repeat_totals(a.id, a.first_at) rp
    left join lateral (select tracing.hex_to_trace_id(a.details ->> 'trace_id') as trace_id) t on true
    left join tracing.trace_summaries ts on ts.trace_id = t.trace_id and ts.organization_id is not distinct from a.organization_id
    -- The span that emitted the event if it was recorded, else the trace's
    -- first failed span.
    left join lateral (
      select s.* from tracing.spans s
       where s.trace_id = t.trace_id and s.organization_id is not distinct from a.organization_id
         and (s.span_id = tracing.hex_to_span_id(a.details ->> 'span_id') or s.status = 'error')
       order by s.span_id = tracing.hex_to_span_id(a.details ->> 'span_id') desc nulls last, s.start_time
       limit 1) fs on true
   where a.id = p_alert_id);
end
$$;

comment on function tracing.alert_message(bigint) is
  E'Everything an alert message says, as JSON: rule, organization, first and last firing, repeat count, what fired (event, error, correlation, session and trace ids, or the metric) and the trace''s root operation, duration and failed span.';

create or replace function tracing.alert_claim_deliveries(p_limit integer default 20, p_delivery_id bigint default null)
returns table (
  delivery_id bigint,
  kind text,
  attempts integer,
  channel text,
  target text,
  secret text,
  message jsonb
)
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception 'p_limit must be between 1 and 1000' using errcode = '22023',
      detail = format('got %s', coalesce(p_limit::text, 'null'));
  end if;
  return query
    with claimed as (
      select d.id, d.kind, d.attempts, d.alert_id
        from tracing.alert_deliveries d
       where d.status = 'queued'
         and (case when p_delivery_id is null then d.available_at <= now() else d.id = p_delivery_id end)
       order by d.available_at, d.id
       limit p_limit
         for update skip locked
    )
    select c.id, c.kind, c.attempts, r.channel, r.target, r.secret, tracing.alert_message(c.alert_id)
      from claimed c
      join tracing.alerts a on a.id = c.alert_id
      join tracing.alert_rules r on r.id = a.rule_id
     order by c.id;
end
$$;

comment on function tracing.alert_claim_deliveries(integer, bigint) is
  E'Claims up to p_limit due alert deliveries (row locks, skip locked: concurrent senders never share one), or only delivery p_delivery_id, with the channel, target, webhook secret and message. Call in a transaction that ends with tracing.alert_finish_deliveries for them.';

-- Records the outcomes of a claimed batch in one call (the sender used to
-- call once per delivery, a round trip each while the claim held its locks).
create or replace function tracing.alert_finish_deliveries(
  p_delivery_ids bigint[],
  p_outcomes text[],
  p_reasons text[] default null,
  p_http_statuses integer[] default null,
  p_retry_afters interval[] default null
) returns table (delivery_id bigint, status text)
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  v_settings tracing.alert_settings;
  v_count integer := cardinality(tracing.require_present(p_delivery_ids, 'p_delivery_ids'));
begin
  if v_count > 1000 then
    raise exception 'p_delivery_ids must hold at most 1000 ids' using errcode = '22023', detail = format('got %s', v_count);
  end if;
  if array_position(p_delivery_ids, null) is not null then
    raise exception 'p_delivery_ids must not hold null' using errcode = '22023';
  end if;
  if (select count(distinct x) from unnest(p_delivery_ids) x) <> v_count then
    raise exception 'p_delivery_ids must hold distinct ids' using errcode = '22023';
  end if;
  if cardinality(tracing.require_present(p_outcomes, 'p_outcomes')) <> v_count then
    raise exception 'p_outcomes must hold one outcome per delivery id' using errcode = '22023';
  end if;
  if exists (select from unnest(p_outcomes) o where o is null or o not in ('sent', 'retry', 'dead_letter')) then
    raise exception 'p_outcomes must hold only sent, retry or dead_letter' using errcode = '22023';
  end if;
  if cardinality(p_reasons) <> v_count or cardinality(p_http_statuses) <> v_count or cardinality(p_retry_afters) <> v_count then
    raise exception '% must be null or hold one value per delivery id',
      case when cardinality(p_reasons) <> v_count then 'p_reasons'
           when cardinality(p_http_statuses) <> v_count then 'p_http_statuses' else 'p_retry_afters' end
      using errcode = '22023';
  end if;
  if exists (select from unnest(p_retry_afters) r where r < interval '0') then
    raise exception 'p_retry_afters must hold non-negative intervals' using errcode = '22023';
  end if;
  select * into v_settings from tracing.alert_settings;
  return query
    with outcome as (
      select o.id, o.outcome, o.reason, o.http_status, o.retry_after, o.ord
        from unnest(p_delivery_ids, p_outcomes, coalesce(p_reasons, '{}'), coalesce(p_http_statuses, '{}'),
                    coalesce(p_retry_afters, '{}')) with ordinality as o(id, outcome, reason, http_status, retry_after, ord)
    ),
    settled as (
      -- sent; retry (attempts + 1, then a dead letter, kept with the last
      -- reason, once they are used up; the receiver's Retry-After wins over
      -- the backoff, capped at an hour so a bogus one cannot park the
      -- queue); or dead_letter, refused for good.
      update tracing.alert_deliveries d
         set attempts = d.attempts + 1,
             status = case when o.outcome = 'sent' then 'sent'
                           when o.outcome = 'retry' and d.attempts + 1 < v_settings.max_attempts then 'queued'
                           else 'dead_letter' end,
             sent_at = case when o.outcome = 'sent' then now() else d.sent_at end,
             available_at = case when o.outcome <> 'retry' then d.available_at
                                 when o.retry_after is not null then now() + least(o.retry_after, interval '1 hour')
                                 else now() + least(v_settings.backoff_max, v_settings.backoff_initial * power(2, least(d.attempts, 30)))
                                              * (0.5 + random() / 2) end,
             last_error = case o.outcome
                            when 'sent' then d.last_error
                            when 'retry' then left(coalesce(o.reason, 'failed without a reason'), 2000)
                            else left(coalesce(nullif(o.reason, ''), 'refused without a reason'), 2000) end,
             http_status = o.http_status
        from outcome o
       where d.id = o.id
      returning d.id, d.status
    )
    select o.id, s.status from outcome o left join settled s on s.id = o.id order by o.ord;
end
$$;

comment on function tracing.alert_finish_deliveries(bigint[], text[], text[], integer[], interval[]) is
  E'Records what became of claimed alert deliveries, item by item: p_outcomes sent, retry (attempts + 1, not before the item of p_retry_afters or else the backoff of tracing.alert_settings; a dead letter once tracing.alert_settings.max_attempts are used) or dead_letter (refused for good), with the reason and HTTP status. Returns each delivery''s status, in the order given; null for an id that names no alert delivery.';

create or replace function tracing.alert_requeue_dead_letters(p_since timestamptz default '-infinity') returns bigint
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  -- For after fixing the receiver: dead letters go out again, from scratch.
  with requeued as (
    update tracing.alert_deliveries
       set status = 'queued', attempts = 0, available_at = now()
     where status = 'dead_letter' and enqueued_at >= p_since
    returning 1
  )
  select count(*) from requeued
$$;

comment on function tracing.alert_requeue_dead_letters(timestamptz) is
  E'Queues dead-lettered alert deliveries (enqueued since p_since) again; returns how many.';

-- A sample alert for a rule, delivered like any other: what `tracegres
-- alerts test <rule>` sends. Counted apart from the rate limit.
create or replace function tracing.alert_send_test(p_rule_id bigint) returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_rule tracing.alert_rules;
  v_alert_id bigint;
  v_delivery_id bigint;
begin
  select * into v_rule from tracing.alert_rules where id = tracing.require_alert_rule(p_rule_id);
  insert into tracing.alerts (rule_id, organization_id, fingerprint, group_start, state, details)
  values (v_rule.id, v_rule.organization_id, 'test', clock_timestamp(), 'test',
          jsonb_build_object('test', true, 'event_type', 'tracegres.alert.test', 'stream_type', 'tracegres',
                             'error', 'A test alert: this rule''s channel works.', 'failed_at', now()))
  returning id into v_alert_id;
  insert into tracing.alert_deliveries (alert_id, kind) values (v_alert_id, 'test') returning id into v_delivery_id;
  return v_delivery_id;
end
$$;

comment on function tracing.alert_send_test(bigint) is
  E'Queues a sample alert of rule p_rule_id for delivery to its channel; returns the delivery id.';

create or replace view tracing.alert_delivery_status with (security_invoker = true) as
  select count(*) filter (where d.status = 'queued') as queued,
         count(*) filter (where d.status = 'queued' and d.available_at <= now()) as due,
         now() - min(d.enqueued_at) filter (where d.status = 'queued') as oldest_waiting,
         count(*) filter (where d.status = 'sent') as sent,
         count(*) filter (where d.status = 'dead_letter') as dead_letters,
         coalesce(sum(d.attempts - 1) filter (where d.attempts > 1), 0) as retries,
         max(d.sent_at) as last_sent_at,
         (select d2.last_error from tracing.alert_deliveries d2 where d2.last_error is not null
           order by d2.available_at desc, d2.id desc limit 1) as last_error
    from tracing.alert_deliveries d;

comment on view tracing.alert_delivery_status is
  E'Alert delivery at a glance: queued and due deliveries, the oldest waiting, sent, dead letters, retries and the last error.';

grant select on tracing.alert_delivery_status to tracegres_admin;

-- Alerts the caller may see, newest first, with their latest delivery.
create or replace function api.recent_alerts(p_first integer default 50, p_rule_id bigint default null)
returns setof api.alert
language plpgsql stable as $$
declare
  v_first integer := tracing.require_page_size(p_first, 'p_first', 50, 500);
begin
  return query
    select a.id, a.rule_id, r.name, a.organization_id, a.fingerprint, a.first_at, rp.last_at, rp.repeat_count,
           a.state,
           a.details, a.details ->> 'trace_id',
           d.status, d.attempts, d.sent_at, d.last_error
      from tracing.alerts a
      join tracing.alert_rules r on r.id = a.rule_id
      cross join lateral tracing.alert_repeat_totals(a.id, a.first_at) rp
      -- The latest delivery that fell due: a summary waiting for the end of
      -- its window says nothing yet.
      left join lateral (
        select x.status, x.attempts, x.sent_at, x.last_error from tracing.alert_deliveries x
         where x.alert_id = a.id
         order by x.status = 'queued' and x.available_at > now(), x.id desc limit 1) d on true
     where p_rule_id is null or a.rule_id = p_rule_id
     order by a.first_at desc, a.id desc
     limit v_first;
end
$$;

comment on function api.recent_alerts(integer, bigint) is
  E'Alerts the caller may see (an admin: all; a reader: its organization''s), newest first, with their repeat count, what fired, the trace id and the status of the latest delivery that fell due. p_first 1-500 (default 50); p_rule_id keeps one rule''s.';

-- Readers and admins: a request without a token has no grant on alerts.
grant execute on function api.recent_alerts(integer, bigint) to tracegres_reader;

-- The delivery loop and the CLI run as the database owner; nobody else
-- raises, claims, settles, requeues or tests alerts.
revoke all on function tracing.raise_alerts(tracing.alert_firing[]) from public;
revoke all on function tracing.alert_message(bigint) from public;
revoke all on function tracing.alert_claim_deliveries(integer, bigint) from public;
revoke all on function tracing.alert_finish_deliveries(bigint[], text[], text[], integer[], interval[]) from public;
revoke all on function tracing.alert_requeue_dead_letters(timestamptz) from public;
revoke all on function tracing.alert_send_test(bigint) from public;
