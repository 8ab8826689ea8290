-- Nonsense input is refused with TW002 naming the argument, and nothing is written: times that
-- never come, JSON over the size limit or nested 5,000 deep, blank task types, bad alert channels.
begin;
select no_plan();

create temporary table counts_before as
select (select count(*) from taskwarden.tasks) as tasks, (select count(*) from taskwarden.runs) as runs;

-- run_at
select throws_ok($$select taskwarden.enqueue_task('t', run_at => 'infinity')$$, 'TW002',
                 'run_at must be a finite time (got infinity)', 'run_at => infinity is refused (the task would never run)');
select throws_ok($$select taskwarden.enqueue_task('t', run_at => '-infinity')$$, 'TW002',
                 'run_at must be a finite time (got -infinity)', 'run_at => -infinity is refused');
select throws_ok($$select taskwarden.enqueue_tasks('t', array['{}', '{}']::jsonb[], run_at => 'infinity')$$, 'TW002', null,
                 'enqueue_tasks refuses run_at => infinity too');

-- size limit (max_json_bytes, 1 MiB by default)
select throws_ok($$select taskwarden.enqueue_task('t', jsonb_build_object('blob', repeat('x', 10 * 1024 * 1024)))$$, 'TW002',
                 'payload is too large (10485772 bytes of JSON, at most 1048576 by the setting max_json_bytes)', 'a 10 MB payload is refused, naming payload');
select throws_ok($$select taskwarden.enqueue_tasks('t', array['{}', jsonb_build_object('blob', repeat('x', 2 * 1024 * 1024))])$$, 'TW002',
                 'payloads[2] is too large (2097164 bytes of JSON, at most 1048576 by the setting max_json_bytes)', 'enqueue_tasks names the payload at fault');
select throws_ok($$select taskwarden.create_run('big', jsonb_build_object('blob', repeat('x', 2 * 1024 * 1024)))$$, 'TW002',
                 'metadata is too large (2097164 bytes of JSON, at most 1048576 by the setting max_json_bytes)', 'create_run refuses metadata over the limit');
update taskwarden.settings set value = '2048' where key = 'max_json_bytes';
select throws_ok($$select taskwarden.enqueue_task('t', jsonb_build_object('blob', repeat('x', 3000)))$$, 'TW002', null,
                 'the limit follows the max_json_bytes setting');
select lives_ok($$select taskwarden.enqueue_task('t', jsonb_build_object('blob', repeat('x', 1000)))$$, 'a payload under it is accepted');
update taskwarden.settings set value = '1048576' where key = 'max_json_bytes';

-- nesting: 5,000 levels deep
select throws_ok(format($$select taskwarden.enqueue_task('t', %L::jsonb)$$, repeat('[', 5000) || repeat(']', 5000)), 'TW002',
                 'payload is nested too deeply (more than 64 levels)', 'a payload nested 5,000 deep is refused');
select throws_ok(format($$select taskwarden.enqueue_tasks('t', array['{}', %L]::jsonb[])$$, repeat('{"a":', 100) || '1' || repeat('}', 100)), 'TW002',
                 'payloads[2] is nested too deeply (more than 64 levels)', 'enqueue_tasks names the deep payload');
select throws_ok(format($$select taskwarden.create_run('deep', %L::jsonb)$$, '{"a":' || repeat('[', 5000) || repeat(']', 5000) || '}'), 'TW002',
                 'metadata is nested too deeply (more than 64 levels)', 'create_run refuses metadata nested 5,000 deep');
select lives_ok(format($$select taskwarden.enqueue_task('t', %L::jsonb)$$, repeat('[', 60) || repeat(']', 60)), '60 levels are fine');
select lives_ok($$select taskwarden.enqueue_tasks('t', array[jsonb_build_object('s', repeat('[{', 100)), (select jsonb_agg('[]'::jsonb) from generate_series(1, 100))])$$,
                'many brackets in strings or side by side are not depth');

