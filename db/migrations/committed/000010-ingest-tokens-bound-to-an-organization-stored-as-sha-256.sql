--! Previous: sha1:a8a936cf816af8fd10d089a98a2b198f3bcd450a
--! Hash: sha1:97040fabc3293702ff79d73f298bb31b53bdb6a5
--! Message: Ingest tokens bound to an organization, stored as SHA-256

-- Ingest tokens: each binds an OTLP ingest client to one organization, so
-- the spans it sends belong to that organization whatever they claim.
-- Only the SHA-256 of a token is stored (the token is shown once, when it
-- is created), so a copy of the database gives no one a working token.
-- Created, listed and revoked by the owner (`tracegres ingest-token`,
-- db/functions/ingest_tokens.sql); no role of the API may read the table.
create table if not exists tracing.ingest_tokens (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null,
  name text constraint ingest_tokens_name_not_blank check (name <> ''),
  token_sha256 bytea not null constraint ingest_tokens_sha256_unique unique
    constraint ingest_tokens_sha256_length check (length(token_sha256) = 32),
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

comment on table tracing.ingest_tokens is
  E'OTLP ingest tokens (SHA-256 only), each bound to one organization; revoked ones are kept with revoked_at.';

create index if not exists ingest_tokens_organization_idx on tracing.ingest_tokens (organization_id, created_at);

-- Row-level security with no policy: only the owner (and its definer-rights
-- functions) reaches a row.
alter table tracing.ingest_tokens enable row level security;
