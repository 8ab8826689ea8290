-- The task lifecycle: enqueue, claim (fresh token, one owner), fenced renew / complete / fail /
-- release, cancel, requeue, and bad arguments that change nothing.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';
-- This file checks the whole audit trail, success events included (off by default: 01b).
update taskwarden.settings set value = 'true' where key = 'log_success_events';

-- enqueue
select is((taskwarden.enqueue_task('email', '{"to": "a@example.com"}')).status, 'queued', 'enqueue_task makes a queued task');
select is((select count(*)::int from taskwarden.enqueue_tasks('email', array['{"n": 1}', '{"n": 2}']::jsonb[])), 2,
          'enqueue_tasks inserts one row per payload');
select is((taskwarden.enqueue_task('email', max_attempts => 5, priority => 9)).max_attempts, 5, 'named optional arguments are honoured');

select throws_ok($$select taskwarden.enqueue_task('')$$, 'TW002', 'task_type must be a non-empty string', 'empty task_type is refused');
select throws_ok($$select taskwarden.enqueue_task('x', max_attempts => 0)$$, 'TW002',
                 'max_attempts must be between 1 and 1000 (got 0)', 'max_attempts 0 is refused');
select throws_ok($$select taskwarden.enqueue_task('x', payload => null)$$, 'TW002', 'payload must not be null', 'null payload is refused');
select throws_ok($$select taskwarden.enqueue_task('x', run_id => gen_random_uuid())$$, 'TW003', null, 'an unknown run_id is refused');
select throws_ok($$select taskwarden.enqueue_tasks('x', '{}'::jsonb[])$$, 'TW002', 'payloads must be a non-empty array', 'empty payloads are refused');
select is((select count(*)::int from taskwarden.tasks where task_type = 'x'), 0, 'refused enqueues wrote nothing');

-- claim: priority first, fresh token, attempt spent, one owner
select is((select array_agg(priority order by priority desc) from taskwarden.claim_tasks('w1', batch_size => 1)), array[9],
          'the highest priority task is claimed first');
select results_eq(
  $$select status, owner_id, attempts, lease_token is not null, lease_expires_at > now()
    from taskwarden.claim_tasks('w2', array['email'], batch_size => 10, lease_seconds => 60) order by id$$,
  $$values ('running', 'w2', 1, true, true), ('running', 'w2', 1, true, true), ('running', 'w2', 1, true, true)$$,
  'claim_tasks sets running, owner, a token, a lease and spends an attempt');
select is((select count(*)::int from taskwarden.claim_tasks('w3', batch_size => 10)), 0, 'nothing is handed out twice');
select is((select count(distinct lease_token)::int from taskwarden.tasks where status = 'running'), 4, 'every claim has its own token');
select is((select count(*)::int from taskwarden.task_events where event = 'claimed'), 4, 'each claim is in task_events');
select throws_ok($$select taskwarden.claim_tasks('w1', batch_size => 0)$$, 'TW002',
                 'batch_size must be between 1 and 1000 (got 0)', 'batch_size 0 is refused');
select throws_ok($$select taskwarden.claim_tasks('w1', batch_size => 10000000)$$, 'TW002', null, 'batch_size 10 million is refused');
select throws_ok($$select taskwarden.claim_tasks('w1', lease_seconds => -5)$$, 'TW002', null, 'a negative lease is refused');
select throws_ok($$select taskwarden.claim_tasks('w1', task_types => '{}')$$, 'TW002', null, 'an empty task_types array is refused');
select throws_ok($$select taskwarden.claim_tasks(' ')$$, 'TW002', 'worker_id must be a non-empty string', 'a blank worker_id is refused');

-- future tasks wait for run_at
select taskwarden.enqueue_task('later', run_at => now() + interval '1 hour');
select is((select count(*)::int from taskwarden.claim_tasks('w1', array['later'])), 0, 'a task is not claimed before run_at');

-- fencing
select t.id as t1, t.lease_token as tok1 from taskwarden.tasks t where owner_id = 'w2' order by id limit 1 \gset
select throws_ok(format($$select taskwarden.renew_task_lease(%s, gen_random_uuid())$$, :t1), 'TW001', null, 'renew with a wrong token: lease lost');
select throws_ok(format($$select taskwarden.complete_task(%s, gen_random_uuid())$$, :t1), 'TW001', null, 'complete with a wrong token: lease lost');
select throws_ok(format($$select taskwarden.fail_task(%s, gen_random_uuid(), 'boom')$$, :t1), 'TW001', null, 'fail with a wrong token: lease lost');
select throws_ok(format($$select taskwarden.release_task(%s, gen_random_uuid())$$, :t1), 'TW001', null, 'release with a wrong token: lease lost');
select throws_ok($$select taskwarden.complete_task(999999, gen_random_uuid())$$, 'TW003', 'task 999999 not found', 'an unknown task id: not found');
select ok((taskwarden.renew_task_lease(:t1, :'tok1', 3600)).lease_expires_at > now() + interval '59 minutes', 'renew with the token extends the lease');
select is((taskwarden.complete_task(:t1, :'tok1', '{"sent": true}')).status, 'completed', 'complete with the token completes');
select is((taskwarden.complete_task(:t1, :'tok1', '{"sent": true}')).status, 'completed', 'completing again with the same token is idempotent');
select ok((select completed_at is not null and result = '{"sent": true}' from taskwarden.tasks where id = :t1), 'result and completed_at are stored');
select throws_ok(format($$select taskwarden.fail_task(%s, %L, 'late')$$, :t1, :'tok1'), 'TW001', null, 'a completed task cannot be failed');

