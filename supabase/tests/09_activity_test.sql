-- The dashboard's activity chart (get_task_activity): a final failure is one failed attempt, not
-- two; completions are counted from the tasks themselves, so the chart is right with
-- log_success_events off; closed buckets come from the reaper's roll-ups (task_activity), and
-- rolled up or counted live, the answer is the same.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';
-- Claims are counted from claim events, written only with success events on (off by default).
update taskwarden.settings set value = 'true' where key = 'log_success_events';

create temporary view totals as
select coalesce(sum(completed), 0)::int as completed, coalesce(sum(failed), 0)::int as failed,
       coalesce(sum(requeued), 0)::int as requeued, coalesce(sum(claimed), 0)::int as claimed
from taskwarden.get_task_activity(minutes => 5, bucket_seconds => 60);

-- A handler's final failure writes `failed` and `dead_lettered`: one failed attempt.
select id as t1 from taskwarden.enqueue_task('act', max_attempts => 1) \gset
select lease_token as tok1 from taskwarden.claim_tasks('w#act', array['act']) \gset
select ok((taskwarden.fail_task(:t1, :'tok1', 'boom', retryable => false)).status = 'failed', 'the task failed for good');
select results_eq('select completed, failed, requeued, claimed from totals', $$values (0, 1, 0, 1)$$,
                  'a final failure counts once, not once per event it wrote');

-- A retryable failure is one failed attempt too; the retry that spends the budget is another.
select id as t2 from taskwarden.enqueue_task('act2', max_attempts => 2) \gset
select lease_token as tok2 from taskwarden.claim_tasks('w#act', array['act2']) \gset
select lives_ok(format($$select taskwarden.fail_task(%s, %L, 'again')$$, :t2, :'tok2'), 'a retryable failure');
select lease_token as tok2b from taskwarden.claim_tasks('w#act', array['act2']) \gset
select lives_ok(format($$select taskwarden.fail_task(%s, %L, 'again')$$, :t2, :'tok2b'), 'its last attempt fails too');
select is((select failed from totals), 3, 'each failed attempt counts once');

-- The reaper's final take-back of a crashed attempt writes only `dead_lettered`: it counts.
select id as t3 from taskwarden.enqueue_task('act3', max_attempts => 1) \gset
select count(*) from taskwarden.claim_tasks('w#act', array['act3']);
update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where id = :t3;
select is((taskwarden.reap('test') -> 'lease_expired' ->> 'failed')::int, 1, 'the reaper fails a task whose last lease expired');
select is((select failed from totals), 4, 'and that lost attempt counts as failed');

-- Completions are counted from the tasks, with or without success events.
update taskwarden.settings set value = 'false' where key = 'log_success_events';
select id as t4 from taskwarden.enqueue_task('act4') \gset
select lease_token as tok4 from taskwarden.claim_tasks('w#act', array['act4']) \gset
select ok((taskwarden.complete_task(:t4, :'tok4')).status = 'completed', 'a task completes with success events off');
select is((select count(*)::int from taskwarden.task_events where task_id = :t4), 0, 'and writes no event');
select results_eq('select completed, claimed from totals', $$values (1, 4)$$,
                  'the completion is counted all the same (claims are counted from claim events, when written)');
update taskwarden.settings set value = 'true' where key = 'log_success_events';
select id as t5 from taskwarden.enqueue_task('act5') \gset
select lease_token as tok5 from taskwarden.claim_tasks('w#act', array['act5']) \gset
select ok((taskwarden.complete_task(:t5, :'tok5')).status = 'completed', 'a task completes with success events on');
select results_eq('select completed, claimed from totals', $$values (2, 5)$$, 'its completion event is not counted a second time');

-- Roll-ups. Earlier work, ten and twenty minutes back, completed and requeued: the roll-up
-- starts where the last one stopped (here: 25 minutes back) and goes up to now() minus the lag.
update taskwarden.settings set value = '3600' where key = 'activity_rollup_max_seconds';
delete from taskwarden.task_activity;
insert into taskwarden.task_activity (bucket_start)
values (date_bin(interval '10 seconds', now() - interval '25 minutes', timestamptz 'epoch'));
insert into taskwarden.tasks (task_type, status, attempts, started_at, completed_at)
select 'past', 'completed', 1, now() - m * interval '1 minute', now() - m * interval '1 minute'
from (values (10), (10), (20)) v (m);
insert into taskwarden.task_events (task_id, event, actor, created_at)
select t.id, 'requeued', 'reaper', now() - interval '20 minutes' from taskwarden.tasks t where t.task_type = 'past' limit 1;
create temporary table live_answer as select * from taskwarden.get_task_activity(minutes => 30, bucket_seconds => 60);
select is((select sum(completed)::int from live_answer), 5, 'counted live: the three earlier completions and the two above');

select is((taskwarden.reap('test', dry_run => true) -> 'activity' ->> 'buckets')::int, 0, 'a dry reap rolls nothing up');
select is((taskwarden.reap('test') -> 'activity' ->> 'buckets')::int, 143,
          'a reap rolls up every 10-second bucket from the last roll-up to a minute ago');
select results_eq($$select sum(completed)::int, sum(requeued)::int from taskwarden.task_activity$$, $$values (3, 1)$$,
                  'the roll-ups hold the earlier work');
select is((taskwarden.reap('test') -> 'activity' ->> 'buckets')::int, 0, 'the next reap has nothing to roll up');
select results_eq('select * from taskwarden.get_task_activity(minutes => 30, bucket_seconds => 60)',
                  'select * from live_answer', 'rolled up or counted live, the chart is the same');

-- The roll-ups outlive the rows they counted (retention deletes finished tasks after a day).
delete from taskwarden.tasks where task_type = 'past';
select is((select sum(completed)::int from taskwarden.get_task_activity(minutes => 30, bucket_seconds => 60)), 5,
          'the chart still shows work whose rows are gone');
select is((select sum(completed)::int from taskwarden.get_task_activity(minutes => 30, bucket_seconds => 7)), 2,
          'buckets the 10-second roll-ups cannot be split into (7 s) are counted from the rows alone');

-- Roll-ups past activity_retention_days are deleted by the reap that adds new ones.
insert into taskwarden.task_activity (bucket_start)
values (date_bin(interval '10 seconds', now() - interval '8 days', timestamptz 'epoch'));
update taskwarden.settings set value = '0' where key = 'activity_rollup_lag_seconds';
select is((taskwarden.reap('test') -> 'activity' ->> 'deleted')::int, 1, 'a roll-up older than its retention is deleted');
select is((select min(bucket_start) from taskwarden.task_activity),
          date_bin(interval '10 seconds', now() - interval '25 minutes', timestamptz 'epoch'), 'the others stay');

select throws_ok($$select * from taskwarden.get_task_activity(minutes => 0)$$, 'TW002', null, 'minutes 0 is refused');
select throws_ok($$select * from taskwarden.get_task_activity(bucket_seconds => 0)$$, 'TW002', null, 'bucket_seconds 0 is refused');

select * from finish();
rollback;
