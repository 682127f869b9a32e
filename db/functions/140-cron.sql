-- The cron dialect of retention schedules, in SQL: which minutes a
-- five-field expression (pg_cron's dialect, UTC) matches, its next run, and
-- a clear error naming the field that is malformed.
--
-- The in-process scheduler of `npm start` asks this SQL whether a minute is
-- due, so the dialect is parsed in one place and both schedulers (pg_cron
-- and ours) agree on it. Times are UTC, as pg_cron's are.

-- Does one cron field (e.g. '*/15', '1-5', 'mon-fri', '0,30') allow value?
-- Raises on a malformed field, naming it.
create or replace function tracing.cron_field_matches(field text, value integer, low integer, high integer, field_name text)
returns boolean
language plpgsql immutable parallel safe as $$
declare
  item text;
  parts text[];
  range_text text;
  step integer := 1;
  range_low integer;
  range_high integer;
  matched boolean := false;
begin
  if field is null or field = '' then
    raise exception 'invalid cron expression: the % field is empty', field_name using errcode = '22023';
  end if;
  foreach item in array string_to_array(field, ',') loop
    parts := string_to_array(item, '/');
    if cardinality(parts) > 2 or parts[1] = '' or (cardinality(parts) = 2 and parts[2] !~ '^[0-9]+$') then
      raise exception 'invalid cron expression: "%" in the % field', item, field_name using errcode = '22023';
    end if;
    range_text := parts[1];
    if cardinality(parts) = 2 then
      step := parts[2]::integer;
      if step < 1 then
        raise exception 'invalid cron expression: step 0 in the % field', field_name using errcode = '22023';
      end if;
    else
      step := 1;
    end if;
    if range_text = '*' then
      range_low := low;
      range_high := high;
    elsif range_text ~ '^[0-9]+-[0-9]+$' then
      range_low := split_part(range_text, '-', 1)::integer;
      range_high := split_part(range_text, '-', 2)::integer;
    elsif range_text ~ '^[0-9]+$' then
      range_low := range_text::integer;
      -- "5/15" means from 5 to the end in steps of 15 (vixie cron).
      range_high := case when cardinality(parts) = 2 then high else range_low end;
    else
      raise exception 'invalid cron expression: "%" in the % field', item, field_name using errcode = '22023';
    end if;
    if range_low < low or range_high > high or range_low > range_high then
      raise exception 'invalid cron expression: "%" is outside %-% in the % field', item, low, high, field_name
        using errcode = '22023';
    end if;
    if value between range_low and range_high and (value - range_low) % step = 0 then
      matched := true;
    end if;
  end loop;
  return matched;
end
$$;

-- Month and weekday names as numbers, macros as their five fields.
create or replace function tracing.cron_normalize(expression text) returns text[]
language plpgsql immutable parallel safe as $$
declare
  e text := lower(btrim(coalesce(expression, '')));
  fields text[];
  name text;
  k integer;
begin
  e := case e
    when '@yearly' then '0 0 1 1 *'
    when '@annually' then '0 0 1 1 *'
    when '@monthly' then '0 0 1 * *'
    when '@weekly' then '0 0 * * 0'
    when '@daily' then '0 0 * * *'
    when '@midnight' then '0 0 * * *'
    when '@hourly' then '0 * * * *'
    else e
  end;
  if e ~ '^[0-9]+ seconds?$' or e like '@%' or e like '%$%' then
    raise exception 'cron expression "%" is not supported: retention schedules use the five standard fields (minute hour day-of-month month day-of-week), which both pg_cron and the in-process scheduler run', expression
      using errcode = '22023';
  end if;
  fields := regexp_split_to_array(e, '\s+');
  if cardinality(fields) <> 5 then
    raise exception 'invalid cron expression "%": expected 5 fields (minute hour day-of-month month day-of-week), got %',
      expression, case when e = '' then 0 else cardinality(fields) end
      using errcode = '22023';
  end if;
  k := 0;
  foreach name in array array['jan','feb','mar','apr','may','jun','jul','aug','sep','oct','nov','dec'] loop
    k := k + 1;
    fields[4] := replace(fields[4], name, k::text);
  end loop;
  k := 0;
  foreach name in array array['sun','mon','tue','wed','thu','fri','sat'] loop
    fields[5] := replace(fields[5], name, k::text);
    k := k + 1;
  end loop;
  return fields;
end
$$;

create or replace function tracing.cron_day_matches(fields text[], p_date date) returns boolean
language plpgsql immutable parallel safe as $$
declare
  dom boolean := tracing.cron_field_matches(fields[3], extract(day from p_date)::int, 1, 31, 'day-of-month');
  -- 0 and 7 both mean Sunday.
  dow boolean := tracing.cron_field_matches(fields[5], extract(dow from p_date)::int, 0, 7, 'day-of-week')
              or (extract(dow from p_date) = 0 and tracing.cron_field_matches(fields[5], 7, 0, 7, 'day-of-week'));
begin
  if not tracing.cron_field_matches(fields[4], extract(month from p_date)::int, 1, 12, 'month') then
    return false;
  end if;
  -- Vixie cron (and pg_cron): when both day fields are restricted, a day
  -- matching either one runs; when one starts with '*', both must match.
  if left(fields[3], 1) = '*' or left(fields[5], 1) = '*' then
    return dom and dow;
  end if;
  return dom or dow;
end
$$;

create or replace function tracing.cron_matches(expression text, at timestamptz) returns boolean
language plpgsql immutable parallel safe as $$
declare
  fields text[] := tracing.cron_normalize(expression);
  utc timestamp := at at time zone 'UTC';
begin
  return tracing.cron_field_matches(fields[1], extract(minute from utc)::int, 0, 59, 'minute')
     and tracing.cron_field_matches(fields[2], extract(hour from utc)::int, 0, 23, 'hour')
     and tracing.cron_day_matches(fields, utc::date);
end
$$;

comment on function tracing.cron_matches(text, timestamptz) is
  E'Whether a five-field cron expression (UTC, as pg_cron) fires in the minute of at.';

create or replace function tracing.check_cron_expression(expression text) returns text
language plpgsql immutable parallel safe as $$
begin
  -- Parsing every field against any time raises on whatever is malformed.
  perform tracing.cron_matches(expression, '2000-01-01 00:00:00+00');
  return btrim(expression);
end
$$;

comment on function tracing.check_cron_expression(text) is
  E'Returns the expression trimmed, or raises an error saying what is wrong with it.';

create or replace function tracing.cron_next_run(expression text, after timestamptz) returns timestamptz
language plpgsql immutable parallel safe as $$
declare
  fields text[] := tracing.cron_normalize(expression);
  start timestamp := date_trunc('minute', after at time zone 'UTC') + interval '1 minute';
  v_date date;
begin
  -- Day by day, then hour and minute within a matching day: at most a few
  -- thousand field checks even for a yearly schedule.
  for d in 0 .. 366 * 5 loop
    v_date := start::date + d;
    continue when not tracing.cron_day_matches(fields, v_date);
    for h in (case when d = 0 then extract(hour from start)::int else 0 end) .. 23 loop
      continue when not tracing.cron_field_matches(fields[2], h, 0, 23, 'hour');
      for m in (case when d = 0 and h = extract(hour from start) then extract(minute from start)::int else 0 end) .. 59 loop
        if tracing.cron_field_matches(fields[1], m, 0, 59, 'minute') then
          return (v_date + make_time(h, m, 0)) at time zone 'UTC';
        end if;
      end loop;
    end loop;
  end loop;
  return null;
end
$$;

comment on function tracing.cron_next_run(text, timestamptz) is
  E'The first minute after `after` in which the cron expression fires (null if none within five years, e.g. 30 February).';
