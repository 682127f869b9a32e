--! Previous: sha1:907ff6347e4434aafcf34d38e1b3118ee5d88fbe
--! Hash: sha1:c95667d015ac247d15773c0d893235a0aa21dc60
--! Message: Replay sets, runs and claims include archived events (marked archived, replayed without a restore, their outcome written where they live), and a claim fails an event purged since it was queued instead of handing out nothing

-- Replay of archived events: the replay set and a run's items say whether
-- each event now lives in the archive (tracing.domain_events_archive).
alter type api.replay_event add attribute archived boolean;

comment on column api.replay_event.archived is
  E'Whether the event lives in the archive (moved there by retention); archived events are replayed like live ones.';

alter type api.replay_item add attribute archived boolean;

comment on column api.replay_item.archived is
  E'Whether the event lives in the archive now; null when it is in neither (purged).';
