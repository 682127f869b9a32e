-- Idempotent event writes: finding the event stored under an idempotency key.
--
-- Writers that may repeat a write (a retried Temporal activity; see
-- ts/workflows/activity-events.ts) put a key in
-- event_metadata.idempotency_key and look for it before inserting. The
-- writer role may select only id and created_at of domain_events, not
-- event_metadata, so the lookup runs with definer rights and returns only
-- those two columns. It matches the partial unique index
-- domain_events_idempotency_key_idx (expression and predicate), which also
-- refuses a second event with the same key from a writer that skips the
-- lookup.
--
-- Only live events are searched: a key whose event has moved to the archive
-- (tracing.archive_events, after retention_settings.archive_after) is not
-- found, which is far past any activity's retries.

-- Keys are unique within an organization (migration 000009): another
-- tenant's event with the same key is not this writer's earlier attempt.
create or replace function tracing.domain_event_by_idempotency_key(p_key text, p_organization_id uuid)
returns table (id bigint, created_at timestamptz)
language sql stable
-- Definer rights: writers may not read event_metadata.
security definer
set search_path = pg_catalog, pg_temp
rows 1
as $$
  select e.id, e.created_at
    from tracing.domain_events e
   where coalesce(e.organization_id, '00000000-0000-0000-0000-000000000000'::uuid)
         = coalesce(p_organization_id, '00000000-0000-0000-0000-000000000000'::uuid)
     and e.event_metadata ? 'idempotency_key'
     and (e.event_metadata ->> 'idempotency_key') = p_key
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
