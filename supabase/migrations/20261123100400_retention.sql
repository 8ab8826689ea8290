-- taskwarden: retention. Nothing would ever be deleted otherwise: a finished task costs about
-- 1 kB with its events, kept forever, and every scan that is not bounded grows with the age of
-- the installation. prune() is River's job cleaner in SQL: finished tasks (with their events),
-- old reaper_runs and stopped or long-dead worker rows go after configurable periods, in bounded
-- batches of rows locked by primary key. A function call is one transaction and cannot commit
-- between batches, so one call is bounded (prune_batch rows per batch, prune_max_batches
-- batches per kind) and the reaper's schedule repeats it (one batch per kind per reap, so a
-- backlog never holds the reaper up for long); `taskwarden prune` calls it until a call comes
-- back short. Nothing queued or running, and no event of such a task, is deleted.
--
-- Defaults, beside the peers': River's cleaner keeps completed and cancelled jobs 24 h and
-- discarded (failed) ones 7 days; pg-boss 10 moves completed and failed jobs to its archive after
-- 12 h and deletes them from there after 7 days. taskwarden keeps completed and cancelled tasks
-- 24 h (River's figure: long enough to look at yesterday's work, short enough that a busy queue
-- stays small) and failed ones 7 days (someone has to read a failure: a week covers a weekend).

insert into taskwarden.settings (key, value, value_type, min_value, max_value, description) values
  ('finished_task_retention_hours', '24', 'number', 0.01, 87600,
   'Completed and cancelled tasks (and their events) are deleted this long after they finished (River: 24 h).'),
  ('failed_task_retention_hours', '168', 'number', 0.01, 87600,
   'Failed tasks (and their events) are deleted this long after they failed (River: 7 days for discarded jobs).'),
  ('prune_batch', '1000', 'integer', 1, 10000,
   'Rows prune() deletes per batch (tasks of one status, reaper_runs), each batch by primary key.'),
  ('prune_max_batches', '10', 'integer', 1, 1000,
   'Batches per kind in one prune() call; a larger backlog drains over the next calls.'),
  -- Not retention, but the same concern (cost flat with age): how much of the running set one
  -- reap reads for expired leases (see _lease_scan in the reaper migration).
  ('reap_lease_scan_rows', '2000', 'integer', 100, 10000000,
   'Running rows one reap() reads for expired leases (a slice, wrapping around); at least the running count makes every reap see all of them.')
on conflict (key) do nothing;

create function taskwarden._prune(p_dry_run boolean, p_max_batches integer default null)
returns jsonb
language plpgsql
set search_path = ''
-- The status is a variable: a generic plan could not prove it matches tasks_finished_idx's
-- predicate and would read the whole table. Planned with the value, every call.
set plan_cache_mode = 'force_custom_plan'
as $$
declare
  v_started timestamptz := clock_timestamp();
  v_batch integer := taskwarden._setting_num('prune_batch')::integer;
  v_max integer := coalesce(p_max_batches, taskwarden._setting_num('prune_max_batches')::integer);
  v_done_before timestamptz := now() - make_interval(secs => taskwarden._setting_num('finished_task_retention_hours') * 3600);
  v_failed_before timestamptz := now() - make_interval(secs => taskwarden._setting_num('failed_task_retention_hours') * 3600);
  v_runs_before timestamptz := now() - make_interval(days => taskwarden._setting_num('reaper_runs_retention_days')::integer);
  v_worker_minutes integer := taskwarden._setting_num('worker_retention_minutes')::integer;
  v_status text;
  v_ids bigint[];
  v_n integer;
  v_tasks jsonb := '{}'::jsonb;
  v_events bigint := 0;
  v_reaper_runs bigint := 0;
  v_workers integer := 0;
  v_more boolean := false;
