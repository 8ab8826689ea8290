-- Rules that keep a live task from being handed out again: the stale rule never reaps a valid
-- lease; startup recovery never takes a boot that still beats (and two live boots of one
-- configured id are reported); a run with unfinished tasks cannot be finished as completed, and
-- progress never counts cancelled work as done.
begin;
select no_plan();

-- 1. The stale rule is for rows without a lease. A task claimed with a 3600 s lease, seen
--    10 s ago, with task_stale_seconds = 1, is not stale: its lease is valid and its owner beats.
update taskwarden.settings set value = '1' where key = 'task_stale_seconds';
select * from taskwarden.upsert_worker_heartbeat('leaseholder#a', 'leased');
select id as long_lease from taskwarden.enqueue_task('leased') \gset
select count(*) from taskwarden.claim_tasks('leaseholder#a', array['leased'], lease_seconds => 3600);
update taskwarden.tasks set last_heartbeat = now() - interval '10 seconds', updated_at = now() - interval '10 seconds',
                            started_at = now() - interval '10 seconds'
where id = :long_lease;
-- a legacy row (running, no lease) of the same age is stale
insert into taskwarden.tasks (task_type, status, attempts, updated_at)
values ('legacy', 'running', 1, now() - interval '10 seconds') returning id as legacy \gset

select is((select count(*)::int from taskwarden.v_stale_running_tasks where task_id = :long_lease), 0,
          'v_stale_running_tasks does not list a task whose 3600 s lease is valid');
select is((select stale_reason from taskwarden.v_stale_running_tasks where task_id = :legacy), 'stale',
          'it lists a running row without a lease as stale');
select is((select count(*)::int from taskwarden.cleanup_stale_running_tasks(0.01, 3, 200, dry_run => true) c where c.task_id = :long_lease), 0,
          'cleanup_stale_running_tasks would not touch the valid lease');
select results_eq($$select task_id, action from taskwarden.cleanup_stale_running_tasks(0.01, 3)$$,
                  format($$values (%s::bigint, 'requeued')$$, :legacy),
                  'cleanup_stale_running_tasks requeues the legacy row and leaves the valid lease alone');
insert into taskwarden.tasks (task_type, status, attempts, updated_at)
values ('legacy', 'running', 1, now() - interval '10 seconds') returning id as legacy2 \gset
select is((taskwarden.reap('test')) -> 'stale' ->> 'requeued', '1', 'reap() requeues only the second legacy row as stale');
select results_eq(format($$select status, owner_id from taskwarden.tasks where id = %s$$, :long_lease),
                  $$values ('running', 'leaseholder#a')$$, 'the leased task is still running, owned by its worker');
select is((select status from taskwarden.tasks where id = :legacy2), 'queued', 'the legacy row was requeued');
-- the lease's own expiry still takes it back
update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where id = :long_lease;
select is((select stale_reason from taskwarden.v_stale_running_tasks where task_id = :long_lease), 'lease_expired',
          'once the lease expires the view lists it, as lease_expired');
select is((taskwarden.reap('test')) -> 'lease_expired' ->> 'requeued', '1', 'and reap() takes it back by lease expiry');
update taskwarden.settings set value = '900' where key = 'task_stale_seconds';

-- 2. recover_worker_tasks takes only what dead, stopped or vanished boots of its base left.
select * from taskwarden.upsert_worker_heartbeat('research-1#live', 'research');
select * from taskwarden.upsert_worker_heartbeat('research-1#dead', 'research');
select * from taskwarden.upsert_worker_heartbeat('research-1#stop', 'research');
select * from taskwarden.upsert_worker_heartbeat('research-10#other', 'research');
select taskwarden.enqueue_task('research') from generate_series(1, 5);
select id as live_task from taskwarden.claim_tasks('research-1#live', array['research']) \gset
select id as dead_task from taskwarden.claim_tasks('research-1#dead', array['research']) \gset
select id as stop_task from taskwarden.claim_tasks('research-1#stop', array['research']) \gset
select id as gone_task from taskwarden.claim_tasks('research-1#gone', array['research']) \gset
select id as other_task from taskwarden.claim_tasks('research-10#other', array['research']) \gset
select taskwarden.stop_worker('research-1#stop', release_tasks => false);
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '10 minutes' where worker_id = 'research-1#dead';
-- a new boot of research-1 starts while research-1#live still beats (one id given to two processes)
select * from taskwarden.upsert_worker_heartbeat('research-1#new', 'research');

