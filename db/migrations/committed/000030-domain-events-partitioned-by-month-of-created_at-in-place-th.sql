--! Previous: sha1:adbcbd83ad7b000906016b9a168ee5de7488be6d
--! Hash: sha1:211ca73238ef200762db5b7b2aad34ed660fe34f
--! Message: Domain events partitioned by month of created_at in place: the old table becomes the partition of everything before next month, with a default partition and two months ahead; idempotency keys in a table of their own; ids from a sequence, unique per partition

-- tracing.domain_events becomes a table partitioned by month of created_at
-- (UTC), in place: the existing table is renamed and attached, as it is, as
-- the partition of everything created before next month, so no row is
-- copied, lost or doubled and no index is built again. Months after it get
-- partitions of their own (two are created here; the archive run keeps
-- creating them ahead through tracing.ensure_live_partitions_ahead), and a
-- DEFAULT partition takes an event whose month has none yet, so an insert
-- never fails for its created_at.
--
-- What a partitioned table cannot have, and what replaces it:
-- - Identity on a partitioned table needs Postgres 17, so id takes its
--   default from a plain sequence, which continues where the identity's
--   left off. The writer role may use it (nextval in the default) but still
--   may not set id itself: ids come only from the sequence.
-- - A unique key must hold the partition key, so "id is unique" is kept per
--   partition (a unique index on id in each, <partition>_id_key; the old
--   table keeps its primary key), and across partitions by the sequence.
-- - The per-organization idempotency key moves to a table of its own,
--   tracing.domain_event_idempotency_keys, whose primary key keeps the old
--   index's name, domain_events_idempotency_key_idx, so a duplicate raises
--   the same unique_violation naming the same constraint. Triggers on
--   domain_events (db/functions/030) keep it in step with the live events.
--
-- The view, triggers and policies bound to the old table move to the new
-- one within this transaction, so writers never meet the table without its
-- promotion trigger. On a large table, the one scan is the partition bound
-- check below; the lock is held for that scan.

-- How the archive run treats a live month the horizon falls in: with
-- archive_whole_months (the default), it waits until the whole month is
-- older than archive_after and then moves as one partition, so an event may
-- stay live up to a month longer than archive_after; without, its old rows
-- are archived row by row as before partitioning, and the rest of the
-- month follows the same way.
alter table tracing.retention_settings add column if not exists archive_whole_months boolean not null default true;
comment on column tracing.retention_settings.archive_whole_months is
  E'true (default): a live month partition is archived whole once its whole month is older than archive_after (events may stay live up to a month longer); false: rows older than archive_after are archived row by row wherever they are.';

do $$
declare
  v_next_month timestamptz := (date_trunc('month', now() at time zone 'UTC') + interval '1 month') at time zone 'UTC';
  v_bound timestamptz := v_next_month;
  v_old text;
  v_sequence regclass := pg_get_serial_sequence('tracing.domain_events', 'id')::regclass;
  v_last bigint;
  v_called boolean;
  v_view record;
  v_views jsonb := '[]';
  v_trigger record;
  v_triggers text[] := '{}';
  v_def text;
  v_policy record;
  v_suffix text;
  v_month timestamptz;
  v_name text;
