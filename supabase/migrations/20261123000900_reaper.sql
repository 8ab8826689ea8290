-- taskwarden: the reaper. reap() takes back every running task whose lease expired, whose
-- owner stopped beating, that ran past its timeout or went stale; fails stuck runs; records
-- what it did in reaper_runs. One reap at a time (advisory lock); every update re-checks the
-- row under its lock, so two reapers never count an attempt twice.

create function taskwarden.cleanup_stale_running_tasks(
  stale_minutes numeric default null,
  max_attempts integer default null,
  batch_size integer default null,
  dry_run boolean default false
)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_minutes numeric := coalesce(cleanup_stale_running_tasks.stale_minutes, taskwarden._setting_num('task_stale_seconds') / 60);
  v_budget integer := coalesce(cleanup_stale_running_tasks.max_attempts, taskwarden._setting_num('max_requeue')::integer);
  v_batch integer := coalesce(cleanup_stale_running_tasks.batch_size, taskwarden._setting_num('reap_batch')::integer);
  v_ids bigint[];
begin
  perform taskwarden._check_range('stale_minutes', v_minutes, 0.01, 525600);
  perform taskwarden._check_range('max_attempts', v_budget, 1, 1000);
  perform taskwarden._check_range('batch_size', v_batch, 1, 10000);
  if cleanup_stale_running_tasks.dry_run is null then
    raise exception 'dry_run must not be null' using errcode = 'TW002', hint = 'Pass true to preview, false to act.';
  end if;
  -- Staleness is for rows without a lease (legacy rows, whose last sign of life is updated_at).
  -- A leased row is taken back only by its lease's expiry, its owner's death or its timeout:
  -- a task claimed for 3600 s is not stale after task_stale_seconds.
  select array_agg(s.id) into v_ids from (
    select t.id from taskwarden.tasks t
    where t.status = 'running'
      and t.lease_expires_at is null
      and coalesce(t.last_heartbeat, t.updated_at)
          < now() - make_interval(secs => v_minutes * 60)
    order by coalesce(t.last_heartbeat, t.updated_at), t.id
    limit v_batch
    for update skip locked
  ) s;
  return query select * from taskwarden._requeue_or_fail(coalesce(v_ids, '{}'), 'stale',
    format('no heartbeat for more than %s minutes', trim_scale(v_minutes)),
    cleanup_stale_running_tasks.dry_run, v_budget);
end
$$;
comment on function taskwarden.cleanup_stale_running_tasks(numeric, integer, integer, boolean) is 'Emergency cleanup: requeues stale running tasks, or fails those past max_attempts; one row per action. Omitted thresholds are the settings task_stale_seconds, max_requeue and reap_batch.';

-- The lease step cannot use an index on lease_expires_at (renewals must stay HOT updates), and
-- reading every running row each reap costs tens of ms at 10^5 of them. So each reap reads a
-- bounded slice of the running rows (reap_lease_scan_rows, in id order, wrapping around) and
-- remembers where it stopped (in its reaper_runs summary). While fewer rows are running than the
-- slice, every reap sees all of them; beyond it, an expired lease is found within
-- running / reap_lease_scan_rows reaps. A dead worker's tasks do not wait for that: the
-- worker_dead step finds them through the worker rows.
create function taskwarden._lease_scan(
  p_after bigint, p_rows integer, out expired bigint[], out unleased boolean, out next_after bigint, out scanned integer
)
language plpgsql stable
set search_path = ''
as $$
begin
  -- plpgsql, not sql: its plan is cached for the session (a sql function is planned every call).
  -- Only the expired rows (few) are sorted; where to go on is the largest id of the last part read.
  select coalesce(array_agg(s.id order by s.part, s.id) filter (where s.lease_expires_at < now()), '{}'),
         coalesce(bool_or(s.lease_expires_at is null), false),
         coalesce(max(s.id) filter (where s.part = 2), max(s.id) filter (where s.part = 1), p_after),
         count(*)::integer
  into expired, unleased, next_after, scanned
  from (
    select a.id, a.lease_expires_at, a.part
    from (
      (select t.id, t.lease_expires_at, 1 as part from taskwarden.tasks t
       where t.status = 'running' and t.id > p_after order by t.id limit p_rows)
      union all
      (select t.id, t.lease_expires_at, 2 as part from taskwarden.tasks t
       where t.status = 'running' and t.id <= p_after order by t.id limit p_rows)
    ) a
    limit p_rows
  ) s;
