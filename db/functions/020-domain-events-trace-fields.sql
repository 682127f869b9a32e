-- Keeps the trace columns of tracing.domain_events and the trace fields of
-- its event_metadata in step, so a writer may set either.
--
--   * a field present in event_metadata and absent as a column is validated
--     and promoted into the column;
--   * a column given directly is written into event_metadata (canonical
--     form), so the JSONB stays the complete record;
--   * a malformed value is not promoted: the raw value stays in
--     event_metadata, the event is stored anyway, and trace_field_errors says
--     what was refused and why. An event is never lost over its trace fields.
--   * on UPDATE, whichever side changed wins.
--
-- The common insert gives the fields in event_metadata only, each absent or
-- already canonical. For it, the trigger reads each field once, one check
-- of all five at once (trace_texts_are_canonical) replaces the five
-- validating conversions, and the columns are filled by plain casts. The
-- validating conversions had cost about 9 us of the trigger's 10 us a row,
-- a third of a bulk load of metadata-only events (CPU time of the backend,
-- 200k rows, Postgres 18); with the check the trigger costs about 3.5 us,
-- of which calling plpgsql is 0.5, reading the fields 0.4, the check 1.1
-- and the casts into NEW 0.9 (Postgres 15, same measure). Anything else (a
-- column given, a value to refuse or respell, an UPDATE) takes the full path.
--
-- The full path is written once for all five fields: the trigger turns the
-- typed columns into their canonical text (the spelling event_metadata
-- holds) and runs each field through the same steps, each a named rule
-- below: the UPDATE rule (trace_field_stale_side), the column's value
-- (trace_field_column: an all-zero column is refused, a valid column wins,
-- else the metadata is promoted), what was refused (add_trace_field_refusal),
-- and the write-back of the column into the metadata. The rules are plain
-- SQL of immutable or stable functions, so the planner inlines them into
-- the trigger's expressions. A plpgsql helper per field made the trigger
-- 1.3 to 2 times slower, and SQL helpers that failed to inline (a record
-- result, or an immutable one around a stable call) 5 to 7 times. Inlined,
-- with a field that already agrees skipped, the full path costs about 1.2
-- times the body unrolled per field that it replaced. Measured in one session on the test schema (psql loop,
-- 20k inserts giving correlation_id with three fields to promote, and 20k
-- UPDATEs of one field in event_metadata, old and new trigger alternating
-- in batches of 2k, three runs, Postgres 15, machine shared and loaded):
--   inserts: 453/475/481 ms before, 523/535/496 ms after (statement 1.03-1.15x;
--            the trigger alone, less a run without it, 1.04-1.24x);
--   UPDATEs: 436/437/427 ms before, 513/503/475 ms after (statement 1.11-1.18x;
--            the trigger alone 1.19-1.42x).
-- A differential check of the two bodies over every combination of
-- metadata value (absent, JSON null, valid, uppercase, other id, all zeros,
-- malformed, non-string) and column value, on insert and on three kinds of
-- UPDATE (49,644 rows), found no difference.

create or replace function tracing.tg_domain_events__sync_trace_fields() returns trigger
language plpgsql as $$
declare
  meta jsonb := new.event_metadata;
  -- The fast path reads each field of event_metadata once, into these.
  given_correlation_id text;
  given_session_id text;
  given_trace_id text;
  given_span_id text;
  given_parent_span_id text;
  -- The full path works on each column spelled as canonical text, the form
  -- event_metadata holds, so one set of rules serves all five fields.
  fields text[];
  columns text[];
  old_columns text[];
  field text;
  written text;  -- the column as the writer left it
  given text;    -- the metadata's value
  decided text;  -- the column as it will be stored
  errors jsonb;
