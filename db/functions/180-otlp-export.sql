-- OTLP export, the database side: queueing spans (a trigger on
-- tracing.spans), claiming batches for an exporter, recording the outcome,
-- and the status operators watch. The tables are in migration 000005; the
-- exporter process is server/otlp/exporter.ts.
--
-- Delivery is at-least-once: a batch is claimed with row locks
-- (`for update skip locked`, so concurrent exporters never claim the same
-- span), sent while the claiming transaction stays open, and deleted in that
-- transaction once the collector accepted it. An exporter that dies after
-- the collector accepted but before its commit leaves the spans queued, and
-- they are sent again.

create or replace function tracing.otlp_queue_depth() returns bigint
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- From the identity counter and the oldest queued id: two index-free
  -- lookups instead of counting the queue on every insert. An over-estimate
  -- by the ids of rolled-back inserts, which errs on the safe side.
  select coalesce(pg_sequence_last_value('tracing.otlp_outbox_id_seq'::regclass) - min(o.id) + 1, 0)
    from tracing.otlp_outbox o
$$;

comment on function tracing.otlp_queue_depth() is
  E'About how many spans wait in the OTLP export queue (from ids; never less than the true count).';

create or replace function tracing.tg_spans__otlp_enqueue() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_settings tracing.otlp_export_settings;
  v_room bigint;
  v_arrived bigint;
  v_queued bigint;
begin
  select * into v_settings from tracing.otlp_export_settings;
  -- Spans restore_traces brings back from the archive were exported (or
  -- given up) when they were first recorded.
  if v_settings.enabled is not true or current_setting('tracegres.restoring', true) = 'on' then
    return null;
  end if;
  v_room := greatest(v_settings.max_queued_spans - tracing.otlp_queue_depth(), 0);
  -- Sampling decides later (tracing.run_sampling); every span is queued and
  -- the exporter sends only those of kept traces.
  with queued as (
    insert into tracing.otlp_outbox (trace_id, span_id, organization_id)
    select n.trace_id, n.span_id, n.organization_id from new_spans n limit v_room
    returning 1
  )
  select count(*) into v_queued from queued;
  if v_queued = v_room then
    select count(*) into v_arrived from new_spans;
    if v_arrived > v_queued then
      -- Export must never fail an insert: the spans are stored, only their
      -- export is given up, loudly.
      insert into tracing.otlp_queue_overflows (spans_not_queued) values (v_arrived - v_queued);
      raise warning 'OTLP export queue is full (% spans): % spans recorded but not queued for export',
        v_settings.max_queued_spans, v_arrived - v_queued
        using hint = 'Check the exporter (select * from tracing.otlp_export_status) or raise tracing.otlp_export_settings.max_queued_spans.';
    end if;
  end if;
  return null;
end
$$;

-- One statement-level trigger: a 1,000-span record_spans call queues its
-- spans in one insert.
create or replace trigger _500_otlp_enqueue
  after insert on tracing.spans
  referencing new table as new_spans
  for each statement execute function tracing.tg_spans__otlp_enqueue();

create or replace function tracing.otlp_unix_nano(p_time timestamptz) returns text
language sql immutable parallel safe as $$
  -- Text: nanoseconds since 1970 exceed JavaScript's exact integers.
  select ((extract(epoch from p_time) * 1000000)::bigint * 1000)::text
$$;

create or replace function tracing.otlp_span_key(p_trace_id uuid, p_span_id bigint, p_organization_id uuid) returns text
language sql immutable parallel safe as $$
  select p_trace_id::text || ':' || p_span_id::text || ':' || coalesce(p_organization_id::text, '')
$$;

comment on function tracing.otlp_span_key(uuid, bigint, uuid) is
  E'The key of a span in the lookup object of tracing.otlp_domain_events.';

-- The one-argument form of an earlier release.
drop function if exists tracing.otlp_domain_events(uuid[]);

