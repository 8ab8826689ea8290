-- taskwarden: worker heartbeats. One heartbeat call renews every lease the worker holds and
-- answers with directives: stop (drain requested, run over) and the tasks that are no longer its own.

-- How long a claim may go unlisted by its worker's heartbeats before they hand it back as lost
-- (its answer never reached the worker): longer than any claim call may take to answer.
insert into taskwarden.settings (key, value, value_type, min_value, max_value, description) values
  ('lost_claim_grace_seconds', '30', 'integer', 1, 3600,
   'A running task its owner''s heartbeat (with lease tokens) does not list, claimed longer ago than this, goes back to the queue without spending an attempt.')
on conflict (key) do nothing;

create function taskwarden.upsert_worker_heartbeat(
  worker_id text,
  worker_type text,
  status text default 'active',
  current_run_id uuid default null,
  current_task text default null,
  held_task_ids bigint[] default '{}',
  lease_seconds integer default null,
  metadata jsonb default '{}'::jsonb,
  run_filter_id uuid default null,
  held_lease_tokens uuid[] default null
)
returns table (
  stop_requested boolean, stop_reason text, lost_task_ids bigint[], renewed_task_ids bigint[],
  lease_expires_at timestamptz, server_time timestamptz, lost_lease_tokens uuid[],
  worker_expires_at timestamptz, dead_after_seconds integer, handed_back_task_ids bigint[]
)
language plpgsql
set search_path = ''
as $$
declare
  v_worker text := upsert_worker_heartbeat.worker_id;
  v_held bigint[] := coalesce(upsert_worker_heartbeat.held_task_ids, '{}');
  v_tokens uuid[] := upsert_worker_heartbeat.held_lease_tokens;
  v_lease integer := upsert_worker_heartbeat.lease_seconds;
  v_meta jsonb := coalesce(upsert_worker_heartbeat.metadata, '{}'::jsonb);
  v_grace interval := make_interval(secs => taskwarden._setting_num('lost_claim_grace_seconds'));
  v_row taskwarden.worker_heartbeats;
  v_dup bigint;
  v_locked bigint[];
  v_renewed bigint[];
  v_renewed_tokens uuid[];
  v_handed_back bigint[];
  v_run_status text;
