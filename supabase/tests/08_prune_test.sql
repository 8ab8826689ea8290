-- Retention: prune() deletes finished tasks (with their events) past their periods, old
-- reaper_runs and stopped worker rows, in bounded batches; it never deletes queued or running
-- work or any event of it. And the reaper's lease scan: a bounded slice that still finds every
-- expired lease within running / reap_lease_scan_rows reaps.
begin;
select no_plan();

-- Fixtures: one task per case, each with an event dated like the task.
create temporary table fx (name text primary key, id bigint);
insert into taskwarden.tasks (task_type, status, attempts, completed_at, created_at, updated_at)
values ('old_completed', 'completed', 1, now() - interval '25 hours', now() - interval '30 days', now()),
       ('new_completed', 'completed', 1, now() - interval '23 hours', now() - interval '30 days', now()),
       ('old_cancelled', 'cancelled', 0, now() - interval '25 hours', now() - interval '30 days', now()),
       ('week_failed',   'failed',    3, now() - interval '6 days',   now() - interval '30 days', now()),
       ('old_failed',    'failed',    3, now() - interval '8 days',   now() - interval '30 days', now()),
       -- A task requeued by an operator after it failed keeps its old completed_at: still live.
       ('old_queued',    'queued',    1, now() - interval '400 days', now() - interval '400 days', now()),
       ('old_running',   'running',   1, null,                        now() - interval '400 days', now());
insert into fx select t.task_type, t.id from taskwarden.tasks t;
update taskwarden.tasks set owner_id = 'w#live', lease_token = gen_random_uuid(),
       lease_expires_at = now() + interval '10 minutes', started_at = now() - interval '1 minute'
where id = (select id from fx where name = 'old_running');
insert into taskwarden.task_events (task_id, event, created_at)
select f.id, e.event, now() - interval '400 days'
from fx f cross join (values ('claimed'), ('failed')) e (event);

-- Worker rows: one stopped long ago, one dead long ago holding a running task, one live.
insert into taskwarden.worker_heartbeats (worker_id, worker_type, status, last_heartbeat_at, stopped_at)
values ('w#stopped', 'crawl', 'stopped', now() - interval '2 hours', now() - interval '2 hours'),
       ('w#dead-holding', 'crawl', 'processing', now() - interval '2 hours', null),
       ('w#live', 'crawl', 'processing', now(), null);
insert into taskwarden.tasks (task_type, status, attempts, owner_id, lease_token, lease_expires_at, started_at)
values ('held_by_dead', 'running', 1, 'w#dead-holding', gen_random_uuid(), now() + interval '1 hour', now());

insert into taskwarden.reaper_runs (source, started_at, finished_at)
values ('old', now() - interval '8 days', now() - interval '8 days'), ('recent', now() - interval '6 days', now() - interval '6 days');

-- A dry run counts and deletes nothing.
select is(taskwarden.prune(dry_run => true) - 'duration_ms' - 'reaper_run_id',
          '{"dry_run": true, "tasks": {"completed": 1, "cancelled": 1, "failed": 1}, "task_events": 6,
            "reaper_runs": 1, "workers": 1, "more": false}'::jsonb,
          'a dry run counts what prune() would delete');
select is((select count(*)::int from taskwarden.tasks), 8, 'and deletes no task');
select is((select count(*)::int from taskwarden.task_events), 14, 'no event');
select is((select count(*)::int from taskwarden.worker_heartbeats), 3, 'no worker row');

select is(taskwarden.prune() - 'duration_ms' - 'reaper_run_id',
          '{"dry_run": false, "tasks": {"completed": 1, "cancelled": 1, "failed": 1}, "task_events": 6,
            "reaper_runs": 1, "workers": 1, "more": false}'::jsonb,
          'prune() deletes finished tasks past their period, their events, old reaper_runs, a stopped worker');
select set_eq($$select task_type from taskwarden.tasks$$,
              array['new_completed', 'week_failed', 'old_queued', 'old_running', 'held_by_dead'],
              'completed 23 h ago and failed 6 days ago are kept (24 h and 7 days by default)');

-- Never deletes live work, nor any event of it, however old.
select set_eq($$select task_type from taskwarden.tasks where status in ('queued', 'running')$$,
              array['old_queued', 'old_running', 'held_by_dead'], 'queued and running tasks are never deleted');
select is((select count(*)::int from taskwarden.task_events e join fx f on f.id = e.task_id
           where f.name in ('old_queued', 'old_running')), 4, 'nor their 400-day-old events');
select set_eq($$select worker_id from taskwarden.worker_heartbeats$$, array['w#dead-holding', 'w#live'],
              'a dead worker that still holds a running task keeps its row (the reaper needs it)');
select set_eq($$select source from taskwarden.reaper_runs where source in ('old', 'recent')$$, array['recent'],
              'reaper_runs older than reaper_runs_retention_days go');
select ok((select summary -> 'prune' -> 'tasks' ->> 'completed' = '1' from taskwarden.reaper_runs
           where source = 'prune' and not dry_run order by id desc limit 1), 'prune() is logged in reaper_runs (source prune)');
select is((taskwarden.prune() -> 'tasks'), '{"completed": 0, "cancelled": 0, "failed": 0}'::jsonb, 'a second prune finds nothing');