create or replace function tracing.otlp_domain_events(p_trace_ids uuid[], p_events_per_trace integer default null) returns jsonb
language plpgsql stable parallel safe
set plan_cache_mode = force_generic_plan
as $$
begin
  -- One object for a whole set of traces, looked up per span: joined
  -- instead, a misjudged array parameter made the planner re-run the
  -- grouping for every span. Each trace's events are read on their own,
  -- oldest first through the trace index, at most p_events_per_trace of
  -- them (null: all), so a read API's request costs the same however many
  -- events were written into one trace id.
  --
  -- plpgsql with a generic plan, so the statement is planned once a
  -- session: as a SQL function (never inlined: its select has a FROM
  -- clause) it was planned again on every call, and so it was in plpgsql
  -- with custom plans (the generic plan's estimate for an array parameter
  -- looks dearer), 0.2-0.4 ms of a 10-span trace lookup's 0.5-0.7 ms in
  -- Postgres (pg_stat_statements' plans and mean_plan_time).
  return (select jsonb_object_agg(x.span_key, x.events)
    from (
      select tracing.otlp_span_key(e.trace_id, e.span_id, e.organization_id) as span_key,
             jsonb_agg(jsonb_build_object(
               'name', e.event_type,
               'time_unix_nano', tracing.otlp_unix_nano(e.created_at),
               'attributes', jsonb_strip_nulls(jsonb_build_object(
                 'tracegres.event.id', e.id,
                 'tracegres.stream.type', e.stream_type,
                 'tracegres.stream.id', e.stream_id,
                 'tracegres.processing_error', e.processing_error))
             ) order by e.created_at, e.id) as events
        from (select distinct t.trace_id from unnest(p_trace_ids) t(trace_id)) t
        cross join lateral (
          select * from tracing.domain_events d
           where d.trace_id = t.trace_id
           order by d.created_at, d.id
           limit p_events_per_trace
        ) e
       where e.span_id is not null
       group by e.trace_id, e.span_id, e.organization_id
    ) as x);
end
$$;

comment on function tracing.otlp_domain_events(uuid[], integer) is
  E'The domain events of the given traces as OTLP span events (name, time_unix_nano, attributes), in one object keyed by tracing.otlp_span_key of the span that emitted them; events the caller may not see are left out. At most the first p_events_per_trace events of each trace by time (all when null).';

-- A stored span in OTLP's terms (type tracing.otlp_span, from migration
-- 000026), written once for the export queue and the read APIs
-- (200-otlp-reads.sql). One row expression, so the planner inlines it.
create or replace function tracing.to_otlp_span(s tracing.spans, p_domain_events jsonb) returns tracing.otlp_span
language sql immutable parallel safe as $$
  select row(
    tracing.trace_id_to_hex(s.trace_id), tracing.span_id_to_hex(s.span_id), tracing.span_id_to_hex(s.parent_span_id),
    s.name, s.service, s.kind, tracing.otlp_unix_nano(s.start_time), tracing.otlp_unix_nano(s.end_time),
    s.status, s.status_message, s.attributes, s.span_events, s.links, s.correlation_id, s.session_id, s.organization_id,
    p_domain_events -> tracing.otlp_span_key(s.trace_id, s.span_id, s.organization_id)
  )::tracing.otlp_span
$$;

comment on function tracing.to_otlp_span(tracing.spans, jsonb) is
  E'Span s in OTLP''s terms, with its domain events taken from p_domain_events (the lookup object of tracing.otlp_domain_events).';

