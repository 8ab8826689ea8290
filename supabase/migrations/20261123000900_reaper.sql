-- taskwarden: the reaper. reap() takes back every running task whose lease expired, whose
-- owner stopped beating, that ran past its timeout or went stale; fails stuck runs; records
-- what it did in reaper_runs. One reap at a time (advisory lock); every update re-checks the
-- row under its lock, so two reapers never count an attempt twice.

create function taskwarden.cleanup_stale_running_tasks(
  stale_minutes numeric default 15,
  max_attempts integer default 3,
  batch_size integer default 200,
  dry_run boolean default false
)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_ids bigint[];
begin
  perform taskwarden._check_range('stale_minutes', cleanup_stale_running_tasks.stale_minutes, 0.01, 525600);
  perform taskwarden._check_range('max_attempts', cleanup_stale_running_tasks.max_attempts, 1, 1000);
  perform taskwarden._check_range('batch_size', cleanup_stale_running_tasks.batch_size, 1, 10000);
  if cleanup_stale_running_tasks.dry_run is null then
    raise exception 'dry_run must not be null' using errcode = 'TW002', hint = 'Pass true to preview, false to act.';
  end if;
  -- Legacy rows have no lease columns: their last sign of life is updated_at.
  select array_agg(s.id) into v_ids from (
    select t.id from taskwarden.tasks t
    where t.status = 'running'
      and coalesce(t.last_heartbeat, t.updated_at)
          < now() - make_interval(secs => cleanup_stale_running_tasks.stale_minutes * 60)
    order by coalesce(t.last_heartbeat, t.updated_at), t.id
    limit cleanup_stale_running_tasks.batch_size
    for update skip locked
  ) s;
  return query select * from taskwarden._requeue_or_fail(coalesce(v_ids, '{}'), 'stale',
    format('no heartbeat for more than %s minutes', trim_scale(cleanup_stale_running_tasks.stale_minutes)),
    cleanup_stale_running_tasks.dry_run, cleanup_stale_running_tasks.max_attempts);
end
$$;
comment on function taskwarden.cleanup_stale_running_tasks(numeric, integer, integer, boolean) is 'Emergency cleanup: requeues stale running tasks, or fails those past max_attempts; one row per action.';

create function taskwarden._reap_expired_leases(p_batch integer, p_dry_run boolean)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_ids bigint[];
begin
  select array_agg(s.id) into v_ids from (
    select t.id from taskwarden.tasks t
    where t.status = 'running' and t.lease_expires_at < now()
    order by t.lease_expires_at, t.id
    limit p_batch
    for update skip locked
  ) s;
  return query select * from taskwarden._requeue_or_fail(coalesce(v_ids, '{}'), 'lease_expired',
    'lease expired before the task was completed or renewed', p_dry_run);
end
$$;
comment on function taskwarden._reap_expired_leases(integer, boolean) is 'Reaper step: takes back running tasks whose lease expired.';

create function taskwarden._reap_timed_out(p_batch integer, p_dry_run boolean)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_ids bigint[];
begin
  -- Liveness is not enough: a task whose worker still beats is bounded by its own timeout.
  select array_agg(s.id) into v_ids from (
    select t.id from taskwarden.tasks t
    where t.status = 'running' and t.timeout_seconds is not null
      and t.started_at < now() - make_interval(secs => t.timeout_seconds)
    order by t.id
    limit p_batch
    for update skip locked
  ) s;
  return query select * from taskwarden._requeue_or_fail(coalesce(v_ids, '{}'), 'timeout',
    'task ran past its timeout_seconds', p_dry_run);
end
$$;
comment on function taskwarden._reap_timed_out(integer, boolean) is 'Reaper step: takes back running tasks past their timeout_seconds.';

create function taskwarden.reap(source text default 'manual', dry_run boolean default false)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_source text := reap.source;
  v_dry boolean := reap.dry_run;
  v_started timestamptz := clock_timestamp();
  v_batch integer := taskwarden._setting_num('reap_batch', 200)::integer;
  v_rounds integer := taskwarden._setting_num('reap_max_rounds', 10)::integer;
  v_round integer := 0;
  v_i integer;
  v_counts integer[] := array_fill(0, array[8]);
  v_n_requeued integer;
  v_n_failed integer;
  v_full boolean;
  v_lease jsonb; v_dead jsonb; v_timeout jsonb; v_stale jsonb;
  v_runs integer := 0;
  v_workers integer := 0;
  v_summary jsonb;
  v_id bigint;
