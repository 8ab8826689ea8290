-- Success events (claimed / completed) are off by default: the task row keeps who ran it and
-- when, and every failure, release, cancellation and reaper action is still in task_events.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';

select is((select value from taskwarden.settings where key = 'log_success_events'), 'false'::jsonb, 'log_success_events is off by default');

select count(*) from taskwarden.enqueue_tasks('quiet', array['{}', '{}', '{}', '{}']::jsonb[]);
create temp table held on commit drop as select id, lease_token from taskwarden.claim_tasks('wq', array['quiet'], 4) order by id;
select is((select count(*)::int from held), 4, 'four claimed');
select is((select count(*)::int from taskwarden.task_events e join held h on h.id = e.task_id), 0, 'a claim writes no event');

select is((taskwarden.complete_task((select min(id) from held), (select lease_token from held order by id limit 1))).status, 'completed',
          'complete_task completes');
select is((select count(*)::int from taskwarden.complete_tasks(
             (select array_agg(id order by id) from (select id from held order by id offset 1 limit 2) s),
             (select array_agg(lease_token order by id) from (select id, lease_token from held order by id offset 1 limit 2) s))
           where completed), 2, 'complete_tasks completes');
select is((select count(*)::int from taskwarden.task_events e join held h on h.id = e.task_id), 0, 'completions write no event');
select results_eq(
  $$select t.owner_id, t.started_at is not null, t.completed_at is not null, t.attempts, t.lease_token = h.lease_token
    from taskwarden.tasks t join held h using (id) where t.status = 'completed' order by id$$,
  $$values ('wq', true, true, 1, true), ('wq', true, true, 1, true), ('wq', true, true, 1, true)$$,
  'the completed row keeps its owner, start, end, attempt and the token that completed it');

-- A failure is always logged.
select is((taskwarden.fail_task((select max(id) from held), (select lease_token from held order by id desc limit 1), 'boom')).status, 'queued',
          'fail_task requeues');
select results_eq($$select event, worker_id, error from taskwarden.task_events e join held h on h.id = e.task_id$$,
                  $$values ('failed', 'wq', 'boom')$$, 'the failure is in task_events');

-- On, claims and completions are logged again.
update taskwarden.settings set value = 'true' where key = 'log_success_events';
create temp table again on commit drop as select id, lease_token from taskwarden.claim_tasks('wq', array['quiet'], 1);
select is((select count(*)::int from taskwarden.complete_tasks((select array_agg(id) from again), (select array_agg(lease_token) from again)) where completed),
          1, 'completed with the setting on');
select results_eq($$select event from taskwarden.task_events e join again a on a.id = e.task_id where e.event in ('claimed', 'completed') order by e.id$$,
                  $$values ('claimed'), ('completed')$$, 'with log_success_events on, claim and completion are logged');

select * from finish();
rollback;
