--! Previous: sha1:b4b4c85f98f4f55b1c18a14f1fae0277c3836124
--! Hash: sha1:5abc54e3e2bca82e2ad9d4c80d6e5e8fc2b039e0
--! Message: Domain events: unique idempotency key

-- Idempotency keys of domain events: at most one live event per
-- event_metadata.idempotency_key. Writers that repeat a write (retried
-- Temporal activities) look a key up with
-- tracing.domain_event_by_idempotency_key (db/functions/domain_events_idempotency.sql),
-- which this index answers; it also refuses a second event from a writer
-- that skips the lookup. Events without a key are not indexed.
--
-- The archive (tracing.domain_events_archive) gets no such index: it is
-- partitioned by month without a partitioned index, and events reach it
-- only from the live table, where the key was already unique.
drop index if exists tracing.domain_events_idempotency_key_idx;
create unique index domain_events_idempotency_key_idx on tracing.domain_events ((event_metadata->>'idempotency_key')) where event_metadata ? 'idempotency_key';
