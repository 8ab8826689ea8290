-- Worker heartbeats: registration, lease renewal of held tasks, lost tasks, stop directives
-- (drain, run over, stopped), graceful stop, startup recovery, dead workers, stats and health.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';

select results_eq(
  $$select stop_requested, lost_task_ids, renewed_task_ids from taskwarden.upsert_worker_heartbeat('mail-1#a', 'mail', 'idle', metadata => '{"host": "box", "pid": 42}')$$,
  $$values (false, '{}'::bigint[], '{}'::bigint[])$$, 'a first heartbeat registers the worker');
select results_eq($$select status, host, pid, beats from taskwarden.worker_heartbeats where worker_id = 'mail-1#a'$$,
                  $$values ('idle', 'box', 42, 1::bigint)$$, 'status, host and pid are stored');
select throws_ok($$select * from taskwarden.upsert_worker_heartbeat('', 'mail')$$, 'TW002', null, 'an empty worker_id is refused');
select throws_ok($$select * from taskwarden.upsert_worker_heartbeat('w', 'mail', 'sleeping')$$, 'TW002', null, 'an unknown status is refused');
select throws_ok($$select * from taskwarden.upsert_worker_heartbeat('w', 'mail', lease_seconds => 0)$$, 'TW002', null, 'lease_seconds 0 is refused');
select is((select count(*)::int from taskwarden.worker_heartbeats where worker_id = 'w'), 0, 'refused heartbeats wrote nothing');

-- renewal and lost tasks
select taskwarden.enqueue_task('mail') from generate_series(1, 3);
select array_agg(id order by id) as held from taskwarden.claim_tasks('mail-1#a', batch_size => 3, lease_seconds => 30) \gset
update taskwarden.tasks set lease_expires_at = now() + interval '5 seconds' where owner_id = 'mail-1#a';
select id as gone from taskwarden.tasks where owner_id = 'mail-1#a' order by id limit 1 \gset
select taskwarden.cancel_task(:gone, 'operator');
select results_eq(
  format($$select lost_task_ids, cardinality(renewed_task_ids) from taskwarden.upsert_worker_heartbeat('mail-1#a', 'mail', 'processing', held_task_ids => %L, lease_seconds => 120)$$, :'held'),
  format($$values (array[%s]::bigint[], 2)$$, :gone), 'the heartbeat renews what it still owns and reports the rest as lost');
select ok((select bool_and(lease_expires_at > now() + interval '119 seconds') from taskwarden.tasks where owner_id = 'mail-1#a' and status = 'running'),
          'held leases were renewed by lease_seconds');

-- drain
select is((taskwarden.request_worker_stop('mail-1#a')).worker_id, 'mail-1#a', 'request_worker_stop marks the worker');
select results_eq($$select stop_requested, stop_reason from taskwarden.upsert_worker_heartbeat('mail-1#a', 'mail', 'processing')$$,
                  $$values (true, 'drain_requested')$$, 'the next heartbeat says stop');
select taskwarden.enqueue_task('mail');
select is((select count(*)::int from taskwarden.claim_tasks('mail-1#a')), 0, 'a draining worker claims nothing');
select throws_ok($$select taskwarden.request_worker_stop('nobody')$$, 'TW003', null, 'draining an unknown worker: not found');

-- run filter
select id as run from taskwarden.create_run('batch') \gset
select results_eq(format($$select stop_requested from taskwarden.upsert_worker_heartbeat('r-1#a', 'research', run_filter_id => %L)$$, :'run'),
                  $$values (false)$$, 'a worker on a live run keeps going');
select taskwarden.finish_run(:'run');
select results_eq($$select stop_requested, stop_reason from taskwarden.upsert_worker_heartbeat('r-1#a', 'research')$$,
                  $$values (true, 'run_completed')$$, 'a worker whose run finished is told to stop');
select results_eq($$select stop_requested, stop_reason from taskwarden.upsert_worker_heartbeat('r-2#a', 'research', run_filter_id => gen_random_uuid())$$,
                  $$values (true, 'run_missing')$$, 'a worker targeting an unknown run is told to stop');

-- graceful stop
select is(taskwarden.stop_worker('mail-1#a'), 2, 'stop_worker releases the tasks it held');
select results_eq($$select status, attempts from taskwarden.tasks where owner_id is null and status = 'queued' and attempts = 0 order by id limit 1$$,
                  $$values ('queued', 0)$$, 'released without spending an attempt');
select results_eq($$select status, stopped_at is not null from taskwarden.worker_heartbeats where worker_id = 'mail-1#a'$$,
                  $$values ('stopped', true)$$, 'the worker row is stopped');
select results_eq($$select stop_requested, stop_reason from taskwarden.upsert_worker_heartbeat('mail-1#a', 'mail', 'processing')$$,
                  $$values (true, 'stopped')$$, 'a late heartbeat of a stopped worker is told to stop');
