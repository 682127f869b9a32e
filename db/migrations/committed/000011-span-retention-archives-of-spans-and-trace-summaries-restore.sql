--! Previous: sha1:97040fabc3293702ff79d73f298bb31b53bdb6a5
--! Hash: sha1:e2c02f20a25c921b186b99f33e65bea99b81d384
--! Message: Span retention: archives of spans and trace summaries, restored-trace pins, span counts in the run log

-- Spans are retained like events: the archive run moves whole traces (one
-- organization's spans of one trace id, with their summary and sampling
-- decision) out of the live tables, purge deletes them, restore brings them
-- back. The unit is the trace, never single spans, so a timeline is never
-- half live and half archived.

-- Same columns as tracing.spans (duration_ms stays generated) plus when
-- the row was archived. Unpartitioned: spans are purged row by row with
-- their trace, in batches, and the archive is read by trace id only.
create table tracing.spans_archive (
  like tracing.spans including defaults including generated including constraints,
  archived_at timestamptz not null default now(),
  constraint spans_archive_trace_span_organization unique nulls not distinct (trace_id, span_id, organization_id)
);

comment on table tracing.spans_archive is
  E'Spans moved out of tracing.spans by tracing.archive_events, a whole trace at a time; tracing.restore_events brings them back.';

-- A trace's summary as it was when archived, with its sampling decision
-- (tracing.trace_sampling's row, which leaves the live table with it).
create table tracing.trace_summaries_archive (
  like tracing.trace_summaries including defaults including generated including constraints,
  sampled_by text,
  sample_rate numeric,
  sampling_environment text,
  sampling_decided_at timestamptz,
  archived_at timestamptz not null default now(),
  constraint trace_summaries_archive_trace_organization unique nulls not distinct (trace_id, organization_id)
);

-- purge_archive takes the oldest archived traces first.
create index trace_summaries_archive_end_time_idx on tracing.trace_summaries_archive (end_time);

comment on table tracing.trace_summaries_archive is
  E'Summaries (and sampling decisions) of the traces whose spans are in tracing.spans_archive.';

-- The archive run finds old traces by when they ended.
create index if not exists trace_summaries_end_time_idx on tracing.trace_summaries (end_time);

-- Traces a DBA restored stay live until keep_until, like restored events.
create table tracing.restored_traces (
  trace_id uuid not null,
  organization_id uuid,
  restored_at timestamptz not null default now(),
  keep_until timestamptz not null,
  run_id bigint references tracing.retention_runs (id) on delete set null,
  constraint restored_traces_trace_organization unique nulls not distinct (trace_id, organization_id)
);

comment on table tracing.restored_traces is
  E'Traces restored from the archive: their spans stay live until keep_until, then the archive run takes them back.';

alter table tracing.retention_runs
  add column if not exists spans_moved bigint not null default 0,
  add column if not exists spans_dropped bigint not null default 0;

alter table tracing.spans_archive enable row level security;
alter table tracing.trace_summaries_archive enable row level security;
alter table tracing.restored_traces enable row level security;

create policy select_own_organization on tracing.spans_archive for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.spans_archive for select to tracegres_admin using (true);
create policy select_own_organization on tracing.trace_summaries_archive for select to tracegres_reader
  using (organization_id = (select tracing.current_organization_id()));
create policy select_all on tracing.trace_summaries_archive for select to tracegres_admin using (true);
grant select on tracing.spans_archive, tracing.trace_summaries_archive to tracegres_anonymous;
