-- taskwarden: views for the SQL editor, the dashboard and alerts. All security_invoker, so they
-- never widen what the caller may read.

create view taskwarden.v_active_workers with (security_invoker = true) as
select w.worker_id, w.worker_type, w.status, w.current_run_id, w.current_task, w.run_filter_id,
       w.host, w.pid, w.started_at, w.last_heartbeat_at, w.stop_requested_at,
       round(extract(epoch from now() - w.last_heartbeat_at)::numeric, 1) as seconds_since_heartbeat,
       (select count(*) from taskwarden.tasks t where t.status = 'running' and t.owner_id = w.worker_id) as held_tasks
from taskwarden.worker_heartbeats w
where w.status <> 'stopped' and w.last_heartbeat_at >= now() - taskwarden._dead_after();
comment on view taskwarden.v_active_workers is 'Workers that are not stopped and beat within dead_worker_seconds.';

create view taskwarden.v_dead_workers with (security_invoker = true) as
select w.worker_id, w.worker_type, w.status, w.current_run_id, w.current_task, w.run_filter_id,
       w.host, w.pid, w.started_at, w.last_heartbeat_at,
       round(extract(epoch from now() - w.last_heartbeat_at)::numeric, 1) as seconds_since_heartbeat,
       (select count(*) from taskwarden.tasks t where t.status = 'running' and t.owner_id = w.worker_id) as held_tasks
from taskwarden.worker_heartbeats w
where w.status <> 'stopped' and w.last_heartbeat_at < now() - taskwarden._dead_after();
comment on view taskwarden.v_dead_workers is 'Workers that did not stop cleanly and have not beaten within dead_worker_seconds.';

create view taskwarden.v_stale_running_tasks with (security_invoker = true) as
select t.id as task_id, t.task_type, t.run_id, t.owner_id, t.attempts, t.max_attempts, t.started_at,
       t.lease_expires_at, coalesce(t.last_heartbeat, t.updated_at) as last_seen_at,
       round(extract(epoch from now() - coalesce(t.last_heartbeat, t.updated_at))::numeric, 1) as seconds_since_heartbeat,
       case
         when t.lease_expires_at < now() then 'lease_expired'
         when w.last_heartbeat_at < now() - taskwarden._dead_after() then 'worker_dead'
         when t.timeout_seconds is not null and t.started_at < now() - make_interval(secs => t.timeout_seconds) then 'timeout'
         else 'stale'
       end as stale_reason
from taskwarden.tasks t
left join taskwarden.worker_heartbeats w on w.worker_id = t.owner_id
where t.status = 'running'
  and (t.lease_expires_at < now()
       or w.last_heartbeat_at < now() - taskwarden._dead_after()
       or (t.timeout_seconds is not null and t.started_at < now() - make_interval(secs => t.timeout_seconds))
       or coalesce(t.last_heartbeat, t.updated_at)
          < now() - make_interval(secs => taskwarden._setting_num('task_stale_seconds', 900)));
comment on view taskwarden.v_stale_running_tasks is 'Running tasks the next reap() will take back, and why.';

create view taskwarden.v_task_status_counts with (security_invoker = true) as
select t.task_type, t.status, count(*) as tasks, min(t.created_at) as oldest_created_at
from taskwarden.tasks t
group by t.task_type, t.status;
comment on view taskwarden.v_task_status_counts is 'Number of tasks per type and status.';

create view taskwarden.v_run_progress with (security_invoker = true) as
select r.id as run_id, r.name, r.status, r.created_at, r.started_at, r.completed_at, r.error,
       count(t.id) as tasks_total,
       count(t.id) filter (where t.status = 'queued') as tasks_queued,
       count(t.id) filter (where t.status = 'running') as tasks_running,
       count(t.id) filter (where t.status = 'completed') as tasks_completed,
       count(t.id) filter (where t.status = 'failed') as tasks_failed,
       count(t.id) filter (where t.status = 'cancelled') as tasks_cancelled,
       round(100.0 * count(t.id) filter (where t.status in ('completed', 'failed', 'cancelled'))
             / nullif(count(t.id), 0), 1) as percent_done,
       max(greatest(t.updated_at, t.last_heartbeat)) as last_progress_at
from taskwarden.runs r
left join taskwarden.tasks t on t.run_id = r.id
group by r.id;
comment on view taskwarden.v_run_progress is 'Per run: task counts by status, percent done, last progress.';
