-- The fences: clear errors for a null id or token and for nonsense held lists, answers matched
-- by (task id, lease token), and retries of a fenced write that get the first answer again.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';

-- Clear errors: a null id or token is a bad argument, never "lease lost" or "task <NULL> not found".
select taskwarden.enqueue_task('args');
select id as a1, lease_token as atok from taskwarden.claim_tasks('args#1', array['args']) \gset
select throws_ok(format($$select taskwarden.complete_task(%s, null)$$, :a1), 'TW002', 'lease_token must not be null', 'complete_task: a null token is a bad argument');
select throws_ok(format($$select taskwarden.fail_task(%s, null, 'boom')$$, :a1), 'TW002', 'lease_token must not be null', 'fail_task: a null token is a bad argument');
select throws_ok(format($$select taskwarden.release_task(%s, null)$$, :a1), 'TW002', 'lease_token must not be null', 'release_task: a null token is a bad argument');
select throws_ok(format($$select taskwarden.renew_task_lease(%s, null)$$, :a1), 'TW002', 'lease_token must not be null', 'renew_task_lease: a null token is a bad argument');
select throws_ok(format($$select taskwarden.complete_task(null, %L)$$, :'atok'), 'TW002', 'task_id must not be null', 'complete_task: a null task_id is a bad argument');
select throws_ok(format($$select taskwarden.fail_task(null, %L, 'boom')$$, :'atok'), 'TW002', 'task_id must not be null', 'fail_task: a null task_id is a bad argument');
select throws_ok(format($$select taskwarden.release_task(null, %L)$$, :'atok'), 'TW002', 'task_id must not be null', 'release_task: a null task_id is a bad argument');
select throws_ok(format($$select taskwarden.renew_task_lease(null, %L)$$, :'atok'), 'TW002', 'task_id must not be null', 'renew_task_lease: a null task_id is a bad argument');
select throws_ok($$select taskwarden.cancel_task(null)$$, 'TW002', 'task_id must not be null', 'cancel_task: a null task_id is a bad argument');
select throws_ok($$select taskwarden.requeue_task(null)$$, 'TW002', 'task_id must not be null', 'requeue_task: a null task_id is a bad argument');
select throws_ok($$select taskwarden.get_task(null)$$, 'TW002', 'task_id must not be null', 'get_task: a null task_id is a bad argument');
select throws_ok(format($$select * from taskwarden.complete_tasks(array[%s, null]::bigint[], array[%L, %L]::uuid[])$$, :a1, :'atok', :'atok'),
                 'TW002', 'task_ids must not contain null', 'complete_tasks: a null id is a bad argument');
select throws_ok(format($$select * from taskwarden.complete_tasks(array[%s]::bigint[], array[null]::uuid[])$$, :a1),
                 'TW002', 'lease_tokens must not contain null', 'complete_tasks: a null token is a bad argument');
select throws_ok($$select taskwarden.claim_tasks('args#1', array['args', null])$$, 'TW002', 'task_types must not contain null',
                 'claim_tasks: task_types with a null is a bad argument');
select throws_ok(format($$select * from taskwarden.upsert_worker_heartbeat('args#1', 'args', held_task_ids => array[%s, null]::bigint[])$$, :a1),
                 'TW002', 'held_task_ids must not contain null', 'heartbeat: a null held id is a bad argument, not a lost task');
select throws_ok(format($$select * from taskwarden.upsert_worker_heartbeat('args#1', 'args', held_task_ids => array[%s, %s]::bigint[])$$, :a1, :a1),
                 'TW002', format('held_task_ids lists task %s more than once', :a1), 'heartbeat: a duplicated held id is a bad argument');
select throws_ok(format($$select * from taskwarden.upsert_worker_heartbeat('args#1', 'args', held_task_ids => array[%s, %s]::bigint[],
                                                                           held_lease_tokens => array[%L, %L]::uuid[])$$, :a1, :a1, :'atok', :'atok'),
                 'TW002', format('held_task_ids lists task %s twice with the same lease token', :a1), 'heartbeat: a duplicated claim is a bad argument');
select throws_ok(format($$select * from taskwarden.upsert_worker_heartbeat('args#1', 'args', held_task_ids => array[%s]::bigint[],
                                                                           held_lease_tokens => '{}')$$, :a1),
                 'TW002', 'held_lease_tokens must have one token per held_task_ids entry (got 0 tokens for 1 ids)',
                 'heartbeat: tokens that do not pair with the ids are a bad argument');
select throws_ok(format($$select * from taskwarden.upsert_worker_heartbeat('args#1', 'args', held_task_ids => array[%s]::bigint[],
                                                                           held_lease_tokens => array[null]::uuid[])$$, :a1),
                 'TW002', 'held_lease_tokens must not contain null', 'heartbeat: a null token is a bad argument');
select is((select count(*)::int from taskwarden.worker_heartbeats where worker_id = 'args#1'), 0, 'refused heartbeats wrote nothing');
select results_eq(format($$select status, lease_token from taskwarden.tasks where id = %s$$, :a1),
                  format($$values ('running', %L::uuid)$$, :'atok'), 'and refused fenced writes left the claim as it was');