select is(taskwarden.recover_worker_tasks('research-1#new'), 3, 'recover_worker_tasks requeues the tasks of the dead, stopped and row-less boots');
select results_eq(format($$select id, status from taskwarden.tasks where id in (%s, %s, %s, %s, %s) order by id$$,
                         :live_task, :dead_task, :stop_task, :gone_task, :other_task),
                  format($$values (%s::bigint, 'running'), (%s::bigint, 'queued'), (%s::bigint, 'queued'), (%s::bigint, 'queued'), (%s::bigint, 'running')$$,
                         :live_task, :dead_task, :stop_task, :gone_task, :other_task),
                  'the task of the boot that still beats stays running (and research-10 is another base)');
select is((select owner_id from taskwarden.tasks where id = :live_task), 'research-1#live', 'still owned by the live boot');
select is(taskwarden.recover_worker_tasks('research-1#new'), 0, 'a second recovery finds nothing');

-- two live boots of one base are reported
select results_eq($$select worker_id, coalesce((to_jsonb(w) ->> 'duplicate_base')::boolean, false) from taskwarden.list_workers() w
                    where worker_id like 'research-1%' order by worker_id collate "C"$$,
                  $$values ('research-1#dead', false), ('research-1#live', true), ('research-1#new', true), ('research-1#stop', false),
                          ('research-10#other', false)$$,
                  'list_workers flags the live boots that share a base id (duplicate_base)');
select is(taskwarden.get_worker_health_summary() -> 'duplicate_worker_bases',
          '[{"base": "research-1", "worker_ids": ["research-1#live", "research-1#new"]}]'::jsonb,
          'get_worker_health_summary lists each base id used by more than one live boot');
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '10 minutes' where worker_id = 'research-1#live';
select is(taskwarden.get_worker_health_summary() -> 'duplicate_worker_bases', '[]'::jsonb, 'once one of them is dead there is no duplicate');
select is(taskwarden.recover_worker_tasks('research-1#new'), 1, 'and its task is recovered');
-- a worker id without a boot suffix recovers its own earlier life
select id as plain_task from taskwarden.enqueue_task('plain') \gset
select count(*) from taskwarden.claim_tasks('plain-worker', array['plain']);
select * from taskwarden.upsert_worker_heartbeat('plain-worker', 'plain');
select is(taskwarden.recover_worker_tasks('plain-worker'), 1, 'an id without a boot suffix recovers the tasks it owns itself');
select throws_ok($$select taskwarden.recover_worker_tasks(' ')$$, 'TW002', null, 'a blank worker_id is refused');

-- 3. finish_run as completed with unfinished tasks is refused; with an error it cancels them.
select id as fan from taskwarden.create_run('fan out') \gset
select taskwarden.start_run(:'fan');
select id as fan_first from taskwarden.enqueue_task('fan', run_id => :'fan') \gset
select id as fan_second from taskwarden.enqueue_task('fan', run_id => :'fan') \gset
select lease_token as fan_tok from taskwarden.claim_tasks('fanner#a', array['fan'], batch_size => 1) \gset
select is((select id from taskwarden.tasks where owner_id = 'fanner#a'), :fan_first::bigint, 'one task of the run is running, one queued');
select throws_ok(format($$select taskwarden.finish_run(%L)$$, :'fan'), 'TW004',
                 format('run %s has 2 unfinished tasks (1 queued, 1 running): it cannot be completed yet', :'fan'),
                 'finish_run refuses to complete a run with queued and running tasks');