begin
  perform taskwarden._check_text('worker_id', v_worker);
  perform taskwarden._check_text('worker_type', upsert_worker_heartbeat.worker_type);
  if upsert_worker_heartbeat.status is null
     or upsert_worker_heartbeat.status not in ('active', 'idle', 'processing', 'stopping', 'stopped') then
    raise exception 'status must be one of active, idle, processing, stopping, stopped (got %)',
        coalesce(upsert_worker_heartbeat.status, 'null')
      using errcode = 'TW002', hint = 'Report the worker''s own state.';
  end if;
  if v_lease is not null then
    perform taskwarden._check_range('lease_seconds', v_lease, 1, 86400);
  end if;
  perform taskwarden._check_range('held_task_ids length', cardinality(v_held), 0, 10000);
  if array_position(v_held, null) is not null then
    raise exception 'held_task_ids must not contain null'
      using errcode = 'TW002', hint = 'List the ids of the tasks this worker holds.';
  end if;
  if v_tokens is not null then
    if cardinality(v_tokens) <> cardinality(v_held) then
      raise exception 'held_lease_tokens must have one token per held_task_ids entry (got % tokens for % ids)',
          cardinality(v_tokens), cardinality(v_held)
        using errcode = 'TW002', hint = 'Pass the lease_token of each held task, in the same order as held_task_ids.';
    end if;
    if array_position(v_tokens, null) is not null then
      raise exception 'held_lease_tokens must not contain null'
        using errcode = 'TW002', hint = 'Pass the lease_token claim_tasks returned with each held task.';
    end if;
    -- One task may be held twice (a revoked claim still settling and a new claim of the same
    -- task), but never under one token twice.
    select h.id into v_dup from unnest(v_held, v_tokens) h (id, token) group by h.id, h.token having count(*) > 1
    order by h.id limit 1;
    if v_dup is not null then
      raise exception 'held_task_ids lists task % twice with the same lease token', v_dup
        using errcode = 'TW002', hint = 'List each held claim (task id, lease token) once.';
    end if;
  else
    select h.id into v_dup from unnest(v_held) h (id) group by h.id having count(*) > 1 order by h.id limit 1;
    if v_dup is not null then
      raise exception 'held_task_ids lists task % more than once', v_dup
        using errcode = 'TW002', hint = 'List each held task once (pass held_lease_tokens to tell two claims of one task apart).';
    end if;
  end if;
  if jsonb_typeof(v_meta) <> 'object' then
    raise exception 'metadata must be a JSON object' using errcode = 'TW002', hint = 'Pass ''{}'' for none.';
  end if;
  perform taskwarden._check_jsons('metadata', array[v_meta]);

  insert into taskwarden.worker_heartbeats as w
    (worker_id, worker_type, status, current_run_id, current_task, metadata, host, pid, run_filter_id,
     last_heartbeat_at, lease_expires_at, beats)
  values
    (v_worker, upsert_worker_heartbeat.worker_type, upsert_worker_heartbeat.status,
     upsert_worker_heartbeat.current_run_id, left(upsert_worker_heartbeat.current_task, 1000), v_meta,
     v_meta ->> 'host', case when v_meta ->> 'pid' ~ '^\d{1,9}$' then (v_meta ->> 'pid')::integer end,
     upsert_worker_heartbeat.run_filter_id, now(), now() + taskwarden._dead_after(), 1)
  on conflict on constraint worker_heartbeats_pkey do update
  set worker_type = excluded.worker_type,
      -- stop_worker() is final for this worker id: a zombie's late beat cannot revive it.
      status = case when w.status = 'stopped' then 'stopped' else excluded.status end,
      current_run_id = excluded.current_run_id,
      current_task = excluded.current_task,
      metadata = excluded.metadata,
      host = coalesce(excluded.host, w.host),
      pid = coalesce(excluded.pid, w.pid),
      run_filter_id = coalesce(excluded.run_filter_id, w.run_filter_id),
      last_heartbeat_at = now(),
      lease_expires_at = excluded.lease_expires_at,
      stopped_at = case when excluded.status = 'stopped' then coalesce(w.stopped_at, now()) else w.stopped_at end,
      beats = w.beats + 1
  returning w.* into v_row;

  -- Every row this beat may write (its running tasks, its revoked claims) is locked first, in
  -- id order, as every multi-row write does: no deadlock with a batch completion or cancel_run.
  select coalesce(array_agg(s.id), '{}') into v_locked from (
    select t.id from taskwarden.tasks t
    where (t.status = 'running' and t.owner_id = v_worker) or t.revoked_owner_id = v_worker
    order by t.id
    for update
  ) s;

  -- Renew the claims this worker still holds: by (task id, lease token) when tokens are given,
  -- so a task taken back and claimed again is a different claim; by owner alone otherwise (the
  -- weaker, older form). lease_expires_at / last_heartbeat are in no index: a HOT update. Joins
  -- and set operations below, never a scan of the held list per row: a beat may list 10,000.
  if v_tokens is not null then
    with renewed as (
      update taskwarden.tasks t
      set lease_expires_at = now() + make_interval(secs => coalesce(v_lease, t.lease_seconds,
                                     taskwarden._setting_num('lease_seconds')::integer)),
          last_heartbeat = now()
      from unnest(v_held, v_tokens) h (id, token)
      where t.id = h.id and t.lease_token = h.token and t.owner_id = v_worker and t.status = 'running'
      returning t.id, t.lease_token
    )
    select coalesce(array_agg(r.id order by r.id), '{}'), coalesce(array_agg(r.lease_token order by r.id), '{}')
    into v_renewed, v_renewed_tokens
    from renewed r;

    select coalesce(array_agg(l.id order by l.id, l.token::text), '{}'), coalesce(array_agg(l.token order by l.id, l.token::text), '{}')
    into lost_task_ids, lost_lease_tokens
    from (select h.id, h.token from unnest(v_held, v_tokens) h (id, token)
          except
          select r.id, r.token from unnest(v_renewed, v_renewed_tokens) r (id, token)) l;

    -- Claims this worker owns but does not hold: a claim whose answer never reached it. Past
    -- the grace (the answer may still be on its way) they go back to the queue at once,
    -- without spending an attempt, instead of waiting a whole lease.
    select coalesce(array_agg(r.id order by r.id), '{}') into v_handed_back
    from taskwarden._release_claims(array(
      select t.id from taskwarden.tasks t
      where t.id = any (array(select unnest(v_locked) except select unnest(v_renewed)))
        and t.owner_id = v_worker and t.status = 'running'
        and t.started_at < now() - v_grace), 'claim_lost') r;
  else
    with renewed as (
      update taskwarden.tasks t
      set lease_expires_at = now() + make_interval(secs => coalesce(v_lease, t.lease_seconds,
                                     taskwarden._setting_num('lease_seconds')::integer)),
          last_heartbeat = now()
      where t.id = any (v_held) and t.owner_id = v_worker and t.status = 'running'
      returning t.id
    )
    select coalesce(array_agg(r.id order by r.id), '{}') into v_renewed from renewed r;

    select coalesce(array_agg(l.id order by l.id), '{}'), coalesce(array_agg(null::uuid), '{}')
    into lost_task_ids, lost_lease_tokens
    from (select unnest(v_held) as id except select unnest(v_renewed)) l;
  end if;

  -- Revoked claims (requeue_task / cancel_task / cancel_run took them back) this beat no longer
  -- lists: their handlers have settled, so the task may be handed out again. Few rows, usually none.
  if exists (select from taskwarden.tasks t where t.revoked_owner_id = v_worker) then
    update taskwarden.tasks t
    set revoked_owner_id = null, revoked_lease_token = null, revoked_until = null
    where t.id = any (v_locked) and t.revoked_owner_id = v_worker
      and not exists (select from unnest(v_held, coalesce(v_tokens, array_fill(null::uuid, array[cardinality(v_held)]))) h (id, token)
                      where h.id = t.id and (h.token is null or h.token = t.revoked_lease_token));
  end if;

  if v_row.run_filter_id is not null then
    select r.status into v_run_status from taskwarden.runs r where r.id = v_row.run_filter_id;
    v_run_status := coalesce(v_run_status, 'missing');
  end if;

  stop_reason := case
    when v_row.status = 'stopped' then 'stopped'
    when v_row.stop_requested_at is not null then 'drain_requested'
    when v_run_status is not null and v_run_status not in ('pending', 'running') then 'run_' || v_run_status
  end;
  stop_requested := stop_reason is not null;
  renewed_task_ids := v_renewed;
  lease_expires_at := (select min(t.lease_expires_at) from taskwarden.tasks t where t.id = any (v_renewed));
  server_time := now();
  worker_expires_at := v_row.lease_expires_at;
  dead_after_seconds := taskwarden._setting_num('dead_worker_seconds')::integer;
  handed_back_task_ids := coalesce(v_handed_back, '{}');
  return next;
