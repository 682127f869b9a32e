--! Previous: sha1:3585664adbe5384e7319135f699bdfd5666cc0a7
--! Hash: sha1:baba28374482fe3488b931e7cdc78f0acc080abd
--! Message: The timeline of a replay run's trace links the traces it replayed, and the timeline of a replayed trace the runs that replayed it (api.get_trace_replays, from the run's span links and its items by event), Chromium-tested both ways

-- A trace's replays, shown with its timeline: the replay runs whose own
-- trace this is (with the traces their root span links to), and the runs
-- that replayed this trace's events. The second is found from the events:
-- span links have no index, the items do.
create index if not exists replay_items_event_id_idx on tracing.replay_items (event_id);

create type api.trace_replay as (
  relation text,
  run_id bigint,
  run_status text,
  run_started_at timestamptz,
  run_reason text,
  run_trace_id text,
  trace_id text
);

comment on type api.trace_replay is
  E'A replay relation of a trace: this trace is a replay run''s own trace and replays trace_id (replay_of), or a replay run replayed events of this trace (replayed_by; trace_id is then the run''s trace).';
comment on column api.trace_replay.relation is
  E'replay_of: this trace is the run''s own trace, and trace_id is a trace it replayed (an OpenTelemetry link of the run''s root span); replayed_by: the run replayed events of this trace, and trace_id is the run''s own trace.';
comment on column api.trace_replay.trace_id is
  E'The trace on the other side of the relation.';

-- The run whose own trace a timeline shows.
create index if not exists replay_runs_trace_id_idx on tracing.replay_runs (trace_id);
