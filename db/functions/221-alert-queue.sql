-- Raising alerts and queueing their delivery, the database side. The
-- tables are in migrations 000015 and 000017 (alert_repeats);
-- server/alerts/delivery-loop.ts sends.
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
-- not sent. A repeat is a row appended to tracing.alert_repeats, never an
-- update of the alert (migration 000017 says why); the unique (rule,
-- fingerprint, window) key makes concurrent first firings one alert.
--
-- Cost on the insert path: the triggers' WHEN clauses keep events that did
-- not fail from calling any function at all; a failed event costs a look
-- at the enabled event rules of its organization (a partial index) and,
-- when one matches, a lookup of its alert and one row appended: the alert
-- and its delivery the first time, a repeat afterwards.

-- Raises or counts the alert of p_rule for p_fingerprint now; returns its id.
create or replace function tracing.raise_alert(
  p_rule tracing.alert_rules, p_fingerprint text, p_event_id bigint, p_details jsonb, p_organization_id uuid
) returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_group_start timestamptz := case when p_rule.group_seconds > 0
    then date_bin(make_interval(secs => p_rule.group_seconds), now(), timestamptz '2000-01-01 00:00:00+00') else now() end;
  v_state text;
  v_alert_id bigint;
begin
  select a.id, a.state into v_alert_id, v_state
    from tracing.alerts a
   where a.rule_id = p_rule.id and a.fingerprint = p_fingerprint and a.group_start = v_group_start;
  if v_alert_id is null then
    if p_rule.muted_until > now() then
      v_state := 'muted';
    elsif (select count(*) from (
             select from tracing.alerts a
              where a.rule_id = p_rule.id and a.state = 'queued' and a.first_at > now() - interval '1 hour'
              limit p_rule.max_alerts_per_hour) as recent) >= p_rule.max_alerts_per_hour then
      v_state := 'rate_limited';
    else
      v_state := 'queued';
    end if;
    insert into tracing.alerts (rule_id, organization_id, fingerprint, group_start, state, event_id, details)
    values (p_rule.id, p_organization_id, p_fingerprint, v_group_start, v_state, p_event_id, p_details)
    on conflict (rule_id, fingerprint, group_start) do nothing
    returning id into v_alert_id;
    if v_alert_id is not null then
      if v_state = 'queued' then
        insert into tracing.alert_deliveries (alert_id, kind) values (v_alert_id, 'first');
        -- Wakes the delivery loop at commit (a rolled-back NOTIFY is never sent).
        perform pg_notify('tracegres_alerts', '');
      end if;
      return v_alert_id;
    end if;
    -- Another transaction raised it first (and committed): a repeat of it.
    select a.id, a.state into v_alert_id, v_state
      from tracing.alerts a
     where a.rule_id = p_rule.id and a.fingerprint = p_fingerprint and a.group_start = v_group_start;
  end if;
  insert into tracing.alert_repeats (alert_id) values (v_alert_id);
  if v_state = 'queued' and p_rule.group_seconds > 0 then
    insert into tracing.alert_deliveries (alert_id, kind, available_at)
    values (v_alert_id, 'summary', v_group_start + make_interval(secs => p_rule.group_seconds))
    on conflict (alert_id) where kind = 'summary' do nothing;
  end if;
  return v_alert_id;
end
$$;

comment on function tracing.raise_alert(tracing.alert_rules, text, bigint, jsonb, uuid) is
  E'Raises the alert of a rule and fingerprint in the current grouping window, or counts a repeat into it, and queues its delivery (the first firing at once, one summary at the window''s end) unless the rule is muted or over its hourly limit.';

create or replace function tracing.tg_domain_events__raise_alerts() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_rule tracing.alert_rules;
begin
  -- Events restore_events brings back from the archive failed long ago.
  if current_setting('tracegres.restoring', true) = 'on' then
    return null;
  end if;
  for v_rule in
    select r.* from tracing.alert_rules r
     where r.kind = 'event' and r.enabled
       and (r.organization_id is null or r.organization_id = new.organization_id)
       and (r.event_type_pattern is null or new.event_type like tracing.alert_pattern_to_like(r.event_type_pattern))
       and (r.stream_type_pattern is null or new.stream_type like tracing.alert_pattern_to_like(r.stream_type_pattern))
  loop
    perform tracing.raise_alert(
      v_rule,
      md5(new.event_type || chr(31) || new.stream_type || chr(31) || left(new.processing_error, 2000)),
      new.id,
      jsonb_build_object(
        'event_id', new.id,
        'event_type', new.event_type,
        'stream_type', new.stream_type,
        'stream_id', new.stream_id,
        'error', left(new.processing_error, 2000),
        'failed_at', now(),
        'created_at', new.created_at,
        'correlation_id', new.correlation_id,
        'session_id', new.session_id,
        'trace_id', tracing.trace_id_to_hex(new.trace_id),
        'span_id', tracing.span_id_to_hex(new.span_id)),
      new.organization_id);
  end loop;
  return null;
