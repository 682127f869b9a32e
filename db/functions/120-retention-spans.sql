-- Span retention: the steps tracing.archive_events, tracing.purge_archive
-- and tracing.restore_events (130-retention.sql) take for spans, in the same
-- runs, under the same lock, with the same run log.
--
-- The unit is a trace: one organization's spans of one trace id, with its
-- summary (tracing.trace_summaries) and sampling decision
-- (tracing.trace_sampling). A trace moves whole, in one transaction, so a
-- timeline is never half live and half archived, and a run killed at any
-- moment leaves each trace entirely on one side.

-- Whether a trace that ended before p_horizon may leave the live tables:
-- not while a DBA's restore pins it, and not while it still has live
-- events newer than the horizon (its timeline joins them to its spans).
create or replace function tracing.trace_archivable(p_trace_id uuid, p_organization_id uuid, p_horizon timestamptz)
returns boolean
language sql stable as $$
  select not exists (
           select from tracing.restored_traces r
            where r.trace_id = p_trace_id and r.organization_id is not distinct from p_organization_id
              and r.keep_until > now())
     and not exists (
           select from tracing.domain_events e
            where e.trace_id = p_trace_id and e.organization_id is not distinct from p_organization_id
              and e.created_at >= p_horizon)
$$;

-- Moves the given traces (parallel arrays of trace id and organization)
-- from the live tables to the archive: spans, summary with its sampling
-- decision, and their rows in the export queue, which would never export.
-- A trace already in the archive (spans that arrived after it was
-- archived) is merged into it, as record_spans merges a batch into a
-- summary. Returns how many spans moved and how many queue rows went.
create or replace function tracing.archive_traces(
  p_trace_ids uuid[], p_organization_ids uuid[],
  out spans_moved bigint, out outbox_rows_dropped bigint
)
language sql as $$
  with chosen as (
    select * from unnest(p_trace_ids, p_organization_ids) as c(trace_id, organization_id)
  ),
  -- Every live span of a trace starts within its summary's range (the
  -- summary is folded from them), and both callers take their traces from
  -- the summaries: bounding the delete by it lets each trace's probe run
  -- only in the monthly partitions of that range (2,000 traces over 8
  -- partitions: 1.2-1.7 s instead of 1.6-2.2 s).
  ranges as (
    select c.trace_id, c.organization_id, t.start_time, t.end_time
      from chosen c
      join tracing.trace_summaries t on t.trace_id = c.trace_id and t.organization_id is not distinct from c.organization_id
  ),
  moved_spans as (
    delete from tracing.spans s using ranges c
     where s.trace_id = c.trace_id and s.organization_id is not distinct from c.organization_id
       and s.start_time between c.start_time and c.end_time
    returning s.*
  ),
  archived_spans as (
    insert into tracing.spans_archive (
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status, status_message,
      attributes, span_events, links, correlation_id, session_id, organization_id, recorded_at)
    select trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status, status_message,
           attributes, span_events, links, correlation_id, session_id, organization_id, recorded_at
      from moved_spans
    -- The same span recorded again after its trace was archived (a client's
    -- retry) is the copy already there.
    on conflict on constraint spans_archive_trace_span_organization do nothing
  ),
  moved_summaries as (
    delete from tracing.trace_summaries t using chosen c
     where t.trace_id = c.trace_id and t.organization_id is not distinct from c.organization_id
    returning t.*
  ),
  moved_decisions as (
    delete from tracing.trace_sampling d using chosen c
     where d.trace_id = c.trace_id and d.organization_id is not distinct from c.organization_id
    returning d.*
  ),
  archived_summaries as (
    insert into tracing.trace_summaries_archive as a (
      trace_id, organization_id, start_time, end_time, root_span_id, root_name, root_service, root_start_time,
      services, span_count, error_count, session_id, correlation_id, updated_at,
      sampled_by, sample_rate, sampling_environment, sampling_decided_at)
    select t.trace_id, t.organization_id, t.start_time, t.end_time, t.root_span_id, t.root_name, t.root_service,
           t.root_start_time, t.services, t.span_count, t.error_count, t.session_id, t.correlation_id, t.updated_at,
           d.sampled_by, d.sample_rate, d.environment, d.decided_at
      from moved_summaries t
      left join moved_decisions d on d.trace_id = t.trace_id and d.organization_id is not distinct from t.organization_id
    on conflict on constraint trace_summaries_archive_trace_organization do update set
      -- The summary rule of record_spans, written once.
      (start_time, end_time, root_span_id, root_name, root_service, root_start_time, services, span_count,
       error_count, session_id, correlation_id) = (
        select m.* from tracing.merge_trace_summaries(
          a.start_time, a.end_time, a.root_span_id, a.root_name, a.root_service, a.root_start_time, a.services,
          a.span_count, a.error_count, a.session_id, a.correlation_id,
          excluded.start_time, excluded.end_time, excluded.root_span_id, excluded.root_name, excluded.root_service,
          excluded.root_start_time, excluded.services, excluded.span_count, excluded.error_count, excluded.session_id,
          excluded.correlation_id) as m),
      updated_at = greatest(a.updated_at, excluded.updated_at),
      -- The first decision stands, as it does for spans arriving late in the live tables.
      sampled_by = coalesce(a.sampled_by, excluded.sampled_by),
      sample_rate = coalesce(a.sample_rate, excluded.sample_rate),
      sampling_environment = coalesce(a.sampling_environment, excluded.sampling_environment),
      sampling_decided_at = coalesce(a.sampling_decided_at, excluded.sampling_decided_at),
      archived_at = now()
  ),
  dropped_outbox as (
    delete from tracing.otlp_outbox o using chosen c
     where o.trace_id = c.trace_id and o.organization_id is not distinct from c.organization_id
    returning 1
  )
  select (select count(*) from moved_spans), (select count(*) from dropped_outbox)
