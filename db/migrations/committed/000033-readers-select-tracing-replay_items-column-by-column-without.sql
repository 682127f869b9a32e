--! Previous: sha1:fa3977ddbeb43208320eecddebcee99b236560ae
--! Hash: sha1:0d4ddeceed0072fda5277827202649ef71f8dc55
--! Message: Readers select tracing.replay_items column by column, without claim_token: a claim token is a processor's proof that it holds an item, and readers' functions never read it

-- Readers (and admins, who are readers) read a replay run's items, but not
-- their claim tokens: a token is the processor's proof that it holds an
-- item (tracing.mark_replay_processed / _failed take it), and processors
-- reach it only through the definer rights tracing.claim_replay_event.
-- The invoker rights readers of 230-replay.sql name their columns, none of
-- them claim_token. REVOKE on the table takes its column grants with it,
-- so this runs again to the same end.
revoke select on tracing.replay_items from tracegres_reader;
grant select (run_id, position, event_id, organization_id, original_processed_at, original_error,
              state, attempts, claimed_by, claimed_until, settled_at, error)
  on tracing.replay_items to tracegres_reader;
