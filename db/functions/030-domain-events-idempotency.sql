-- Idempotent event writes: finding the event stored under an idempotency key.
--
-- Writers that may repeat a write (a retried Temporal activity; see
-- ts/workflows/activity-events.ts) put a key in
-- event_metadata.idempotency_key and look for it before inserting. The
-- writer role may select only id and created_at of domain_events, not
-- event_metadata, so the lookup runs with definer rights and returns only
-- those two columns.
--
-- domain_events is partitioned by month of created_at, and a unique index
-- of a partitioned table must hold created_at, so the key cannot be unique
-- there: two events of one key in different months would both be written.
-- The keys live in tracing.domain_event_idempotency_keys (migration
-- 000030), one row per live event with a key, kept by the triggers below
-- in the same transaction as the event. Its primary key carries the name
-- the unique index on domain_events had, domain_events_idempotency_key_idx,
-- so a writer that skips the lookup meets the same unique_violation naming
-- the same constraint, whichever month its event falls in. The lookup is
-- one probe of that key.
--
-- Only live events are searched: a key whose event has moved to the archive
-- (tracing.archive_events, after retention_settings.archive_after) is not
-- found, which is far past any activity's retries.

-- Keys are unique within an organization (migration 000009): another
-- tenant's event with the same key is not this writer's earlier attempt.
-- The key table's organization_key is the event's organization, with the
-- nil uuid standing for "no organization" (a primary key column cannot be
-- null, and no organization has the nil uuid as its id). A SQL function,
-- immutable, so the planner inlines it into each caller's expression and a
-- trigger's per-row cost stays that of the coalesce.
create or replace function tracing.idempotency_organization_key(p_organization_id uuid) returns uuid
language sql immutable parallel safe
as $$
  select coalesce(p_organization_id, '00000000-0000-0000-0000-000000000000'::uuid)
$$;

comment on function tracing.idempotency_organization_key(uuid) is
  E'The organization_key of tracing.domain_event_idempotency_keys for an event of organization p_organization_id: the organization, or the nil uuid for events without one.';

create or replace function tracing.domain_event_by_idempotency_key(p_key text, p_organization_id uuid)
returns table (id bigint, created_at timestamptz)
language sql stable
-- Definer rights: writers may not read event_metadata.
security definer
set search_path = pg_catalog, pg_temp
rows 1
as $$
  select k.event_id, k.created_at
    from tracing.domain_event_idempotency_keys k
   where k.organization_key = tracing.idempotency_organization_key(p_organization_id)
     and k.idempotency_key = p_key
$$;

comment on function tracing.domain_event_by_idempotency_key(text, uuid) is
  E'The live event of organization p_organization_id (null: events without one) stored with event_metadata.idempotency_key = p_key (its id and created_at), or no row. For writers that repeat a write, such as retried Temporal activities.';

revoke all on function tracing.domain_event_by_idempotency_key(text, uuid) from public;
grant execute on function tracing.domain_event_by_idempotency_key(text, uuid) to tracegres_writer;

-- The one-argument form looks among events without an organization.
create or replace function tracing.domain_event_by_idempotency_key(p_key text)
returns table (id bigint, created_at timestamptz)
language sql stable strict
security definer
set search_path = pg_catalog, pg_temp
rows 1
as $$
  select * from tracing.domain_event_by_idempotency_key(p_key, null::uuid)
$$;

comment on function tracing.domain_event_by_idempotency_key(text) is
  E'The live event without an organization stored with event_metadata.idempotency_key = p_key, or no row; see the (text, uuid) form for events of an organization.';

revoke all on function tracing.domain_event_by_idempotency_key(text) from public;
grant execute on function tracing.domain_event_by_idempotency_key(text) to tracegres_writer;

