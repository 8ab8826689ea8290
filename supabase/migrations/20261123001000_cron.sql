-- taskwarden: pg_cron runs the reaper inside the database, every reap_interval_seconds seconds
-- (pg_cron 1.5+, as on hosted Supabase) or every minute (pg_cron 1.4, which has no seconds
-- schedules). Where pg_cron is not available (PGlite, plain Postgres, a database pg_cron does not
-- serve) scheduling is skipped with a NOTICE, and the edge function or the in-process reaper
-- schedules reap() instead.

insert into taskwarden.settings (key, value, value_type, min_value, max_value, description) values
  ('reap_interval_seconds', '5', 'integer', 1, 59,
   'pg_cron runs reap() this often (seconds; pg_cron 1.4 runs it every minute); change it with taskwarden.schedule_reaper().')
on conflict (key) do nothing;

create function taskwarden.schedule_reaper(interval_seconds integer default null)
returns text
language plpgsql
-- Not SECURITY DEFINER (no function is): pg_cron's schema belongs to whoever enabled it, so
-- rescheduling is for the database owner (SQL editor, psql, a migration).
set search_path = ''
as $$
declare
  v_version text;
  v_seconds integer;
  v_schedule text;
  v_owner text;
begin
  if interval_seconds is not null then
    perform taskwarden._check_range('interval_seconds', interval_seconds, 1, 59);
    update taskwarden.settings set value = to_jsonb(interval_seconds) where key = 'reap_interval_seconds';
  end if;
  select e.extversion into v_version from pg_catalog.pg_extension e where e.extname = 'pg_cron';
  if v_version is null then
    raise exception 'pg_cron is not enabled in this database'
      using errcode = 'TW004',
            hint = 'Enable pg_cron (in the database cron.database_name names), or run reap() from the edge function or `taskwarden reap --loop`.';
  end if;
  -- pg_cron keys jobs by (name, user): scheduled by anyone else this would add a second job.
  select pg_catalog.pg_get_userbyid(p.proowner) into v_owner from pg_catalog.pg_proc p
  where p.oid = 'taskwarden.schedule_reaper(integer)'::pg_catalog.regprocedure;
  if current_user <> v_owner then
    raise exception 'only % (who owns the taskwarden-reap job) can reschedule it', v_owner
      using errcode = '42501', hint = format('Run it as %s (the SQL editor, psql), or update the reap_interval_seconds setting and ask them to.', v_owner);
  end if;
  v_seconds := taskwarden._setting_num('reap_interval_seconds')::integer;
  -- Seconds schedules ('N seconds', N in 1..59) arrived in pg_cron 1.5.
  v_schedule := case when string_to_array(v_version, '.')::int[] >= array[1, 5] then format('%s seconds', v_seconds)
                     else '* * * * *' end;
  perform cron.schedule('taskwarden-reap', v_schedule, $job$select taskwarden.reap('pg_cron')$job$);
  return v_schedule;
end
$$;
comment on function taskwarden.schedule_reaper(integer) is 'Sets reap_interval_seconds (when given) and (re)schedules the taskwarden-reap pg_cron job; returns its schedule (every minute on pg_cron 1.4).';

do $cron$
declare
  v_schedule text;
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
  v_schedule := taskwarden.schedule_reaper();
  raise notice 'taskwarden: pg_cron runs taskwarden.reap() on the schedule ''%''', v_schedule;
end
$cron$;