begin
  perform taskwarden._check_text('source', v_source, 100);
  if v_dry is null then
    raise exception 'dry_run must not be null' using errcode = 'TW002', hint = 'Pass true to preview, false to act.';
  end if;

  if not pg_try_advisory_xact_lock(hashtext('taskwarden.reap')) then
    insert into taskwarden.reaper_runs (source, dry_run, skipped, finished_at, duration_ms, summary)
    values (v_source, v_dry, true, clock_timestamp(), 0,
            jsonb_build_object('reason', 'another reap is in progress'))
    returning id into v_id;
    return jsonb_build_object('reaper_run_id', v_id, 'source', v_source, 'dry_run', v_dry,
                              'skipped', true, 'reason', 'another reap is in progress');
  end if;

  -- Rounds of reap_batch rows per step, while a step still fills its batch: a mass death of
  -- workers drains in one call instead of one batch a minute. A dry run sees one round.
  for v_i in 1 .. case when v_dry then 1 else v_rounds end loop
    v_round := v_i;
    select count(*) filter (where r.action in ('requeued', 'would_requeue')),
           count(*) filter (where r.action in ('failed', 'would_fail'))
    into v_n_requeued, v_n_failed from taskwarden._reap_expired_leases(v_batch, v_dry) r;
    v_counts[1] := v_counts[1] + v_n_requeued; v_counts[2] := v_counts[2] + v_n_failed;
    v_full := v_n_requeued + v_n_failed = v_batch;

    select count(*) filter (where r.action in ('requeued', 'would_requeue')),
           count(*) filter (where r.action in ('failed', 'would_fail'))
    into v_n_requeued, v_n_failed from taskwarden._reap_dead_workers(
      taskwarden._setting_num('dead_worker_seconds', 300)::integer, v_batch, v_dry) r;
    v_counts[3] := v_counts[3] + v_n_requeued; v_counts[4] := v_counts[4] + v_n_failed;
    v_full := v_full or v_n_requeued + v_n_failed = v_batch;

    select count(*) filter (where r.action in ('requeued', 'would_requeue')),
           count(*) filter (where r.action in ('failed', 'would_fail'))
    into v_n_requeued, v_n_failed from taskwarden._reap_timed_out(v_batch, v_dry) r;
    v_counts[5] := v_counts[5] + v_n_requeued; v_counts[6] := v_counts[6] + v_n_failed;
    v_full := v_full or v_n_requeued + v_n_failed = v_batch;

    select count(*) filter (where r.action in ('requeued', 'would_requeue')),
           count(*) filter (where r.action in ('failed', 'would_fail'))
    into v_n_requeued, v_n_failed from taskwarden.cleanup_stale_running_tasks(
      taskwarden._setting_num('task_stale_seconds', 900) / 60,
      taskwarden._setting_num('max_requeue', 3)::integer, v_batch, v_dry) r;
    v_counts[7] := v_counts[7] + v_n_requeued; v_counts[8] := v_counts[8] + v_n_failed;
    v_full := v_full or v_n_requeued + v_n_failed = v_batch;

    exit when not v_full;
  end loop;
  v_lease := jsonb_build_object('requeued', v_counts[1], 'failed', v_counts[2]);
  v_dead := jsonb_build_object('requeued', v_counts[3], 'failed', v_counts[4]);
  v_timeout := jsonb_build_object('requeued', v_counts[5], 'failed', v_counts[6]);
  v_stale := jsonb_build_object('requeued', v_counts[7], 'failed', v_counts[8]);

  select count(*) into v_runs
  from taskwarden.cleanup_stale_runs(taskwarden._setting_num('run_stale_hours', 24), v_dry);

  if not v_dry then
    v_workers := taskwarden.cleanup_stale_workers(taskwarden._setting_num('worker_retention_minutes', 60)::integer);
    delete from taskwarden.reaper_runs
    where started_at < now() - make_interval(days => taskwarden._setting_num('reaper_runs_retention_days', 7)::integer);
    delete from taskwarden.task_events
    where id in (select e.id from taskwarden.task_events e
                 where e.created_at < now() - make_interval(days => taskwarden._setting_num('event_retention_days', 30)::integer)
                 limit 10000);
  end if;

  v_summary := jsonb_build_object(
    'source', v_source, 'dry_run', v_dry, 'skipped', false,
    'lease_expired', v_lease, 'worker_dead', v_dead, 'timed_out', v_timeout, 'stale', v_stale, 'rounds', v_round,
    'stale_runs_failed', v_runs, 'workers_deleted', v_workers,
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started) * 1000)::numeric, 3));

  insert into taskwarden.reaper_runs
    (source, dry_run, skipped, started_at, finished_at, duration_ms, requeued, failed,
     stale_runs_failed, workers_deleted, summary)
  values
    (v_source, v_dry, false, v_started, clock_timestamp(), (v_summary ->> 'duration_ms')::numeric,
     v_counts[1] + v_counts[3] + v_counts[5] + v_counts[7],
     v_counts[2] + v_counts[4] + v_counts[6] + v_counts[8],
     v_runs, v_workers, v_summary)
  returning id into v_id;

  return v_summary || jsonb_build_object('reaper_run_id', v_id);
end
$$;
comment on function taskwarden.reap(text, boolean) is 'All maintenance in one concurrency-safe call: expired leases, dead workers, timeouts, stale tasks and runs, old rows; logged in reaper_runs.';

create function taskwarden.get_task_activity(minutes integer default 60, bucket_seconds integer default 60)
returns table (bucket_start timestamptz, completed bigint, failed bigint, requeued bigint, claimed bigint)
language plpgsql stable
set search_path = ''
as $$
begin
  perform taskwarden._check_range('minutes', get_task_activity.minutes, 1, 10080);
  perform taskwarden._check_range('bucket_seconds', get_task_activity.bucket_seconds, 1, 86400);
  return query
    with buckets as (
      select generate_series(
        to_timestamp(floor(extract(epoch from now() - make_interval(mins => get_task_activity.minutes))
                           / get_task_activity.bucket_seconds) * get_task_activity.bucket_seconds),
        now(), make_interval(secs => get_task_activity.bucket_seconds)) as b
    )
    select bk.b,
           count(e.id) filter (where e.event = 'completed'),
           count(e.id) filter (where e.event in ('failed', 'dead_lettered')),
           count(e.id) filter (where e.event in ('requeued', 'released')),
           count(e.id) filter (where e.event = 'claimed')
    from buckets bk
    left join taskwarden.task_events e
      on e.created_at >= bk.b and e.created_at < bk.b + make_interval(secs => get_task_activity.bucket_seconds)
    group by bk.b
    order by bk.b;
end
$$;
comment on function taskwarden.get_task_activity(integer, integer) is 'Task events per time bucket (completed, failed, requeued, claimed) for charts.';
