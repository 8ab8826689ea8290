-- taskwarden: runs. A terminal run always has completed_at (a CHECK constraint); terminal
-- transitions are idempotent; a run that stops making progress is failed, not left running.

create function taskwarden._get_run_for_update(p_run_id uuid)
returns taskwarden.runs
language plpgsql
set search_path = ''
as $$
declare
  v_run taskwarden.runs;
begin
  if p_run_id is null then
    raise exception 'run_id must not be null' using errcode = 'TW002', hint = 'Pass the id returned by create_run().';
  end if;
  select * into v_run from taskwarden.runs r where r.id = p_run_id for update;
  if not found then
    raise exception 'run % not found', p_run_id using errcode = 'TW003', hint = 'Check run_id.';
  end if;
  return v_run;
end
$$;
comment on function taskwarden._get_run_for_update(uuid) is 'Locks and returns a run; TW002 for a null id, TW003 for an unknown one.';

create function taskwarden.create_run(name text, metadata jsonb default '{}'::jsonb)
returns taskwarden.runs
language plpgsql
set search_path = ''
as $$
declare
  v_run taskwarden.runs;
begin
  perform taskwarden._check_text('name', create_run.name, 500);
  if create_run.metadata is null or jsonb_typeof(create_run.metadata) <> 'object' then
    raise exception 'metadata must be a JSON object' using errcode = 'TW002', hint = 'Pass ''{}'' for none.';
  end if;
  perform taskwarden._check_json('metadata', create_run.metadata);
  insert into taskwarden.runs (name, metadata) values (create_run.name, create_run.metadata)
  returning * into v_run;
  return v_run;
end
$$;
comment on function taskwarden.create_run(text, jsonb) is 'Creates a pending run.';

create function taskwarden.start_run(run_id uuid)
returns taskwarden.runs
language plpgsql
set search_path = ''
as $$
declare
  v_run taskwarden.runs := taskwarden._get_run_for_update(start_run.run_id);
begin
  if v_run.status = 'running' then
    return v_run;
  end if;
  if v_run.status <> 'pending' then
    raise exception 'run % is %: it cannot be started', v_run.id, v_run.status
      using errcode = 'TW004', hint = 'Terminal runs stay terminal; create a new run.';
  end if;
  update taskwarden.runs r set status = 'running', started_at = coalesce(r.started_at, now()), updated_at = now()
  where r.id = v_run.id returning * into v_run;
  return v_run;
end
$$;
comment on function taskwarden.start_run(uuid) is 'Marks a pending run running (idempotent on running runs).';

create function taskwarden._cancel_run_tasks(p_run_id uuid, p_reason text)
returns integer
language sql
set search_path = ''
as $$
  select taskwarden._cancel_tasks(
    array(select t.id from taskwarden.tasks t where t.run_id = p_run_id and t.status in ('queued', 'running')),
    p_reason, 'run')
$$;
comment on function taskwarden._cancel_run_tasks(uuid, text) is 'Cancels the queued and running tasks of a run that became terminal.';

create function taskwarden._end_run(p_run_id uuid, p_status text, p_error text, p_task_reason text)
returns taskwarden.runs
language plpgsql
set search_path = ''
as $$
declare
  v_run taskwarden.runs := taskwarden._get_run_for_update(p_run_id);
  v_queued integer;
  v_running integer;
begin
  if v_run.status not in ('pending', 'running') then
    return v_run; -- terminal runs stay as they are: every terminal transition is idempotent
  end if;
  if p_status = 'completed' then
    -- Completing a run with work still queued or running would cancel that work and refuse its
    -- holders' results: a job that only enqueued its tasks would lose all of them. The run row
    -- is locked, and enqueue_tasks takes a share lock on it, so no task slips in after this count.
    select p.tasks_queued, p.tasks_running into v_queued, v_running
    from taskwarden.v_run_progress p
    where p.run_id = v_run.id;
    if v_queued + v_running > 0 then
      raise exception 'run % has % unfinished tasks (% queued, % running): it cannot be completed yet',
          v_run.id, v_queued + v_running, v_queued, v_running
        using errcode = 'TW004',
              hint = 'Wait until its tasks are finished (runToCompletion waits for them), or call cancel_run() to cancel them, or finish_run() with an error to fail the run.';
    end if;
  end if;
  update taskwarden.runs r
  set status = p_status, error = p_error, completed_at = now(), updated_at = now(),
      started_at = coalesce(r.started_at, case when p_status in ('completed', 'failed') then now() end)
  where r.id = v_run.id
  returning * into v_run;
  if p_task_reason is not null then
    perform taskwarden._cancel_run_tasks(v_run.id, p_task_reason);
  end if;
  return v_run;
end
$$;
comment on function taskwarden._end_run(uuid, text, text, text) is 'Moves a live run to a terminal status with completed_at (completed only once its tasks are finished: TW004); returns terminal runs unchanged.';

create function taskwarden.finish_run(run_id uuid, error text default null)
returns taskwarden.runs
language sql
set search_path = ''
as $$
  select * from taskwarden._end_run(
    finish_run.run_id,
    case when finish_run.error is null then 'completed' else 'failed' end,
    left(finish_run.error, 10000),
    case when finish_run.error is null then 'run_completed' else 'run_failed' end)
$$;
comment on function taskwarden.finish_run(uuid, text) is 'Completes a run whose tasks are all finished (TW004 otherwise), or fails it when error is given (its unfinished tasks are cancelled); idempotent on terminal runs.';

create function taskwarden.cancel_run(run_id uuid, reason text default null)
returns taskwarden.runs
language sql
set search_path = ''
as $$
  select * from taskwarden._end_run(cancel_run.run_id, 'cancelled', cancel_run.reason, 'run_cancelled')
