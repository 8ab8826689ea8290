-- The attempt budget: attempts never exceed max_attempts (CHECK constraints), and an operator's
-- requeue of a running task does not spend the attempt it interrupted.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';

-- The attempt budget is a constraint; an operator's requeue of a running task gives its attempt back.
select id as b1 from taskwarden.enqueue_task('budget', max_attempts => 1) \gset
select 1 from taskwarden.upsert_worker_heartbeat('budget#1', 'budget', 'processing');
select lease_token as btok from taskwarden.claim_tasks('budget#1', array['budget']) \gset
select results_eq(format($$select status, attempts from taskwarden.requeue_task(%s, 'stuck')$$, :b1),
                  $$values ('queued', 0)$$, 'requeue_task of a running task at its last attempt gives the attempt back');
-- Its holder dies, so the requeued task may be claimed at once.
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '1 day' where worker_id = 'budget#1';
select results_eq($$select attempts, max_attempts from taskwarden.claim_tasks('budget#2', array['budget'])$$,
                  $$values (1, 1)$$, 'the next claim is attempt 1 of 1, never 2 of 1');
select throws_ok(format($$update taskwarden.tasks set attempts = 2 where id = %s$$, :b1), '23514', null,
                 'attempts above max_attempts violate a CHECK constraint');
select throws_ok(format($$update taskwarden.tasks set status = 'queued', owner_id = null, lease_token = null where id = %s$$, :b1), '23514', null,
                 'a queued task without an attempt left violates a CHECK constraint');

select * from finish();
rollback;
