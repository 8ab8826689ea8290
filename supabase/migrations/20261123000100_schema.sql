-- taskwarden: the schema, the roles it grants to, and default privileges that keep every
-- later object out of reach of anon / authenticated.

create schema if not exists taskwarden;
comment on schema taskwarden is 'taskwarden: fenced task leases, worker heartbeats and a reaper for background workers';

-- Supabase has these roles already; plain Postgres and PGlite do not, and the grants below name them.
do $roles$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$roles$;

revoke all on schema taskwarden from public, anon, authenticated;
grant usage on schema taskwarden to service_role;

-- Grants for objects later migrations create. (A per-schema default can only add privileges:
-- PUBLIC's default EXECUTE on functions is revoked explicitly in the privileges migration.)
alter default privileges in schema taskwarden grant execute on functions to service_role;
alter default privileges in schema taskwarden grant select, insert, update, delete on tables to service_role;
alter default privileges in schema taskwarden grant usage, select on sequences to service_role;
