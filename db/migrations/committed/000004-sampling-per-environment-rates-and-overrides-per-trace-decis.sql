--! Previous: sha1:7db080d51087ed5d0e96370769ca1f20ea15306d
--! Hash: sha1:c0ce617f3b4d21472742c519cdec92e2cc929621
--! Message: Sampling: per-environment rates and overrides, per-trace decisions, spans recorded_at BRIN

-- Sampling: how much span detail to keep, per environment, with overrides;
-- one decision per trace, recorded with the rate it was kept at.
--
-- Sampling decides span and timing detail only: it deletes spans (and the
-- summaries of traces it drops), never domain events. The decisions are
-- made by tracing.run_sampling (db/functions/sampling.sql), which the
-- retention schedule runs every minute.

create table tracing.sampling_environments (
  environment text primary key constraint sampling_environments_name_not_blank check (environment <> ''),
  -- Share of traces kept by the head decision (0..1, exact decimal so SQL
  -- and TypeScript compute the same threshold).
  rate numeric not null constraint sampling_environments_rate_range check (rate between 0 and 1),
  -- Whether a client may force a trace to be kept (span attribute
  -- sampling.priority >= 1, set by the edge from the W3C sampled flag or
  -- the x-tracegres-sample header). Off in production: a browser must not
  -- be able to turn sampling off.
  honor_forced boolean not null default false,
  -- How long spans of a trace not kept up front wait for a reason to keep
  -- it (an error, or being slow); null: no waiting, such traces go at once.
  tail_window interval default interval '2 minutes'
    constraint sampling_environments_tail_window_range check (tail_window >= interval '0' and tail_window <= interval '1 day'),
  -- A trace lasting longer than this (ms) is kept whole; null: latency keeps nothing.
  tail_latency_ms double precision default 2000
    constraint sampling_environments_tail_latency_positive check (tail_latency_ms > 0)
);

insert into tracing.sampling_environments (environment, rate, honor_forced) values
  ('development', 1, true),
  ('production', 0.1, false);

comment on table tracing.sampling_environments is
  E'Sampling per environment: head rate, whether clients may force sampling, the tail window and latency threshold.';

create table tracing.sampling_overrides (
  environment text not null references tracing.sampling_environments (environment) on update cascade on delete cascade,
  -- operation: the root span's name; event_type: any domain event of the trace.
  kind text not null constraint sampling_overrides_kind check (kind in ('operation', 'event_type')),
  -- An exact name, or a prefix ending in '*' ('GET /health*').
  pattern text not null constraint sampling_overrides_pattern_not_blank check (pattern <> '' and pattern <> '*'),
  rate numeric not null constraint sampling_overrides_rate_range check (rate between 0 and 1),
  primary key (environment, kind, pattern)
);

comment on table tracing.sampling_overrides is
  E'Rates that replace the environment''s for traces whose root operation or one of whose event types matches; the highest matching rate wins.';

create table tracing.sampling_settings (
  singleton boolean primary key default true constraint sampling_settings_singleton check (singleton),
  -- Which row of sampling_environments this database follows.
  environment text not null default 'development'
    references tracing.sampling_environments (environment) on update cascade,
  -- Spans recorded at or before this are all decided (run_sampling's
  -- cursor). It starts when sampling is installed: spans recorded before
  -- were kept without sampling and stay so.
  watermark timestamptz not null default now(),
  -- The last minute an in-process scheduler claimed for run_sampling.
  in_process_claimed_minute timestamptz
);

insert into tracing.sampling_settings default values;

comment on table tracing.sampling_settings is
  E'Which sampling environment this database follows, and the progress of tracing.run_sampling.';

-- One decision per trace: every span of a trace shares it, so a kept span's
-- rate is its trace's sample_rate (1 when kept for an error, latency or a
-- forced request), which is what re-weighting counts needs.
create table tracing.trace_sampling (
  trace_id uuid primary key,
  sampled_by text not null
    constraint trace_sampling_sampled_by check (sampled_by in ('head', 'forced', 'error', 'latency', 'dropped')),
  sample_rate numeric not null constraint trace_sampling_rate_range check (sample_rate between 0 and 1),
  environment text not null,
  decided_at timestamptz not null default now()
);

create index trace_sampling_decided_at_idx on tracing.trace_sampling (decided_at);

comment on table tracing.trace_sampling is
  E'The sampling decision of each trace: kept (head, forced, error, latency, with the rate it was kept at) or dropped.';

-- run_sampling finds the spans recorded since its last run through this:
-- a BRIN index costs next to nothing on the ingest path (spans arrive in
-- recorded_at order) where a btree would be paid on every insert.
create index spans_recorded_at_brin on tracing.spans using brin (recorded_at) with (autosummarize = on);

alter table tracing.sampling_environments enable row level security;
alter table tracing.sampling_overrides enable row level security;
alter table tracing.sampling_settings enable row level security;
alter table tracing.trace_sampling enable row level security;

-- A decision is visible to whoever may see a span of its trace.
create policy select_visible_trace on tracing.trace_sampling for select to tracegres_reader
  using (exists (select from tracing.spans s where s.trace_id = trace_sampling.trace_id));
create policy select_all on tracing.trace_sampling for select to tracegres_admin using (true);
grant select on tracing.trace_sampling to tracegres_anonymous;

-- Admins may read the configuration; only the owner changes it.
create policy select_all on tracing.sampling_environments for select to tracegres_admin using (true);
create policy select_all on tracing.sampling_overrides for select to tracegres_admin using (true);
create policy select_all on tracing.sampling_settings for select to tracegres_admin using (true);
grant select on tracing.sampling_environments, tracing.sampling_overrides, tracing.sampling_settings to tracegres_admin;
