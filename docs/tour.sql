-- taskwarden in one minute. Run it step by step in the Supabase SQL editor (select a statement,
-- then Run), or all at once with `psql "$DATABASE_URL" -f docs/tour.sql`. Every step is one
-- statement with no client-side variables: later steps find what earlier ones made by name.
-- It touches only its own rows: runs named 'tour: …', tasks of type 'tour_research', and the
-- worker 'tour-worker#boot1'. The last statement fails on purpose (TW001).
--
-- Where pg_cron runs the reaper every few seconds (hosted Supabase), it may take the dead
-- worker's tasks back before you do in step 7: step 8 then shows that it already happened.

-- 1. A run, and three tasks in it.
select id, name, status from taskwarden.create_run('tour: lead list');

select id, task_type, status, payload ->> 'domain' as domain
from taskwarden.enqueue_tasks(
  'tour_research',
  array['{"domain": "example.com"}', '{"domain": "example.org"}', '{"domain": "example.net"}']::jsonb[],
  run_id => (select id from taskwarden.runs where name = 'tour: lead list' order by created_at desc limit 1));

-- 2. A worker claims two of them under a 10-minute lease. Each claim has its own lease_token:
--    only that token can renew, complete, fail or release the task.
select id, status, owner_id, attempts, lease_expires_at, lease_token
from taskwarden.claim_tasks(
  worker_id => 'tour-worker#boot1', task_types => array['tour_research'], batch_size => 2,
  run_id => (select id from taskwarden.runs where name = 'tour: lead list' order by created_at desc limit 1));

-- 3. It beats: one call registers the worker, renews the leases it holds (by task id and token)
--    and answers with directives (stop? which claims are no longer yours?).
select stop_requested, renewed_task_ids, lost_task_ids, lease_expires_at, worker_expires_at
from taskwarden.upsert_worker_heartbeat(
  worker_id => 'tour-worker#boot1', worker_type => 'tour_research', status => 'processing',
  held_task_ids => array(select id from taskwarden.tasks
                         where owner_id = 'tour-worker#boot1' and status = 'running' order by id),
  held_lease_tokens => array(select lease_token from taskwarden.tasks
                             where owner_id = 'tour-worker#boot1' and status = 'running' order by id));

-- 4. The worker is SIGKILLed. Rather than wait out dead_worker_seconds (300 s by default),
--    pretend its last heartbeat was 10 minutes ago.
update taskwarden.worker_heartbeats
set last_heartbeat_at = now() - interval '10 minutes'
where worker_id = 'tour-worker#boot1';

-- 5. Who is dead, since when, holding what?
select worker_id, status, seconds_since_heartbeat, held_tasks from taskwarden.v_dead_workers;

-- 6. What will the reaper take back, and why? First the view, then the reaper's own dry run.
select task_id, owner_id, attempts, stale_reason from taskwarden.v_stale_running_tasks;

select r -> 'worker_dead' as worker_dead, r -> 'lease_expired' as lease_expired, r -> 'dry_run' as dry_run
from taskwarden.reap(source => 'tour', dry_run => true) as r;

-- 7. Reap for real (pg_cron does this every few seconds): the tasks go back to the queue with
--    a backoff, the crash counted, the error history kept.
select r -> 'worker_dead' as worker_dead, r -> 'reaper_run_id' as reaper_run_id
from taskwarden.reap(source => 'tour') as r;

-- 8. The tasks after the reap.
select id, status, owner_id, attempts, crash_count, run_at > now() as backing_off, last_error
from taskwarden.tasks
where run_id = (select id from taskwarden.runs where name = 'tour: lead list' order by created_at desc limit 1)
order by id;

-- 9. A run stuck in `running` for a day with no task progress. Make one (started 25 hours ago).
select id, name, status from taskwarden.create_run('tour: nightly import');

select id, name, status
from taskwarden.start_run((select id from taskwarden.runs where name = 'tour: nightly import' order by created_at desc limit 1));

update taskwarden.runs
set started_at = now() - interval '25 hours'
where id = (select id from taskwarden.runs where name = 'tour: nightly import' order by created_at desc limit 1);

-- 10. Preview the stale runs, then fail them. A terminal run always has completed_at.
select run_id, name, stale_for_hours, action from taskwarden.cleanup_stale_runs(stale_hours => 24);

select run_id, name, status, action from taskwarden.cleanup_stale_runs(stale_hours => 24, dry_run => false);

select name, status, error, completed_at is not null as has_completed_at
from taskwarden.runs
where name = 'tour: nightly import'
order by created_at desc
limit 1;

-- 11. Tidy up the dead worker's row (the reaper does this after worker_retention_minutes).
select taskwarden.cleanup_stale_workers(stale_minutes => 5) as worker_rows_deleted;

-- 12. The dead worker comes back and reports a result with the lease token it held (the reaper
--     recorded the claim it ended). The fence refuses it: ERROR TW001 lease lost.
-- expect-error: TW001
select taskwarden.complete_task(e.task_id, (e.details ->> 'lease_token')::uuid, '{"zombie": true}')
from taskwarden.task_events e
where e.worker_id = 'tour-worker#boot1' and e.event = 'requeued' and e.actor = 'reaper'
order by e.id desc
limit 1;
