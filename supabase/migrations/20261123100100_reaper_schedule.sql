-- taskwarden: schedule the reaper edge function (alerts) every minute with pg_cron + pg_net, as
-- Supabase documents it: the project URL and a bearer come from Vault secrets named
-- 'taskwarden_project_url' and 'taskwarden_reaper_secret' (the service-role key or CRON_SECRET).
-- pg_cron alone already runs reap() in the database (the cron migration); this job adds what SQL
-- cannot do: tell a person. Skipped with a NOTICE where pg_cron, pg_net or Vault is missing
-- (plain Postgres, PGlite); supabase/functions/reaper/README.md has the snippet.

do $schedule$
begin
  if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise notice 'taskwarden: pg_cron is not enabled; the reaper edge function is not scheduled';
    return;
  end if;
  if not exists (select from pg_catalog.pg_available_extensions where name = 'pg_net')
     or not (exists (select from pg_catalog.pg_namespace where nspname = 'vault')
             or exists (select from pg_catalog.pg_available_extensions where name = 'supabase_vault')) then
    raise notice 'taskwarden: pg_net or Vault is not available; schedule the reaper edge function by hand (see supabase/functions/reaper/README.md)';
    return;
  end if;
  -- In Supabase's `extensions` schema, as its docs enable it (never public: the advisors flag that);
  -- pg_net's functions live in its own `net` schema either way.
  create schema if not exists extensions;
  create extension if not exists pg_net with schema extensions;
  -- Hosted Supabase has Vault enabled already; a self-hosted database may only have it installed.
  if not exists (select from pg_catalog.pg_namespace where nspname = 'vault') then
    create extension if not exists supabase_vault;
  end if;
  perform cron.schedule(
    'taskwarden-reaper-edge',
    '* * * * *',
    $job$
      select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'taskwarden_project_url')
               || '/functions/v1/reaper',
        headers := jsonb_build_object(
          'content-type', 'application/json',
          'authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'taskwarden_reaper_secret')),
        body := '{}'::jsonb,
        timeout_milliseconds := 30000)
      where exists (select from vault.decrypted_secrets where name = 'taskwarden_reaper_secret')
    $job$);
  -- The secrets are read when the job fires, so they may be created after this migration.
  if not exists (select from vault.decrypted_secrets where name in ('taskwarden_project_url', 'taskwarden_reaper_secret')
                 having count(*) = 2) then
    raise notice 'taskwarden: the reaper edge function is scheduled, but it stays idle until Vault holds taskwarden_project_url and taskwarden_reaper_secret';
  end if;
end
$schedule$;
