-- Alert rules over GraphQL: the first mutations of the api. They are few and
-- explicit (create, update, enable/disable, mute, delete), run with the
-- caller's rights and are granted to tracegres_admin alone, so a reader's
-- token cannot call them and row-level security still decides which rows
-- they touch. The rules' table is in migration 000015.
--
-- Every check of a rule lives in one trigger, so a rule written by the api,
-- by psql or by a future path is checked the same way; its errors name the
-- api argument (p_<column>), which GraphQL shows to the caller as is.

-- '*' matches any characters; everything else, LIKE's own % _ \ included,
-- matches itself.
create or replace function tracing.alert_pattern_to_like(p_pattern text) returns text
language sql immutable parallel safe strict as $$
  select replace(replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')
$$;

comment on function tracing.alert_pattern_to_like(text) is
  E'An alert rule pattern (* matches any characters) as a LIKE pattern.';

create or replace function tracing.tg_alert_rules__check() returns trigger
language plpgsql volatile as $$
declare
  v_address text;
  v_addresses text[];
begin
  if new.name is null or btrim(new.name) = '' or length(new.name) > 200 then
    raise exception 'p_name is required (1 to 200 characters)' using errcode = '22023';
  end if;
  if new.kind is null or new.kind not in ('event', 'rate') then
    raise exception 'p_kind must be event or rate' using errcode = '22023', detail = format('got %s', coalesce(new.kind, 'null'));
  end if;
  if new.channel is null or new.channel not in ('slack', 'webhook', 'email') then
    raise exception 'p_channel must be slack, webhook or email' using errcode = '22023',
      detail = format('got %s', coalesce(new.channel, 'null'));
  end if;
  if new.target is null or length(new.target) > 2000 then
    raise exception 'p_target is required (at most 2,000 characters)' using errcode = '22023';
  end if;
  if new.channel in ('slack', 'webhook') and new.target !~ '^https?://[^[:space:]/]+[^[:space:]]*$' then
    raise exception 'p_target must be an http or https URL for the % channel', new.channel using errcode = '22023';
  end if;
  if new.channel = 'email' then
    v_addresses := regexp_split_to_array(btrim(new.target), '[[:space:]]*,[[:space:]]*');
    if cardinality(v_addresses) > 20 then
      raise exception 'p_target must name at most 20 email addresses' using errcode = '22023';
    end if;
    foreach v_address in array v_addresses loop
      if v_address !~ '^[^[:space:]@,<>]+@[^[:space:]@,<>]+\.[^[:space:]@,<>]+$' then
        raise exception 'p_target must be email addresses separated by commas' using errcode = '22023',
          detail = format('not an address: %s', left(v_address, 100));
      end if;
    end loop;
  end if;
  if new.secret is not null and (new.channel <> 'webhook' or length(new.secret) not between 16 and 500) then
    raise exception 'p_secret is for the webhook channel only and must be 16 to 500 characters' using errcode = '22023';
  end if;
  if length(new.event_type_pattern) > 200 or length(new.stream_type_pattern) > 200 then
    raise exception '% must be at most 200 characters',
      case when length(new.event_type_pattern) > 200 then 'p_event_type_pattern' else 'p_stream_type_pattern' end
      using errcode = '22023';
  end if;
  if new.group_seconds is null or new.group_seconds not between 0 and 86400 then
    raise exception 'p_group_seconds must be between 0 and 86400' using errcode = '22023';
  end if;
  if new.max_alerts_per_hour is null or new.max_alerts_per_hour not between 1 and 10000 then
    raise exception 'p_max_alerts_per_hour must be between 1 and 10000' using errcode = '22023';
  end if;
  if new.min_requests is null or new.min_requests < 1 then
    raise exception 'p_min_requests must be at least 1' using errcode = '22023';
  end if;
  if new.kind = 'event' then
    if num_nonnulls(new.service, new.operation, new.metric, new.threshold, new.window_seconds) > 0 then
      raise exception 'p_kind event takes no p_service, p_operation, p_metric, p_threshold or p_window_seconds' using errcode = '22023';
    end if;
  else
    if num_nonnulls(new.event_type_pattern, new.stream_type_pattern) > 0 then
      raise exception 'p_kind rate takes no p_event_type_pattern or p_stream_type_pattern' using errcode = '22023';
    end if;
    if new.service is null or btrim(new.service) = '' then
      raise exception 'p_service is required for a rate rule' using errcode = '22023';
    end if;
    if new.metric is null or new.metric not in ('error_rate', 'p95_ms') then
      raise exception 'p_metric must be error_rate or p95_ms' using errcode = '22023',
        detail = format('got %s', coalesce(new.metric, 'null'));
    end if;
    if new.threshold is null or new.threshold < 0 or (new.metric = 'error_rate' and new.threshold > 1)
       or new.threshold = 'NaN'::float8 or new.threshold = 'Infinity'::float8 then
      raise exception 'p_threshold must be a number from 0 (error_rate: 0 to 1)' using errcode = '22023';
    end if;
    if new.window_seconds is null or new.window_seconds not between 60 and 86400 then
      raise exception 'p_window_seconds must be between 60 and 86400' using errcode = '22023';
    end if;
  end if;
  if tg_op = 'UPDATE' then
    if new.kind is distinct from old.kind then
      raise exception 'p_kind cannot change; create a new rule' using errcode = '22023';
    end if;
    new.updated_at := now();
  end if;
  return new;
end
$$;

create or replace trigger _100_check
  before insert or update on tracing.alert_rules
  for each row execute function tracing.tg_alert_rules__check();

create or replace function tracing.to_api_alert_rule(p_rule_id bigint) returns api.alert_rule
language sql stable as $$
  -- Column by column: readers may not read the secret, only whether there is one.
  select (r.id, r.organization_id, r.name, r.kind, r.event_type_pattern, r.stream_type_pattern, r.service, r.operation,
          r.metric, r.threshold, r.window_seconds, r.min_requests, r.channel, r.target, r.has_secret, r.group_seconds,
          r.max_alerts_per_hour, r.muted_until, r.enabled, r.created_at, r.updated_at)::api.alert_rule
    from tracing.alert_rules r
   where r.id = p_rule_id
$$;

-- The rule a mutation names, which the caller must be able to see.
create or replace function tracing.require_alert_rule(p_rule_id bigint) returns bigint
language plpgsql stable as $$
begin
  perform tracing.require_present(p_rule_id, 'p_rule_id');
  if not exists (select from tracing.alert_rules where id = p_rule_id) then
    raise exception 'p_rule_id names no alert rule' using errcode = '22023', detail = format('got %s', p_rule_id);
  end if;
  return p_rule_id;
end
$$;

create or replace function api.alert_rules() returns setof api.alert_rule
language sql stable as $$
  select tracing.to_api_alert_rule(r.id) from tracing.alert_rules r order by r.id
$$;

comment on function api.alert_rules() is
  E'The alert rules the caller may see (an admin: all; a reader: its organization''s), oldest first.';

create or replace function api.create_alert_rule(
  p_name text,
  p_kind text,
  p_channel text,
  p_target text,
  p_organization_id uuid default null,
  p_event_type_pattern text default null,
  p_stream_type_pattern text default null,
  p_service text default null,
  p_operation text default null,
  p_metric text default null,
  p_threshold double precision default null,
  p_window_seconds integer default null,
  p_min_requests integer default null,
  p_secret text default null,
  p_group_seconds integer default null,
  p_max_alerts_per_hour integer default null
) returns api.alert_rule
language plpgsql volatile as $$
declare
  v_id bigint;
begin
  insert into tracing.alert_rules (organization_id, name, kind, event_type_pattern, stream_type_pattern, service, operation, metric,
                                   threshold, window_seconds, min_requests, channel, target, secret, group_seconds, max_alerts_per_hour)
  values (p_organization_id, p_name, p_kind, p_event_type_pattern, p_stream_type_pattern, p_service, p_operation, p_metric,
          p_threshold, p_window_seconds, coalesce(p_min_requests, 1), p_channel, p_target, p_secret,
          coalesce(p_group_seconds, 300), coalesce(p_max_alerts_per_hour, 20))
  returning id into v_id;
  return tracing.to_api_alert_rule(v_id);
end
$$;

comment on function api.create_alert_rule(text, text, text, text, uuid, text, text, text, text, text, double precision, integer, integer, text, integer, integer) is
  E'Admins only. Creates an alert rule. p_kind event: a failed event whose type matches p_event_type_pattern and whose stream type matches p_stream_type_pattern (* matches any characters; null matches all). p_kind rate: p_metric (error_rate or p95_ms) of p_service (and p_operation, else each operation) over the last p_window_seconds (60-86400) above p_threshold, with at least p_min_requests requests. p_channel slack, webhook (p_secret signs it) or email; p_target the URL or the addresses. p_organization_id null watches every organization. Repeats within p_group_seconds (default 300) are grouped; at most p_max_alerts_per_hour (default 20) are sent.';

create or replace function api.update_alert_rule(
  p_rule_id bigint,
  p_name text default null,
  p_channel text default null,
  p_target text default null,
  p_event_type_pattern text default null,
  p_stream_type_pattern text default null,
  p_service text default null,
  p_operation text default null,
  p_metric text default null,
  p_threshold double precision default null,
  p_window_seconds integer default null,
  p_min_requests integer default null,
  p_secret text default null,
  p_group_seconds integer default null,
  p_max_alerts_per_hour integer default null
) returns api.alert_rule
language plpgsql volatile as $$
begin
  perform tracing.require_alert_rule(p_rule_id);
  -- null leaves a field as it is; '' clears a pattern, the operation or the secret.
  update tracing.alert_rules set
    name = coalesce(p_name, name),
    channel = coalesce(p_channel, channel),
    target = coalesce(p_target, target),
    event_type_pattern = case when p_event_type_pattern is null then event_type_pattern else nullif(p_event_type_pattern, '') end,
    stream_type_pattern = case when p_stream_type_pattern is null then stream_type_pattern else nullif(p_stream_type_pattern, '') end,
    service = coalesce(p_service, service),
    operation = case when p_operation is null then operation else nullif(p_operation, '') end,
    metric = coalesce(p_metric, metric),
    threshold = coalesce(p_threshold, threshold),
    window_seconds = coalesce(p_window_seconds, window_seconds),
    min_requests = coalesce(p_min_requests, min_requests),
    group_seconds = coalesce(p_group_seconds, group_seconds),
    max_alerts_per_hour = coalesce(p_max_alerts_per_hour, max_alerts_per_hour)
  where id = p_rule_id;
  -- Apart, because admins may write the secret but never read it.
  if p_secret is not null then
    update tracing.alert_rules set secret = nullif(p_secret, '') where id = p_rule_id;
  end if;
  return tracing.to_api_alert_rule(p_rule_id);
end
$$;

comment on function api.update_alert_rule(bigint, text, text, text, text, text, text, text, text, double precision, integer, integer, text, integer, integer) is
  E'Admins only. Changes the given fields of alert rule p_rule_id (null leaves a field as it is; an empty string clears a pattern, the operation or the secret). A rule''s kind and organization do not change.';

create or replace function api.set_alert_rule_enabled(p_rule_id bigint, p_enabled boolean) returns api.alert_rule
language plpgsql volatile as $$
begin
  perform tracing.require_alert_rule(p_rule_id);
  update tracing.alert_rules set enabled = tracing.require_present(p_enabled, 'p_enabled') where id = p_rule_id;
  return tracing.to_api_alert_rule(p_rule_id);
end
$$;

comment on function api.set_alert_rule_enabled(bigint, boolean) is
  E'Admins only. Turns alert rule p_rule_id on or off; a disabled rule raises nothing and keeps its alerts.';

create or replace function api.mute_alert_rule(p_rule_id bigint, p_until timestamptz) returns api.alert_rule
language plpgsql volatile as $$
begin
  perform tracing.require_alert_rule(p_rule_id);
  if p_until > now() + interval '1 year' then
    raise exception 'p_until must be within a year (disable the rule instead)' using errcode = '22023';
  end if;
  update tracing.alert_rules set muted_until = p_until where id = p_rule_id;
  return tracing.to_api_alert_rule(p_rule_id);
end
$$;

comment on function api.mute_alert_rule(bigint, timestamptz) is
  E'Admins only. Mutes alert rule p_rule_id until p_until (at most a year ahead; null unmutes): its alerts are recorded, not sent.';

create or replace function api.delete_alert_rule(p_rule_id bigint) returns api.alert_rule
language plpgsql volatile as $$
declare
  v_rule api.alert_rule;
begin
  perform tracing.require_alert_rule(p_rule_id);
  v_rule := tracing.to_api_alert_rule(p_rule_id);
  delete from tracing.alert_rules where id = p_rule_id;
  return v_rule;
end
$$;

comment on function api.delete_alert_rule(bigint) is
  E'Admins only. Deletes alert rule p_rule_id with its alerts and their deliveries, and returns it as it was.';

-- Readers and admins: a request without a token has no grant on rules.
grant execute on function
  tracing.alert_pattern_to_like(text),
  tracing.to_api_alert_rule(bigint),
  tracing.require_alert_rule(bigint),
  api.alert_rules()
to tracegres_reader;

grant execute on function
  api.create_alert_rule(text, text, text, text, uuid, text, text, text, text, text, double precision, integer, integer, text, integer, integer),
  api.update_alert_rule(bigint, text, text, text, text, text, text, text, text, double precision, integer, integer, text, integer, integer),
  api.set_alert_rule_enabled(bigint, boolean),
  api.mute_alert_rule(bigint, timestamptz),
  api.delete_alert_rule(bigint)
to tracegres_admin;
