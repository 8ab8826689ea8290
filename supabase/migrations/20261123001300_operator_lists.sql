-- taskwarden: the lists operators look at (dashboard, CLI), as functions so that every transport
-- (supabase-js included, which cannot read views of an unexposed table) can call them.

create function taskwarden.list_workers()
returns table (
  worker_id text, worker_type text, status text, dead boolean, current_task text, current_run_id uuid,
  run_filter_id uuid, host text, pid integer, started_at timestamptz, last_heartbeat_at timestamptz,
  seconds_since_heartbeat double precision, held_tasks integer, stop_requested_at timestamptz,
  held_task_ids bigint[], held_task text, duplicate_base boolean
)
language sql stable
set search_path = ''
-- Its estimate crosses jit_above_cost with many running rows: compiling would cost ~90 ms for nothing.
set jit = off
as $$
  -- current_task is the worker's own label, as of its last heartbeat: a dead worker's may name a
  -- task it had finished. What it holds is read from the tasks it owns (through the partial index
  -- on running owners), so a dead worker shows the task the reaper will take back.
  -- The setting and each boot's base id are read once, not once per pair of workers (100 workers
  -- cost 1.8 s that way).
  with cfg as materialized (select now() - taskwarden._dead_after() as live_after),
  live as materialized (
    select h.worker_id, taskwarden._worker_base(h.worker_id) as base
    from taskwarden.worker_heartbeats h, cfg
    where h.status <> 'stopped' and h.last_heartbeat_at >= cfg.live_after
  ),
  -- Held tasks of every worker counted in one pass over the running rows (the owner index), not
  -- _held_tasks once per worker: that fetched each worker's rows separately, every heap page of
  -- them once per worker (0.3 s at 10^5 running over 100 workers).
  held as materialized (
    select t.owner_id, count(*)::integer as n from taskwarden.tasks t
    where t.status = 'running' and t.owner_id is not null
    group by t.owner_id
  ),
  -- Live boots that share their base id with another live boot (see recover_worker_tasks),
  -- grouped as get_worker_health_summary's duplicate_worker_bases are: comparing every pair of
  -- workers cost 30 ms at 100 of them.
  duplicate as materialized (
    select l.worker_id from live l
    where l.worker_id like '%#%'
      and l.base in (select d.base from live d where d.worker_id like '%#%' group by d.base having count(*) > 1)
  )
  select w.worker_id, w.worker_type, w.status,
         w.status <> 'stopped' and w.last_heartbeat_at < cfg.live_after,
         w.current_task, w.current_run_id, w.run_filter_id, w.host, w.pid, w.started_at, w.last_heartbeat_at,
         round(extract(epoch from now() - w.last_heartbeat_at)::numeric, 1)::double precision,
         -- The list below is bounded: a worker holding 1,000 tasks must not make every dashboard
         -- refresh read them all.
         coalesce(n.n, 0),
         w.stop_requested_at,
         coalesce(h.ids, '{}'), h.label,
         d.worker_id is not null
  from taskwarden.worker_heartbeats w
  cross join cfg
  left join held n on n.owner_id = w.worker_id
  left join duplicate d on d.worker_id = w.worker_id
  left join lateral (
    select array_agg(f.id order by f.id) as ids,
           string_agg(format('#%s %s', f.id, f.task_type), ', ' order by f.id) as label
    from (select t.id, t.task_type from taskwarden.tasks t
          where t.status = 'running' and t.owner_id = w.worker_id
          order by t.id limit 10) f
  ) h on true
  -- Stopped workers stay listed (last) until cleanup_stale_workers deletes their rows.
  order by 4 desc, w.status = 'stopped', w.worker_type, w.worker_id
$$;
comment on function taskwarden.list_workers() is 'Workers until cleanup: dead first, stopped last, with heartbeat age, their own current-task label and the running tasks they hold.';

create function taskwarden.list_reaper_actions(max_rows integer default 15)
returns table (id bigint, task_id bigint, event text, reason text, worker_id text, attempt integer, created_at timestamptz)
language plpgsql stable
set search_path = ''
as $$
begin
  perform taskwarden._check_range('max_rows', list_reaper_actions.max_rows, 1, 1000);
  return query
    select e.id, e.task_id, e.event, e.reason, e.worker_id, e.attempt, e.created_at
    from taskwarden.task_events e
    where e.actor = 'reaper'
    order by e.id desc
    limit list_reaper_actions.max_rows;
end
$$;
comment on function taskwarden.list_reaper_actions(integer) is 'The reaper''s latest task actions (requeued, dead-lettered), newest first.';

revoke all on function taskwarden.list_workers() from public, anon, authenticated;
revoke all on function taskwarden.list_reaper_actions(integer) from public, anon, authenticated;
grant execute on function taskwarden.list_workers() to service_role;
grant execute on function taskwarden.list_reaper_actions(integer) to service_role;
