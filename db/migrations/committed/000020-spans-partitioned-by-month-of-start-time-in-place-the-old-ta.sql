--! Previous: sha1:e78dfa1da2fea14f0fe727da5ed40c74364e7030
--! Hash: sha1:302830ce2633216f7fd08742354291f3ec4c760f
--! Message: Spans partitioned by month of start time, in place: the old table becomes the partition of everything before next month, with a default partition and two months ahead; span identity keyed with start_time

-- tracing.spans becomes a table partitioned by month of start_time (UTC),
-- in place: the existing table is renamed and attached, as it is, as the
-- partition holding everything that starts before next month, so no row is
-- copied, lost or doubled. Months after it get partitions of their own
-- (two are created here; tracing.ensure_live_partitions keeps creating
-- them ahead), and a DEFAULT partition takes a span whose month has none
-- yet, so an insert never fails for its start time.
--
-- Span identity: a unique key of a partitioned table must contain the
-- partition key, so the key is (trace_id, span_id, organization_id,
-- start_time). A re-sent span (same ids, same start) meets its stored copy
-- in this key and record_span_columns' on conflict do nothing merges it as
-- before. A re-sent span with the same ids and another start time is not
-- caught by the key (it may belong to another partition); record_span_columns
-- looks for it in its trace's time range (trace_summaries) and keeps the
-- first write, as before. See docs/scaling.md.
--
-- On a large table, build the new key's index before migrating, without
-- blocking writers, and this migration reuses it:
--   create unique index concurrently spans_trace_span_organization_start
--     on tracing.spans (trace_id, span_id, organization_id, start_time) nulls not distinct;

do $$
declare
  v_next_month timestamptz := date_trunc('month', now(), 'UTC') + interval '1 month';
  v_old text := 'spans_before_' || to_char(v_next_month at time zone 'UTC', 'YYYY"m"MM');
  v_month timestamptz;
begin
  -- The new key's index, unless built beforehand (see above).
  create unique index if not exists spans_trace_span_organization_start
    on tracing.spans (trace_id, span_id, organization_id, start_time) nulls not distinct;

  -- What binds to the table itself rather than its name: the OTLP export
  -- trigger, the sampled_spans view and the functions returning its row
  -- type. db/functions creates them again on the partitioned table.
  drop trigger if exists _500_otlp_enqueue on tracing.spans;
  drop view if exists tracing.sampled_spans;
  drop function if exists tracing.window_spans(timestamptz, timestamptz);
  drop function if exists tracing.newest_window_spans(timestamptz, timestamptz, integer);

  -- The old key is replaced by the new one.
  alter table tracing.spans drop constraint spans_trace_span_organization;

  execute format('alter table tracing.spans rename to %I', v_old);
  execute format('alter index tracing.spans_recorded_at_brin rename to %I', v_old || '_recorded_at_brin');
  execute format('alter index tracing.spans_trace_span_organization_start rename to %I', v_old || '_trace_span_organization_start');
  -- The partition bound, proven by one scan now instead of again by ATTACH.
  execute format('alter table tracing.%I add constraint %I check (start_time < %L)', v_old, v_old || '_bound',
    v_next_month);

  create table tracing.spans (
    trace_id uuid not null,
    span_id bigint not null,
    parent_span_id bigint,
    name text not null,
    service text not null,
    kind text not null default 'internal',
    start_time timestamptz not null,
    end_time timestamptz not null,
    duration_ms double precision generated always as (extract(epoch from end_time - start_time) * 1000) stored,
    status text not null default 'unset',
    status_message text,
    attributes jsonb not null default '{}',
    span_events jsonb,
    links jsonb,
    correlation_id uuid,
    session_id uuid,
    organization_id uuid,
    recorded_at timestamptz not null default now(),
    constraint spans_kind_check check (kind in ('internal', 'server', 'client', 'producer', 'consumer')),
    constraint spans_status_check check (status in ('unset', 'ok', 'error')),
    constraint spans_name_not_blank check (name <> ''),
    constraint spans_service_not_blank check (service <> ''),
    constraint spans_end_after_start check (end_time >= start_time),
    constraint spans_attributes_object check (jsonb_typeof(attributes) = 'object'),
    constraint spans_span_events_array check (jsonb_typeof(span_events) = 'array'),
    constraint spans_links_array check (jsonb_typeof(links) = 'array'),
    constraint spans_ids_not_zero check (
      trace_id <> '00000000-0000-0000-0000-000000000000' and span_id <> 0 and parent_span_id <> 0)
  ) partition by range (start_time);

  comment on table tracing.spans is
    E'Finished spans (OpenTelemetry model), written only through tracing.record_spans. Domain events belong to a span through (trace_id, span_id). Partitioned by month of start_time (UTC).';

  -- Span identity; start_time is in it because a partitioned table's
  -- unique keys must hold its partition key (see above). An index rather
  -- than a constraint, so the old table's index built beforehand matches.
  create unique index spans_trace_span_organization_start
    on tracing.spans (trace_id, span_id, organization_id, start_time) nulls not distinct;
  create index spans_recorded_at_brin on tracing.spans using brin (recorded_at) with (autosummarize = on);

  alter table tracing.spans enable row level security;
  create policy select_own_organization on tracing.spans for select to tracegres_reader
    using (organization_id = (select tracing.current_organization_id()));
  create policy select_all on tracing.spans for select to tracegres_admin using (true);
  grant select on tracing.spans to tracegres_anonymous;

  -- The old table, as it is: its indexes match the parent's and are
  -- attached to them, its rows stay where they are.
  execute format('alter table tracing.spans attach partition tracing.%I for values from (minvalue) to (%L)', v_old,
    v_next_month);
  execute format('alter table tracing.%I drop constraint %I', v_old, v_old || '_bound');

  -- Spans whose month has no partition (yet): clocks off by months, or
  -- upkeep that has not run.
  create table tracing.spans_default partition of tracing.spans default;
  alter table tracing.spans_default enable row level security;

  -- The next two months, so a fresh install needs no upkeep run first.
  for v_month in select generate_series(v_next_month, v_next_month + interval '1 month', interval '1 month') loop
    execute format('create table tracing.%I partition of tracing.spans for values from (%L) to (%L)',
      'spans_' || to_char(v_month at time zone 'UTC', 'YYYY"m"MM'), v_month, v_month + interval '1 month');
    execute format('alter table tracing.%I enable row level security',
      'spans_' || to_char(v_month at time zone 'UTC', 'YYYY"m"MM'));
  end loop;
end
$$;
