--! Previous: sha1:347a003cfb1e5e64a289bbea096c4c80913b5138
--! Hash: sha1:7db080d51087ed5d0e96370769ca1f20ea15306d
--! Message: Retention: event archive, settings, run log, restore pins

-- Retention: the archive of old events, its settings, the run log and the
-- restore pins. The procedures that use them (archive_events, purge_archive,
-- restore_events, run_retention) live in db/functions/retention*.sql.

-- One row of settings; the scheduled job and the CLI read it on every run,
-- so a DBA changes behaviour with an UPDATE, no redeploy.
create table tracing.retention_settings (
  singleton boolean primary key default true constraint retention_settings_singleton check (singleton),
  -- Events created longer ago than this leave domain_events for the archive.
  archive_after interval not null default interval '90 days'
    constraint retention_settings_archive_after_positive check (archive_after > interval '0'),
  -- Archive partitions whose whole month is older than this are dropped.
  -- Null (the default) keeps the archive forever: dropping data is opt-in.
  purge_after interval
    constraint retention_settings_purge_after_beyond_archive check (purge_after > archive_after),
  -- Rows moved per short transaction.
  batch_size integer not null default 50000
    constraint retention_settings_batch_size_range check (batch_size between 100 and 1000000),
  -- Archive partitions are created this many months beyond the archive
  -- horizon, so the month the horizon moves into already exists.
  months_ahead integer not null default 3
    constraint retention_settings_months_ahead_range check (months_ahead between 0 and 24),
  -- Restored events stay live this long before the archive takes them back.
  restore_keep_for interval not null default interval '7 days'
    constraint retention_settings_restore_keep_for_positive check (restore_keep_for > interval '0'),
  -- When retention runs (cron syntax, UTC); null runs it only by hand.
  schedule text default '17 3 * * *',
  -- The pg_cron job that runs it (name in cron.job), when pg_cron does.
  pg_cron_job text,
  -- The last minute an in-process scheduler (npm start without pg_cron)
  -- claimed, so several app instances run each scheduled minute once.
  in_process_claimed_minute timestamptz
);

insert into tracing.retention_settings default values;

comment on table tracing.retention_settings is
  E'Retention settings (one row): archive and purge horizons, batch size, partitions created ahead, schedule.';

-- The archive: the columns of domain_events plus when the row was archived,
-- partitioned by month of created_at (UTC). Partitions are created ahead of
-- need by tracing.ensure_archive_partitions. Their indexes are per
-- partition on purpose (no partitioned index on the parent): a month that
-- receives a large backlog is loaded first and indexed once at the end of
-- the run, which is several times faster than maintaining four indexes row
-- by row (see bench/retention.ts).
create table tracing.domain_events_archive (
  id bigint not null,
  stream_type text not null,
  stream_id text not null,
  event_type text not null,
  event_data jsonb not null,
  event_metadata jsonb not null,
  organization_id uuid,
  created_at timestamptz not null,
  processed_at timestamptz,
  processing_error text,
  correlation_id uuid,
  session_id uuid,
  trace_id uuid,
  span_id bigint,
  parent_span_id bigint,
  trace_field_errors jsonb,
  archived_at timestamptz not null default now()
) partition by range (created_at);

comment on table tracing.domain_events_archive is
  E'Events moved out of domain_events by tracing.archive_events: the same columns plus archived_at, one partition per month.';

alter table tracing.domain_events_archive enable row level security;

-- Every retention operation, dry runs included, one row each.
create table tracing.retention_runs (
  id bigint generated always as identity primary key,
  operation text not null
    constraint retention_runs_operation check (operation in ('archive', 'purge', 'restore', 'tail_sampling')),
  dry_run boolean not null default false,
  -- running: in progress, or its session died (see tracing.retention_run_status);
  -- skipped: another run held the retention lock.
  status text not null default 'running'
    constraint retention_runs_status check (status in ('running', 'succeeded', 'failed', 'skipped', 'interrupted')),
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  -- archive: events created before this were moved; purge: partitions
  -- ending before this were dropped.
  horizon timestamptz,
  events_moved bigint not null default 0,
  events_dropped bigint not null default 0,
  batches integer not null default 0,
  -- Progress of an archive run over the live table's blocks, for rate and ETA.
  blocks_total bigint,
  blocks_done bigint,
  partitions_created text[] not null default '{}',
  partitions_indexed text[] not null default '{}',
  partitions_dropped text[] not null default '{}',
  error text,
  -- What the run was asked to do, or what a dry run found.
  details jsonb,
  -- The session that ran it: with its start time, tells a live run from
  -- one whose session was killed.
  backend_pid integer not null default pg_backend_pid(),
  backend_start timestamptz,
  run_by text not null default current_user,
  application_name text default current_setting('application_name', true)
);

create index retention_runs_operation_started_idx on tracing.retention_runs (operation, started_at desc);

comment on table tracing.retention_runs is
  E'One row per retention run (archive, purge, restore, tail sampling): start, end, rows moved, partitions created/dropped, error.';

alter table tracing.retention_runs enable row level security;
alter table tracing.retention_settings enable row level security;

-- Events a DBA restored from the archive stay live until keep_until; the
-- archive run leaves them alone until then.
create table tracing.restored_events (
  event_id bigint primary key,
  restored_at timestamptz not null default now(),
  keep_until timestamptz not null,
  run_id bigint references tracing.retention_runs (id) on delete set null
);

create index restored_events_run_id_idx on tracing.restored_events (run_id);

comment on table tracing.restored_events is
  E'Events brought back from the archive by tracing.restore_events; the archive run skips them until keep_until.';

alter table tracing.restored_events enable row level security;

-- The archive is read like the live table: a tenant sees its organization's
-- archived events, an admin all of them (through tracing.all_events or the
-- api functions); nobody on the read side writes it.
create policy select_own_organization on tracing.domain_events_archive for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.domain_events_archive for select to tracegres_admin
  using (true);
grant select on tracing.domain_events_archive to tracegres_anonymous;

-- Admins (the dashboard) may watch retention; only the database owner, who
-- runs retention, changes settings.
create policy select_all on tracing.retention_runs for select to tracegres_admin using (true);
create policy select_all on tracing.retention_settings for select to tracegres_admin using (true);
grant select on tracing.retention_runs, tracing.retention_settings to tracegres_admin;
