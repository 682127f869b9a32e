-- The live view: the dashboard shows failed events as they happen, without
-- reloading. Postgres says when (NOTIFY), the server passes it on to each
-- browser (GraphQL subscriptions over WebSocket,
-- server/graphql/live-subscriptions.ts), and what each browser may see is
-- decided here again, by row-level security, when the server reads the new
-- events back as that browser's token.
--
-- An event counts when it is inserted failed or when its processing fails
-- later (processing_error set by an update), like the alert triggers. The
-- payload is the event id, so the server reads exactly the new rows; a
-- transaction that fails many events sends one notification per event,
-- delivered at its commit (never for a rolled-back one). The WHEN clauses
-- keep events that did not fail off the trigger function entirely. Events
-- tracing.restore_events brings back from the archive failed long ago: they
-- are not news, as for the alert and export triggers.

create or replace function tracing.tg_domain_events__notify_failed() returns trigger
language plpgsql volatile as $$
begin
  if current_setting('tracegres.restoring', true) is distinct from 'on' then
    perform pg_notify('tracegres_failed_events', new.id::text);
  end if;
  return null;
end
$$;

comment on function tracing.tg_domain_events__notify_failed() is
  E'Trigger: NOTIFY tracegres_failed_events with the id of an event that was inserted failed or whose processing failed (not for events restored from the archive).';

create or replace trigger _700_notify_failed_on_insert
  after insert on tracing.domain_events
  for each row when (new.processing_error is not null)
  execute function tracing.tg_domain_events__notify_failed();

create or replace trigger _700_notify_failed_on_failure
  after update of processing_error on tracing.domain_events
  for each row when (new.processing_error is not null and old.processing_error is distinct from new.processing_error)
  execute function tracing.tg_domain_events__notify_failed();

create or replace function api.get_failed_events_by_id(p_ids bigint[]) returns setof api.event
language plpgsql stable parallel safe as $$
begin
  perform tracing.require_present(p_ids, 'p_ids');
  if cardinality(p_ids) > 500 then
    raise exception 'p_ids must hold at most 500 ids' using errcode = '22023',
      detail = format('got %s', cardinality(p_ids));
  end if;
  return query
    -- Live rows only (a new failure is never archived): the constant
    -- archived flag leaves the archive branch of all_events unplanned, as in
    -- api.get_failed_events.
    select (tracing.to_api_event(e)).*
    from tracing.all_events e
    where not e.archived and e.id = any (p_ids) and e.processing_error is not null
    -- Oldest first: a live list puts each arrival on top of the last.
    order by e.created_at, e.id;
end
$$;

comment on function api.get_failed_events_by_id(bigint[]) is
  E'The failed events among p_ids (at most 500), oldest first: how the live view reads the events it was told about, with the caller''s rights, so each viewer gets only what it may see.';

grant execute on function api.get_failed_events_by_id(bigint[]) to tracegres_anonymous;

-- New traces, for live search results. The payload is the trace's
-- organization, not the trace: Postgres folds identical notifications of
-- one transaction into one, so a batch of spans that starts a thousand
-- traces of one tenant sends a single notification, and the ingest path
-- pays one trigger call per new trace, none per span. A trace of no
-- organization is named instead (`none:` and its id), so who may see it can
-- be asked of that trace (such traces come from writers without a tenant,
-- not from authenticated ingest, so losing the folding costs little). The
-- server asks api.sees_trace_activity, as each subscriber, whether to tell
-- it that something arrived; their pages run their searches again through
-- GraphQL, where row-level security and the search itself decide what they
-- get.
create or replace function tracing.tg_trace_summaries__notify_new() returns trigger
language plpgsql volatile as $$
begin
  perform pg_notify('tracegres_new_traces', coalesce(new.organization_id::text, 'none:' || new.trace_id::text));
  return null;
end
$$;

comment on function tracing.tg_trace_summaries__notify_new() is
  E'Trigger: NOTIFY tracegres_new_traces with the organization of a trace seen for the first time (none: and the trace id for a trace of no organization).';

create or replace trigger _700_notify_new_trace
  after insert on tracing.trace_summaries
  for each row
  execute function tracing.tg_trace_summaries__notify_new();

-- Whether the caller sees the traces a tracegres_new_traces notification
-- announced, asked of row-level security itself: invoker rights, so the
-- policies on trace_summaries decide, and the rule of who sees which
-- organization stays written once, in the policies (the server used to
-- repeat it in TypeScript). Each probe reads at most one index entry: a
-- summary of the organization (trace_summaries_organization_start_time_idx),
-- where a reader of another organization reads none, as the planner sees
-- the policy's organization and this one must be equal and checks that
-- once; or the announced trace of no organization by its id. Only the
-- branch the argument picks runs.
create or replace function api.sees_trace_activity(p_organization_id uuid, p_trace_id uuid) returns boolean
language sql stable parallel safe as $$
  select case
    when p_organization_id is not null then
      -- The index's order, so the plan reads the index even when one
      -- organization holds most summaries (a generic plan's estimate).
      coalesce((select true from tracing.trace_summaries t where t.organization_id = p_organization_id
                 order by t.start_time desc limit 1), false)
    else
      exists (select from tracing.trace_summaries t where t.trace_id = p_trace_id and t.organization_id is null)
  end
$$;

comment on function api.sees_trace_activity(uuid, uuid) is
  E'Whether the caller may see traces of organization p_organization_id, or, when it is null, the trace p_trace_id of no organization, as row-level security decides: how the live view (traceActivity) decides whom to tell that traces arrived.';

grant execute on function api.sees_trace_activity(uuid, uuid) to tracegres_anonymous;