select results_eq(format($$select status, completed_at from taskwarden.runs where id = %L$$, :'fan'),
                  $$values ('running', null::timestamptz)$$, 'the run is still running');
select is((select count(*)::int from taskwarden.tasks where run_id = :'fan' and status = 'cancelled'), 0, 'no task of it was cancelled');
select is((taskwarden.complete_task(:fan_first, :'fan_tok', '{"ok": 1}')).status, 'completed', 'the holder''s result is accepted');
select throws_ok(format($$select taskwarden.finish_run(%L)$$, :'fan'), 'TW004', null, 'one queued task still blocks completion');
select lease_token as fan_tok2 from taskwarden.claim_tasks('fanner#a', array['fan']) \gset
select is((taskwarden.complete_task(:fan_second, :'fan_tok2')).status, 'completed', 'the second task completes');
select results_eq(format($$select status, completed_at is not null from taskwarden.finish_run(%L)$$, :'fan'),
                  $$values ('completed', true)$$, 'with every task finished, finish_run completes the run');
select results_eq(format($$select tasks_completed, tasks_cancelled, percent_done from taskwarden.v_run_progress where run_id = %L$$, :'fan'),
                  $$values (2::bigint, 0::bigint, 100.0)$$, 'and its progress reads 2 completed, 100 % done');

select id as crashed from taskwarden.create_run('crashed') \gset
select taskwarden.enqueue_task('crash', run_id => :'crashed') from generate_series(1, 2);
select lease_token as crash_tok, id as crash_t from taskwarden.claim_tasks('crasher#a', array['crash']) \gset
select results_eq(format($$select status, error from taskwarden.finish_run(%L, 'job crashed')$$, :'crashed'),
                  $$values ('failed', 'job crashed')$$, 'finish_run with an error fails the run even with unfinished tasks');
select is((select count(*)::int from taskwarden.tasks where run_id = :'crashed' and status = 'cancelled'), 2, 'and cancels what was left');
select throws_ok(format($$select taskwarden.complete_task(%s, %L)$$, :crash_t, :'crash_tok'), 'TW001', null, 'the holder of a cancelled task is refused');
select results_eq(format($$select tasks_completed, tasks_cancelled, percent_done from taskwarden.v_run_progress where run_id = %L$$, :'crashed'),
                  $$values (0::bigint, 2::bigint, 0.0)$$, 'progress of a run whose tasks were all cancelled: 0 % done');
select is((taskwarden.finish_run(:'crashed')).status, 'failed', 'a terminal run is returned unchanged, not refused');

select id as cancelled_run from taskwarden.create_run('cancelled') \gset
select taskwarden.enqueue_task('cancel-me', run_id => :'cancelled_run') from generate_series(1, 4);
select count(*) from taskwarden.claim_tasks('c#a', array['cancel-me']);
select taskwarden.complete_task(t.id, t.lease_token) from taskwarden.tasks t where t.run_id = :'cancelled_run' and t.status = 'running';
select is((taskwarden.cancel_run(:'cancelled_run', 'enough')).status, 'cancelled', 'cancel_run still cancels a run with unfinished tasks');
select results_eq(format($$select tasks_completed, tasks_cancelled from taskwarden.v_run_progress where run_id = %L$$, :'cancelled_run'),
                  $$values (1::bigint, 3::bigint)$$, 'its unfinished tasks are cancelled');
select is((select percent_done from taskwarden.v_run_progress where run_id = :'cancelled_run'), 25.0,
          'its progress counts only the completed task as done, not the three cancelled ones');
select is((taskwarden.archive_run(:'cancelled_run')).status, 'archived', 'archive_run still archives it');

-- a run with no tasks finishes as before
select id as empty_run from taskwarden.create_run('inline') \gset
select is((taskwarden.finish_run(:'empty_run')).status, 'completed', 'a run without tasks (work done inline) completes');
select is((select percent_done from taskwarden.v_run_progress where run_id = :'empty_run'), null::numeric, 'its progress has no percentage');

select * from finish();
rollback;
