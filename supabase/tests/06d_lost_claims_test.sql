-- A claim whose answer never reached its worker is handed back by that worker's heartbeat after
-- a grace, without spending an attempt; the heartbeat answers what the worker needs to fence
-- itself; stop_worker remembers the claims it ended.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';

-- A claim whose answer never reached the worker: handed back by the heartbeat after a grace.
select throws_ok($$update taskwarden.settings set value = '0' where key = 'lost_claim_grace_seconds'$$, 'TW002', null,
                 'lost_claim_grace_seconds is range-checked');
select count(*) from taskwarden.enqueue_tasks('lost-claim', array['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[]);
create temp table lc on commit drop as select id, lease_token from taskwarden.claim_tasks('lc#1', array['lost-claim'], 3) order by id;
select min(id) as lc_held, max(id) as lc_old from lc \gset
update taskwarden.tasks set started_at = now() - interval '31 seconds' where id = :lc_old;
select results_eq(format($$select renewed_task_ids, lost_task_ids, handed_back_task_ids from taskwarden.upsert_worker_heartbeat('lc#1', 'lost', 'processing',
                            held_task_ids => array[%s]::bigint[], held_lease_tokens => (select array_agg(lease_token) from lc where id = %s))$$, :lc_held, :lc_held),
                  format($$values (array[%s]::bigint[], '{}'::bigint[], array[%s]::bigint[])$$, :lc_held, :lc_old),
                  'an owned claim the beat does not list, older than the grace, is handed back');
select results_eq(format($$select status, owner_id, attempts from taskwarden.tasks where id = %s$$, :lc_old),
                  $$values ('queued', null::text, 0)$$, 'at once and without spending an attempt');
select results_eq(format($$select event, reason, worker_id from taskwarden.task_events where task_id = %s order by id desc limit 1$$, :lc_old),
                  $$values ('released', 'claim_lost', 'lc#1')$$, 'logged as released, claim_lost');
select is((select status from taskwarden.tasks where id = (select id from lc where id not in (:lc_held, :lc_old))), 'running',
          'a claim younger than the grace is left alone (its answer may still be on its way)');
select results_eq(format($$select status, attempts from taskwarden.release_task(%s, %L)$$, :lc_old, (select lease_token from lc where id = :lc_old)),
                  $$values ('queued', 0)$$, 'a late release of the handed-back claim gets the release answer');

-- What the worker needs to fence itself: its own death line and the lease, by the database clock.
select results_eq(format($$select worker_expires_at = now() + taskwarden._dead_after(), dead_after_seconds = taskwarden._setting_num('dead_worker_seconds')::int,
                                  lease_expires_at = now() + interval '90 seconds', server_time = now()
                           from taskwarden.upsert_worker_heartbeat('lc#1', 'lost', 'processing', held_task_ids => array[%s]::bigint[], lease_seconds => 90,
                                                                   held_lease_tokens => (select array_agg(lease_token) from lc where id = %s))$$, :lc_held, :lc_held),
                  $$values (true, true, true, true)$$, 'the heartbeat answers worker_expires_at, dead_after_seconds, lease_expires_at and server_time');

-- stop_worker hands back in id order and remembers the tokens it ended.
select is(taskwarden.stop_worker('lc#1'), 2, 'stop_worker releases what the worker still owns');
select results_eq(format($$select status from taskwarden.release_task(%s, %L)$$, :lc_held, (select lease_token from lc where id = :lc_held)),
                  $$values ('queued')$$, 'a late release_task of a claim stop_worker gave back is answered, not refused');

select * from finish();
rollback;