-- complete_tasks answers by (id, token): one id twice, a real and a bogus token, is completed once.
select taskwarden.enqueue_task('pair');
select id as p1, lease_token as ptok from taskwarden.claim_tasks('pair#1', array['pair']) \gset
select results_eq(
  format($$select task_id, completed from taskwarden.complete_tasks(array[%s, %s]::bigint[], array[gen_random_uuid(), %L]::uuid[])$$, :p1, :p1, :'ptok'),
  format($$values (%s::bigint, false), (%s::bigint, true)$$, :p1, :p1),
  'complete_tasks reports only the (id, token) that completed, in the order asked');
select results_eq(
  format($$select completed from taskwarden.complete_tasks(array[%s, %s]::bigint[], array[%L, gen_random_uuid()]::uuid[])$$, :p1, :p1, :'ptok'),
  $$values (true), (false)$$, 'and its retry answers the real token true, the bogus one false');

-- Idempotent fences: a retry with the same token gets the first answer, never TW001, and never
-- the token of whoever holds the task now.
select taskwarden.enqueue_task('retry', max_attempts => 3);
select id as r1, lease_token as rtok from taskwarden.claim_tasks('retry#1', array['retry']) \gset
select results_eq(format($$select status, attempts, lease_token from taskwarden.fail_task(%s, %L, 'smtp timeout')$$, :r1, :'rtok'),
                  $$values ('queued', 1, null::uuid)$$, 'fail_task requeues');
select results_eq(format($$select status, attempts, lease_token, last_error from taskwarden.fail_task(%s, %L, 'smtp timeout')$$, :r1, :'rtok'),
                  $$values ('queued', 1, null::uuid, 'smtp timeout')$$, 'fail_task retried with the same token: the same answer, not lease lost');
select lease_token as rtok2 from taskwarden.claim_tasks('retry#2', array['retry']) \gset
select results_eq(format($$select status, owner_id, lease_token from taskwarden.fail_task(%s, %L, 'smtp timeout')$$, :r1, :'rtok'),
                  $$values ('queued', null::text, null::uuid)$$,
                  'a retry after someone else claimed the task still gets its first answer, not the new holder''s token');
select results_eq(format($$select status, owner_id, lease_token, attempts from taskwarden.tasks where id = %s$$, :r1),
                  format($$values ('running', 'retry#2', %L::uuid, 2)$$, :'rtok2'), 'and changes nothing of the new claim');
select is((select count(*)::int from taskwarden.task_events where task_id = :r1 and event = 'failed'), 1, 'the retry logged nothing');
select throws_ok(format($$select taskwarden.release_task(%s, %L)$$, :r1, :'rtok'), 'TW001', null,
                 'the failed claim''s token cannot release (another kind of write): lease lost');
select results_eq(format($$select status, attempts from taskwarden.fail_task(%s, %L, 'bounced', retryable => false)$$, :r1, :'rtok2'),
                  $$values ('failed', 2)$$, 'a final failure');
select results_eq(format($$select status, attempts from taskwarden.fail_task(%s, %L, 'bounced', retryable => false)$$, :r1, :'rtok2'),
                  $$values ('failed', 2)$$, 'retried: failed again, not lease lost');
select is((select count(*)::int from taskwarden.task_events where task_id = :r1 and event = 'dead_lettered'), 1, 'dead-lettered once');

select taskwarden.enqueue_task('retry-release');
select id as l1, lease_token as ltok from taskwarden.claim_tasks('retry#1', array['retry-release']) \gset
select results_eq(format($$select status, attempts, lease_token from taskwarden.release_task(%s, %L)$$, :l1, :'ltok'),
                  $$values ('queued', 0, null::uuid)$$, 'release_task gives the task back');
select results_eq(format($$select status, attempts, lease_token from taskwarden.release_task(%s, %L)$$, :l1, :'ltok'),
                  $$values ('queued', 0, null::uuid)$$, 'release_task retried with the same token: the same answer, not lease lost');
select lease_token as ltok2 from taskwarden.claim_tasks('retry#2', array['retry-release']) \gset
select results_eq(format($$select status, lease_token from taskwarden.release_task(%s, %L)$$, :l1, :'ltok'),
                  $$values ('queued', null::uuid)$$, 'and again after another claim, without the new token');
select is((select lease_token from taskwarden.tasks where id = :l1), :'ltok2'::uuid, 'the new claim is untouched');
select throws_ok(format($$select taskwarden.complete_task(%s, %L)$$, :l1, :'ltok'), 'TW001', null,
                 'a released claim cannot complete: lease lost');
select is((taskwarden.complete_task(:l1, :'ltok2')).status, 'completed', 'the new holder completes');
select is((taskwarden.complete_task(:l1, :'ltok2')).status, 'completed', 'and its retry is answered completed');

select * from finish();
rollback;