end
$$;
comment on function taskwarden.upsert_worker_heartbeat(text, text, text, uuid, text, bigint[], integer, jsonb, uuid, uuid[]) is 'Registers or beats a worker, renews the claims it holds (by task id and lease token when tokens are given), hands back claims it lost track of, and answers stop_requested / lost_task_ids.';

create function taskwarden.request_worker_stop(worker_id text)
returns taskwarden.worker_heartbeats
language plpgsql
set search_path = ''
as $$
declare
  v_row taskwarden.worker_heartbeats;
begin
  perform taskwarden._check_text('worker_id', request_worker_stop.worker_id);
  update taskwarden.worker_heartbeats w
  set stop_requested_at = coalesce(w.stop_requested_at, now())
  where w.worker_id = request_worker_stop.worker_id
  returning w.* into v_row;
  if not found then
    raise exception 'worker % not found', request_worker_stop.worker_id
      using errcode = 'TW003', hint = 'See taskwarden.v_active_workers for worker ids.';
  end if;
  return v_row;
end
$$;
comment on function taskwarden.request_worker_stop(text) is 'Remote drain: the worker stops claiming and exits after its next heartbeat.';

create function taskwarden.stop_worker(worker_id text, release_tasks boolean default true)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_worker text := stop_worker.worker_id;
  v_released integer := 0;
  v_running bigint[];
  v_revoked bigint[];
