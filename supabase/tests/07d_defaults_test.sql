-- One source per default: a tunable argument left out (or passed as null) takes its setting from
-- taskwarden.settings, so changing a setting changes every caller that did not choose otherwise.
-- No function carries a copy of the value: the arguments default to null, the readers take no
-- fallback.
begin;
select no_plan();

-- The arguments that fall back to a setting default to null, never to a literal.
select is(
  (select array_agg(format('%s.%s = %s', c.f, c.arg, coalesce(d.expr, '(none)')) order by c.f, c.arg)
   from (values
     ('claim_tasks', 'lease_seconds'), ('renew_task_lease', 'lease_seconds'),
     ('enqueue_task', 'max_attempts'), ('enqueue_tasks', 'max_attempts'),
     ('cleanup_stale_running_tasks', 'stale_minutes'), ('cleanup_stale_running_tasks', 'max_attempts'),
     ('cleanup_stale_running_tasks', 'batch_size'), ('release_dead_worker_leases', 'dead_after_seconds'),
     ('cleanup_stale_workers', 'stale_minutes'), ('find_stale_runs', 'stale_hours'),
     ('is_run_stale', 'stale_hours'), ('cleanup_stale_runs', 'stale_hours'),
     ('upsert_worker_heartbeat', 'lease_seconds'), ('schedule_reaper', 'interval_seconds')) as c (f, arg)
   left join lateral (
     -- pg_get_function_arg_default numbers the arguments from 1
     select pg_get_function_arg_default(p.oid, array_position(p.proargnames, c.arg)) as expr
     from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'taskwarden' and p.proname = c.f
   ) d on true
   where d.expr is distinct from 'NULL::integer' and d.expr is distinct from 'NULL::numeric'),
  null, 'every argument with a setting behind it defaults to null');
select has_function('taskwarden', '_setting_num', array['text'], 'the numeric reader takes the key alone');
select hasnt_function('taskwarden', '_setting_num', array['text', 'numeric'], 'and no fallback value');
select hasnt_function('taskwarden', '_setting_bool', array['text', 'boolean'], 'nor does the boolean reader');
select throws_ok($$select taskwarden._setting_num('no_such_setting')$$, 'TW003',
                 'setting no_such_setting is missing from taskwarden.settings', 'a missing setting is an error, not a silent null');

-- Today's defaults are the settings' values.
select results_eq(
  $$select key, value from taskwarden.settings
    where key in ('lease_seconds', 'max_attempts', 'task_stale_seconds', 'max_requeue', 'reap_batch',
                  'dead_worker_seconds', 'worker_retention_minutes', 'run_stale_hours') order by key$$,
  $$values ('dead_worker_seconds', '30'::jsonb), ('lease_seconds', '600'), ('max_attempts', '3'), ('max_requeue', '3'),
           ('reap_batch', '200'), ('run_stale_hours', '24'), ('task_stale_seconds', '900'), ('worker_retention_minutes', '60')$$,
  'the settings hold the defaults the arguments had');

-- Claims and renewals: the lease_seconds setting.
update taskwarden.settings set value = '120' where key = 'lease_seconds';
select id as t1 from taskwarden.enqueue_task('defaults') \gset
select lease_token as k1, lease_seconds as claimed_lease, lease_expires_at - now() as claimed_for
from taskwarden.claim_tasks('defaults#a', array['defaults']) \gset
select is(:claimed_lease, 120, 'claim_tasks without lease_seconds takes the lease_seconds setting');
select is(:'claimed_for'::interval, interval '120 seconds', 'and its lease runs that long');
select is((select lease_seconds from taskwarden.claim_tasks('defaults#a', array['none-such'], lease_seconds => null)), null,
          'an explicit null is the setting too (nothing to claim here, and no error)');
update taskwarden.settings set value = '90' where key = 'lease_seconds';
select is((select lease_expires_at - now() from taskwarden.renew_task_lease(:t1, :'k1')), interval '90 seconds',
          'renew_task_lease without lease_seconds takes the setting');