$$;
comment on function taskwarden.cancel_run(uuid, text) is 'Cancels a run and its queued / running tasks (their holders learn it on their next heartbeat).';

create function taskwarden.archive_run(run_id uuid, note text default null)
returns taskwarden.runs
language plpgsql
set search_path = ''
as $$
declare
  v_run taskwarden.runs := taskwarden._get_run_for_update(archive_run.run_id);
begin
  if v_run.status = 'archived' then
    return v_run;
  end if;
  if v_run.status in ('pending', 'running') then
    perform taskwarden._cancel_run_tasks(v_run.id, 'run_archived');
  end if;
  update taskwarden.runs r
  set status = 'archived', completed_at = coalesce(r.completed_at, now()), updated_at = now(),
      metadata = case when archive_run.note is null then r.metadata
                      else r.metadata || jsonb_build_object('archive_note', archive_run.note) end
  where r.id = v_run.id
  returning * into v_run;
  return v_run;
end
$$;
comment on function taskwarden.archive_run(uuid, text) is 'Archives a run (any status); live tasks are cancelled; idempotent.';

create function taskwarden.find_stale_runs(stale_hours numeric default null)
returns table (
  run_id uuid, name text, status text, started_at timestamptz, last_progress_at timestamptz,
  stale_for_hours numeric, tasks_total bigint, tasks_queued bigint, tasks_running bigint,
  tasks_completed bigint, tasks_failed bigint
)
language plpgsql stable
set search_path = ''
as $$
declare
  v_hours numeric := coalesce(find_stale_runs.stale_hours, taskwarden._setting_num('run_stale_hours'));
  v_cutoff timestamptz;
begin
  perform taskwarden._check_range('stale_hours', v_hours, 0.0001, 87600);
  v_cutoff := now() - make_interval(secs => v_hours * 3600);
  -- The progress aggregate is v_run_progress's (the views migration); the status and start
  -- filters reach the runs scan, so only running runs are aggregated.
  return query
    select p.run_id, p.name, p.status, p.started_at, p.last_progress_at,
           round((extract(epoch from now() - greatest(coalesce(p.started_at, p.created_at), p.last_progress_at)) / 3600)::numeric, 2),
           p.tasks_total, p.tasks_queued, p.tasks_running, p.tasks_completed, p.tasks_failed
    from taskwarden.v_run_progress p
    where p.status = 'running'
      and coalesce(p.started_at, p.created_at) < v_cutoff
      and coalesce(p.last_progress_at, '-infinity'::timestamptz) < v_cutoff
    order by p.started_at;
end
$$;
comment on function taskwarden.find_stale_runs(numeric) is 'Runs running longer than stale_hours (default: the setting run_stale_hours) with no task progress (updates or heartbeats) in that time.';

create function taskwarden.is_run_stale(run_id uuid, stale_hours numeric default null)
returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
  if is_run_stale.run_id is null then
    raise exception 'run_id must not be null' using errcode = 'TW002', hint = 'Pass a run id.';
  end if;
  if not exists (select from taskwarden.runs r where r.id = is_run_stale.run_id) then
    raise exception 'run % not found', is_run_stale.run_id using errcode = 'TW003', hint = 'Check run_id.';
  end if;
  return exists (select from taskwarden.find_stale_runs(is_run_stale.stale_hours) s where s.run_id = is_run_stale.run_id);
end
$$;
comment on function taskwarden.is_run_stale(uuid, numeric) is 'True when the run is running past stale_hours with no task progress.';

create function taskwarden.cleanup_stale_runs(stale_hours numeric default null, dry_run boolean default true)
returns table (
  run_id uuid, name text, status text, started_at timestamptz, last_progress_at timestamptz,
  stale_for_hours numeric, tasks_total bigint, tasks_queued bigint, tasks_running bigint,
  tasks_completed bigint, tasks_failed bigint, action text
)
language plpgsql
set search_path = ''
as $$
declare
  v_hours numeric := coalesce(cleanup_stale_runs.stale_hours, taskwarden._setting_num('run_stale_hours'));
  v_stale record;
  v_message text;
begin
  if cleanup_stale_runs.dry_run is null then
    raise exception 'dry_run must not be null' using errcode = 'TW002', hint = 'Pass true to preview, false to act.';
  end if;
  v_message := format('Run marked as stale after %sh with no completion', trim_scale(v_hours));
  for v_stale in select * from taskwarden.find_stale_runs(v_hours) loop
    if not cleanup_stale_runs.dry_run then
      -- Re-checked under the row lock: a concurrent cleanup or finish_run wins, nothing is counted twice.
      update taskwarden.runs r
      set status = 'failed', error = v_message, completed_at = now(), updated_at = now()
      where r.id = v_stale.run_id and r.status = 'running';
      if not found then
        continue;
      end if;
      perform taskwarden._cancel_run_tasks(v_stale.run_id, 'run_stale');
    end if;
    run_id := v_stale.run_id; name := v_stale.name;
    status := case when cleanup_stale_runs.dry_run then v_stale.status else 'failed' end;
    started_at := v_stale.started_at; last_progress_at := v_stale.last_progress_at;
    stale_for_hours := v_stale.stale_for_hours; tasks_total := v_stale.tasks_total;
    tasks_queued := v_stale.tasks_queued; tasks_running := v_stale.tasks_running;
    tasks_completed := v_stale.tasks_completed; tasks_failed := v_stale.tasks_failed;
    action := case when cleanup_stale_runs.dry_run then 'would_fail' else 'failed' end;
    return next;
  end loop;
end
$$;
comment on function taskwarden.cleanup_stale_runs(numeric, boolean) is 'Fails stale runs ("Run marked as stale after Nh with no completion") and cancels their tasks; a dry run unless dry_run => false.';
