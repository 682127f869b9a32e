--! Previous: sha1:b876eec61b05c0d22d7c78a36ee9fa5a08a9eb8f
--! Hash: sha1:e78dfa1da2fea14f0fe727da5ed40c74364e7030
--! Message: Replay settings: the lease a processor's claim holds by default, and held claims indexed by when their lease ends

-- Replay claims: the lease a claim holds unless its processor asks for
-- another, and a lookup of the claims held, so a claim can end the claims
-- of cancelled runs whose lease ran out (their processor died).
create table if not exists tracing.replay_settings (
  singleton boolean primary key default true constraint replay_settings_singleton check (singleton),
  -- How long a claim holds its event before another claim may take it.
  claim_lease interval not null default interval '5 minutes'
    constraint replay_settings_claim_lease_range check (claim_lease between interval '1 second' and interval '1 hour')
);

insert into tracing.replay_settings default values on conflict do nothing;

comment on table tracing.replay_settings is
  E'Replay settings (one row): the lease of a processor''s claim when it names none.';

alter table tracing.replay_settings enable row level security;

-- Admins (the dashboard) may read it; only the database owner changes it.
drop policy if exists select_all on tracing.replay_settings;
create policy select_all on tracing.replay_settings for select to tracegres_admin using (true);
grant select on tracing.replay_settings to tracegres_admin;

-- Held claims by lease end: few rows, read by every claim.
create index if not exists replay_items_claimed_until_idx on tracing.replay_items (claimed_until) where state = 'claimed';