-- Even with every period at its minimum, live work stays.
update taskwarden.settings set value = '0.01' where key in ('finished_task_retention_hours', 'failed_task_retention_hours');
update taskwarden.tasks set completed_at = now() - interval '1 hour' where task_type in ('new_completed', 'week_failed');
select is((taskwarden.prune() -> 'tasks'), '{"completed": 1, "cancelled": 0, "failed": 1}'::jsonb, 'periods are settings');
select is((select count(*)::int from taskwarden.tasks where status in ('queued', 'running')), 3, 'queued and running tasks survive the shortest periods');

-- Bounded: prune_batch rows per batch, prune_max_batches batches per kind per call.
insert into taskwarden.tasks (task_type, status, attempts, completed_at)
select 'bulk', 'completed', 1, now() - interval '2 days' from generate_series(1, 5);
update taskwarden.settings set value = '2' where key in ('prune_batch', 'prune_max_batches');
select is((taskwarden.prune() -> 'tasks' ->> 'completed')::int, 4, 'one call deletes at most prune_batch * prune_max_batches rows of a kind');
select is((select (summary -> 'prune' ->> 'more')::boolean from taskwarden.reaper_runs where source = 'prune' order by id desc limit 1),
          true, 'and says there is more');
select is((taskwarden.prune(true) -> 'tasks' ->> 'completed')::int, 1, 'the dry run sees the rest');
select is((taskwarden.prune() -> 'more')::boolean, false, 'the next call takes it and comes back short');

-- reap() runs the retention duty on its own schedule.
insert into taskwarden.tasks (task_type, status, attempts, completed_at) values ('by_reap', 'completed', 1, now() - interval '2 days');
select is((taskwarden.reap('test') -> 'prune' -> 'tasks' ->> 'completed')::int, 1, 'reap() prunes too, reported under its summary key prune');
select is((select count(*)::int from taskwarden.tasks where task_type = 'by_reap'), 0, 'and the task is gone');
select is((taskwarden.reap('test', dry_run => true) -> 'prune' ->> 'dry_run')::boolean, true, 'a dry reap prunes dry');
insert into taskwarden.tasks (task_type, status, attempts, completed_at)
select 'backlog', 'completed', 1, now() - interval '2 days' from generate_series(1, 5);
select is(taskwarden.reap('test') -> 'prune' -> 'tasks' ->> 'completed', '2',
          'a reap prunes one batch per kind (prune_batch, here 2), not prune_max_batches: a backlog never holds it up');
select is((select count(*)::int from taskwarden.tasks where task_type = 'backlog'), 3, 'the rest waits for the next reaps');

select ok((select taskwarden.get_worker_health_summary() -> 'last_prune' ? 'tasks'), 'the health summary (dashboard, status) shows the last prune');

-- Task counts for the dashboard: exact up to exact_limit per status, estimated past it.
select is(taskwarden.get_task_counts() - 'estimated',
          (select jsonb_object_agg(s, (select count(*) from taskwarden.tasks t where t.status = s))
                  || jsonb_build_object('stale_running', (select count(*) from taskwarden.v_stale_running_tasks))
           from unnest(array['queued', 'running', 'completed', 'failed', 'cancelled']) s),
          'get_task_counts is exact below its limit');
insert into taskwarden.tasks (task_type, status, attempts) select 'counted', 'queued', 0 from generate_series(1, 5);
select ok(taskwarden.get_task_counts(2) -> 'estimated' ? 'queued', 'past exact_limit a status is estimated, and says so');
select ok(not taskwarden.get_task_counts(2) -> 'estimated' ? 'failed', 'a status within it is not');
select ok((taskwarden.get_task_counts(2) ->> 'queued')::int >= 3, 'never below what it counted');
select throws_ok($$select taskwarden.get_task_counts(0)$$, 'TW002', null, 'exact_limit 0 is refused');

-- Arguments and settings are checked.
select throws_ok($$select taskwarden.prune(null)$$, 'TW002', null, 'dry_run null is refused');
select throws_ok($$update taskwarden.settings set value = '0' where key = 'finished_task_retention_hours'$$, 'TW002', null,
                 'a retention period below its minimum is refused');
select throws_ok($$update taskwarden.settings set value = '1.5' where key = 'prune_batch'$$, 'TW002', null,
                 'prune_batch must be a whole number');

-- The lease scan: with 250 running rows and a slice of 100, an expired lease anywhere is found
-- within three reaps, and a reap reads no more than the slice.
update taskwarden.settings set value = '100' where key = 'reap_lease_scan_rows';
insert into taskwarden.tasks (task_type, status, attempts, owner_id, lease_token, lease_expires_at, started_at)
select 'scan', 'running', 1, 'w#live', gen_random_uuid(), now() + interval '1 hour', now() from generate_series(1, 250);
update taskwarden.tasks set lease_expires_at = now() - interval '1 second'
where id = (select max(id) - 10 from taskwarden.tasks where task_type = 'scan');
select ok((select max((taskwarden.reap('scan') -> 'lease_scan' ->> 'scanned')::int) <= 100 from generate_series(1, 3)),
          'each reap reads at most reap_lease_scan_rows running rows');
select is((select count(*)::int from taskwarden.task_events e join taskwarden.tasks t on t.id = e.task_id
           where t.task_type = 'scan' and e.event = 'requeued' and e.reason = 'lease_expired'), 1,
          'and three reaps of 100 found the expired lease among 250+ running rows');

select * from finish();
rollback;
