-- Argument checks shared by the api functions and the retention procedures,
-- so every function words its errors the same way: the message starts with
-- the argument's name (GraphQL shows it to the caller as is) and the
-- SQLSTATE is 22023 (invalid_parameter_value), which the server maps to a
-- client error.

create or replace function tracing.require_trace_id(p_value text, p_argument text) returns uuid
language plpgsql immutable parallel safe as $$
declare
  converted uuid := tracing.hex_to_trace_id(p_value);
begin
  if converted is null then
    if p_value is null then
      raise exception '% is required', p_argument using errcode = '22023';
    end if;
    raise exception '% must be 32 lowercase hex characters (a W3C trace id), not all zeros', p_argument
      using errcode = '22023', detail = format('got %s characters', length(p_value));
  end if;
  return converted;
end
$$;

comment on function tracing.require_trace_id(text, text) is
  E'The uuid form of a W3C trace id argument; raises 22023 naming the argument when it is missing or malformed.';

create or replace function tracing.require_present(p_value anyelement, p_argument text) returns anyelement
language plpgsql immutable parallel safe as $$
begin
  if p_value is null then
    raise exception '% is required', p_argument using errcode = '22023';
  end if;
  return p_value;
end
$$;

comment on function tracing.require_present(anyelement, text) is
  E'Returns the argument; raises 22023 naming it when it is null.';

create or replace function tracing.require_page_size(p_value integer, p_argument text, p_default integer, p_max integer)
returns integer
language plpgsql immutable parallel safe as $$
begin
  -- Null means "the default", so a GraphQL client may leave it out.
  if p_value is null then
    return p_default;
  end if;
  if p_value < 1 or p_value > p_max then
    raise exception '% must be between 1 and %', p_argument, p_max
      using errcode = '22023', detail = format('got %s', p_value);
  end if;
  return p_value;
end
$$;

comment on function tracing.require_page_size(integer, text, integer, integer) is
  E'Validates a page size argument (null gives the default); raises 22023 naming it when out of range.';

create or replace function tracing.require_cursor(
  p_time timestamptz, p_time_argument text, p_key anyelement, p_key_argument text
) returns void
language plpgsql immutable parallel safe as $$
begin
  -- A keyset cursor is a pair: half of one cannot place the next page.
  if p_time is null and p_key is not null then
    raise exception '% is required when % is given', p_time_argument, p_key_argument using errcode = '22023';
  elsif p_time is not null and p_key is null then
    raise exception '% is required when % is given', p_key_argument, p_time_argument using errcode = '22023';
  end if;
end
$$;

comment on function tracing.require_cursor(timestamptz, text, anyelement, text) is
  E'Checks that both halves of a keyset cursor are given, or neither; raises 22023 naming the missing one.';

create or replace function tracing.require_time_range(p_from timestamptz, p_to timestamptz) returns void
language plpgsql immutable parallel safe as $$
begin
  if p_from >= p_to then
    raise exception 'p_from must be before p_to' using errcode = '22023',
      detail = format('got p_from %s, p_to %s', p_from, p_to);
  end if;
end
$$;

comment on function tracing.require_time_range(timestamptz, timestamptz) is
  E'Checks that a [p_from, p_to) range is not empty; raises 22023 otherwise.';

-- A window whose both ends the caller must give (metrics, failed-event
-- sets, search-key lookups): each end present, and a non-empty range.
create or replace function tracing.require_bounded_time_range(p_from timestamptz, p_to timestamptz) returns void
language plpgsql immutable parallel safe as $$
begin
  perform tracing.require_present(p_from, 'p_from');
  perform tracing.require_present(p_to, 'p_to');
  perform tracing.require_time_range(p_from, p_to);
end
$$;

comment on function tracing.require_bounded_time_range(timestamptz, timestamptz) is
  E'Checks that p_from and p_to are both given and that [p_from, p_to) is not empty; raises 22023 naming the argument otherwise.';

-- The retention procedures' age and keep-for arguments: null means "the
-- setting", anything else must be a positive interval.
create or replace function tracing.require_positive_interval(p_value interval, p_argument text) returns void
language plpgsql immutable parallel safe as $$
begin
  if p_value <= interval '0' then
    raise exception '% must be a positive interval, got %', p_argument, p_value using errcode = '22023';
  end if;
end
$$;

comment on function tracing.require_positive_interval(interval, text) is
  E'Checks that an interval argument is null or positive; raises 22023 naming it otherwise.';

-- The api functions run with the caller's rights, and so do these checks
-- and the id conversions they use.
grant execute on function
  tracing.require_trace_id(text, text),
  tracing.require_present(anyelement, text),
  tracing.require_page_size(integer, text, integer, integer),
  tracing.require_cursor(timestamptz, text, anyelement, text),
  tracing.require_time_range(timestamptz, timestamptz),
  tracing.require_bounded_time_range(timestamptz, timestamptz),
  tracing.hex_to_trace_id(text),
  tracing.hex_to_span_id(text),
  tracing.trace_id_to_hex(uuid),
  tracing.span_id_to_hex(bigint)
to tracegres_anonymous;
