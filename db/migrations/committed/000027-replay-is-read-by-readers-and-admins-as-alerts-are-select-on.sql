--! Previous: sha1:66cec3163597d1f49400c48cad8434e342bda5e4
--! Hash: sha1:67af8e0bb2b046145a7d6e624efd6aebbfb67791
--! Message: Replay is read by readers and admins, as alerts are: select on tracing.replay_runs and tracing.replay_items, and execute on the replay read functions, move from tracegres_anonymous to tracegres_reader

-- Replay is read by readers and admins, as alerts are (migration 000015):
-- a request without a token has no row-level security policy on the replay
-- tables, so its grants there only turned a refusal into an empty answer.
-- Least privilege: SELECT on the tables moves to tracegres_reader, and so
-- does EXECUTE on the replay read functions (granted by 230-replay.sql;
-- here the grants an earlier version of that file gave tracegres_anonymous
-- are taken back, whatever the functions' signatures were then).
revoke select on tracing.replay_runs, tracing.replay_items from tracegres_anonymous;
grant select on tracing.replay_runs, tracing.replay_items to tracegres_reader;

do $$
declare
  v_function regprocedure;
begin
  for v_function in
    select p.oid::regprocedure
      from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
     where n.nspname || '.' || p.proname = any (array[
             'tracing.processing_state', 'tracing.replay_item_state', 'tracing.replay_set_limit',
             'tracing.require_failed_event_range', 'tracing.replay_set', 'tracing.to_api_replay_run',
             'api.get_replay_set', 'api.get_replay_set_by_trace', 'api.get_failed_replay_set',
             'api.get_replay_runs', 'api.get_replay_run', 'api.get_replay_items', 'api.get_trace_replays'])
  loop
    execute format('revoke execute on function %s from tracegres_anonymous', v_function);
  end loop;
end
$$;
