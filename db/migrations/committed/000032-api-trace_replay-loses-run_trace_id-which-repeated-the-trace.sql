--! Previous: sha1:621f58c2aba06b9cc11c28875441547cb8028d9a
--! Hash: sha1:fa3977ddbeb43208320eecddebcee99b236560ae
--! Message: api.trace_replay loses run_trace_id, which repeated the trace asked about or the row's trace_id

-- A trace's replays no longer name the run's trace apart: on a replay_of
-- row it was the trace asked about, on a replayed_by row the same as
-- trace_id, so it never told a caller anything (the dashboard stopped
-- asking for it). api.get_trace_replays (db/functions/230-replay.sql)
-- returns the other columns.
alter type api.trace_replay drop attribute if exists run_trace_id;