-- task_type of whitespace
select throws_ok($$select taskwarden.enqueue_task('   ')$$, 'TW002', 'task_type must be a non-empty string', 'a task_type of spaces is refused');
select throws_ok(format($$select taskwarden.enqueue_task(%L)$$, E'\t\n '), 'TW002', 'task_type must be a non-empty string',
                 'a task_type of tabs and newlines is refused');
select throws_ok(format($$select taskwarden.enqueue_tasks(%L, array['{}'::jsonb])$$, E'\u00a0\r'), 'TW002', null,
                 'a task_type of other white space is refused');

select results_eq($$select (select count(*) from taskwarden.tasks) - 4, (select count(*) from taskwarden.runs) from counts_before$$,
                  $$select tasks, runs from counts_before$$, 'nothing was written by any refused call (only the four accepted tasks)');

-- sync_alerts: bad channels are a TW002 naming channels, and nothing is written
select * from taskwarden.upsert_worker_heartbeat('alerting#a', 'alert');
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '1 hour' where worker_id = 'alerting#a';
select throws_ok($$select * from taskwarden.sync_alerts(array['email', ''])$$, 'TW002', null, 'an empty channel is refused');
select throws_ok($$select * from taskwarden.sync_alerts(array[' '])$$, 'TW002', null, 'a blank channel is refused');
select throws_ok(format($$select * from taskwarden.sync_alerts(array[%L])$$, repeat('c', 51)), 'TW002', null, 'a 51-character channel is refused');
select throws_ok($$select * from taskwarden.sync_alerts(array['email', 'webhook', 'email'])$$, 'TW002', null, 'a duplicated channel is refused');
select throws_ok($$select * from taskwarden.sync_alerts(array['email', 'webhook', 'email'])$$, 'TW002',
                 'channels must not repeat a channel (email is given twice)', 'the error names channels and the duplicate');
select throws_ok($$select * from taskwarden.sync_alerts(array['email', ''])$$, 'TW002',
                 'channels must be non-blank names of at most 50 characters (got "")', 'the error names channels and the bad one');
select is((select count(*)::int from taskwarden.alerts), 0, 'no alert was written by the refused calls');
select is((select count(*)::int from taskwarden.sync_alerts(array['email', 'webhook']) where subject = 'alerting#a'), 2,
          'good channels still open one alert each');
select is((select count(*)::int from taskwarden.sync_alerts(array[repeat('c', 50)]) where subject = 'alerting#a'), 1,
          'a 50-character channel is fine');

-- results and heartbeat metadata are bounded like payloads (a 2 MB result used to sit in the row)
update taskwarden.settings set value = '1024' where key = 'max_json_bytes';
select taskwarden.enqueue_task('bounded', '{}');
create temp table bounded_claim as select id, lease_token from taskwarden.claim_tasks('bounded#1', array['bounded']);
select throws_ok(format($$select taskwarden.complete_task(%s, %L, jsonb_build_object('blob', repeat('x', 2000)))$$,
                        (select id from bounded_claim), (select lease_token from bounded_claim)),
                 'TW002', null, 'complete_task refuses a result over max_json_bytes');
select throws_ok(format($$select * from taskwarden.complete_tasks(array[%s]::bigint[], array[%L]::uuid[], array[jsonb_build_object('blob', repeat('x', 2000))])$$,
                        (select id from bounded_claim), (select lease_token from bounded_claim)),
                 'TW002', null, 'complete_tasks refuses a result over max_json_bytes');
select is((select status from taskwarden.tasks where id = (select id from bounded_claim)), 'running',
          'the refused completions left the task running under its lease');
select throws_ok($$select * from taskwarden.upsert_worker_heartbeat('bounded#1', 'bounded', metadata => jsonb_build_object('blob', repeat('x', 2000)))$$,
                 'TW002', null, 'a heartbeat refuses metadata over max_json_bytes');
select lives_ok(format($$select taskwarden.complete_task(%s, %L, '{"ok": true}')$$,
                       (select id from bounded_claim), (select lease_token from bounded_claim)),
                'a result within the limit completes the task');

select * from finish();
rollback;
