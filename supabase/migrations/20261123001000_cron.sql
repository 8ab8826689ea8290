-- taskwarden: pg_cron runs the reaper every minute inside the database. Where pg_cron is not
-- available (PGlite, plain Postgres, a database pg_cron does not serve) this is skipped with a
-- NOTICE, and the edge function or the in-process reaper schedules reap() instead.

do $cron$
begin
  if not exists (select from pg_catalog.pg_available_extensions where name = 'pg_cron') then
    raise notice 'taskwarden: pg_cron is not available here; schedule taskwarden.reap() another way';
    return;
  end if;
  begin
    create extension if not exists pg_cron with schema pg_catalog; -- as Supabase documents it
  exception when others then
    raise notice 'taskwarden: pg_cron could not be enabled in this database (%); the taskwarden-reap job is not scheduled', sqlerrm;
    return;
  end;
  perform cron.schedule('taskwarden-reap', '* * * * *', $job$select taskwarden.reap('pg_cron')$job$);
end
$cron$;