begin
  if tg_op = 'INSERT'
     and new.correlation_id is null and new.session_id is null and new.trace_id is null
     and new.span_id is null and new.parent_span_id is null and new.trace_field_errors is null then
    given_correlation_id := meta->>'correlation_id';
    given_session_id := meta->>'session_id';
    given_trace_id := meta->>'trace_id';
    given_span_id := meta->>'span_id';
    given_parent_span_id := meta->>'parent_span_id';
    if jsonb_typeof(meta) = 'object'
       and tracing.trace_texts_are_canonical(given_correlation_id, given_session_id, given_trace_id,
                                            given_span_id, given_parent_span_id) then
      -- The casts cannot fail on canonical values; the span ids convert as
      -- tracing.hex_to_span_id converts them.
      new.correlation_id := given_correlation_id::uuid;
      new.session_id := given_session_id::uuid;
      new.trace_id := given_trace_id::uuid;
      new.span_id := ('x' || given_span_id)::bit(64)::bigint;
      new.parent_span_id := ('x' || given_parent_span_id)::bit(64)::bigint;
      return new;
    end if;
  end if;

  -- Metadata that is not an object (an array, a string) cannot take the
  -- trace fields: the event is stored as written, with its typed columns,
  -- and flagged, rather than failing inside jsonb_set.
  if jsonb_typeof(meta) <> 'object' then
    new.trace_field_errors := tracing.trace_field_error(null, 'event_metadata', meta,
      'must be a JSON object; the trace columns were kept and not copied into it');
    return new;
  end if;

  fields := array['correlation_id', 'session_id', 'trace_id', 'span_id', 'parent_span_id'];
  columns := tracing.trace_columns_as_text(new.correlation_id, new.session_id, new.trace_id, new.span_id, new.parent_span_id);
  if tg_op = 'UPDATE' then
    old_columns := tracing.trace_columns_as_text(old.correlation_id, old.session_id, old.trace_id, old.span_id, old.parent_span_id);
  end if;

  for i in 1 .. 5 loop
    field := fields[i];
    written := columns[i];
    -- A column that already matches its field, and a field absent on both
    -- sides, need nothing, whatever an UPDATE changed: each rule below
    -- would leave both as they are.
    continue when (written = meta->>field and not tracing.is_zero_trace_id(written))
               or (written is null and meta->field is null);
    -- 1. On UPDATE, forget the side the update left stale.
    if tg_op = 'UPDATE' then
      case tracing.trace_field_stale_side(written is distinct from old_columns[i],
                                          meta->field is distinct from old.event_metadata->field)
        when 'column' then written := null;
        when 'field' then meta := meta - field;
        else null;
      end case;
    end if;
    -- 2. Decide the column, and record what that refused.
    given := meta->>field;
    decided := tracing.trace_field_column(field, written, given);
    errors := tracing.add_trace_field_refusal(errors, field, written, decided, given, meta);
    -- 3. The metadata holds the column's canonical spelling whenever there
    -- is a column: a column given is written back, an uppercase uuid respelled.
    if decided is not null and given is distinct from decided then
      meta := jsonb_set(meta, array[field], to_jsonb(decided));
    end if;
    columns[i] := decided;
  end loop;

  -- Back to the typed columns; the texts are canonical, so the casts cannot
  -- fail (32 hex digits read as a uuid, 16 as 64 bits, as in 010-trace-ids.sql).
  new.correlation_id := columns[1]::uuid;
  new.session_id := columns[2]::uuid;
  new.trace_id := columns[3]::uuid;
  new.span_id := ('x' || columns[4])::bit(64)::bigint;
  new.parent_span_id := ('x' || columns[5])::bit(64)::bigint;
  new.event_metadata := meta;
  new.trace_field_errors := errors;
  return new;
end
$$;

