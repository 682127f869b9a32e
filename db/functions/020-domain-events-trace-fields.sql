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
-- The body is unrolled per field on purpose: this runs for every inserted
-- event, and plpgsql's fast path for simple expressions (with the inlined
-- SQL conversion functions of 010-trace-ids.sql) is what keeps it cheap.
--
-- The common insert gives the fields in event_metadata only, each absent or
-- already canonical. For it, one check of all five at once
-- (trace_fields_are_canonical) replaces the five validating conversions,
-- and the columns are filled by plain casts. The validating conversions had
-- cost about 9 us of the trigger's 10 us a row, a third of a bulk load of
-- metadata-only events (CPU time of the backend, 200k rows, Postgres 18);
-- with the check the trigger costs about 4 us. Anything else (a column
-- given, a value to refuse or respell, an UPDATE) takes the full path below,
-- which decides every case as before.

create or replace function tracing.tg_domain_events__sync_trace_fields() returns trigger
language plpgsql as $$
declare
  meta jsonb := new.event_metadata;
  given text;
  wanted text;
  errors jsonb;
  meta_changed boolean := false;
begin
  if tg_op = 'INSERT'
     and new.correlation_id is null and new.session_id is null and new.trace_id is null
     and new.span_id is null and new.parent_span_id is null and new.trace_field_errors is null
     and tracing.trace_fields_are_canonical(meta) then
    -- The casts cannot fail on canonical values; the span ids convert as
    -- tracing.hex_to_span_id converts them.
    new.correlation_id := (meta->>'correlation_id')::uuid;
    new.session_id := (meta->>'session_id')::uuid;
    new.trace_id := (meta->>'trace_id')::uuid;
    new.span_id := ('x' || (meta->>'span_id'))::bit(64)::bigint;
    new.parent_span_id := ('x' || (meta->>'parent_span_id'))::bit(64)::bigint;
    return new;
  end if;

  -- Metadata that is not an object (an array, a string) cannot take the
  -- trace fields: the event is stored as written, with its typed columns,
  -- and flagged, rather than failing inside jsonb_set.
  if jsonb_typeof(meta) <> 'object' then
    new.trace_field_errors := tracing.trace_field_error(null, 'event_metadata', meta,
      'must be a JSON object; the trace columns were kept and not copied into it');
    return new;
  end if;

  if tg_op = 'UPDATE' then
    -- Whichever side an UPDATE changed wins: a field edited in
    -- event_metadata while its column stayed put is promoted again (forget
    -- the column); a column edited while the field stayed put is written
    -- into the metadata again (forget the old field).
    if new.correlation_id is not distinct from old.correlation_id then
      if meta->'correlation_id' is distinct from old.event_metadata->'correlation_id' then
        new.correlation_id := null;
      end if;
    elsif meta->'correlation_id' is not distinct from old.event_metadata->'correlation_id' then
      meta := meta - 'correlation_id';
      meta_changed := true;
    end if;
    if new.session_id is not distinct from old.session_id then
      if meta->'session_id' is distinct from old.event_metadata->'session_id' then
        new.session_id := null;
      end if;
    elsif meta->'session_id' is not distinct from old.event_metadata->'session_id' then
      meta := meta - 'session_id';
      meta_changed := true;
    end if;
    if new.trace_id is not distinct from old.trace_id then
      if meta->'trace_id' is distinct from old.event_metadata->'trace_id' then
        new.trace_id := null;
      end if;
    elsif meta->'trace_id' is not distinct from old.event_metadata->'trace_id' then
      meta := meta - 'trace_id';
      meta_changed := true;
    end if;
    if new.span_id is not distinct from old.span_id then
      if meta->'span_id' is distinct from old.event_metadata->'span_id' then
        new.span_id := null;
      end if;
    elsif meta->'span_id' is not distinct from old.event_metadata->'span_id' then
      meta := meta - 'span_id';
      meta_changed := true;
    end if;
    if new.parent_span_id is not distinct from old.parent_span_id then
      if meta->'parent_span_id' is distinct from old.event_metadata->'parent_span_id' then
        new.parent_span_id := null;
      end if;
    elsif meta->'parent_span_id' is not distinct from old.event_metadata->'parent_span_id' then
      meta := meta - 'parent_span_id';
      meta_changed := true;
    end if;
  end if;

  -- A typed column cannot hold a malformed id, but it can hold the all-zero
  -- id that W3C (and we, for uuids) forbid: refuse it like any bad value.
  if new.correlation_id = '00000000-0000-0000-0000-000000000000' then
    errors := tracing.trace_field_error(errors, 'correlation_id', to_jsonb(new.correlation_id::text), 'must not be the nil uuid');
    new.correlation_id := null;
  end if;
  if new.session_id = '00000000-0000-0000-0000-000000000000' then
    errors := tracing.trace_field_error(errors, 'session_id', to_jsonb(new.session_id::text), 'must not be the nil uuid');
    new.session_id := null;
  end if;
  if new.trace_id = '00000000-0000-0000-0000-000000000000' then
    errors := tracing.trace_field_error(errors, 'trace_id', to_jsonb(tracing.trace_id_to_hex(new.trace_id)), 'must not be all zeros');
    new.trace_id := null;
  end if;
  if new.span_id = 0 then
    errors := tracing.trace_field_error(errors, 'span_id', to_jsonb(tracing.span_id_to_hex(new.span_id)), 'must not be all zeros');
    new.span_id := null;
  end if;
  if new.parent_span_id = 0 then
    errors := tracing.trace_field_error(errors, 'parent_span_id', to_jsonb(tracing.span_id_to_hex(new.parent_span_id)), 'must not be all zeros');
    new.parent_span_id := null;
  end if;

  -- correlation_id
  given := meta->>'correlation_id';
  if new.correlation_id is null then
    if given is not null then
      new.correlation_id := tracing.text_to_uuid(given);
      if new.correlation_id is null then
        errors := tracing.trace_field_error(errors, 'correlation_id', meta->'correlation_id', null);
      elsif given <> new.correlation_id::text then
        -- An uppercase uuid: keep the record in the canonical spelling.
        meta := jsonb_set(meta, '{correlation_id}', to_jsonb(new.correlation_id::text));
        meta_changed := true;
      end if;
    end if;
  else
    wanted := new.correlation_id::text;
    if given is distinct from wanted then
      if given is not null and tracing.text_to_uuid(given) is distinct from new.correlation_id then
        errors := tracing.trace_field_error(errors, 'correlation_id', meta->'correlation_id', 'replaced by the correlation_id column');
      end if;
      meta := jsonb_set(meta, '{correlation_id}', to_jsonb(wanted));
      meta_changed := true;
    end if;
  end if;

  -- session_id
  given := meta->>'session_id';
  if new.session_id is null then
    if given is not null then
      new.session_id := tracing.text_to_uuid(given);
      if new.session_id is null then
        errors := tracing.trace_field_error(errors, 'session_id', meta->'session_id', null);
      elsif given <> new.session_id::text then
        -- An uppercase uuid: keep the record in the canonical spelling.
        meta := jsonb_set(meta, '{session_id}', to_jsonb(new.session_id::text));
        meta_changed := true;
      end if;
    end if;
  else
    wanted := new.session_id::text;
    if given is distinct from wanted then
      if given is not null and tracing.text_to_uuid(given) is distinct from new.session_id then
        errors := tracing.trace_field_error(errors, 'session_id', meta->'session_id', 'replaced by the session_id column');
      end if;
      meta := jsonb_set(meta, '{session_id}', to_jsonb(wanted));
      meta_changed := true;
    end if;
  end if;

  -- trace_id
  given := meta->>'trace_id';
  if new.trace_id is null then
    if given is not null then
      new.trace_id := tracing.hex_to_trace_id(given);
      if new.trace_id is null then
        errors := tracing.trace_field_error(errors, 'trace_id', meta->'trace_id', null);
      end if;
    end if;
  else
    wanted := tracing.trace_id_to_hex(new.trace_id);
    if given is distinct from wanted then
      if given is not null then
        errors := tracing.trace_field_error(errors, 'trace_id', meta->'trace_id', 'replaced by the trace_id column');
      end if;
      meta := jsonb_set(meta, '{trace_id}', to_jsonb(wanted));
      meta_changed := true;
    end if;
  end if;

  -- span_id
  given := meta->>'span_id';
  if new.span_id is null then
    if given is not null then
      new.span_id := tracing.hex_to_span_id(given);
      if new.span_id is null then
        errors := tracing.trace_field_error(errors, 'span_id', meta->'span_id', null);
      end if;
    end if;
  else
    wanted := tracing.span_id_to_hex(new.span_id);
    if given is distinct from wanted then
      if given is not null then
        errors := tracing.trace_field_error(errors, 'span_id', meta->'span_id', 'replaced by the span_id column');
      end if;
      meta := jsonb_set(meta, '{span_id}', to_jsonb(wanted));
      meta_changed := true;
    end if;
  end if;

  -- parent_span_id
  given := meta->>'parent_span_id';
  if new.parent_span_id is null then
    if given is not null then
      new.parent_span_id := tracing.hex_to_span_id(given);
      if new.parent_span_id is null then
        errors := tracing.trace_field_error(errors, 'parent_span_id', meta->'parent_span_id', null);
      end if;
    end if;
  else
    wanted := tracing.span_id_to_hex(new.parent_span_id);
    if given is distinct from wanted then
      if given is not null then
        errors := tracing.trace_field_error(errors, 'parent_span_id', meta->'parent_span_id', 'replaced by the parent_span_id column');
      end if;
      meta := jsonb_set(meta, '{parent_span_id}', to_jsonb(wanted));
      meta_changed := true;
    end if;
  end if;

  if meta_changed then
    new.event_metadata := meta;
  end if;
  new.trace_field_errors := errors;
  return new;