begin
  perform taskwarden._check_text('worker_id', v_worker);
  if stop_worker.release_tasks is null then
    raise exception 'release_tasks must not be null' using errcode = 'TW002', hint = 'Pass true or false.';
  end if;
  update taskwarden.worker_heartbeats w
  set status = 'stopped', stopped_at = coalesce(w.stopped_at, now()), current_task = null,
      last_heartbeat_at = now()
  where w.worker_id = v_worker;
  if not found then
    raise exception 'worker % not found', v_worker
      using errcode = 'TW003', hint = 'See taskwarden.v_active_workers for worker ids.';
  end if;
  if stop_worker.release_tasks then
    select coalesce(array_agg(h.id) filter (where h.running), '{}'), coalesce(array_agg(h.id) filter (where not h.running), '{}')
    into v_running, v_revoked
    from (
      select t.id, t.status = 'running' and t.owner_id = v_worker as running
      from taskwarden.tasks t
      where (t.status = 'running' and t.owner_id = v_worker) or t.revoked_owner_id = v_worker
      order by t.id
      for update skip locked
    ) h;
    select count(*) into v_released from taskwarden._release_claims(v_running, 'worker_stopped');
    -- A worker that stops has settled every handler, the revoked ones included.
    update taskwarden.tasks t
    set revoked_owner_id = null, revoked_lease_token = null, revoked_until = null
    where t.id = any (v_revoked) and t.revoked_owner_id = v_worker;
  end if;
  return v_released;
end
$$;
comment on function taskwarden.stop_worker(text, boolean) is 'Graceful shutdown: marks the worker stopped and gives its running tasks back without spending an attempt (rows locked in id order); its revoked claims are settled.';

create function taskwarden._worker_base(p_worker_id text)
returns text
language sql immutable
set search_path = ''
as $$
  select regexp_replace(p_worker_id, '#[^#]*$', '')
$$;
comment on function taskwarden._worker_base(text) is 'A worker id without its boot suffix ("research-1#k3f9" -> "research-1").';