select is((select status from taskwarden.worker_heartbeats where worker_id = 'mail-1#a'), 'stopped', 'and does not revive the row');
select throws_ok($$select taskwarden.stop_worker('nobody')$$, 'TW003', null, 'stopping an unknown worker: not found');

-- startup recovery: an earlier boot of the same base id left tasks running
select taskwarden.enqueue_task('scrape') from generate_series(1, 2);
select count(*) from taskwarden.claim_tasks('scraper-7#boot1', array['scrape'], batch_size => 2);
select taskwarden.enqueue_task('scrape');
select count(*) from taskwarden.claim_tasks('scraper-70#x', array['scrape']);
select is(taskwarden.recover_worker_tasks('scraper-7#boot2'), 2, 'recover_worker_tasks requeues what earlier boots left');
select is((select count(*)::int from taskwarden.tasks where owner_id = 'scraper-70#x'), 1, 'another base id that shares a prefix is untouched');
select is((select array_agg(distinct reason) from taskwarden.task_events where event = 'requeued' and worker_id = 'scraper-7#boot1'),
          array['recovered'], 'logged with reason recovered');

-- dead workers
select * from taskwarden.upsert_worker_heartbeat('dead-1#a', 'mail', 'processing');
select taskwarden.enqueue_task('mail-dead');
select id as dtask from taskwarden.claim_tasks('dead-1#a', array['mail-dead']) \gset
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '10 minutes' where worker_id = 'dead-1#a';
select is((select array_agg(worker_id) from taskwarden.v_dead_workers), array['dead-1#a'], 'v_dead_workers derives death from heartbeat age');
select ok((select seconds_since_heartbeat >= 600 from taskwarden.v_dead_workers), 'with seconds_since_heartbeat');
select ok(not exists (select from taskwarden.v_active_workers where worker_id = 'dead-1#a'), 'a dead worker is not active');
-- Its own label is as old as its last heartbeat; list_workers reads what it holds from the tasks.
update taskwarden.worker_heartbeats set current_task = 'an earlier task, long completed' where worker_id = 'dead-1#a';
select results_eq($$select dead, current_task, held_tasks, held_task_ids, held_task from taskwarden.list_workers() where worker_id = 'dead-1#a'$$,
                  format($$values (true, 'an earlier task, long completed', 1, array[%s]::bigint[], '#%s mail-dead')$$, :dtask, :dtask),
                  'list_workers shows the task a dead worker holds, whatever its stale label says');
select throws_ok($$select * from taskwarden.release_dead_worker_leases(-1)$$, 'TW002', null, 'a negative threshold is refused');
select is((select count(*)::int from taskwarden.release_dead_worker_leases(3600)), 0, 'not dead by a 1 h threshold');
select results_eq($$select task_id, action, reason from taskwarden.release_dead_worker_leases(300)$$,
                  format($$values (%s::bigint, 'requeued', 'worker_dead')$$, :dtask), 'release_dead_worker_leases requeues its task');

update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '10 minutes' where worker_id = 'mail-1#a';
select results_eq($$select worker_id, status, dead, held_tasks, held_task_ids, held_task from taskwarden.list_workers() where worker_type = 'mail'$$,
                  $$values ('dead-1#a', 'processing', true, 0, '{}'::bigint[], null::text), ('mail-1#a', 'stopped', false, 0, '{}'::bigint[], null::text)$$,
                  'list_workers: the dead worker first, its task taken back; the stopped one listed last, never dead');
select ok((select bool_and(seconds_since_heartbeat >= 0) from taskwarden.list_workers()), 'with its heartbeat age');
select results_eq($$select worker_type, dead, stopped from taskwarden.get_worker_stats() where worker_type = 'mail'$$,
                  $$values ('mail', 1::bigint, 1::bigint)$$, 'get_worker_stats counts dead and stopped per type');
select is((taskwarden.get_worker_health_summary()) ->> 'healthy', 'false', 'the health summary is unhealthy with a dead worker');
select is((taskwarden.get_worker_health_summary()) -> 'dead_workers' -> 0 ->> 'worker_id', 'dead-1#a', 'and names it');

-- cleanup of old worker rows
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '2 hours', stopped_at = now() - interval '2 hours'
where worker_id in ('mail-1#a', 'dead-1#a');
select throws_ok($$select taskwarden.cleanup_stale_workers(0)$$, 'TW002', null, 'stale_minutes 0 is refused');
select is(taskwarden.cleanup_stale_workers(60), 2, 'cleanup_stale_workers deletes long-stopped and long-dead rows');
select is((select count(*)::int from taskwarden.worker_heartbeats where worker_id in ('mail-1#a', 'dead-1#a')), 0, 'they are gone');

select * from finish();
rollback;