-- True when each trace field, as read from event_metadata (->>), is absent
-- or in the one form the full promotion would take without a change or an
-- error: lowercase 8-4-4-4-12 uuids other than the nil uuid, 32 and 16
-- lowercase hex digits other than all zeros. Plain SQL of immutable
-- functions only, so the planner inlines it into the trigger's expression:
-- a function call would cost more than the check. The trigger reads each
-- field once into a variable and passes the five; the earlier check took
-- event_metadata and read every field four or five times (22 lookups a
-- row). The hex digits of all five are checked by one regex.
create or replace function tracing.trace_texts_are_canonical(
  correlation_id text, session_id text, trace_id text, span_id text, parent_span_id text
) returns boolean
language sql immutable parallel safe as $$
  select (correlation_id is null
          or (correlation_id like '________-____-____-____-____________'
              and octet_length(replace(correlation_id, '-', '')) = 32
              and correlation_id <> '00000000-0000-0000-0000-000000000000'))
    and (session_id is null
         or (session_id like '________-____-____-____-____________'
             and octet_length(replace(session_id, '-', '')) = 32
             and session_id <> '00000000-0000-0000-0000-000000000000'))
    and (trace_id is null or (octet_length(trace_id) = 32 and trace_id <> '00000000000000000000000000000000'))
    and (span_id is null or (octet_length(span_id) = 16 and span_id <> '0000000000000000'))
    and (parent_span_id is null or (octet_length(parent_span_id) = 16 and parent_span_id <> '0000000000000000'))
    -- The hyphens were placed and counted above; every other byte is a
    -- lowercase hex digit. (|| and coalesce, not concat(): concat is only
    -- stable, and a stable call would stop the inlining.)
    and (coalesce(replace(correlation_id, '-', ''), '') || coalesce(replace(session_id, '-', ''), '')
         || coalesce(trace_id, '') || coalesce(span_id, '') || coalesce(parent_span_id, '')) !~ '[^0-9a-f]'
$$;

comment on function tracing.trace_texts_are_canonical(text, text, text, text, text) is
  E'True when every trace field of an event_metadata object, given as text (null when absent), is canonical, so the promotion trigger may cast them without its checks.';

-- Replaced by trace_texts_are_canonical (the trigger above no longer calls it).
drop function if exists tracing.trace_fields_are_canonical(jsonb);

create or replace function tracing.trace_field_error(errors jsonb, field text, value jsonb, reason text) returns jsonb
language sql immutable parallel safe as $$
  select coalesce(errors, '{}'::jsonb) || jsonb_build_object(
    field,
    jsonb_build_object('value', value, 'reason', coalesce(reason, tracing.trace_field_problem(field, value)))
  )
$$;

comment on function tracing.trace_field_error(jsonb, text, jsonb, text) is
  E'Adds one refused trace field, with its raw value and the reason, to a trace_field_errors object.';

-- The helpers below are plain SQL expressions of immutable functions, so
-- the planner inlines them into the trigger's statements: a call of a
-- plpgsql helper (or of any function returning a record, which is never
-- inlined) cost more than the rule it holds (see the header).

-- The five trace columns in the spelling event_metadata holds, in the order
-- of the trigger's field list.
create or replace function tracing.trace_columns_as_text(
  correlation_id uuid, session_id uuid, trace_id uuid, span_id bigint, parent_span_id bigint
) returns text[]
language sql immutable parallel safe as $$
  select array[
    correlation_id::text, session_id::text, tracing.trace_id_to_hex(trace_id),
    tracing.span_id_to_hex(span_id), tracing.span_id_to_hex(parent_span_id)
  ]
$$;

comment on function tracing.trace_columns_as_text(uuid, uuid, uuid, bigint, bigint) is
  E'The trace columns of an event spelled as event_metadata spells them: lowercase uuids, 32 and 16 hex digits.';

-- The canonical spelling of a raw trace field, or null when it is refused:
-- a uuid in either case comes back lowercase; the hex ids are valid only
-- when they are canonical already (W3C asks for lowercase).
create or replace function tracing.canonical_trace_field(field text, value text) returns text
language sql immutable parallel safe as $$
  select case
    when field in ('correlation_id', 'session_id') then tracing.text_to_uuid(value)::text
    when field = 'trace_id' then tracing.trace_id_to_hex(tracing.hex_to_trace_id(value))
    else tracing.span_id_to_hex(tracing.hex_to_span_id(value))
  end