-- fail: retry with backoff while attempts remain, then failed with history
select t.id as t2, t.lease_token as tok2 from taskwarden.tasks t where owner_id = 'w2' and status = 'running' order by id limit 1 \gset
select throws_ok(format($$select taskwarden.fail_task(%s, %L, '')$$, :t2, :'tok2'), 'TW002', null, 'an empty error is refused');
select is((taskwarden.fail_task(:t2, :'tok2', 'smtp timeout')).status, 'queued', 'a retryable failure requeues');
select ok((select owner_id is null and lease_token is null and last_error = 'smtp timeout' and jsonb_array_length(errors) = 1
           from taskwarden.tasks where id = :t2), 'the requeued task lost its owner and keeps the error');
update taskwarden.tasks set max_attempts = 2 where id = :t2;
select id as t2b, lease_token as tok2b from taskwarden.claim_tasks('w4', batch_size => 10) where id = :t2 \gset
select is((taskwarden.fail_task(:t2, :'tok2b', 'smtp timeout again')).status, 'failed', 'the last attempt fails for good');
select ok((select completed_at is not null and jsonb_array_length(errors) = 2 from taskwarden.tasks where id = :t2),
          'a failed task has completed_at and its whole error history');
select is((select array_agg(event order by id) from taskwarden.task_events where task_id = :t2 and event <> 'claimed'),
          array['failed', 'failed', 'dead_lettered'], 'failures and the dead letter are in task_events');

select t.id as t3, t.lease_token as tok3 from taskwarden.tasks t where owner_id = 'w2' and status = 'running' order by id limit 1 \gset
select is((taskwarden.fail_task(:t3, :'tok3', 'bad address', retryable => false)).status, 'failed', 'a non-retryable failure fails at once');

-- release gives the attempt back
select id as t4 from taskwarden.enqueue_task('release-me') \gset
select lease_token as tok4 from taskwarden.claim_tasks('w5', array['release-me']) \gset
select results_eq(format($$select status, attempts, owner_id from taskwarden.release_task(%s, %L)$$, :t4, :'tok4'),
                  $$values ('queued', 0, null::text)$$, 'release_task requeues without spending an attempt');
select is((select event from taskwarden.task_events where task_id = :t4 order by id desc limit 1), 'released', 'the release is logged');

-- cancel and requeue
select id as t5 from taskwarden.enqueue_task('cancel-me') \gset
select lease_token as tok5 from taskwarden.claim_tasks('w6', array['cancel-me']) \gset
select is((taskwarden.cancel_task(:t5, 'not needed')).status, 'cancelled', 'a running task can be cancelled');
select throws_ok(format($$select taskwarden.complete_task(%s, %L)$$, :t5, :'tok5'), 'TW001', null, 'the holder of a cancelled task is refused');
select is((taskwarden.cancel_task(:t5)).status, 'cancelled', 'cancel is idempotent');
select throws_ok(format($$select taskwarden.cancel_task(%s)$$, :t1), 'TW004', null, 'a completed task cannot be cancelled');
select throws_ok($$select taskwarden.cancel_task(424242)$$, 'TW003', null, 'cancel of an unknown task: not found');
select results_eq(format($$select status, attempts from taskwarden.requeue_task(%s, 'operator retry')$$, :t2),
                  $$values ('queued', 0)$$, 'requeue_task gives a failed task a fresh budget');
select throws_ok(format($$select taskwarden.requeue_task(%s)$$, :t1), 'TW004', null, 'a completed task is never requeued');

select is((taskwarden.get_task(:t2)) -> 'task' ->> 'id', :t2::text, 'get_task returns the task');
select ok(jsonb_array_length((taskwarden.get_task(:t2)) -> 'events') >= 4, 'get_task returns its events');

-- batch completion: fenced per task, a lost lease is reported, not raised
select count(*) from taskwarden.enqueue_tasks('batch', array['{}', '{}', '{}']::jsonb[]);
create temp table held on commit drop as select id, lease_token from taskwarden.claim_tasks('wb', array['batch'], 3);
select results_eq(
  $$select completed from taskwarden.complete_tasks(
      (select array_agg(id order by id) from held),
      (select array_agg(case when id = (select max(id) from held) then gen_random_uuid() else lease_token end order by id) from held))$$,
  $$values (true), (true), (false)$$, 'complete_tasks completes the held ones and reports the lost one');
select is((select count(*)::int from taskwarden.tasks where task_type = 'batch' and status = 'completed'), 2, 'exactly the fenced ones are completed');
select results_eq(
  $$select completed from taskwarden.complete_tasks(
      (select array_agg(id order by id) from held where id < (select max(id) from held)),
      (select array_agg(lease_token order by id) from held where id < (select max(id) from held)))$$,
  $$values (true), (true)$$, 'complete_tasks retried with the same tokens (its answer lost in transit) still reports completed');
select is((select count(*)::int from taskwarden.task_events e join held h on h.id = e.task_id where e.event = 'completed'), 2,
  'the retry logs no second completed event');
select throws_ok($$select taskwarden.complete_tasks(array[1::bigint], '{}')$$, 'TW002', null, 'mismatched arrays are refused');

select * from finish();
rollback;