end
$$;
comment on function taskwarden._lease_scan(bigint, integer) is 'Reaper: reads up to p_rows running rows after id p_after (wrapping around); returns the expired ones, whether any has no lease, and where to go on.';

create function taskwarden._reap_expired_leases(p_ids bigint[], p_dry_run boolean)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_ids bigint[];
begin
  if coalesce(cardinality(p_ids), 0) = 0 then
    return;
  end if;
  -- The candidates come from a scan without locks: the expiry is checked again under the lock,
  -- so a renewal that landed in between wins.
  select array_agg(s.id) into v_ids from (
    select t.id from taskwarden.tasks t
    where t.id = any (p_ids) and t.status = 'running' and t.lease_expires_at < now()
    order by t.id
    for update skip locked
  ) s;
  return query select * from taskwarden._requeue_or_fail(coalesce(v_ids, '{}'), 'lease_expired',
    'lease expired before the task was completed or renewed', p_dry_run);
end
$$;
comment on function taskwarden._reap_expired_leases(bigint[], boolean) is 'Reaper step: takes back the given running tasks whose lease expired (re-checked under the row lock).';

create function taskwarden._reap_timed_out(p_batch integer, p_dry_run boolean)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
-- The recursive walk's estimate crosses jit_above_cost; compiling it would cost 30 ms for nothing.
set jit = off
as $$
declare
  v_timeouts integer[];
  v_ids bigint[];