begin
  foreach v_status in array array['completed', 'cancelled', 'failed'] loop
    v_n := 0;
    for v_i in 1 .. v_max loop
      -- Oldest first through tasks_finished_idx; a row some other transaction holds (an
      -- operator's requeue_task of a failed task) is skipped, never waited for.
      select array_agg(s.id) into v_ids from (
        select t.id from taskwarden.tasks t
        where t.status = v_status
          and t.completed_at < case when v_status = 'failed' then v_failed_before else v_done_before end
        order by t.completed_at
        limit case when p_dry_run then v_batch * v_max else v_batch end
        for update skip locked
      ) s;
      exit when v_ids is null;
      if p_dry_run then
        v_n := cardinality(v_ids);
        v_events := v_events + (select count(*) from taskwarden.task_events e where e.task_id = any (v_ids));
        v_more := v_more or v_n = v_batch * v_max;
        exit;
      end if;
      -- The ids are finished rows locked above: their events go first, by task id.
      with gone as (
        delete from taskwarden.task_events e where e.task_id = any (v_ids) returning 1
      )
      select v_events + count(*) into v_events from gone;
      with gone as (
        delete from taskwarden.tasks t where t.id = any (v_ids) and t.status = v_status returning 1
      )
      select v_n + count(*) into v_n from gone;
      if cardinality(v_ids) < v_batch then
        exit;
      end if;
      v_more := v_more or v_i = v_max;
    end loop;
    v_tasks := v_tasks || jsonb_build_object(v_status, v_n);
  end loop;

  for v_i in 1 .. case when p_dry_run then 1 else v_max end loop
    if p_dry_run then
      select count(*) into v_n from (
        select from taskwarden.reaper_runs r where r.started_at < v_runs_before limit v_batch * v_max
      ) s;
      v_reaper_runs := v_n;
      v_more := v_more or v_n = v_batch * v_max;
      exit;
    end if;
    with victims as (
      select r.id from taskwarden.reaper_runs r where r.started_at < v_runs_before
      order by r.started_at limit v_batch for update skip locked
    ), gone as (
      delete from taskwarden.reaper_runs r using victims v where r.id = v.id returning 1
    )
    select count(*) into v_n from gone;
    v_reaper_runs := v_reaper_runs + v_n;
    exit when v_n < v_batch;
    v_more := v_more or v_i = v_max;
  end loop;

  -- Worker rows: stopped (or silent) for worker_retention_minutes and holding no running task
  -- (a dead worker's row is the evidence the reaper needs while it holds tasks). Few rows.
  if p_dry_run then
    select count(*) into v_workers
    from taskwarden.worker_heartbeats w
    where coalesce(w.stopped_at, w.last_heartbeat_at) < now() - make_interval(mins => v_worker_minutes)
      and w.last_heartbeat_at < now() - make_interval(mins => v_worker_minutes)
      and not exists (select from taskwarden.tasks t where t.status = 'running' and t.owner_id = w.worker_id);
  else
    v_workers := taskwarden.cleanup_stale_workers(v_worker_minutes);
  end if;

  return jsonb_build_object(
    'dry_run', p_dry_run,
    'tasks', v_tasks,
    'task_events', v_events,
    'reaper_runs', v_reaper_runs,
    'workers', v_workers,
    'more', v_more,
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started) * 1000)::numeric, 3));
end
$$;
comment on function taskwarden._prune(boolean, integer) is 'Retention, one bounded pass: finished tasks with their events, old reaper_runs, stopped worker rows; returns the counts (reap() calls it).';

create function taskwarden.prune(dry_run boolean default false)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_result jsonb;
  v_id bigint;
begin
  if prune.dry_run is null then
    raise exception 'dry_run must not be null' using errcode = 'TW002', hint = 'Pass true to preview, false to act.';
  end if;
  v_result := taskwarden._prune(prune.dry_run);
  insert into taskwarden.reaper_runs (source, dry_run, started_at, finished_at, duration_ms, workers_deleted, summary)
  values ('prune', prune.dry_run, now(), clock_timestamp(), (v_result ->> 'duration_ms')::numeric,
          (v_result ->> 'workers')::integer, jsonb_build_object('prune', v_result))
  returning id into v_id;
  return v_result || jsonb_build_object('reaper_run_id', v_id);
end
$$;
comment on function taskwarden.prune(boolean) is 'Retention: deletes finished tasks and their events, old reaper_runs and stopped worker rows after their periods, in bounded batches; returns counts (more = call again).';

revoke all on function taskwarden._prune(boolean, integer) from public, anon, authenticated;
revoke all on function taskwarden.prune(boolean) from public, anon, authenticated;
grant execute on function taskwarden._prune(boolean, integer) to service_role;
grant execute on function taskwarden.prune(boolean) to service_role;