-- The key table follows the live events: an event with a key adds its key
-- (refused, with unique_violation, when the organization's key is taken),
-- an event leaving domain_events (archived, deleted) frees it, an update
-- that changes the key or organization moves it, one that changes
-- created_at carries the new time to it, and TRUNCATE empties it.
-- Events without a key never enter these functions (the WHEN clauses). A
-- row moving between partitions of domain_events stays live and keeps its
-- key: an UPDATE of created_at fires the delete and insert triggers in that
-- order, and tracing.ensure_live_partitions marks the rows it moves out of
-- the default partition (tracegres.moving_partition_rows).
create or replace function tracing.tg_domain_events__hold_idempotency_key() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into tracing.domain_event_idempotency_keys (organization_key, idempotency_key, event_id, created_at)
  values (tracing.idempotency_organization_key(new.organization_id),
          new.event_metadata ->> 'idempotency_key', new.id, new.created_at);
  return null;
end
$$;

comment on function tracing.tg_domain_events__hold_idempotency_key() is
  E'Trigger: records the idempotency key of an event written with one in tracing.domain_event_idempotency_keys; a key its organization already holds raises unique_violation (domain_events_idempotency_key_idx).';

create or replace function tracing.tg_domain_events__release_idempotency_key() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if current_setting('tracegres.moving_partition_rows', true) is distinct from 'on' then
    delete from tracing.domain_event_idempotency_keys k
     where k.organization_key = tracing.idempotency_organization_key(old.organization_id)
       and k.idempotency_key = old.event_metadata ->> 'idempotency_key'
       and k.event_id = old.id;
  end if;
  return null;
end
$$;

comment on function tracing.tg_domain_events__release_idempotency_key() is
  E'Trigger: frees the idempotency key of an event that left domain_events (archived or deleted), unless it only moved between partitions.';

create or replace function tracing.tg_domain_events__follow_created_at() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  update tracing.domain_event_idempotency_keys k
     set created_at = new.created_at
   where k.organization_key = tracing.idempotency_organization_key(new.organization_id)
     and k.idempotency_key = new.event_metadata ->> 'idempotency_key'
     and k.event_id = new.id;
  return null;
end
$$;

comment on function tracing.tg_domain_events__follow_created_at() is
  E'Trigger: gives the idempotency key of an event whose created_at changed within its partition the new created_at, which the key''s lookup returns and a whole month''s move to the archive releases keys by.';

create or replace function tracing.tg_domain_events__release_all_idempotency_keys() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from tracing.domain_event_idempotency_keys;
  return null;
end
$$;

comment on function tracing.tg_domain_events__release_all_idempotency_keys() is
  E'Trigger: empties tracing.domain_event_idempotency_keys when domain_events is truncated.';

-- _050_: before the alert and live-feed triggers (_600_, _700_), so a
-- refused duplicate stops the statement before they act.
create or replace trigger _050_hold_idempotency_key
  after insert on tracing.domain_events
  for each row when ((new.event_metadata ->> 'idempotency_key') is not null)
  execute function tracing.tg_domain_events__hold_idempotency_key();

create or replace trigger _050_release_idempotency_key
  after delete on tracing.domain_events
  for each row when ((old.event_metadata ->> 'idempotency_key') is not null)
  execute function tracing.tg_domain_events__release_idempotency_key();

-- An update that changes the key or the organization: free the old key,
-- then hold the new one (in this order, as two triggers of one name order).
create or replace trigger _050_move_idempotency_key_1_release
  after update of event_metadata, organization_id on tracing.domain_events
  for each row when ((old.event_metadata ->> 'idempotency_key') is not null
                     and ((old.event_metadata ->> 'idempotency_key') is distinct from (new.event_metadata ->> 'idempotency_key')
                          or old.organization_id is distinct from new.organization_id))
  execute function tracing.tg_domain_events__release_idempotency_key();

create or replace trigger _050_move_idempotency_key_2_hold
  after update of event_metadata, organization_id on tracing.domain_events
  for each row when ((new.event_metadata ->> 'idempotency_key') is not null
                     and ((old.event_metadata ->> 'idempotency_key') is distinct from (new.event_metadata ->> 'idempotency_key')
                          or old.organization_id is distinct from new.organization_id))
  execute function tracing.tg_domain_events__hold_idempotency_key();

-- An update of created_at that keeps the event in its partition (the same
-- month, or within the default partition) fires no delete or insert
-- trigger: the key's copy of created_at follows here (_3_, after a new key
-- is held). One that moves the event to another partition fires no update
-- trigger, and the delete and insert triggers above give the key the new
-- created_at. Without this a later whole-month move to the archive
-- (tracing.move_event_month_to_archive, by created_at) would free the keys
-- of events that left the month and keep those of events that came into it.
create or replace trigger _050_move_idempotency_key_3_created_at
  after update of created_at on tracing.domain_events
  for each row when ((new.event_metadata ->> 'idempotency_key') is not null
                     and old.created_at is distinct from new.created_at)
  execute function tracing.tg_domain_events__follow_created_at();

create or replace trigger _050_release_idempotency_keys_on_truncate
  after truncate on tracing.domain_events
  for each statement
  execute function tracing.tg_domain_events__release_all_idempotency_keys();
