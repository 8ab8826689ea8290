-- taskwarden: views for the SQL editor, the dashboard and alerts. All security_invoker, so they
-- never widen what the caller may read.

-- What a worker holds, as the views below and the health summary show it: its running tasks,
-- counted through the owner index. list_workers counts every worker's in one pass instead.
create function taskwarden._held_tasks(p_worker_id text)
returns bigint
language sql stable
set search_path = ''
as $$
  select count(*) from taskwarden.tasks t where t.status = 'running' and t.owner_id = p_worker_id
$$;
comment on function taskwarden._held_tasks(text) is 'The number of running tasks a worker owns.';

-- The dead-worker threshold is read once per query (a materialized CTE): a stable function in a
-- WHERE clause is called once per row.
create view taskwarden.v_active_workers with (security_invoker = true) as
with cfg as materialized (select now() - taskwarden._dead_after() as dead_before)
select w.worker_id, w.worker_type, w.status, w.current_run_id, w.current_task, w.run_filter_id,
       w.host, w.pid, w.started_at, w.last_heartbeat_at, w.stop_requested_at,
       round(extract(epoch from now() - w.last_heartbeat_at)::numeric, 1) as seconds_since_heartbeat,
       taskwarden._held_tasks(w.worker_id) as held_tasks
from taskwarden.worker_heartbeats w, cfg
where w.status <> 'stopped' and w.last_heartbeat_at >= cfg.dead_before;
comment on view taskwarden.v_active_workers is 'Workers that are not stopped and beat within dead_worker_seconds.';

create view taskwarden.v_dead_workers with (security_invoker = true) as
with cfg as materialized (select now() - taskwarden._dead_after() as dead_before)
select w.worker_id, w.worker_type, w.status, w.current_run_id, w.current_task, w.run_filter_id,
       w.host, w.pid, w.started_at, w.last_heartbeat_at,
       round(extract(epoch from now() - w.last_heartbeat_at)::numeric, 1) as seconds_since_heartbeat,
       taskwarden._held_tasks(w.worker_id) as held_tasks
from taskwarden.worker_heartbeats w, cfg
where w.status <> 'stopped' and w.last_heartbeat_at < cfg.dead_before;
comment on view taskwarden.v_dead_workers is 'Workers that did not stop cleanly and have not beaten within dead_worker_seconds.';

-- The settings are read once per query (a materialized CTE), not once per row: per-row lookups
-- cost seconds over many running rows. A row with a lease is listed only when the lease expired,
-- its owner is dead or it ran past its timeout; staleness is for rows without a lease.
create view taskwarden.v_stale_running_tasks with (security_invoker = true) as
with cfg as materialized (
  select now() - taskwarden._dead_after() as dead_before,
         now() - make_interval(secs => taskwarden._setting_num('task_stale_seconds')) as stale_before
)
select t.id as task_id, t.task_type, t.run_id, t.owner_id, t.attempts, t.max_attempts, t.started_at,
       t.lease_expires_at, coalesce(t.last_heartbeat, t.updated_at) as last_seen_at,
       round(extract(epoch from now() - coalesce(t.last_heartbeat, t.updated_at))::numeric, 1) as seconds_since_heartbeat,
       case
         when t.lease_expires_at < now() then 'lease_expired'
         when w.last_heartbeat_at < cfg.dead_before then 'worker_dead'
         when t.timeout_seconds is not null and t.started_at < now() - make_interval(secs => t.timeout_seconds) then 'timeout'
         else 'stale'
       end as stale_reason
from taskwarden.tasks t
cross join cfg
left join taskwarden.worker_heartbeats w on w.worker_id = t.owner_id
where t.status = 'running'
  and (t.lease_expires_at < now()
       or w.last_heartbeat_at < cfg.dead_before
       or (t.timeout_seconds is not null and t.started_at < now() - make_interval(secs => t.timeout_seconds))
       or (t.lease_expires_at is null and coalesce(t.last_heartbeat, t.updated_at) < cfg.stale_before));
comment on view taskwarden.v_stale_running_tasks is 'Running tasks the next reap() will take back, and why.';

create view taskwarden.v_task_status_counts with (security_invoker = true) as
select t.task_type, t.status, count(*) as tasks, min(t.created_at) as oldest_created_at
from taskwarden.tasks t
group by t.task_type, t.status;
comment on view taskwarden.v_task_status_counts is 'Number of tasks per type and status.';