begin
  -- Liveness is not enough: a task whose worker still beats is bounded by its own timeout.
  -- The distinct timeouts in use are few: walk them through the index (a loose index scan),
  -- then read only the rows started before now() - timeout for each.
  with recursive d (ts) as (
    select min(t.timeout_seconds) from taskwarden.tasks t
    where t.status = 'running' and t.timeout_seconds is not null
    union all
    select (select min(t.timeout_seconds) from taskwarden.tasks t
            where t.status = 'running' and t.timeout_seconds is not null and t.timeout_seconds > d.ts)
    from d where d.ts is not null
  )
  select array_agg(d.ts) into v_timeouts from d where d.ts is not null;
  if v_timeouts is null then
    return;
  end if;
  select array_agg(s.id) into v_ids from (
    select t.id from unnest(v_timeouts) u (ts)
    join taskwarden.tasks t
      on t.status = 'running' and t.timeout_seconds is not null and t.timeout_seconds = u.ts
     and t.started_at < now() - make_interval(secs => u.ts)
    order by t.id
    limit p_batch
    for update of t skip locked
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
-- Every statement here reads a few rows through an index: JIT compilation would only add time.
set jit = off
as $$
declare
  v_source text := reap.source;
  v_dry boolean := reap.dry_run;
  v_started timestamptz := clock_timestamp();
  v_batch integer := taskwarden._setting_num('reap_batch')::integer;
  v_rounds integer := taskwarden._setting_num('reap_max_rounds')::integer;
  v_dead_after integer := taskwarden._setting_num('dead_worker_seconds')::integer;
  v_steps constant text[] := array['lease_expired', 'worker_dead', 'timed_out', 'stale'];
  v_step text;
  v_round integer := 0;
  v_full boolean;
  v_n_requeued integer;
  v_n_failed integer;
  v_counts jsonb := '{}'::jsonb;
  v_after bigint;
  v_scan record;
  v_taken integer := 0;
  v_next_after bigint;
  v_runs integer := 0;
  v_prune jsonb;
  v_activity jsonb;
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

  -- Where the last reap's lease scan stopped (the newest summary that has it: one index probe).
  select (r.summary ->> 'lease_scan_after')::bigint into v_after
  from taskwarden.reaper_runs r
  where not r.skipped and not r.dry_run and r.summary ? 'lease_scan_after'
  order by r.id desc
  limit 1;
  v_scan := taskwarden._lease_scan(coalesce(v_after, 0),
                                   taskwarden._setting_num('reap_lease_scan_rows')::integer);

  -- Rounds of reap_batch rows per step, while a step still fills its batch: a mass death of
  -- workers drains in one call instead of one batch a minute. A dry run sees one round.
  for v_i in 1 .. case when v_dry then 1 else v_rounds end loop
    v_round := v_i;
    v_full := false;
    foreach v_step in array v_steps loop
      select count(*) filter (where r.action in ('requeued', 'would_requeue')),
             count(*) filter (where r.action in ('failed', 'would_fail'))
      into v_n_requeued, v_n_failed
      from (
        -- Only the step named runs: the others are cut by a one-time filter, never called.
        select * from taskwarden._reap_expired_leases(v_scan.expired[v_taken + 1 : v_taken + v_batch], v_dry)
        where v_step = 'lease_expired'
        union all
        select * from taskwarden._reap_dead_workers(v_dead_after, v_batch, v_dry) where v_step = 'worker_dead'
        union all
        select * from taskwarden._reap_timed_out(v_batch, v_dry) where v_step = 'timed_out'
        union all
        -- Staleness is for rows without a lease; the scan says whether it saw any.
        select * from taskwarden.cleanup_stale_running_tasks(null, null, v_batch, v_dry)
        where v_step = 'stale' and v_scan.unleased
      ) r;
      if v_step = 'lease_expired' then
        v_taken := least(v_taken + v_batch, cardinality(v_scan.expired));
        v_full := v_full or v_taken < cardinality(v_scan.expired);
      else
        v_full := v_full or v_n_requeued + v_n_failed >= v_batch;
      end if;
      v_counts := v_counts || jsonb_build_object(v_step, jsonb_build_object(
        'requeued', coalesce((v_counts -> v_step ->> 'requeued')::integer, 0) + v_n_requeued,
        'failed', coalesce((v_counts -> v_step ->> 'failed')::integer, 0) + v_n_failed));
    end loop;
    exit when not v_full;
  end loop;
  -- Expired leases this call had no round left for are found again by the next scan.
  v_next_after := case when v_taken >= cardinality(v_scan.expired) then v_scan.next_after
                       when v_taken = 0 then coalesce(v_after, 0)
                       else v_scan.expired[v_taken] end;

  select count(*) into v_runs
  from taskwarden.cleanup_stale_runs(null, v_dry);

  -- One batch per kind: a backlog (an upgrade, a long outage) drains over the next reaps instead
  -- of holding this one, and the advisory lock, for seconds; `taskwarden prune` drains it faster.
  v_prune := taskwarden._prune(v_dry, 1);
  -- The dashboard's activity chart reads these roll-ups instead of every row of its window.
  v_activity := taskwarden._roll_up_task_activity(v_dry);

  v_summary := jsonb_build_object(
    'source', v_source, 'dry_run', v_dry, 'skipped', false,
    'lease_expired', v_counts -> 'lease_expired', 'worker_dead', v_counts -> 'worker_dead',
    'timed_out', v_counts -> 'timed_out', 'stale', v_counts -> 'stale', 'rounds', v_round,
    'stale_runs_failed', v_runs, 'workers_deleted', (v_prune ->> 'workers')::integer,
    'prune', v_prune, 'activity', v_activity,
    'lease_scan', jsonb_build_object('scanned', v_scan.scanned, 'expired_seen', cardinality(v_scan.expired)),
    'lease_scan_after', v_next_after,
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started) * 1000)::numeric, 3));

  insert into taskwarden.reaper_runs
    (source, dry_run, skipped, started_at, finished_at, duration_ms, requeued, failed,
     stale_runs_failed, workers_deleted, summary)
  select v_source, v_dry, false, v_started, clock_timestamp(), (v_summary ->> 'duration_ms')::numeric,
         sum((c.value ->> 'requeued')::integer), sum((c.value ->> 'failed')::integer),
         v_runs, (v_prune ->> 'workers')::integer, v_summary
  from jsonb_each(v_counts) c
  returning id into v_id;

  return v_summary || jsonb_build_object('reaper_run_id', v_id);
end
$$;
comment on function taskwarden.reap(text, boolean) is 'All maintenance in one concurrency-safe call: expired leases, dead workers, timeouts, stale tasks and runs, then retention (prune) and the activity roll-ups; logged in reaper_runs.';
