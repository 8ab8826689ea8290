-- Security and conventions of the whole schema: RLS everywhere, nothing for anon/authenticated,
-- EXECUTE for service_role only, search_path and a comment on every function, invoker views.
begin;
select no_plan();

select ok(
  not exists (select from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'taskwarden' and c.relkind = 'r' and not c.relrowsecurity),
  'every table has row level security enabled');

select has_table('taskwarden', t, 'table ' || t || ' exists')
from unnest(array['runs', 'tasks', 'worker_heartbeats', 'task_events', 'reaper_runs', 'settings']) t;

select ok(not has_schema_privilege('anon', 'taskwarden', 'USAGE'), 'anon has no usage on the schema');
select ok(not has_schema_privilege('authenticated', 'taskwarden', 'USAGE'), 'authenticated has no usage on the schema');
select ok(has_schema_privilege('service_role', 'taskwarden', 'USAGE'), 'service_role uses the schema');

select is(
  (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace, unnest(array['anon', 'authenticated']) r
   where n.nspname = 'taskwarden' and c.relkind in ('r', 'v', 'm')
     and (has_table_privilege(r, c.oid, 'SELECT') or has_table_privilege(r, c.oid, 'INSERT')
          or has_table_privilege(r, c.oid, 'UPDATE') or has_table_privilege(r, c.oid, 'DELETE'))),
  0, 'no table or view is readable or writable by anon / authenticated');

select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'taskwarden'
     and (has_function_privilege('anon', p.oid, 'EXECUTE') or has_function_privilege('authenticated', p.oid, 'EXECUTE')
          or exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a where a.grantee = 0))),
  null, 'no function is executable by PUBLIC, anon or authenticated');

select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'taskwarden' and not has_function_privilege('service_role', p.oid, 'EXECUTE')),
  null, 'service_role may execute every function');

select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'taskwarden' and not exists (select from unnest(p.proconfig) c where c like 'search_path=%')),
  null, 'every function sets search_path');

select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'taskwarden' and obj_description(p.oid, 'pg_proc') is null),
  null, 'every function has a comment');

select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'taskwarden' and p.prosecdef),
  null, 'no function is SECURITY DEFINER');

select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'taskwarden' and c.relkind = 'v'
     and not coalesce('security_invoker=true' = any (c.reloptions), false)),
  null, 'every view is security_invoker');

select has_view('taskwarden', v, 'view ' || v || ' exists')
from unnest(array['v_active_workers', 'v_dead_workers', 'v_stale_running_tasks', 'v_task_status_counts', 'v_run_progress']) v;

-- The contract: every function of the design card with its argument names.
select has_function('taskwarden', f, args, format('%s(%s) exists', f, array_to_string(args, ', ')))
from (values
  ('create_run', array['text', 'jsonb']),
  ('start_run', array['uuid']),
  ('finish_run', array['uuid', 'text']),
  ('cancel_run', array['uuid', 'text']),
  ('archive_run', array['uuid', 'text']),
  ('is_run_stale', array['uuid', 'numeric']),
  ('find_stale_runs', array['numeric']),
  ('cleanup_stale_runs', array['numeric', 'boolean']),
  ('enqueue_task', array['text', 'jsonb', 'uuid', 'integer', 'timestamp with time zone', 'integer', 'integer']),
  ('claim_tasks', array['text', 'text[]', 'integer', 'integer', 'uuid']),
  ('renew_task_lease', array['bigint', 'uuid', 'integer']),
  ('complete_task', array['bigint', 'uuid', 'jsonb']),
  ('fail_task', array['bigint', 'uuid', 'text', 'boolean']),
  ('release_task', array['bigint', 'uuid']),
  ('cancel_task', array['bigint', 'text']),
  ('upsert_worker_heartbeat', array['text', 'text', 'text', 'uuid', 'text', 'bigint[]', 'integer', 'jsonb', 'uuid', 'uuid[]']),
  ('stop_worker', array['text', 'boolean']),
  ('request_worker_stop', array['text']),
  ('recover_worker_tasks', array['text']),
  ('release_dead_worker_leases', array['integer']),
  ('cleanup_stale_running_tasks', array['numeric', 'integer', 'integer', 'boolean']),
  ('cleanup_stale_workers', array['integer']),
  ('get_worker_stats', array[]::text[]),
  ('get_worker_health_summary', array[]::text[]),
  ('reap', array['text', 'boolean'])
) as c (f, args);

select is(
  (select array_agg(f order by f) from (values
     ('create_run', 'name,metadata'), ('start_run', 'run_id'), ('finish_run', 'run_id,error'),
     ('cancel_run', 'run_id,reason'), ('archive_run', 'run_id,note'), ('is_run_stale', 'run_id,stale_hours'),
     ('find_stale_runs', 'stale_hours'), ('cleanup_stale_runs', 'stale_hours,dry_run'),
     ('enqueue_task', 'task_type,payload,run_id,max_attempts,run_at,priority'),
     ('claim_tasks', 'worker_id,task_types,batch_size,lease_seconds,run_id'),
     ('renew_task_lease', 'task_id,lease_token,lease_seconds'), ('complete_task', 'task_id,lease_token,result'),
     ('fail_task', 'task_id,lease_token,error,retryable'), ('release_task', 'task_id,lease_token'),
     ('cancel_task', 'task_id,reason'),
     ('upsert_worker_heartbeat', 'worker_id,worker_type,status,current_run_id,current_task,held_task_ids,lease_seconds,metadata'),
     ('stop_worker', 'worker_id,release_tasks'), ('request_worker_stop', 'worker_id'),
     ('recover_worker_tasks', 'worker_id'), ('release_dead_worker_leases', 'dead_after_seconds'),
     ('cleanup_stale_running_tasks', 'stale_minutes,max_attempts,batch_size,dry_run'),
     ('cleanup_stale_workers', 'stale_minutes'), ('reap', 'source,dry_run')) as c (f, names)
   where not exists (
     select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'taskwarden' and p.proname = c.f
       and array_to_string((p.proargnames)[1:cardinality(string_to_array(c.names, ','))], ',') = c.names)),
  null, 'the contract''s argument names come first, in order, on every function');

-- A terminal run without completed_at is impossible, not just unusual.
select throws_ok(
  $$insert into taskwarden.runs (name, status) values ('x', 'failed')$$,
  '23514', null, 'a failed run without completed_at violates a CHECK constraint');
select throws_ok(
  $$insert into taskwarden.tasks (task_type, status) values ('x', 'completed')$$,
  '23514', null, 'a completed task without completed_at violates a CHECK constraint');

-- HOT heartbeats: the heartbeat columns are in no index.
select is(
  (select array_agg(i.indexrelid::regclass::text) from pg_index i
   join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'taskwarden'
     and (pg_get_indexdef(i.indexrelid) ~ '(lease_expires_at|last_heartbeat)'
          or coalesce(pg_get_expr(i.indpred, i.indrelid), '') ~ '(lease_expires_at|last_heartbeat)')),
  null, 'lease_expires_at / last_heartbeat / last_heartbeat_at appear in no index or index predicate');

select * from finish();
rollback;
