--! Previous: sha1:3635d07ade8fcf73605d2086be61d2bc2da80640
--! Hash: sha1:a8a936cf816af8fd10d089a98a2b198f3bcd450a
--! Message: Idempotency keys per organization with null keys never equal; writers may read the request organization

-- Idempotency keys per organization, with null keys never equal: a
-- "nulls not distinct" index (000008) also made two events whose
-- idempotency_key is JSON null collide. An event without an organization
-- is indexed under the nil uuid, which no organization can have
-- (tracing.text_to_uuid refuses it), so nulls stay distinct for the key
-- alone. tracing.domain_event_by_idempotency_key matches this expression.
drop index if exists tracing.domain_events_idempotency_key_idx;
create unique index domain_events_idempotency_key_idx
  on tracing.domain_events (
    coalesce(organization_id, '00000000-0000-0000-0000-000000000000'::uuid),
    (event_metadata->>'idempotency_key'))
  where event_metadata ? 'idempotency_key';

-- The writers' update policy (000008) reads the request's organization.
grant execute on function tracing.current_organization_id() to tracegres_writer;