$$;

comment on function tracing.canonical_trace_field(text, text) is
  E'The canonical spelling of a trace field value from event_metadata, or null when it is not a valid id.';

-- True for a column's canonical text that spells the all-zero id, which
-- W3C (and we, for uuids) forbid. A typed column cannot hold a malformed
-- id, but it can hold this one.
create or replace function tracing.is_zero_trace_id(column_text text) returns boolean
language sql immutable parallel safe as $$
  select ltrim(column_text, '0-') = ''
$$;

comment on function tracing.is_zero_trace_id(text) is
  E'True when a trace column, spelled as text, holds the nil uuid or the all-zero trace or span id.';

-- The UPDATE rule: whichever side an UPDATE changed wins. A field edited
-- in event_metadata while its column stayed put is promoted again, so the
-- stale side is the column; a column edited while the field stayed put is
-- written into the metadata again, so the stale side is the field.
create or replace function tracing.trace_field_stale_side(column_changed boolean, field_changed boolean) returns text
language sql immutable parallel safe as $$
  select case
    when not column_changed and field_changed then 'column'
    when column_changed and not field_changed then 'field'
  end
$$;

comment on function tracing.trace_field_stale_side(boolean, boolean) is
  E'On UPDATE, which side of one trace field (''column'' or ''field'' of event_metadata) the update left stale, or null.';

-- The value one trace column takes: the column when it holds a valid id
-- (the column wins); otherwise the metadata's value, promoted in its
-- canonical spelling, or null when that is absent or invalid.
create or replace function tracing.trace_field_column(field text, column_text text, given text) returns text
language sql immutable parallel safe as $$
  select case
    when not tracing.is_zero_trace_id(column_text) then column_text
    else tracing.canonical_trace_field(field, given)
  end
$$;

comment on function tracing.trace_field_column(text, text, text) is
  E'The value (canonical text) a trace column takes from the column as written and the event_metadata field.';

-- Adds to `errors` what the sync refused for one field, given the column
-- as written, the column as trace_field_column decided it, and the
-- metadata's value (raw in `meta`, as text in `given`):
--   * a metadata value that was to be promoted and is not a valid id (the
--     column stayed empty; the value stays in the metadata);
--   * else an all-zero column, which was emptied;
--   * else a different id in the metadata that a valid column replaced
--     (the same uuid in uppercase is only respelled, not refused).
-- Stable, not immutable: to_jsonb is stable, and a function declared
-- immutable around a stable call is not inlined.
create or replace function tracing.add_trace_field_refusal(
  errors jsonb, field text, written text, decided text, given text, meta jsonb
) returns jsonb
language sql stable parallel safe as $$
  select case
    when given is not null and decided is null
      then tracing.trace_field_error(errors, field, meta->field, null)
    when tracing.is_zero_trace_id(written)
      then tracing.trace_field_error(errors, field, to_jsonb(written),
             case when field in ('correlation_id', 'session_id') then 'must not be the nil uuid' else 'must not be all zeros' end)
    when written is not null and given is distinct from written
         and given is not null and tracing.canonical_trace_field(field, given) is distinct from written
      then tracing.trace_field_error(errors, field, meta->field, 'replaced by the ' || field || ' column')
    else errors
  end
$$;

comment on function tracing.add_trace_field_refusal(jsonb, text, text, text, text, jsonb) is
  E'Adds the refusal, if any, of one trace field (an invalid metadata value, an all-zero column, a metadata id replaced by the column) to a trace_field_errors object.';

