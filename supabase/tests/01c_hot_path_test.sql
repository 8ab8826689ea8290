-- The claim / completion hot path: tasks without a run are in no run_id index entry, and
-- lookups by run still find their tasks through the index.
begin;
select no_plan();

select is((select indexdef ~ 'WHERE \(run_id IS NOT NULL\)' from pg_indexes where schemaname = 'taskwarden' and indexname = 'tasks_run_id_idx'),
          true, 'tasks_run_id_idx holds only tasks of a run');

select count(*) from taskwarden.enqueue_tasks('loose', array['{}', '{}']::jsonb[]);
select (taskwarden.create_run('r')).id as run_id \gset
select count(*) from taskwarden.enqueue_tasks('in_run', array['{}', '{}']::jsonb[], run_id => :'run_id');
analyze taskwarden.tasks;

set local enable_seqscan = off;
create function pg_temp.plan(q text) returns text language plpgsql as $$
declare l text; r text := '';
begin
  for l in execute 'explain (costs off) ' || q loop r := r || l || E'\n'; end loop;
  return r;
end $$;
prepare by_run(uuid) as select id from taskwarden.tasks where run_id = $1;
set local plan_cache_mode = force_generic_plan;
select matches(pg_temp.plan(format('execute by_run(%L)', :'run_id')), 'tasks_run_id_idx',
               'a lookup by run (generic plan, run_id = $1) uses the partial index');
select is((select count(*)::int from taskwarden.tasks where run_id = :'run_id'), 2, 'and finds the run''s tasks');

select * from finish();
rollback;