-- The one run-progress aggregate (find_stale_runs reads it too). Per run through the run_id index
-- (a lateral subquery, not a GROUP BY over the join), so a filter on the run's columns, such as
-- find_stale_runs' status = 'running', reaches the runs scan and only those runs are aggregated.
create view taskwarden.v_run_progress with (security_invoker = true) as
select r.id as run_id, r.name, r.status, r.created_at, r.started_at, r.completed_at, r.error,
       p.tasks_total, p.tasks_queued, p.tasks_running, p.tasks_completed, p.tasks_failed, p.tasks_cancelled,
       -- Finished work only: a cancelled task was never done, so a cancelled run does not read 100 %.
       round(100.0 * (p.tasks_completed + p.tasks_failed) / nullif(p.tasks_total, 0), 1) as percent_done,
       p.last_progress_at
from taskwarden.runs r
cross join lateral (
  select count(*) as tasks_total,
         count(*) filter (where t.status = 'queued') as tasks_queued,
         count(*) filter (where t.status = 'running') as tasks_running,
         count(*) filter (where t.status = 'completed') as tasks_completed,
         count(*) filter (where t.status = 'failed') as tasks_failed,
         count(*) filter (where t.status = 'cancelled') as tasks_cancelled,
         max(greatest(t.updated_at, t.last_heartbeat)) as last_progress_at
  from taskwarden.tasks t
  where t.run_id = r.id
) p;
comment on view taskwarden.v_run_progress is 'Per run: task counts by status, percent done (completed or failed, never cancelled), last progress.';

-- The dashboard's and `taskwarden status`'s task counts. v_task_status_counts above is exact and
-- reads every row (seconds at 10^7 rows); this reads at most exact_limit rows per status through
-- the partial indexes and, past that, takes the planner's estimate (reltuples times the status's
-- frequency in pg_stats), naming the statuses it estimated. Each status has its own statement
-- with the literal status, so its partial index is always provably usable.
create function taskwarden.get_task_counts(exact_limit integer default 1000)
returns jsonb
language plpgsql stable
set search_path = ''
set jit = off
as $$
declare
  v_lim integer := get_task_counts.exact_limit;
  v_counts jsonb;
  v_estimated text[] := '{}';
  v_rows numeric;
  v_status text;
  v_n bigint;
  v_stale bigint;
begin
  perform taskwarden._check_range('exact_limit', v_lim, 1, 1000000);
  v_counts := jsonb_build_object(
    'queued', (select count(*) from (select from taskwarden.tasks t where t.status = 'queued' limit v_lim + 1) x),
    'running', (select count(*) from (select from taskwarden.tasks t where t.status = 'running' limit v_lim + 1) x),
    'completed', (select count(*) from (select from taskwarden.tasks t where t.status = 'completed' limit v_lim + 1) x),
    'failed', (select count(*) from (select from taskwarden.tasks t where t.status = 'failed' limit v_lim + 1) x),
    'cancelled', (select count(*) from (select from taskwarden.tasks t where t.status = 'cancelled' limit v_lim + 1) x));
  for v_status in select k from jsonb_each_text(v_counts) e (k, v) where e.v::bigint > v_lim loop
    select greatest(c.reltuples, 0) into v_rows from pg_catalog.pg_class c where c.oid = 'taskwarden.tasks'::regclass;
    select round(v_rows * f.freq) into v_n
    from pg_catalog.pg_stats s
    cross join lateral unnest(s.most_common_vals::text::text[], s.most_common_freqs) f (val, freq)
    where s.schemaname = 'taskwarden' and s.tablename = 'tasks' and s.attname = 'status' and f.val = v_status;
    v_counts := v_counts || jsonb_build_object(v_status, greatest(v_lim + 1, coalesce(v_n, 0)));
    v_estimated := v_estimated || v_status;
  end loop;
  if (v_counts ->> 'running')::bigint <= v_lim then
    select count(*) into v_stale from taskwarden.v_stale_running_tasks;
  else
    -- Too many running rows to classify each: count those of dead workers (through the owner
    -- index); the reaper's lease scan finds the expired leases of live ones.
    select count(*) into v_stale from (
      select from taskwarden.tasks t
      where t.status = 'running'
        and t.owner_id = any (array(select w.worker_id from taskwarden.worker_heartbeats w
                                    where w.last_heartbeat_at < now() - taskwarden._dead_after()))
      limit v_lim + 1) x;
    v_estimated := v_estimated || 'stale_running'::text;
  end if;
  return v_counts || jsonb_build_object('stale_running', v_stale, 'estimated', to_jsonb(v_estimated));
end
$$;
comment on function taskwarden.get_task_counts(integer) is 'Tasks per status for dashboards: exact up to exact_limit per status, the planner''s estimate past it (listed in estimated).';