$$;

-- One archive batch: the oldest archivable traces that ended before
-- p_horizon, locked so concurrent runs and sampling skip them, up to about
-- p_batch_size spans (always at least one trace, however large).
create or replace function tracing.archive_trace_batch(
  p_horizon timestamptz, p_batch_size integer,
  out traces_moved bigint, out spans_moved bigint, out outbox_rows_dropped bigint
)
language plpgsql as $$
declare
  v_trace_ids uuid[];
  v_organization_ids uuid[];
begin
  with locked as (
    select t.trace_id, t.organization_id, t.span_count, t.end_time
      from tracing.trace_summaries t
     where t.end_time < p_horizon
       and tracing.trace_archivable(t.trace_id, t.organization_id, p_horizon)
     order by t.end_time, t.trace_id
     limit p_batch_size
       for update skip locked
  ),
  counted as (
    select trace_id, organization_id, span_count,
           sum(span_count) over (order by end_time, trace_id rows unbounded preceding) as spans_through
      from locked
  )
  select array_agg(trace_id), array_agg(organization_id), count(*)
    into v_trace_ids, v_organization_ids, traces_moved
    from counted
   where spans_through - span_count < p_batch_size;
  if traces_moved = 0 then
    spans_moved := 0;
    outbox_rows_dropped := 0;
    return;
  end if;
  select m.spans_moved, m.outbox_rows_dropped into spans_moved, outbox_rows_dropped
    from tracing.archive_traces(v_trace_ids, v_organization_ids) m;
end
$$;

-- What an archive run would move now: traces and spans (for dry runs).
create or replace function tracing.archivable_spans(p_horizon timestamptz, out traces bigint, out spans bigint)
language sql stable as $$
  select count(*), coalesce(sum(t.span_count), 0)
    from tracing.trace_summaries t
   where t.end_time < p_horizon and tracing.trace_archivable(t.trace_id, t.organization_id, p_horizon)
$$;

-- One purge batch: deletes the oldest archived traces that ended before
-- p_horizon, up to about p_batch_size spans (at least one trace). With
-- p_dry_run, counts every trace and span it would delete instead.
create or replace function tracing.purge_trace_batch(
  p_horizon timestamptz, p_batch_size integer, p_dry_run boolean default false,
  out traces_dropped bigint, out spans_dropped bigint
)
language plpgsql as $$
begin
  if p_dry_run then
    select count(*), coalesce(sum(a.span_count), 0) into traces_dropped, spans_dropped
      from tracing.trace_summaries_archive a where a.end_time < p_horizon;
    return;
  end if;
  with locked as (
    select a.trace_id, a.organization_id, a.span_count, a.end_time
      from tracing.trace_summaries_archive a
     where a.end_time < p_horizon
     order by a.end_time, a.trace_id
     limit p_batch_size
       for update skip locked
  ),
  chosen as (
    select trace_id, organization_id
      from (select *, sum(span_count) over (order by end_time, trace_id rows unbounded preceding) as spans_through from locked) l
     where spans_through - span_count < p_batch_size
  ),
  dropped_summaries as (
    delete from tracing.trace_summaries_archive a using chosen c
     where a.trace_id = c.trace_id and a.organization_id is not distinct from c.organization_id
    returning 1
  ),
  dropped_spans as (
    delete from tracing.spans_archive s using chosen c
     where s.trace_id = c.trace_id and s.organization_id is not distinct from c.organization_id
    returning 1
  )
  select (select count(*) from dropped_summaries), (select count(*) from dropped_spans)
    into traces_dropped, spans_dropped;
end
$$;

