-- Settings are typed and range-checked when written: a bad value is refused with TW002 naming
-- the key, the old value stays, and reap() keeps working; a setting cannot be deleted.
begin;
select no_plan();

select * from taskwarden.upsert_worker_heartbeat('settings#a', 'set');
select id as leased from taskwarden.enqueue_task('set') \gset
select count(*) from taskwarden.claim_tasks('settings#a', array['set'], lease_seconds => 60);
update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where id = :leased;

create temporary table refused (key text, bad text, message text);
insert into refused values
  ('reap_max_rounds', '0', 'setting reap_max_rounds must be between 1 and 1000 (got 0)'),
  ('dead_worker_seconds', '-5', 'setting dead_worker_seconds must be between 1 and 604800 (got -5)'),
  ('reap_batch', '"abc"', 'setting reap_batch must be a whole number between 1 and 10000 (got "abc")'),
  ('log_success_events', '"maybe"', 'setting log_success_events must be true or false (got "maybe")'),
  ('reap_batch', '2.5', 'setting reap_batch must be a whole number between 1 and 10000 (got 2.5)'),
  ('lease_seconds', 'null', 'setting lease_seconds must be a single integer value between 1 and 86400 (got null)'),
  ('lease_seconds', '[600]', 'setting lease_seconds must be a single integer value between 1 and 86400 (got [600])'),
  ('retry_base_seconds', '"NaN"', 'setting retry_base_seconds must be a number between 0 and 86400 (got "NaN")');

create temporary table before as select key, value from taskwarden.settings;

-- each refused write, then a reap, as a client would see them
select x.tap
from refused r
cross join lateral (values
  (throws_ok(format('update taskwarden.settings set value = %L::jsonb where key = %L', r.bad, r.key), 'TW002', r.message,
             format('%s = %s is refused with TW002 naming the key', r.key, r.bad))),
  (ok((taskwarden.reap('after-' || r.key)) ->> 'skipped' = 'false', format('reap() works after the refused %s = %s', r.key, r.bad)))
) x (tap);
select results_eq($$select key, value from taskwarden.settings order by key$$, $$select key, value from before order by key$$,
                  'every refused write left the old value');
select is((select status from taskwarden.tasks where id = :leased), 'queued', 'the reaps took back the expired lease');
select is((select count(*)::int from taskwarden.reaper_runs where source like 'after-%' and not skipped), 8, 'every reap ran and was logged');

-- a row cannot be deleted, and the reaper's reads keep working
select throws_ok($$delete from taskwarden.settings where key = 'reap_batch'$$, 'TW002', 'setting reap_batch cannot be deleted',
                 'a setting cannot be deleted');
select throws_ok($$delete from taskwarden.settings$$, 'TW002', null, 'nor all of them');
select throws_ok($$update taskwarden.settings set key = 'reap_batch_old' where key = 'reap_batch'$$, 'TW002',
                 'setting reap_batch cannot be renamed', 'nor renamed away (which would delete it under its name)');
select is((select count(*)::int from taskwarden.settings), (select count(*)::int from before), 'every setting is still there');

-- good values are accepted and normalised
update taskwarden.settings set value = '" 20 "' where key = 'reap_batch';
select is((select value from taskwarden.settings where key = 'reap_batch'), '20'::jsonb, 'a numeric string is stored as a number');
update taskwarden.settings set value = '"FALSE"' where key = 'log_success_events';
select is((select value from taskwarden.settings where key = 'log_success_events'), 'false'::jsonb, 'a boolean string is stored as a boolean');
select ok((taskwarden.reap('settings-test-2')) ->> 'skipped' = 'false', 'reap() works with the new values');

select * from finish();
rollback;
