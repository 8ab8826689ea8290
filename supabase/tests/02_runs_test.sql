-- Runs: lifecycle, completed_at on every terminal run, idempotent terminal transitions,
-- cancellation reaching tasks, stale-run detection and cleanup (dry run by default).
begin;
select no_plan();

select id as r1 from taskwarden.create_run('lead list', '{"source": "crm"}') \gset
select is((select status from taskwarden.runs where id = :'r1'), 'pending', 'create_run makes a pending run');
select throws_ok($$select taskwarden.create_run('')$$, 'TW002', 'name must be a non-empty string', 'a blank name is refused');
select throws_ok($$select taskwarden.create_run('x', '[1]')$$, 'TW002', 'metadata must be a JSON object', 'non-object metadata is refused');
select is((taskwarden.start_run(:'r1')).status, 'running', 'start_run makes it running');
select is((taskwarden.start_run(:'r1')).status, 'running', 'start_run is idempotent on a running run');
select throws_ok($$select taskwarden.start_run(gen_random_uuid())$$, 'TW003', null, 'start_run of an unknown run: not found');
select throws_ok($$select taskwarden.start_run(null)$$, 'TW002', 'run_id must not be null', 'start_run of null: invalid argument');

select results_eq(format($$select status, completed_at is not null, error from taskwarden.finish_run(%L)$$, :'r1'),
                  $$values ('completed', true, null::text)$$, 'finish_run completes with completed_at');
select results_eq(format($$select status, error from taskwarden.finish_run(%L, 'late error')$$, :'r1'),
                  $$values ('completed', null::text)$$, 'finish_run on a terminal run changes nothing');
select throws_ok(format($$select taskwarden.start_run(%L)$$, :'r1'), 'TW004', null, 'a completed run cannot be restarted');

select id as r2 from taskwarden.create_run('benchmark') \gset
select results_eq(format($$select status, completed_at is not null, error from taskwarden.finish_run(%L, 'crashed')$$, :'r2'),
                  $$values ('failed', true, 'crashed')$$, 'finish_run with an error fails the run with completed_at');

-- cancel reaches queued and running tasks
select id as r3 from taskwarden.create_run('to cancel') \gset
select taskwarden.enqueue_task('job', run_id => :'r3') from generate_series(1, 3);
select id as held, lease_token as held_token from taskwarden.claim_tasks('w1', run_id => :'r3') \gset
select is((select status from taskwarden.runs where id = :'r3'), 'running', 'claiming a task starts its pending run');
select is((taskwarden.cancel_run(:'r3', 'user aborted')).status, 'cancelled', 'cancel_run cancels the run');
select is((select count(*)::int from taskwarden.tasks where run_id = :'r3' and status = 'cancelled'), 3, 'its queued and running tasks are cancelled');
select throws_ok(format($$select taskwarden.complete_task(%s, %L)$$, :held, :'held_token'), 'TW001', null, 'the holder of a task of a cancelled run is refused');
select throws_ok(format($$select taskwarden.enqueue_task('job', run_id => %L)$$, :'r3'), 'TW004', null, 'a cancelled run accepts no new task');
select is((taskwarden.cancel_run(:'r3')).error, 'user aborted', 'cancel_run is idempotent');

select id as r4 from taskwarden.create_run('to archive') \gset
select results_eq(format($$select status, completed_at is not null, metadata ->> 'archive_note' from taskwarden.archive_run(%L, 'old')$$, :'r4'),
                  $$values ('archived', true, 'old')$$, 'archive_run archives with completed_at and the note');
select is((taskwarden.archive_run(:'r1')).status, 'archived', 'a completed run can be archived');

-- stale runs: running for 30 h with no task progress
select id as r5 from taskwarden.create_run('stuck since yesterday') \gset
select taskwarden.start_run(:'r5');
select id as r5t from taskwarden.enqueue_task('job', run_id => :'r5') \gset
update taskwarden.runs set started_at = now() - interval '30 hours' where id = :'r5';
update taskwarden.tasks set updated_at = now() - interval '30 hours', created_at = now() - interval '30 hours' where run_id = :'r5';
select id as r6 from taskwarden.create_run('long but alive') \gset
select taskwarden.start_run(:'r6');
select taskwarden.enqueue_task('job', run_id => :'r6');
update taskwarden.runs set started_at = now() - interval '30 hours' where id = :'r6';

select ok(taskwarden.is_run_stale(:'r5'), 'a run with no progress for 30 h is stale');
select ok(not taskwarden.is_run_stale(:'r6'), 'a run whose tasks progressed recently is not stale');
select ok(not taskwarden.is_run_stale(:'r5', 48), 'the threshold is respected');
select throws_ok($$select taskwarden.is_run_stale(gen_random_uuid())$$, 'TW003', null, 'is_run_stale of an unknown run: not found');
select is((select array_agg(run_id) from taskwarden.find_stale_runs(24)), array[:'r5'::uuid], 'find_stale_runs lists exactly the stale run');
select throws_ok($$select * from taskwarden.find_stale_runs(-1)$$, 'TW002', null, 'a negative threshold is refused');

select results_eq($$select run_id, action from taskwarden.cleanup_stale_runs(24)$$,
                  format($$values (%L::uuid, 'would_fail')$$, :'r5'), 'cleanup_stale_runs is a dry run by default');
select is((select status from taskwarden.runs where id = :'r5'), 'running', 'the dry run changed nothing');
select results_eq($$select run_id, action, status from taskwarden.cleanup_stale_runs(24, dry_run => false)$$,
                  format($$values (%L::uuid, 'failed', 'failed')$$, :'r5'), 'cleanup_stale_runs(dry_run => false) fails it');
select results_eq(format($$select status, error, completed_at is not null from taskwarden.runs where id = %L$$, :'r5'),
                  $$values ('failed', 'Run marked as stale after 24h with no completion', true)$$,
                  'the stale run is failed with the message and completed_at');
select is((select status from taskwarden.tasks where id = :r5t), 'cancelled', 'its queued task is cancelled');
select is((select reason from taskwarden.task_events where task_id = :r5t), 'run_stale', 'with reason run_stale');
select is((select count(*)::int from taskwarden.cleanup_stale_runs(24, dry_run => false)), 0, 'a second cleanup finds nothing more');

select results_eq(format($$select tasks_total, tasks_cancelled, percent_done from taskwarden.v_run_progress where run_id = %L$$, :'r3'),
                  $$values (3::bigint, 3::bigint, 0.0)$$, 'v_run_progress counts tasks per run (cancelled ones are not done)');

select * from finish();
rollback;
