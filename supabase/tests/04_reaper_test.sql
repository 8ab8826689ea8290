-- The reaper: expired leases, dead workers, timeouts and legacy stale rows are taken back with
-- backoff and a retry budget; past it a task fails with its history; dry runs change nothing;
-- every reap is logged; a slow task whose worker beats is left alone.
begin;
select no_plan();
update taskwarden.settings set value = '10' where key = 'retry_base_seconds';

-- an expired lease
select id as t1 from taskwarden.enqueue_task('crawl', max_attempts => 2) \gset
select lease_token as tok1 from taskwarden.claim_tasks('w1#a', array['crawl']) \gset
update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where id = :t1;
select is((select stale_reason from taskwarden.v_stale_running_tasks where task_id = :t1), 'lease_expired', 'v_stale_running_tasks explains why');

-- dry run first
select is((taskwarden.reap('test', dry_run => true)) -> 'lease_expired' ->> 'requeued', '1', 'a dry reap reports what it would do');
select is((select status from taskwarden.tasks where id = :t1), 'running', 'and changes nothing');

select is((taskwarden.reap('test')) -> 'lease_expired' ->> 'requeued', '1', 'reap requeues a task whose lease expired');
select results_eq(format($$select status, owner_id, lease_token, crash_count, attempts from taskwarden.tasks where id = %s$$, :t1),
                  $$values ('queued', null::text, null::uuid, 1, 1)$$, 'the task is queued again, unowned, one crash counted');
select ok((select run_at >= now() + interval '10 seconds' from taskwarden.tasks where id = :t1), 'with backoff (run_at in the future)');
select results_eq(format($$select event, reason, worker_id from taskwarden.task_events where task_id = %s and event <> 'claimed'$$, :t1),
                  $$values ('requeued', 'lease_expired', 'w1#a')$$, 'the requeue is logged with its reason and the worker');
select throws_ok(format($$select taskwarden.complete_task(%s, %L)$$, :t1, :'tok1'), 'TW001', null, 'the zombie''s late completion is refused');

-- second crash spends the budget: failed with history
update taskwarden.tasks set run_at = now() where id = :t1;
select lease_token as tok1b from taskwarden.claim_tasks('w2#a', array['crawl']) \gset
update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where id = :t1;
select is((taskwarden.reap('test')) -> 'lease_expired' ->> 'failed', '1', 'the crash that spends the budget fails the task');
select results_eq(format($$select status, completed_at is not null, jsonb_array_length(errors), crash_count from taskwarden.tasks where id = %s$$, :t1),
                  $$values ('failed', true, 2, 2)$$, 'failed, with completed_at and the error of each attempt');
select is((select event from taskwarden.task_events where task_id = :t1 order by id desc limit 1), 'dead_lettered', 'and dead-lettered in the events');

-- a slow task whose worker beats is not reaped; its timeout still bounds it
select * from taskwarden.upsert_worker_heartbeat('slow#a', 'crawl', 'processing');
select id as t2 from taskwarden.enqueue_task('slow', timeout_seconds => 3600) \gset
select count(*) from taskwarden.claim_tasks('slow#a', array['slow'], lease_seconds => 600);
update taskwarden.tasks set started_at = now() - interval '50 minutes' where id = :t2;
select is((taskwarden.reap('test')) -> 'timed_out' ->> 'requeued', '0', 'a 50-minute task of a live worker is left alone');
update taskwarden.tasks set started_at = now() - interval '61 minutes' where id = :t2;
select is((taskwarden.reap('test')) -> 'timed_out' ->> 'requeued', '1', 'past its timeout it is taken back');
select is((select reason from taskwarden.task_events where task_id = :t2 and event = 'requeued'), 'timeout', 'with reason timeout');