-- The traces a restore brings back with its events: the one asked for, or
-- every trace the correlation or session touched, by its archived events
-- or by the ids its archived traces carried. p_column is one of trace_id,
-- correlation_id, session_id (tracing.restore_selector).
create or replace function tracing.archived_trace_ids(p_column text, p_value uuid) returns uuid[]
language plpgsql stable as $$
declare
  v_trace_ids uuid[];
begin
  if p_column = 'trace_id' then
    return array[p_value];
  end if;
  execute format($sql$
    select coalesce(array_agg(distinct t.trace_id), '{}') from (
      select e.trace_id from tracing.domain_events_archive e where e.%1$I = $1 and e.trace_id is not null
      union all
      select a.trace_id from tracing.trace_summaries_archive a where a.%1$I = $1
    ) t$sql$, p_column)
    into v_trace_ids using p_value;
  return v_trace_ids;
end
$$;

-- Brings every archived trace with one of these ids (all organizations)
-- back to the live tables, with its summary and sampling decision, and
-- pins it there until p_keep_until. A live piece of such a trace (spans
-- that arrived after it was archived) is archived first, so the archive
-- holds the whole trace and one move brings it back without merging.
-- With p_dry_run, only counts what would come back.
create or replace function tracing.restore_traces(
  p_trace_ids uuid[], p_keep_until timestamptz, p_run_id bigint, p_dry_run boolean default false,
  out traces_restored bigint, out spans_restored bigint
)
language plpgsql as $$
declare
  v_live_ids uuid[];
  v_live_organizations uuid[];
begin
  if p_dry_run then
    select count(*), coalesce(sum(a.span_count), 0) into traces_restored, spans_restored
      from tracing.trace_summaries_archive a where a.trace_id = any (p_trace_ids);
    return;
  end if;
  select array_agg(t.trace_id), array_agg(t.organization_id) into v_live_ids, v_live_organizations
    from tracing.trace_summaries t
   where t.trace_id = any (p_trace_ids)
     and exists (select from tracing.trace_summaries_archive a
                  where a.trace_id = t.trace_id and a.organization_id is not distinct from t.organization_id);
  if v_live_ids is not null then
    perform tracing.archive_traces(v_live_ids, v_live_organizations);
  end if;

  -- The export queue's trigger leaves restored spans alone.
  perform set_config('tracegres.restoring', 'on', true);
  with moved_summaries as (
    delete from tracing.trace_summaries_archive a where a.trace_id = any (p_trace_ids) returning a.*
  ),
  restored_summaries as (
    insert into tracing.trace_summaries (
      trace_id, organization_id, start_time, end_time, root_span_id, root_name, root_service, root_start_time,
      services, span_count, error_count, session_id, correlation_id, updated_at)
    select trace_id, organization_id, start_time, end_time, root_span_id, root_name, root_service, root_start_time,
           services, span_count, error_count, session_id, correlation_id, updated_at
      from moved_summaries
  ),
  restored_decisions as (
    insert into tracing.trace_sampling (trace_id, organization_id, sampled_by, sample_rate, environment, decided_at)
    select trace_id, organization_id, sampled_by, sample_rate, sampling_environment, sampling_decided_at
      from moved_summaries where sampled_by is not null
    -- A decision made live since (for spans that arrived later) stands.
    on conflict on constraint trace_sampling_trace_organization do nothing
  ),
  moved_spans as (
    delete from tracing.spans_archive s where s.trace_id = any (p_trace_ids) returning s.*
  ),
  restored_spans as (
    insert into tracing.spans (
      trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status, status_message,
      attributes, span_events, links, correlation_id, session_id, organization_id, recorded_at)
    select trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, status, status_message,
           attributes, span_events, links, correlation_id, session_id, organization_id, recorded_at
      from moved_spans
  ),
  pins as (
    insert into tracing.restored_traces (trace_id, organization_id, keep_until, run_id)
    select trace_id, organization_id, p_keep_until, p_run_id from moved_summaries
    on conflict on constraint restored_traces_trace_organization
      do update set keep_until = excluded.keep_until, run_id = excluded.run_id, restored_at = now()
  )
  select (select count(*) from moved_summaries), (select count(*) from moved_spans)
    into traces_restored, spans_restored;
  perform set_config('tracegres.restoring', 'off', true);
end
$$;

-- Sampling decisions of traces that have no live summary any more (traces
-- the sampler dropped) are kept so late spans follow them; past the archive
-- horizon nothing arrives late any more, so they go. Returns how many.
create or replace function tracing.forget_sampling_decisions(p_horizon timestamptz, p_batch_size integer)
returns bigint
language sql as $$
  with old as (
    select d.ctid as row_id
      from tracing.trace_sampling d
     where d.decided_at < p_horizon
       and not exists (select from tracing.trace_summaries t
                        where t.trace_id = d.trace_id and t.organization_id is not distinct from d.organization_id)
     limit p_batch_size
       for update skip locked
  ),
  forgotten as (
    delete from tracing.trace_sampling d using old where d.ctid = old.row_id returning 1
  )
  select count(*) from forgotten