-- Whether an event needs the trigger function: a column disagrees with its
-- field of event_metadata (both absent counts as agreeing), a column is
-- all zeros, trace_field_errors is set or the metadata is not an object
-- (->> of any key of an array, a string, a number or JSON null is null, so
-- it would pass for an event without trace fields). An event that gives no
-- trace column goes to the function's fast path at once, without the
-- comparisons. It is the trigger's WHEN clause, and plpgsql, not SQL, on
-- purpose: Postgres reads a WHEN clause from its stored node text and
-- compiles it again for every statement, and an inlined SQL function is
-- parsed again each time. The comparisons written out in the clause were
-- 7.8 kB of node text and cost each single-row insert 9-12 us of CPU; this
-- call is 1 kB, and its body is planned once a session. Single-row inserts,
-- one a transaction (Postgres 15, backend CPU, synchronous_commit off,
-- batches of 150 alternating among the versions, first quartile, machine
-- loaded; the plain table 51 us): columns and metadata 113 us with the
-- comparisons in the clause, 95 us with them in the trigger function and
-- no clause, 98 us with this call; metadata only 125, 102 and 103 us
-- (the first figures also hold the alert trigger's old definer rights,
-- 221-alert-queue.sql).
-- 100,000-row bulk loads, CPU a row (least of nine, two runs): columns and
-- metadata 7.7-7.9, 8.5-9.4 and 8.0-8.3 us (the trigger function's call
-- costs a bulk row more than this one); metadata only 11.8-12.1 us in all.
create or replace function tracing.trace_fields_need_sync(
  event_metadata jsonb, correlation_id uuid, session_id uuid, trace_id uuid, span_id bigint, parent_span_id bigint,
  trace_field_errors jsonb
) returns boolean
language plpgsql immutable parallel safe as $$
begin
  if correlation_id is null and session_id is null and trace_id is null and span_id is null and parent_span_id is null then
    return true;
  end if;
  return ((event_metadata->>'correlation_id') is distinct from correlation_id::text
          or (event_metadata->>'session_id') is distinct from session_id::text
          or (event_metadata->>'trace_id') is distinct from tracing.trace_id_to_hex(trace_id)
          or (event_metadata->>'span_id') is distinct from tracing.span_id_to_hex(span_id)
          or (event_metadata->>'parent_span_id') is distinct from tracing.span_id_to_hex(parent_span_id)
          or trace_field_errors is not null
          or jsonb_typeof(event_metadata) <> 'object'
          -- A typed column can still hold an id W3C forbids: all zeros.
          or correlation_id = '00000000-0000-0000-0000-000000000000'
          or session_id = '00000000-0000-0000-0000-000000000000'
          or trace_id = '00000000-0000-0000-0000-000000000000'
          or span_id = 0
          or parent_span_id = 0) is true;
end
$$;

comment on function tracing.trace_fields_need_sync(jsonb, uuid, uuid, uuid, bigint, bigint, jsonb) is
  E'Whether an event''s trace columns and event_metadata need the promotion trigger: a trace column given that disagrees with its field or is all zeros, trace_field_errors set, metadata that is not an object, or no trace column given at all (the fast path promotes the metadata).';

-- _100_ orders it among future triggers on the table (graphile-starter convention).
create or replace trigger _100_sync_trace_fields
  before insert or update of event_metadata, correlation_id, session_id, trace_id, span_id, parent_span_id
  on tracing.domain_events
  for each row
  when (tracing.trace_fields_need_sync(new.event_metadata, new.correlation_id, new.session_id, new.trace_id,
                                       new.span_id, new.parent_span_id, new.trace_field_errors))
  execute function tracing.tg_domain_events__sync_trace_fields();

grant execute on function
  tracing.trace_field_error(jsonb, text, jsonb, text), tracing.trace_texts_are_canonical(text, text, text, text, text),
  tracing.trace_columns_as_text(uuid, uuid, uuid, bigint, bigint), tracing.canonical_trace_field(text, text),
  tracing.is_zero_trace_id(text), tracing.trace_field_stale_side(boolean, boolean),
  tracing.trace_field_column(text, text, text), tracing.add_trace_field_refusal(jsonb, text, text, text, text, jsonb),
  tracing.trace_fields_need_sync(jsonb, uuid, uuid, uuid, bigint, bigint, jsonb)
  to tracegres_writer;
