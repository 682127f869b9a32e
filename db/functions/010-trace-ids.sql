-- Conversions between W3C Trace Context hex ids and their storage types.
--
-- trace ids (32 lowercase hex) are stored as uuid (16 bytes), span ids
-- (16 lowercase hex) as bigint (8 bytes): half the index size of text and
-- the cheapest comparisons Postgres has. These are SQL functions without
-- STRICT or SET so the planner inlines them into the promotion trigger and
-- the query functions; they return null, never raise, on malformed input.

create or replace function tracing.hex_to_trace_id(value text) returns uuid
language sql immutable parallel safe as $$
  -- W3C: 32 lowercase hex digits; all zeros is an invalid trace id.
  select case
    when length(value) = 32
     and ltrim(value, '0123456789abcdef') = ''
     and value <> '00000000000000000000000000000000'
    then value::uuid
  end
$$;

create or replace function tracing.hex_to_span_id(value text) returns bigint
language sql immutable parallel safe as $$
  -- W3C: 16 lowercase hex digits; all zeros is an invalid span id. The
  -- 64 bits are kept as a signed bigint (two's complement), so ids with the
  -- high bit set become negative numbers; span_id_to_hex reverses that.
  select case
    when length(value) = 16
     and ltrim(value, '0123456789abcdef') = ''
     and value <> '0000000000000000'
    then ('x' || value)::bit(64)::bigint
  end
$$;

create or replace function tracing.text_to_uuid(value text) returns uuid
language sql immutable parallel safe as $$
  -- Correlation and session ids: the canonical 8-4-4-4-12 form (either
  -- case, per RFC 9562), not the nil uuid. Other spellings Postgres would
  -- accept (braces, no hyphens) are refused so both sides agree on one form.
  -- Checked without a regular expression, which took most of this
  -- function's time (it runs for every event and span written): 36
  -- characters that are hex digits but for four hyphens, which stand at the
  -- 9th, 14th, 19th and 24th places.
  select case
    when length(value) = 36
     and translate(value, '0123456789abcdefABCDEF', '') = '----'
     and substr(value, 9, 1) = '-' and substr(value, 14, 1) = '-' and substr(value, 19, 1) = '-' and substr(value, 24, 1) = '-'
     and value <> '00000000-0000-0000-0000-000000000000'
    then value::uuid
  end
$$;

-- The id's bytes (uuid_send, int8send: big-endian, the 64 bits of a span
-- id as their two's complement) printed as lowercase hex. Every event the
-- promotion trigger's WHEN clause looks at spells three ids this way; the
-- earlier replace(value::text, '-', '') and lpad(to_hex(value), 16, '0')
-- cost about 1.5 times as much and print the same text.
create or replace function tracing.trace_id_to_hex(value uuid) returns text
language sql immutable parallel safe as $$
  select encode(uuid_send(value), 'hex')
$$;

create or replace function tracing.span_id_to_hex(value bigint) returns text
language sql immutable parallel safe as $$
  select encode(int8send(value), 'hex')
$$;

create or replace function tracing.trace_field_problem(field text, value jsonb) returns text
language sql immutable parallel safe as $$
  -- Why a trace field value was refused (called only on the rare failing path).
  with v(t) as (select value #>> '{}')
  select case
    when jsonb_typeof(value) <> 'string' then 'must be a string, got ' || jsonb_typeof(value)
    when field in ('correlation_id', 'session_id') then
      case
        when t = '00000000-0000-0000-0000-000000000000' then 'must not be the nil uuid'
        else 'must be a uuid in 8-4-4-4-12 hex form'
      end
    else
      case
        when length(t) <> case field when 'trace_id' then 32 else 16 end
          then format('must be %s hex characters, got %s', case field when 'trace_id' then 32 else 16 end, length(t))
        when t ~ '[A-F]' and t !~ '[^0-9a-fA-F]' then 'must be lowercase hex'
        when t ~ '[^0-9a-f]' then 'must contain only hex characters 0-9a-f'
        else 'must not be all zeros'
      end
  end
  from v
$$;

comment on function tracing.trace_field_problem(text, jsonb) is
  E'The reason a trace field value from event_metadata was not promoted, recorded in trace_field_errors.';

-- Writers need the conversions for the promotion trigger (it runs as the
-- inserting role) and to write typed columns; readers to read hex ids.
grant execute on function
  tracing.hex_to_trace_id(text), tracing.hex_to_span_id(text), tracing.text_to_uuid(text),
  tracing.trace_id_to_hex(uuid), tracing.span_id_to_hex(bigint)
  to tracegres_writer, tracegres_reader;
grant execute on function tracing.trace_field_problem(text, jsonb) to tracegres_writer;