select is((select lease_seconds from taskwarden.renew_task_lease(:t1, :'k1', 45)), 45, 'a given lease_seconds still wins');
select throws_ok(format($$select taskwarden.renew_task_lease(%s, %L, 0)$$, :t1, :'k1'), 'TW002',
                 'lease_seconds must be between 1 and 86400 (got 0)', 'and is still range-checked');

-- Enqueues: the max_attempts setting.
update taskwarden.settings set value = '7' where key = 'max_attempts';
select is((select max_attempts from taskwarden.enqueue_task('defaults')), 7, 'enqueue_task without max_attempts takes the setting');
select is((select array_agg(max_attempts) from taskwarden.enqueue_tasks('defaults', array['{}', '{}']::jsonb[])), array[7, 7],
          'so does enqueue_tasks');
select is((select max_attempts from taskwarden.enqueue_task('defaults', max_attempts => 2)), 2, 'a given max_attempts still wins');

-- The stale-task cleanup: task_stale_seconds, max_requeue and reap_batch.
insert into taskwarden.tasks (task_type, status, attempts, max_attempts, started_at, owner_id, updated_at)
values ('legacy', 'running', 1, 5, now() - interval '10 minutes', 'legacy-worker', now() - interval '10 minutes'),
       ('legacy', 'running', 1, 5, now() - interval '10 minutes', 'legacy-worker', now() - interval '10 minutes');
select is((select count(*)::int from taskwarden.cleanup_stale_running_tasks(dry_run => true)), 0,
          'not stale by the default 900 s');
update taskwarden.settings set value = '300' where key = 'task_stale_seconds';
update taskwarden.settings set value = '1' where key = 'max_requeue';
update taskwarden.settings set value = '1' where key = 'reap_batch';
select results_eq($$select action, reason from taskwarden.cleanup_stale_running_tasks(dry_run => true)$$,
                  $$values ('would_fail', 'stale')$$,
                  'stale by task_stale_seconds, failed by the max_requeue budget, one row by reap_batch');

-- Dead workers: dead_worker_seconds.
select * from taskwarden.upsert_worker_heartbeat('defaults#dead', 'defaults') \gset
select id as t2 from taskwarden.enqueue_task('defaults-dead') \gset
select count(*) from taskwarden.claim_tasks('defaults#dead', array['defaults-dead']);
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '60 seconds' where worker_id = 'defaults#dead';
select results_eq($$select task_id, reason from taskwarden.release_dead_worker_leases()$$,
                  format($$values (%s::bigint, 'worker_dead')$$, :t2),
                  'release_dead_worker_leases() counts a worker dead by dead_worker_seconds (30 s)');

-- Worker rows: worker_retention_minutes.
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '20 minutes', status = 'stopped',
  stopped_at = now() - interval '20 minutes' where worker_id = 'defaults#dead';
select is(taskwarden.cleanup_stale_workers(), 0, 'kept for the default 60 minutes');
update taskwarden.settings set value = '10' where key = 'worker_retention_minutes';
select is(taskwarden.cleanup_stale_workers(), 1, 'deleted once past worker_retention_minutes');

-- Runs: run_stale_hours.
select id as r1 from taskwarden.create_run('defaults-run') \gset
update taskwarden.runs set status = 'running', started_at = now() - interval '3 hours' where id = :'r1';
select ok(not taskwarden.is_run_stale(:'r1'), 'not stale by the default 24 h');
update taskwarden.settings set value = '2' where key = 'run_stale_hours';
select ok(taskwarden.is_run_stale(:'r1'), 'stale past run_stale_hours');
select is((select array_agg(run_id) from taskwarden.find_stale_runs()), array[:'r1'::uuid], 'find_stale_runs() agrees');
select results_eq($$select action, status from taskwarden.cleanup_stale_runs()$$, $$values ('would_fail', 'running')$$,
                  'cleanup_stale_runs() too (a dry run)');
select is((select array_agg(run_id) from taskwarden.cleanup_stale_runs(dry_run => false)), array[:'r1'::uuid], 'and fails it');
select is((select error from taskwarden.runs where id = :'r1'), 'Run marked as stale after 2h with no completion',
          'its message names the setting''s threshold');

select * from finish();
rollback;
