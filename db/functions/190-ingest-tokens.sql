-- Ingest tokens (table in migration 000010): create, list, revoke, and the
-- lookup the OTLP ingest makes for every request.
--
-- Tokens are generated and hashed by the caller (server/otlp/ingest-tokens.ts):
-- only the SHA-256 reaches the database, so the token never appears in a
-- statement log. All functions run as the owner and are executable by the
-- owner only (revoked from public): the CLI and the ingest server connect
-- as the owner, no API role may mint or read tokens.

create or replace function tracing.create_ingest_token(p_organization_id uuid, p_token_sha256 bytea, p_name text default null)
returns uuid
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
begin
  if p_organization_id is null then
    raise exception 'p_organization_id is required' using errcode = '22023';
  end if;
  if p_token_sha256 is null or length(p_token_sha256) <> 32 then
    raise exception 'p_token_sha256 must be the 32-byte SHA-256 of the token' using errcode = '22023';
  end if;
  if p_name is not null and btrim(p_name) = '' then
    raise exception 'p_name must not be blank' using errcode = '22023';
  end if;
  insert into tracing.ingest_tokens (organization_id, token_sha256, name)
  values (p_organization_id, p_token_sha256, p_name)
  returning id into v_id;
  return v_id;
end
$$;

comment on function tracing.create_ingest_token(uuid, bytea, text) is
  E'Stores a new ingest token (its SHA-256) bound to p_organization_id; returns its id.';

create or replace function tracing.list_ingest_tokens()
returns table (id uuid, organization_id uuid, name text, created_at timestamptz, revoked_at timestamptz)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select t.id, t.organization_id, t.name, t.created_at, t.revoked_at
    from tracing.ingest_tokens t
   order by t.organization_id, t.created_at, t.id
$$;

comment on function tracing.list_ingest_tokens() is
  E'Every ingest token (never the token itself), revoked ones included.';

create or replace function tracing.revoke_ingest_token(p_id uuid)
returns boolean
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  -- True when a live token was revoked; false when none has this id or it
  -- was already revoked.
  with revoked as (
    update tracing.ingest_tokens set revoked_at = now()
     where id = p_id and revoked_at is null
    returning 1
  )
  select exists (select from revoked)
$$;

comment on function tracing.revoke_ingest_token(uuid) is
  E'Revokes an ingest token at once; true when a live token had this id.';

create or replace function tracing.ingest_token_organization(p_token_sha256 bytea)
returns uuid
language sql stable strict
set search_path = pg_catalog, pg_temp
as $$
  select t.organization_id from tracing.ingest_tokens t
   where t.token_sha256 = p_token_sha256 and t.revoked_at is null
$$;

comment on function tracing.ingest_token_organization(bytea) is
  E'The organization of the live ingest token with this SHA-256, or null.';

revoke all on function tracing.create_ingest_token(uuid, bytea, text) from public;
revoke all on function tracing.list_ingest_tokens() from public;
revoke all on function tracing.revoke_ingest_token(uuid) from public;
revoke all on function tracing.ingest_token_organization(bytea) from public;