$$;

-- The span part of an archive run (tracing.archive_events calls it after
-- moving events, holding the retention lock): archive batches until none
-- is left, each its own transaction with its progress in the run log, then
-- the old sampling decisions. A failure or cancel rolls back only the batch
-- in flight and is handed back to the caller to record.
create or replace procedure tracing.archive_spans_of_run(
  p_run_id bigint, p_horizon timestamptz, p_batch_size integer,
  inout error text default null, inout error_sqlstate text default null
)
language plpgsql as $$
declare
  v_batch record;
  v_forgotten bigint;
begin
  loop
    begin
      select * into v_batch from tracing.archive_trace_batch(p_horizon, p_batch_size);
      update tracing.retention_runs
         set spans_moved = spans_moved + v_batch.spans_moved,
             batches = batches + case when v_batch.traces_moved > 0 then 1 else 0 end,
             details = coalesce(details, '{}') || jsonb_build_object(
               'traces_moved', coalesce((details->>'traces_moved')::bigint, 0) + v_batch.traces_moved,
               'outbox_rows_dropped', coalesce((details->>'outbox_rows_dropped')::bigint, 0) + v_batch.outbox_rows_dropped)
       where id = p_run_id;
    exception when query_canceled or others then
      error := sqlerrm;
      error_sqlstate := sqlstate;
    end;
    exit when error is not null or v_batch.traces_moved = 0;
    commit;
  end loop;
  while error is null loop
    begin
      v_forgotten := tracing.forget_sampling_decisions(p_horizon, p_batch_size);
    exception when query_canceled or others then
      error := sqlerrm;
      error_sqlstate := sqlstate;
    end;
    exit when error is not null or v_forgotten = 0;
    commit;
  end loop;
end
$$;

-- The span part of a purge run (tracing.purge_archive calls it after the
-- event partitions): purge batches until none is left, or one count for a
-- dry run.
create or replace procedure tracing.purge_spans_of_run(
  p_run_id bigint, p_horizon timestamptz, p_batch_size integer, p_dry_run boolean,
  inout error text default null, inout error_sqlstate text default null
)
language plpgsql as $$
declare
  v_batch record;
begin
  loop
    begin
      select * into v_batch from tracing.purge_trace_batch(p_horizon, p_batch_size, p_dry_run);
      update tracing.retention_runs
         set spans_dropped = spans_dropped + v_batch.spans_dropped,
             details = coalesce(details, '{}') || jsonb_build_object(
               case when p_dry_run then 'traces_to_drop' else 'traces_dropped' end,
               coalesce((details->>case when p_dry_run then 'traces_to_drop' else 'traces_dropped' end)::bigint, 0) + v_batch.traces_dropped)
       where id = p_run_id;
    exception when query_canceled or others then
      error := sqlerrm;
      error_sqlstate := sqlstate;
    end;
    exit when error is not null or p_dry_run or v_batch.traces_dropped = 0;
    commit;
  end loop;
end
$$;

comment on function tracing.archive_trace_batch(timestamptz, integer) is
  E'One batch of span retention: moves the oldest whole traces that ended before p_horizon (about p_batch_size spans) to tracing.spans_archive and tracing.trace_summaries_archive. Called by tracing.archive_events.';
comment on function tracing.purge_trace_batch(timestamptz, integer, boolean) is
  E'One batch of span purge: deletes the oldest archived traces that ended before p_horizon (about p_batch_size spans). Called by tracing.purge_archive.';
comment on function tracing.archived_trace_ids(text, uuid) is
  E'The ids of the traces to restore with the archived events whose p_column (trace_id, correlation_id or session_id) is p_value. Called by tracing.restore_events.';
comment on function tracing.restore_traces(uuid[], timestamptz, bigint, boolean) is
  E'Moves the archived traces with these ids back to the live tables and pins them until p_keep_until. Called by tracing.restore_events.';
comment on procedure tracing.archive_spans_of_run(bigint, timestamptz, integer, text, text) is
  E'The span part of an archive run: archive_trace_batch until nothing is left, then forget_sampling_decisions; progress in retention_runs. Called by tracing.archive_events.';
comment on procedure tracing.purge_spans_of_run(bigint, timestamptz, integer, boolean, text, text) is
  E'The span part of a purge run: purge_trace_batch until nothing is left (one count for a dry run); progress in retention_runs. Called by tracing.purge_archive.';