end
$$;

-- True when every trace field of `meta` is absent or in the one form the
-- full promotion would take without a change or an error: lowercase 8-4-4-4-12
-- uuids other than the nil uuid, 32 and 16 lowercase hex digits other than
-- all zeros. Plain SQL of immutable functions only, so the planner inlines
-- it into the trigger's expression: a function call would cost more than
-- the check. The hex digits of all five are checked by one regex.
create or replace function tracing.trace_fields_are_canonical(meta jsonb) returns boolean
language sql immutable parallel safe as $$
  select jsonb_typeof(meta) = 'object'
    and (meta->>'correlation_id' is null
         or (meta->>'correlation_id' like '________-____-____-____-____________'
             and octet_length(replace(meta->>'correlation_id', '-', '')) = 32
             and meta->>'correlation_id' <> '00000000-0000-0000-0000-000000000000'))
    and (meta->>'session_id' is null
         or (meta->>'session_id' like '________-____-____-____-____________'
             and octet_length(replace(meta->>'session_id', '-', '')) = 32
             and meta->>'session_id' <> '00000000-0000-0000-0000-000000000000'))
    and (meta->>'trace_id' is null
         or (octet_length(meta->>'trace_id') = 32 and meta->>'trace_id' <> '00000000000000000000000000000000'))
    and (meta->>'span_id' is null
         or (octet_length(meta->>'span_id') = 16 and meta->>'span_id' <> '0000000000000000'))
    and (meta->>'parent_span_id' is null
         or (octet_length(meta->>'parent_span_id') = 16 and meta->>'parent_span_id' <> '0000000000000000'))
    -- The hyphens were placed and counted above; every other byte is a
    -- lowercase hex digit. (|| and coalesce, not concat(): concat is only
    -- stable, and a stable call would stop the inlining.)
    and (coalesce(replace(meta->>'correlation_id', '-', ''), '') || coalesce(replace(meta->>'session_id', '-', ''), '')
         || coalesce(meta->>'trace_id', '') || coalesce(meta->>'span_id', '') || coalesce(meta->>'parent_span_id', '')) !~ '[^0-9a-f]'
