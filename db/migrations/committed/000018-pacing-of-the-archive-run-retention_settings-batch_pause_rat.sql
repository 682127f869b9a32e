--! Previous: sha1:c73f8cd3d3da6dd1e871d5bd7358f626ce1f7e44
--! Hash: sha1:b876eec61b05c0d22d7c78a36ee9fa5a08a9eb8f
--! Message: Pacing of the archive run: retention_settings.batch_pause_ratio

-- Pacing of the archive mover: after each batch it pauses this many times
-- the batch's own time, so live writers get the cores and the WAL between
-- batches (0 moves without pausing).
alter table tracing.retention_settings
  add column if not exists batch_pause_ratio real not null default 0.25
    constraint retention_settings_batch_pause_ratio_range check (batch_pause_ratio between 0 and 10);

comment on column tracing.retention_settings.batch_pause_ratio is
  E'After each archive batch, tracing.archive_events pauses this many times the batch''s own time (0: no pause), leaving live writers the machine between batches.';