end
$$;

-- Two triggers, because an insert has no OLD: an event inserted failed, and
-- an event whose processing failed later (or failed again differently).
create or replace trigger _600_raise_alerts_on_insert
  after insert on tracing.domain_events
  for each row when (new.processing_error is not null)
  execute function tracing.tg_domain_events__raise_alerts();

create or replace trigger _600_raise_alerts_on_failure
  after update of processing_error on tracing.domain_events
  for each row when (new.processing_error is not null and old.processing_error is distinct from new.processing_error)
  execute function tracing.tg_domain_events__raise_alerts();

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
    'last_at', coalesce(rp.last_at, a.first_at),
    'repeat_count', 1 + coalesce(rp.repeats, 0),
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
    left join lateral (select count(*) as repeats, max(x.at) as last_at from tracing.alert_repeats x where x.alert_id = a.id) rp on true
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
  E'Claims up to p_limit due alert deliveries (row locks, skip locked: concurrent senders never share one), or only delivery p_delivery_id, with the channel, target, webhook secret and message. Call in a transaction that ends with tracing.alert_finish_delivery for each.';

create or replace function tracing.alert_finish_delivery(
  p_delivery_id bigint,
  p_outcome text,
  p_reason text default null,
  p_http_status integer default null,
  p_retry_after interval default null
) returns text
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_settings tracing.alert_settings;
  v_status text;
begin
  select * into v_settings from tracing.alert_settings;
  perform tracing.require_present(p_delivery_id, 'p_delivery_id');
  case p_outcome
    when 'sent' then
      update tracing.alert_deliveries
         set status = 'sent', attempts = attempts + 1, sent_at = now(), http_status = p_http_status
       where id = p_delivery_id
      returning status into v_status;
    when 'retry' then
      if p_retry_after < interval '0' then
        raise exception 'p_retry_after must be a non-negative interval' using errcode = '22023';
      end if;
      -- Out of attempts: a dead letter, kept with the last reason. The
      -- receiver's Retry-After wins over the backoff (capped at an hour, so
      -- a bogus one cannot park the queue).
      update tracing.alert_deliveries
         set attempts = attempts + 1,
             status = case when attempts + 1 >= v_settings.max_attempts then 'dead_letter' else 'queued' end,
             available_at = now() + case when p_retry_after is not null then least(p_retry_after, interval '1 hour')
               else least(v_settings.backoff_max, v_settings.backoff_initial * power(2, least(attempts, 30))) * (0.5 + random() / 2) end,
             last_error = left(coalesce(p_reason, 'failed without a reason'), 2000),
             http_status = p_http_status
       where id = p_delivery_id
      returning status into v_status;
    when 'dead_letter' then
      update tracing.alert_deliveries
         set status = 'dead_letter', attempts = attempts + 1,
             last_error = left(coalesce(nullif(p_reason, ''), 'refused without a reason'), 2000), http_status = p_http_status
       where id = p_delivery_id
      returning status into v_status;
    else
      raise exception 'p_outcome must be one of sent, retry, dead_letter' using errcode = '22023',
        detail = format('got %s', coalesce(p_outcome, 'null'));
  end case;
  if v_status is null then
    raise exception 'p_delivery_id names no alert delivery' using errcode = '22023', detail = format('got %s', p_delivery_id);
  end if;
  return v_status;
end
$$;

comment on function tracing.alert_finish_delivery(bigint, text, text, integer, interval) is
  E'Records what became of a claimed alert delivery: sent, retry (attempts + 1, not before p_retry_after or else the backoff of tracing.alert_settings; a dead letter once tracing.alert_settings.max_attempts are used) or dead_letter (refused for good); returns the delivery''s status.';

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
    select a.id, a.rule_id, r.name, a.organization_id, a.fingerprint, a.first_at, coalesce(rp.last_at, a.first_at),
           (1 + coalesce(rp.repeats, 0))::integer,
           a.state,
           a.details, a.details ->> 'trace_id',
           d.status, d.attempts, d.sent_at, d.last_error
      from tracing.alerts a
      join tracing.alert_rules r on r.id = a.rule_id
      left join lateral (select count(*) as repeats, max(x.at) as last_at from tracing.alert_repeats x where x.alert_id = a.id) rp on true
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
revoke all on function tracing.raise_alert(tracing.alert_rules, text, bigint, jsonb, uuid) from public;
revoke all on function tracing.alert_message(bigint) from public;
revoke all on function tracing.alert_claim_deliveries(integer, bigint) from public;
revoke all on function tracing.alert_finish_delivery(bigint, text, text, integer, interval) from public;
revoke all on function tracing.alert_requeue_dead_letters(timestamptz) from public;
revoke all on function tracing.alert_send_test(bigint) from public;