$$;

comment on function tracing.trace_fields_are_canonical(jsonb) is
  E'True when every trace field of an event_metadata object is absent or canonical, so the promotion trigger may cast them without its checks.';

create or replace function tracing.trace_field_error(errors jsonb, field text, value jsonb, reason text) returns jsonb
language sql immutable parallel safe as $$
  select coalesce(errors, '{}'::jsonb) || jsonb_build_object(
    field,
    jsonb_build_object('value', value, 'reason', coalesce(reason, tracing.trace_field_problem(field, value)))
  )
$$;

comment on function tracing.trace_field_error(jsonb, text, jsonb, text) is
  E'Adds one refused trace field, with its raw value and the reason, to a trace_field_errors object.';

-- The WHEN clause is the fast path: a writer that sets the columns and the
-- metadata in agreement (emitEvent does) and an event without trace fields
-- never enter plpgsql at all. The clause is a plain expression that the
-- planner compiles once per statement, with the conversions inlined.
-- _100_ orders it among future triggers on the table (graphile-starter convention).
create or replace trigger _100_sync_trace_fields
  before insert or update of event_metadata, correlation_id, session_id, trace_id, span_id, parent_span_id
  on tracing.domain_events
  for each row
  when (
    (new.event_metadata->>'correlation_id') is distinct from new.correlation_id::text
    or (new.event_metadata->>'session_id') is distinct from new.session_id::text
    or (new.event_metadata->>'trace_id') is distinct from tracing.trace_id_to_hex(new.trace_id)
    or (new.event_metadata->>'span_id') is distinct from tracing.span_id_to_hex(new.span_id)
    or (new.event_metadata->>'parent_span_id') is distinct from tracing.span_id_to_hex(new.parent_span_id)
    or new.trace_field_errors is not null
    -- A typed column can still hold an id W3C forbids: all zeros.
    or new.correlation_id = '00000000-0000-0000-0000-000000000000'
    or new.session_id = '00000000-0000-0000-0000-000000000000'
    or new.trace_id = '00000000-0000-0000-0000-000000000000'
    or new.span_id = 0
    or new.parent_span_id = 0
  )
  execute function tracing.tg_domain_events__sync_trace_fields();

grant execute on function tracing.trace_field_error(jsonb, text, jsonb, text), tracing.trace_fields_are_canonical(jsonb) to tracegres_writer;