-- What the exporter does with a queued span: 'ready' to send, 'gone'
-- (deleted since it was queued: sampling dropped its trace) or
-- 'undecided' (its trace waits for sampling's tail decision).
create or replace function tracing.otlp_export_state(
  p_span_exists boolean, p_sampled_by text, p_recorded_at timestamptz,
  p_follow_sampling boolean, p_sampling_watermark timestamptz
) returns text
language sql immutable parallel safe as $$
  select case
           when not p_span_exists then 'gone'
           when not p_follow_sampling then 'ready'
           when p_sampled_by = 'dropped' then 'gone'
           when p_sampled_by is not null then 'ready'
           -- run_sampling passed this span without deciding its trace:
           -- recorded before sampling existed, or missed; such spans are
           -- kept, so they are exported.
           when p_recorded_at <= p_sampling_watermark then 'ready'
           else 'undecided'
         end
$$;

-- One claiming round: locks up to p_limit available queue rows not in
-- p_claimed (skip locked, so concurrent exporters never share one),
-- discards the gone ones, sets the undecided aside until the recheck
-- interval has passed, and returns the ready ones and how many it looked at.
create or replace function tracing.otlp_claim_round(
  p_limit integer, p_claimed bigint[], out ready bigint[], out examined bigint
)
-- plpgsql, not sql: its statements are planned for the limit at hand,
-- where a sql function's plan assumed thousands of candidates and hashed
-- every span of the table each round (2 to 3 times slower to drain a queue).
language plpgsql volatile as $$
declare
  v_gone bigint[];
  v_undecided bigint[];
begin
  with candidates as (
    select o.id, o.trace_id, o.span_id, o.organization_id
      from tracing.otlp_outbox o
     where o.available_at <= now()
       and o.id <> all (p_claimed)
     order by o.available_at, o.id
     limit p_limit
       for update skip locked
  ),
  classified as (
    select c.id,
           tracing.otlp_export_state(s.trace_id is not null, d.sampled_by, s.recorded_at,
             (select st.follow_sampling from tracing.otlp_export_settings st),
             (select ss.watermark from tracing.sampling_settings ss)) as state
      from candidates c
      -- A span is named by its ids within its organization.
      left join tracing.spans s on s.trace_id = c.trace_id and s.span_id = c.span_id
        and s.organization_id is not distinct from c.organization_id
      left join tracing.trace_sampling d on d.trace_id = c.trace_id
        and d.organization_id is not distinct from c.organization_id
  )
  select coalesce(array_agg(id) filter (where state = 'ready'), '{}'),
         coalesce(array_agg(id) filter (where state = 'gone'), '{}'),
         coalesce(array_agg(id) filter (where state = 'undecided'), '{}'),
         count(*)
    into ready, v_gone, v_undecided, examined
    from classified;
  delete from tracing.otlp_outbox o where o.id = any (v_gone);
  update tracing.otlp_outbox o
     set available_at = now() + (select st.undecided_recheck from tracing.otlp_export_settings st)
   where o.id = any (v_undecided);
end
$$;

create or replace function tracing.otlp_claim_spans(p_limit integer default 512)
returns table (outbox_id bigint, attempts integer, span tracing.otlp_span)
language plpgsql volatile
-- Definer rights: under a caller's row-level security a span it may not
-- see would look deleted, and its queue row would be discarded.
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ready bigint[] := '{}';
  v_round record;
  v_rounds integer := 0;
  v_traces uuid[];
  v_events jsonb;
begin
  if p_limit is null or p_limit < 1 or p_limit > 100000 then
    raise exception 'p_limit must be between 1 and 100000' using errcode = '22023',
      detail = format('got %s', coalesce(p_limit::text, 'null'));
  end if;

  -- Spans of undecided traces are set aside (available_at moves on), so a
  -- backlog of them is looked at once per recheck interval rather than on
  -- every claim; a few rounds fill a batch behind such a backlog.
  while cardinality(v_ready) < p_limit and v_rounds < 8 loop
    v_rounds := v_rounds + 1;
    select * into v_round from tracing.otlp_claim_round(p_limit - cardinality(v_ready), v_ready);
    exit when v_round.examined = 0;
    v_ready := v_ready || v_round.ready;
  end loop;

  -- The batch's domain events, grouped per span once, into a lookup
  -- object. A join here let the planner, misjudging the size of the batch
  -- (an array parameter), re-run the grouping for every span.
  select array_agg(distinct o.trace_id) into v_traces
    from unnest(v_ready) as r(id)
    join tracing.otlp_outbox o on o.id = r.id;
  v_events := tracing.otlp_domain_events(v_traces);

  return query
    select o.id, o.attempts, tracing.to_otlp_span(s, v_events)
      from unnest(v_ready) as r(id)
      join tracing.otlp_outbox o on o.id = r.id
      join tracing.spans s on s.trace_id = o.trace_id and s.span_id = o.span_id
        and s.organization_id is not distinct from o.organization_id
     order by o.id;
end
$$;

comment on function tracing.otlp_claim_spans(integer) is
  E'Claims up to p_limit queued spans whose trace sampling kept (row locks, skip locked: concurrent exporters never share a span) and returns them (queue row, attempts so far, the span in OTLP''s terms with its domain events); discards spans of dropped traces and sets aside undecided ones. Call in a transaction that ends with tracing.otlp_finish_batch.';

create or replace function tracing.otlp_finish_batch(
  p_outbox_ids bigint[],
  p_outcome text,
  p_reason text default null,
  p_http_status integer default null,
  p_endpoint text default null,
  p_retry_after interval default null,
  p_accepted bigint default null
) returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count bigint;
begin
  case p_outcome
    when 'exported' then
      delete from tracing.otlp_outbox where id = any (p_outbox_ids);
      get diagnostics v_count = row_count;
      update tracing.otlp_export_counters
         set exported_spans = exported_spans + v_count, batches = batches + 1, last_exported_at = now();
    when 'retry' then
      if p_retry_after is null or p_retry_after < interval '0' then
        raise exception 'p_retry_after must be a non-negative interval for a retry' using errcode = '22023';
      end if;
      update tracing.otlp_outbox
         set attempts = attempts + 1, available_at = now() + p_retry_after
       where id = any (p_outbox_ids);
      get diagnostics v_count = row_count;
      update tracing.otlp_export_counters
         set retried_spans = retried_spans + v_count, last_error = left(p_reason, 2000), last_error_at = now();
    when 'dead_letter' then
      -- A partial success does not say which spans the collector refused,
      -- so the whole batch is kept here with the collector's count and
      -- message; p_accepted of them did arrive.
      with moved as (
        delete from tracing.otlp_outbox where id = any (p_outbox_ids)
        returning trace_id, span_id, organization_id, enqueued_at, attempts
      )
      insert into tracing.otlp_dead_letters (trace_id, span_id, organization_id, enqueued_at, attempts, http_status, reason, endpoint)
      select trace_id, span_id, organization_id, enqueued_at, attempts + 1, p_http_status,
             coalesce(nullif(left(p_reason, 2000), ''), 'rejected without a reason'), p_endpoint
        from moved;
      get diagnostics v_count = row_count;
      update tracing.otlp_export_counters
         set dead_lettered_spans = dead_lettered_spans + v_count,
             exported_spans = exported_spans + coalesce(p_accepted, 0),
             batches = batches + 1,
             last_error = left(p_reason, 2000), last_error_at = now();
    else
      raise exception 'p_outcome must be one of exported, retry, dead_letter' using errcode = '22023',
        detail = format('got %s', coalesce(p_outcome, 'null'));
  end case;
end
$$;

comment on function tracing.otlp_finish_batch(bigint[], text, text, integer, text, interval, bigint) is
  E'Records what became of a claimed batch: exported (dequeued), retry (attempts + 1, not before p_retry_after) or dead_letter (moved to tracing.otlp_dead_letters with the reason), and updates the counters.';

-- The exporter runs as the database owner; nobody else may claim spans,
-- settle batches, requeue dead letters or switch queueing.
revoke all on function tracing.otlp_claim_spans(integer) from public;
revoke all on function tracing.otlp_claim_round(integer, bigint[]) from public;
revoke all on function tracing.otlp_finish_batch(bigint[], text, text, integer, text, interval, bigint) from public;

create or replace function tracing.otlp_requeue_dead_letters(p_since timestamptz default '-infinity') returns bigint
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  -- For after fixing what the collector refused; spans of a partially
  -- accepted batch go out again, duplicates included (at-least-once).
  with moved as (
    delete from tracing.otlp_dead_letters where dead_lettered_at >= p_since
    returning trace_id, span_id, organization_id, enqueued_at
  ),
  queued as (
    insert into tracing.otlp_outbox (trace_id, span_id, organization_id, enqueued_at)
    select trace_id, span_id, organization_id, enqueued_at from moved
    returning 1
  )
  select count(*) from queued
$$;

comment on function tracing.otlp_requeue_dead_letters(timestamptz) is
  E'Moves dead-lettered spans (dead-lettered since p_since) back into the export queue; returns how many.';

revoke all on function tracing.otlp_requeue_dead_letters(timestamptz) from public;

create or replace function tracing.otlp_enable_export(p_enabled boolean default true) returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  update tracing.otlp_export_settings set enabled = p_enabled
$$;

comment on function tracing.otlp_enable_export(boolean) is
  E'Turns queueing of recorded spans for OTLP export on (an exporter does this when it starts) or off (queued spans stay queued).';

revoke all on function tracing.otlp_enable_export(boolean) from public;

create or replace view tracing.otlp_export_status with (security_invoker = true) as
  select st.enabled,
         (select count(*) from tracing.otlp_outbox) as queue_depth,
         st.max_queued_spans as queue_limit,
         (select min(enqueued_at) from tracing.otlp_outbox) as oldest_enqueued_at,
         now() - (select min(enqueued_at) from tracing.otlp_outbox) as oldest_waiting,
         c.exported_spans,
         c.retried_spans,
         c.dead_lettered_spans,
         (select count(*) from tracing.otlp_dead_letters) as dead_letters,
         (select coalesce(sum(spans_not_queued), 0) from tracing.otlp_queue_overflows) as spans_not_queued,
         (select max(at) from tracing.otlp_queue_overflows) as last_overflow_at,
         c.batches,
         c.last_exported_at,
         c.last_error,
         c.last_error_at
    from tracing.otlp_export_settings st
   cross join tracing.otlp_export_counters c;

comment on view tracing.otlp_export_status is
  E'The OTLP export at a glance: queue depth and limit, oldest waiting span, exported / retried / dead-lettered span counts, spans not queued because the queue was full, the last error.';

grant select on tracing.otlp_export_status to tracegres_admin;