create function taskwarden.recover_worker_tasks(worker_id text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_worker text := recover_worker_tasks.worker_id;
  v_base text;
  v_ids bigint[];
  v_count integer;
  v_live text[];
begin
  perform taskwarden._check_text('worker_id', v_worker);
  v_base := taskwarden._worker_base(v_worker);
  -- This id's own tasks (the caller is its new life), and those of other boots of the same base
  -- id ("base#boot") that are dead, stopped or have no heartbeat row. A boot that still beats
  -- keeps its tasks: one configured id given to two processes must not make them take each
  -- other's work.
  select array_agg(s.id) into v_ids from (
    select t.id from taskwarden.tasks t
    left join taskwarden.worker_heartbeats w on w.worker_id = t.owner_id
    where t.status = 'running'
      and (t.owner_id = v_worker
           or (left(t.owner_id, length(v_base) + 1) = v_base || '#'
               and (w.worker_id is null or w.status = 'stopped' or w.last_heartbeat_at < now() - taskwarden._dead_after())))
    order by t.id
    for update of t skip locked
  ) s;
  select count(*) into v_count
  from taskwarden._requeue_or_fail(coalesce(v_ids, '{}'), 'recovered',
                                   'worker restarted while the task was running', false);
  select array_agg(w.worker_id order by w.worker_id) into v_live
  from taskwarden.worker_heartbeats w
  where left(w.worker_id, length(v_base) + 1) = v_base || '#' and w.worker_id <> v_worker
    and w.status <> 'stopped' and w.last_heartbeat_at >= now() - taskwarden._dead_after();
  if v_live is not null then
    raise warning 'worker id base % is also used by live boot(s) %: their tasks were left alone', v_base, array_to_string(v_live, ', ')
      using hint = 'Give each process its own <TYPE>_WORKER_ID (or none: a generated one is unique per process).';
  end if;
  return v_count;
end
$$;
comment on function taskwarden.recover_worker_tasks(text) is 'Startup recovery: requeues (or fails, budget spent) running tasks left by dead, stopped or vanished boots of this worker id; warns about live boots sharing it.';

create function taskwarden._reap_dead_workers(p_dead_after integer, p_batch integer, p_dry_run boolean)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_dead text[];
  v_ids bigint[];
begin
  -- Dead workers first (the worker table is small), then their running tasks through the
  -- owner index: an idle reap never reads the running rows of live workers.
  select array_agg(w.worker_id) into v_dead
  from taskwarden.worker_heartbeats w
  where w.last_heartbeat_at < now() - make_interval(secs => p_dead_after);
  if v_dead is null then
    return;
  end if;
  select array_agg(s.id) into v_ids from (
    select t.id
    from taskwarden.tasks t
    where t.status = 'running' and t.owner_id = any (v_dead)
    order by t.id
    limit p_batch
    for update of t skip locked
  ) s;
  return query select * from taskwarden._requeue_or_fail(coalesce(v_ids, '{}'), 'worker_dead',
    format('worker stopped beating for more than %s s', p_dead_after), p_dry_run);
end
$$;
comment on function taskwarden._reap_dead_workers(integer, integer, boolean) is 'Reaper step: takes back running tasks whose owner stopped beating.';

create function taskwarden.release_dead_worker_leases(dead_after_seconds integer default null)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_dead_after integer := coalesce(release_dead_worker_leases.dead_after_seconds,
                                   taskwarden._setting_num('dead_worker_seconds')::integer);
begin
  perform taskwarden._check_range('dead_after_seconds', v_dead_after, 1, 604800);
  return query select * from taskwarden._reap_dead_workers(v_dead_after, taskwarden._setting_num('reap_batch')::integer, false);
end
$$;
comment on function taskwarden.release_dead_worker_leases(integer) is 'Requeues (or fails, budget spent) running tasks whose owner has not beaten for dead_after_seconds (default: the setting dead_worker_seconds).';

create function taskwarden.cleanup_stale_workers(stale_minutes integer default null)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_minutes integer := coalesce(cleanup_stale_workers.stale_minutes, taskwarden._setting_num('worker_retention_minutes')::integer);
  v_count integer;
begin
  perform taskwarden._check_range('stale_minutes', v_minutes, 1, 525600);
  with gone as (
    delete from taskwarden.worker_heartbeats w
    where coalesce(w.stopped_at, w.last_heartbeat_at) < now() - make_interval(mins => v_minutes)
      and w.last_heartbeat_at < now() - make_interval(mins => v_minutes)
      -- A dead worker's row is the evidence release_dead_worker_leases needs: keep it while it holds tasks.
      and not exists (select from taskwarden.tasks t where t.status = 'running' and t.owner_id = w.worker_id)
    returning 1
  )
  select count(*) into v_count from gone;
  return v_count;
end
$$;
comment on function taskwarden.cleanup_stale_workers(integer) is 'Deletes worker rows stopped or silent for stale_minutes (default: the setting worker_retention_minutes) that hold no running task; returns the count.';

create function taskwarden.get_worker_stats()
returns table (worker_type text, active bigint, idle bigint, processing bigint, stopping bigint,
               dead bigint, stopped bigint, total bigint)
language sql stable
set search_path = ''
as $$
  with cfg as materialized (select now() - taskwarden._dead_after() as dead_before),
  w as (
    select h.worker_type, h.status,
           h.status <> 'stopped' and h.last_heartbeat_at < cfg.dead_before as dead
    from taskwarden.worker_heartbeats h, cfg
  )
  select w.worker_type,
         count(*) filter (where not w.dead and w.status in ('active', 'idle', 'processing', 'stopping')),
         count(*) filter (where not w.dead and w.status = 'idle'),
         count(*) filter (where not w.dead and w.status = 'processing'),
         count(*) filter (where not w.dead and w.status = 'stopping'),
         count(*) filter (where w.dead),
         count(*) filter (where w.status = 'stopped'),
         count(*)
  from w
  group by w.worker_type
  order by w.worker_type
$$;
comment on function taskwarden.get_worker_stats() is 'Per worker type: live workers (active = idle + processing + stopping + plain active), dead, stopped, total.';

create function taskwarden.get_worker_health_summary()
returns jsonb
language sql stable
set search_path = ''
as $$
  with by_type as (select * from taskwarden.get_worker_stats()),
  dead as (
    select coalesce(jsonb_agg(jsonb_build_object(
             'worker_id', d.worker_id, 'worker_type', d.worker_type, 'status', d.status,
             'current_task', d.current_task, 'current_run_id', d.current_run_id,
             'last_heartbeat_at', d.last_heartbeat_at, 'seconds_since_heartbeat', d.seconds_since_heartbeat,
             'held_tasks', d.held_tasks) order by d.last_heartbeat_at), '[]'::jsonb) as list
    from taskwarden.v_dead_workers d
  ),
  stale_runs as (
    select coalesce(jsonb_agg(jsonb_build_object(
             'run_id', s.run_id, 'name', s.name, 'started_at', s.started_at,
             'last_progress_at', s.last_progress_at, 'stale_for_hours', s.stale_for_hours)), '[]'::jsonb) as list
    from taskwarden.find_stale_runs(taskwarden._setting_num('run_stale_hours')) s
  ),
  -- Live rows counted, finished ones estimated past a few thousand: flat cost at any age.
  task_counts as (
    select taskwarden.get_task_counts() as counts
  ),
  -- One configured id given to several live processes (PM2 instances, a shared env file): their
  -- boots differ only in the suffix; each keeps its own tasks, but the operator should know.
  duplicate_bases as (
    select coalesce(jsonb_agg(jsonb_build_object('base', d.base, 'worker_ids', d.ids) order by d.base), '[]'::jsonb) as list
    from (
      select taskwarden._worker_base(h.worker_id) as base, jsonb_agg(h.worker_id order by h.worker_id) as ids
      from taskwarden.worker_heartbeats h
      cross join (select now() - taskwarden._dead_after() as dead_before offset 0) cfg -- read once, not per row
      where h.worker_id like '%#%' and h.status <> 'stopped' and h.last_heartbeat_at >= cfg.dead_before
      group by 1
      having count(*) > 1
    ) d
  ),
  last_reap as (
    select jsonb_build_object('id', r.id, 'source', r.source, 'started_at', r.started_at,
                              'finished_at', r.finished_at, 'duration_ms', r.duration_ms,
                              'requeued', r.requeued, 'failed', r.failed, 'skipped', r.skipped) as row
    from taskwarden.reaper_runs r
    where not r.skipped
    order by r.id desc
    limit 1
  )
  select jsonb_build_object(
    'generated_at', now(),
    'healthy', jsonb_array_length(dead.list) = 0 and jsonb_array_length(stale_runs.list) = 0,
    'dead_after_seconds', taskwarden._setting_num('dead_worker_seconds'),
    'workers', jsonb_build_object(
      'total', coalesce((select sum(b.total) from by_type b), 0),
      'active', coalesce((select sum(b.active) from by_type b), 0),
      'idle', coalesce((select sum(b.idle) from by_type b), 0),
      'processing', coalesce((select sum(b.processing) from by_type b), 0),
      'stopping', coalesce((select sum(b.stopping) from by_type b), 0),
      'dead', coalesce((select sum(b.dead) from by_type b), 0),
      'stopped', coalesce((select sum(b.stopped) from by_type b), 0)),
    'by_type', coalesce((select jsonb_agg(to_jsonb(b)) from by_type b), '[]'::jsonb),
    'dead_workers', dead.list,
    'duplicate_worker_bases', (select d.list from duplicate_bases d),
    'tasks', task_counts.counts,
    'stale_runs', stale_runs.list,
    'last_reap', (select l.row from last_reap l),
    'last_prune', (select jsonb_build_object('at', r.finished_at, 'source', r.source) || (r.summary -> 'prune')
                   from taskwarden.reaper_runs r
                   where not r.skipped and not r.dry_run and r.summary ? 'prune'
                   order by r.id desc limit 1),
    -- A missing scheduler is never silent: not running once three intervals pass without a reap.
    'reaper', (select jsonb_build_object('last_reap_at', r.at, 'interval_seconds', r.s,
                                         'running', coalesce(r.at > now() - make_interval(secs => 3 * r.s), false))
               from (select (select x.started_at from taskwarden.reaper_runs x where not x.dry_run order by x.id desc limit 1) as at,
                            -- pg_cron 1.4 has no seconds schedules: the cron migration runs reap() every minute there.
                            case when (select string_to_array(e.extversion, '.')::int[] from pg_catalog.pg_extension e
                                       where e.extname = 'pg_cron') < array[1, 5] then 60
                                 else taskwarden._setting_num('reap_interval_seconds') end as s) r))
  from dead, stale_runs, task_counts
$$;
comment on function taskwarden.get_worker_health_summary() is 'One jsonb document for dashboards and alerts: worker counts, dead workers, task counts, stale runs, last reap, whether the reaper is running.';
