--! Previous: sha1:305b81e5ef54b07a23ceae40b6afc5d569bdb857
--! Hash: sha1:e73dc26b644b47851ac82331fa06cc00e1b4e89e
--! Message: Business data search: an index of aggregates' events, and the declared event_data search keys

-- Business data search: "every trace that touched order ord-1058".

-- An aggregate's events, newest first; only events with a trace lead to one.
create index if not exists domain_events_stream_idx
  on tracing.domain_events (stream_type, stream_id, created_at desc) where trace_id is not null;

-- Keys of event_data a DBA declared searchable (tracing.add_search_key):
-- each has an expression index of its own. An undeclared key may be
-- searched only within a short window.
create table tracing.search_keys (
  path text[] primary key
    constraint search_keys_path_valid check (cardinality(path) between 1 and 8 and array_position(path, null) is null),
  index_name text not null unique,
  created_at timestamptz not null default now(),
  created_by text not null default current_user
);

comment on table tracing.search_keys is
  E'Paths into event_data declared searchable by tracing.add_search_key, each with its expression index.';

alter table tracing.search_keys enable row level security;
create policy select_all on tracing.search_keys for select to tracegres_anonymous using (true);
grant select on tracing.search_keys to tracegres_anonymous;
