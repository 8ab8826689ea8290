-- taskwarden: indexes for the claim and reaper paths. lease_expires_at, last_heartbeat and
-- last_heartbeat_at are deliberately in no index and no predicate, so heartbeats stay HOT.

-- Claims: the queue in claim order.
create index tasks_queued_claim_idx on taskwarden.tasks (priority desc, run_at, id) where status = 'queued';
-- The reaper and heartbeat recovery: the few running rows, by owner (and, per owner, in id
-- order: list_workers shows a worker's first few held tasks without reading all of them).
create index tasks_running_owner_idx on taskwarden.tasks (owner_id, id) where status = 'running';
-- The reaper's lease scan walks the running rows in id order, a bounded slice per reap.
create index tasks_running_id_idx on taskwarden.tasks (id) where status = 'running';
-- Timeouts: per distinct timeout_seconds, the running rows started before now() - timeout.
-- started_at and timeout_seconds change only with a claim, never with a renewal.
create index tasks_running_timeout_idx on taskwarden.tasks (timeout_seconds, started_at)
  where status = 'running' and timeout_seconds is not null;
-- Retention (prune) and the status counts: finished rows by status and age.
create index tasks_finished_idx on taskwarden.tasks (status, completed_at)
  where status in ('completed', 'failed', 'cancelled');
-- Heartbeats find the revoked claims of their own worker (few, usually none) to clear them.
create index tasks_revoked_owner_idx on taskwarden.tasks (revoked_owner_id) where revoked_owner_id is not null;
-- Run progress, run cancellation. Only tasks of a run: a claim and a completion are not HOT
-- (the status changes), so every index a task without a run is in costs each of them one more
-- insert, and `run_id = $1` implies `run_id is not null`, so lookups by run still use it.
create index tasks_run_id_idx on taskwarden.tasks (run_id) where run_id is not null;
-- Stale-run detection looks only at live runs.
create index runs_live_idx on taskwarden.runs (status) where status in ('pending', 'running');

create index task_events_task_id_idx on taskwarden.task_events (task_id);
create index task_events_created_at_idx on taskwarden.task_events (created_at);
-- The reaper's latest actions (list_reaper_actions, on every dashboard refresh): without it,
-- finding the newest 15 walks back through every event since the reaper last acted.
create index task_events_reaper_idx on taskwarden.task_events (id) where actor = 'reaper';
create index reaper_runs_started_at_idx on taskwarden.reaper_runs (started_at);