begin
  if (select c.relkind from pg_class c where c.oid = 'tracing.domain_events'::regclass) = 'p' then
    return;
  end if;
  lock table tracing.domain_events in access exclusive mode;

  -- Views bind to the table, not its name: their definitions as they read
  -- now, to be made again over the new table.
  for v_view in
    select distinct v.oid::regclass as view, pg_get_viewdef(v.oid) as definition, v.reloptions
      from pg_depend d
      join pg_rewrite r on r.oid = d.objid
      join pg_class v on v.oid = r.ev_class
     where d.classid = 'pg_rewrite'::regclass and d.refobjid = 'tracing.domain_events'::regclass and v.oid <> d.refobjid
  loop
    v_views := v_views || jsonb_build_object('view', v_view.view::text, 'definition', v_view.definition,
                                             'options', coalesce(array_to_string(v_view.reloptions, ', '), ''));
  end loop;

  -- So do triggers (db/functions creates them); they move to the new table.
  for v_trigger in
    select t.tgname, pg_get_triggerdef(t.oid) as definition
      from pg_trigger t where t.tgrelid = 'tracing.domain_events'::regclass and not t.tgisinternal
  loop
    v_triggers := v_triggers || v_trigger.definition;
    execute format('drop trigger %I on tracing.domain_events', v_trigger.tgname);
  end loop;

  -- And policies: the new table gets its own below.
  for v_policy in select p.polname from pg_policy p where p.polrelid = 'tracing.domain_events'::regclass loop
    execute format('drop policy %I on tracing.domain_events', v_policy.polname);
  end loop;

  -- Where the identity's sequence stands; dropping the identity drops it,
  -- and a plain sequence of the same name goes on from there.
  execute format('select last_value, is_called from %s', v_sequence) into v_last, v_called;
  alter table tracing.domain_events alter column id drop identity;

  -- The idempotency key gets a table of its own, filled from the old
  -- unique index, whose name its primary key then takes.
  create table tracing.domain_event_idempotency_keys (
    -- organization_id, or the nil uuid for events without one (no
    -- organization can have it: tracing.text_to_uuid refuses it).
    organization_key uuid not null,
    idempotency_key text not null,
    event_id bigint not null,
    created_at timestamptz not null,
    constraint domain_event_idempotency_keys_pkey primary key (organization_key, idempotency_key)
  );

  -- A month's keys leave with the month when the archive run moves it whole.
  create index domain_event_idempotency_keys_created_at_idx
    on tracing.domain_event_idempotency_keys (created_at);

  comment on table tracing.domain_event_idempotency_keys is
    E'The idempotency key of every live event that has one (event_metadata.idempotency_key), unique per organization: what a unique index on domain_events did before it was partitioned. Kept by triggers on domain_events.';

  -- Read and written only by definer-rights functions and triggers.
  alter table tracing.domain_event_idempotency_keys enable row level security;

  insert into tracing.domain_event_idempotency_keys (organization_key, idempotency_key, event_id, created_at)
  select coalesce(e.organization_id, '00000000-0000-0000-0000-000000000000'::uuid), e.event_metadata ->> 'idempotency_key', e.id, e.created_at
    from tracing.domain_events e
   where e.event_metadata ? 'idempotency_key' and e.event_metadata ->> 'idempotency_key' is not null;
  drop index tracing.domain_events_idempotency_key_idx;
  alter table tracing.domain_event_idempotency_keys
    rename constraint domain_event_idempotency_keys_pkey to domain_events_idempotency_key_idx;

  -- The partition bound: next month, or later when events were written
  -- with a created_at past it. The CHECK is proven by one scan now, which
  -- ATTACH then trusts instead of scanning again.
  begin
    execute format('alter table tracing.domain_events add constraint domain_events_partition_bound check (created_at < %L)', v_bound);
  exception when check_violation then
    select (date_trunc('month', max(e.created_at) at time zone 'UTC') + interval '1 month') at time zone 'UTC'
      into v_bound from tracing.domain_events e;
    execute format('alter table tracing.domain_events add constraint domain_events_partition_bound check (created_at < %L)', v_bound);
  end;

  v_old := 'domain_events_before_' || to_char(v_bound at time zone 'UTC', 'YYYY"m"MM');
  execute format('alter table tracing.domain_events rename to %I', v_old);
  execute format('alter table tracing.%I rename constraint domain_events_pkey to %I', v_old, v_old || '_pkey');
  -- Named as every partition's copy of a parent index is
  -- (tracing.name_partition_indexes): the parent's name, then the partition's.
  foreach v_suffix in array array['correlation_id_idx', 'session_id_idx', 'trace_id_idx', 'stream_idx', 'failed_idx'] loop
    execute format('alter index tracing.%I rename to %I', 'domain_events_' || v_suffix,
                   'domain_events_' || v_suffix || substr(v_old, length('domain_events') + 1));
  end loop;

  create sequence tracing.domain_events_id_seq as bigint;
  perform setval('tracing.domain_events_id_seq', v_last, v_called);

  create table tracing.domain_events (
    id bigint not null default nextval('tracing.domain_events_id_seq'),
    stream_type text not null,
    stream_id text not null,
    event_type text not null,
    event_data jsonb not null default '{}',
    event_metadata jsonb not null default '{}',
    organization_id uuid,
    created_at timestamptz not null default now(),
    processed_at timestamptz,
    processing_error text,
    correlation_id uuid,
    session_id uuid,
    trace_id uuid,
    span_id bigint,
    parent_span_id bigint,
    trace_field_errors jsonb,
    constraint domain_events_stream_type_not_blank check (stream_type <> ''),
    constraint domain_events_event_type_not_blank check (event_type <> '')
  ) partition by range (created_at);

  alter sequence tracing.domain_events_id_seq owned by tracing.domain_events.id;

  comment on table tracing.domain_events is
    E'Domain events with their W3C trace context. Trace fields live in event_metadata and, promoted by a trigger, in typed columns. Partitioned by month of created_at (UTC).';

  -- The same indexes as before, now partitioned: the old table's are
  -- attached to them, not built again.
  create index domain_events_correlation_id_idx on tracing.domain_events (correlation_id, created_at desc) where correlation_id is not null;
  create index domain_events_session_id_idx on tracing.domain_events (session_id, created_at desc) where session_id is not null;
  create index domain_events_trace_id_idx on tracing.domain_events (trace_id, created_at desc) where trace_id is not null;
  create index domain_events_failed_idx on tracing.domain_events (created_at desc) where processing_error is not null;
  create index domain_events_stream_idx on tracing.domain_events (stream_type, stream_id, created_at desc) where trace_id is not null;

  alter table tracing.domain_events enable row level security;
  create policy insert_events on tracing.domain_events for insert to tracegres_writer with check (true);
  create policy select_own_insert on tracing.domain_events for select to tracegres_writer using (true);
  create policy select_own_organization on tracing.domain_events for select to tracegres_reader
    using (organization_id = (select tracing.current_organization_id()));
  create policy select_all on tracing.domain_events for select to tracegres_admin using (true);
  create policy update_processing_state on tracing.domain_events for update to tracegres_writer
    using (organization_id is not distinct from (select tracing.current_organization_id()))
    with check (organization_id is not distinct from (select tracing.current_organization_id()));
  grant insert (stream_type, stream_id, event_type, event_data, event_metadata, organization_id,
                correlation_id, session_id, trace_id, span_id, parent_span_id)
    on tracing.domain_events to tracegres_writer;
  grant select (id, created_at) on tracing.domain_events to tracegres_writer;
  grant update (processed_at, processing_error) on tracing.domain_events to tracegres_writer;
  grant select on tracing.domain_events to tracegres_anonymous;
  -- The id default calls nextval as the inserting role.
  grant usage on sequence tracing.domain_events_id_seq to tracegres_writer;

  -- Read before the rename, they name domain_events: now the new table.
  foreach v_def in array v_triggers loop
    execute v_def;
  end loop;

  -- The old table, as it is, with its rows where they are.
  execute format('alter table tracing.domain_events attach partition tracing.%I for values from (minvalue) to (%L)', v_old, v_bound);
  execute format('alter table tracing.%I drop constraint domain_events_partition_bound', v_old);

  -- Events whose month has no partition (yet): clocks off by months, or
  -- upkeep that has not run. ensure_live_partitions moves them into their
  -- month when it creates it.
  create table tracing.domain_events_default partition of tracing.domain_events default;
  alter table tracing.domain_events_default enable row level security;
  create unique index domain_events_default_id_key on tracing.domain_events_default (id);

  -- The two months after the old table's, so a fresh install needs no
  -- upkeep run first.
  for v_month in select v_bound union all select (v_bound at time zone 'UTC' + interval '1 month') at time zone 'UTC' loop
    v_name := 'domain_events_' || to_char(v_month at time zone 'UTC', 'YYYY"m"MM');
    execute format('create table tracing.%I partition of tracing.domain_events for values from (%L) to (%L)',
      v_name, v_month, (v_month at time zone 'UTC' + interval '1 month') at time zone 'UTC');
    execute format('alter table tracing.%I enable row level security', v_name);
    execute format('create unique index %I on tracing.%I (id)', v_name || '_id_key', v_name);
  end loop;
  -- Their copies of the parent's indexes, named like the old table's.
  for v_trigger in
    select ci.relname as name, cpi.relname || substr(cc.relname, length('domain_events') + 1) as wanted
      from pg_inherits p
      join pg_class cc on cc.oid = p.inhrelid
      join pg_index x on x.indrelid = cc.oid
      join pg_class ci on ci.oid = x.indexrelid
      join pg_inherits pi on pi.inhrelid = ci.oid
      join pg_class cpi on cpi.oid = pi.inhparent
     where p.inhparent = 'tracing.domain_events'::regclass and ci.relname <> cpi.relname || substr(cc.relname, length('domain_events') + 1)
  loop
    execute format('alter index tracing.%I rename to %I', v_trigger.name, v_trigger.wanted);
  end loop;

  for v_view in select * from jsonb_to_recordset(v_views) as v(view text, definition text, options text) loop
    execute format('create or replace view %s %s as %s', v_view.view,
      case when v_view.options <> '' then format('with (%s)', v_view.options) else '' end, v_view.definition);
  end loop;
end
$$;