-- a dead worker
select id as t3 from taskwarden.enqueue_task('dead') \gset
select count(*) from taskwarden.claim_tasks('slow#a', array['dead'], lease_seconds => 3600);
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '6 minutes' where worker_id = 'slow#a';
select is((taskwarden.reap('test')) -> 'worker_dead' ->> 'requeued', '1', 'the task of a dead worker is requeued before its lease ends');

-- legacy rows: running, no lease columns, only updated_at
insert into taskwarden.tasks (task_type, status, attempts, updated_at)
values ('legacy', 'running', 0, now() - interval '20 minutes'),
       ('legacy', 'running', 3, now() - interval '20 minutes'),
       ('legacy', 'running', 0, now() - interval '5 minutes');
select results_eq($$select action from taskwarden.cleanup_stale_running_tasks(15, 3, 200, dry_run => true) order by task_id$$,
                  $$values ('would_requeue'), ('would_fail')$$, 'cleanup_stale_running_tasks previews legacy rows by updated_at');
select results_eq($$select action, reason from taskwarden.cleanup_stale_running_tasks(15, 3) order by task_id$$,
                  $$values ('requeued', 'stale'), ('failed', 'stale')$$, 'and requeues or fails them by the retry budget');
select is((select count(*)::int from taskwarden.tasks where task_type = 'legacy' and status = 'running'), 1, 'the fresh legacy row is left alone');
select is((select count(*)::int from taskwarden.cleanup_stale_running_tasks(15, 3)), 0, 'a second cleanup finds nothing');
select throws_ok($$select * from taskwarden.cleanup_stale_running_tasks(-1)$$, 'TW002', null, 'negative stale_minutes is refused');
select throws_ok($$select * from taskwarden.cleanup_stale_running_tasks(15, 3, 0)$$, 'TW002', null, 'batch_size 0 is refused');
select throws_ok($$select * from taskwarden.cleanup_stale_running_tasks(15, 3, 10000000)$$, 'TW002', null, 'batch_size 10 million is refused');
select throws_ok($$select * from taskwarden.cleanup_stale_running_tasks(15, 0)$$, 'TW002', null, 'max_attempts 0 is refused');

-- the batch bounds one step
update taskwarden.settings set value = '2' where key = 'reap_batch';
insert into taskwarden.tasks (task_type, status, owner_id, lease_token, lease_expires_at, attempts)
select 'many', 'running', 'gone#a', gen_random_uuid(), now() - interval '1 minute', 1 from generate_series(1, 5);
update taskwarden.settings set value = '2' where key = 'reap_max_rounds';
select is((taskwarden.reap('test')) -> 'lease_expired' ->> 'requeued', '4', 'one reap handles reap_batch rows per round, reap_max_rounds rounds');
select is((taskwarden.reap('test')) -> 'lease_expired' ->> 'requeued', '1', 'the next reap takes the rest');
select is((select (summary ->> 'rounds')::int from taskwarden.reaper_runs order by id desc limit 1), 1, 'and stops after a round that did not fill its batch');

-- logging
select is((select count(*)::int from taskwarden.reaper_runs where source = 'test' and not dry_run), 7, 'every reap is in reaper_runs');
select ok((select bool_and(finished_at is not null and duration_ms >= 0) from taskwarden.reaper_runs), 'with its duration');
select is((select dry_run from taskwarden.reaper_runs order by id limit 1), true, 'dry runs are logged as such');
select throws_ok($$select taskwarden.reap('')$$, 'TW002', null, 'an empty source is refused');
select results_eq(format($$select task_id, event, reason from taskwarden.list_reaper_actions(100) where task_id = %s order by id$$, :t1),
                  format($$values (%s::bigint, 'requeued', 'lease_expired'), (%s::bigint, 'dead_lettered', 'lease_expired')$$, :t1, :t1),
                  'list_reaper_actions lists what the reaper did to a task');
select throws_ok($$select * from taskwarden.list_reaper_actions(0)$$, 'TW002', null, 'max_rows 0 is refused');

select * from finish();
rollback;
