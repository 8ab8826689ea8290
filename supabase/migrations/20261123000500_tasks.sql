-- taskwarden: the task lifecycle. Claims hand out a fresh lease_token; every later write by a
-- worker is fenced by it, so a zombie that lost its lease is refused (TW001 lease_lost).

create function taskwarden._raise_lease_lost(p_task_id bigint, p_lease_token uuid)
returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
begin
  perform taskwarden._check_fence_args(p_task_id, p_lease_token);
  select * into v_task from taskwarden.tasks where id = p_task_id;
  if not found then
    raise exception 'task % not found', p_task_id
      using errcode = 'TW003', hint = 'Check task_id.';
  end if;
  if v_task.revoked_lease_token = p_lease_token then
    raise exception 'lease lost on task %: an operator took it back (it is now %)', p_task_id, v_task.status
      using errcode = 'TW001',
            detail = format('lease_token %s was revoked by requeue_task, cancel_task or cancel_run', p_lease_token),
            hint = 'Stop the handler and discard this result; the task runs again only after this claim is handed back.';
  end if;
  raise exception 'lease lost on task %: it is now % (owner %, attempt %)',
      p_task_id, v_task.status, coalesce(v_task.owner_id, 'none'), v_task.attempts
    using errcode = 'TW001',
          detail = format('lease_token %s is not the current token of task %s', p_lease_token, p_task_id),
          hint = 'The task was reaped, released, cancelled or claimed again; discard this result.';
end
$$;
comment on function taskwarden._raise_lease_lost(bigint, uuid) is 'Raises TW001 lease_lost for a fenced write whose token is not current (TW003 when the task does not exist, TW002 for a null id or token).';

create function taskwarden._check_fence_args(p_task_id bigint, p_lease_token uuid)
returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_task_id is null then
    raise exception 'task_id must not be null' using errcode = 'TW002', hint = 'Pass the id of the claimed task.';
  end if;
  if p_lease_token is null then
    raise exception 'lease_token must not be null'
      using errcode = 'TW002', hint = 'Pass the lease_token claim_tasks returned with the task.';
  end if;
end
$$;
comment on function taskwarden._check_fence_args(bigint, uuid) is 'Raises TW002 naming task_id or lease_token when one is null (a null token is a bug, not a lost lease).';

create function taskwarden._fence_answer(p_task_id bigint, p_lease_token uuid, p_event text)
returns taskwarden.tasks
language sql stable
set search_path = ''
as $$
  -- The claim (task, token) was already ended by this kind of write (a retry whose first
  -- answer was lost): its first answer again, laid over the current row for the columns it
  -- did not record (payload, result, errors), so a newer holder's token never leaks out.
  select jsonb_populate_record(t, e.details -> 'answer')
  from taskwarden.task_events e
  join taskwarden.tasks t on t.id = e.task_id
  where e.task_id = p_task_id and e.event = p_event
    and e.details ->> 'lease_token' = p_lease_token::text
  order by e.id desc
  limit 1
$$;
comment on function taskwarden._fence_answer(bigint, uuid, text) is 'The recorded answer of the fenced write (failed / released event) that ended the claim (task_id, lease_token), or null.';

create function taskwarden._fence_record(p_task taskwarden.tasks, p_lease_token uuid)
returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_build_object('lease_token', p_lease_token,
                            'answer', to_jsonb(p_task) - 'payload' - 'result' - 'errors')
$$;
comment on function taskwarden._fence_record(taskwarden.tasks, uuid) is 'Event details that remember which claim a write ended and what it answered, so a retry gets the same answer.';

create function taskwarden._check_run_accepts_tasks(p_run_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_status text;
begin
  if p_run_id is null then
    return;
  end if;
  -- A key-share lock until commit: finish_run (which locks the run for update) waits for this
  -- enqueue and then counts its tasks, or this enqueue waits and sees the run is over; either
  -- way no task joins a run that was completed with it unfinished.
  select status into v_status from taskwarden.runs where id = p_run_id for key share;
  if not found then
    raise exception 'run % not found', p_run_id using errcode = 'TW003', hint = 'Check run_id, or create the run with create_run().';
  end if;
  if v_status not in ('pending', 'running') then
    raise exception 'run % is %: it accepts no new tasks', p_run_id, v_status
      using errcode = 'TW004', hint = 'Create a new run.';
  end if;
end
$$;
comment on function taskwarden._check_run_accepts_tasks(uuid) is 'Raises unless the run (when given) exists and is not terminal.';

create function taskwarden.enqueue_tasks(
  task_type text,
  payloads jsonb[],
  run_id uuid default null,
  max_attempts integer default null,
  run_at timestamptz default now(),
  priority integer default 0,
  timeout_seconds integer default null
)
returns setof taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_type text := enqueue_tasks.task_type;
  v_max_attempts integer := coalesce(enqueue_tasks.max_attempts, taskwarden._setting_num('max_attempts')::integer);
begin
  perform taskwarden._check_text('task_type', v_type);
  if payloads is null or cardinality(payloads) = 0 then
    raise exception 'payloads must be a non-empty array' using errcode = 'TW002', hint = 'Pass at least one payload.';
  end if;
  perform taskwarden._check_range('payloads length', cardinality(payloads), 1, 10000);
  if array_position(payloads, null) is not null then
    raise exception 'payloads must not contain null' using errcode = 'TW002', hint = 'Use ''{}'' for an empty payload.';
  end if;
  perform taskwarden._check_range('max_attempts', v_max_attempts, 1, 1000);
  perform taskwarden._check_range('priority', enqueue_tasks.priority, -1000000, 1000000);
  if enqueue_tasks.run_at is null then
    raise exception 'run_at must not be null' using errcode = 'TW002', hint = 'Omit run_at to run now.';
  end if;
  if not isfinite(enqueue_tasks.run_at) then
    raise exception 'run_at must be a finite time (got %)', enqueue_tasks.run_at
      using errcode = 'TW002', hint = 'Omit run_at to run now, or pass a real time; ''infinity'' would never run.';
  end if;
  if enqueue_tasks.timeout_seconds is not null then
    perform taskwarden._check_range('timeout_seconds', enqueue_tasks.timeout_seconds, 1, 604800);
  end if;
  perform taskwarden._check_jsons(case when cardinality(payloads) = 1 then 'payload' else 'payloads' end, payloads);
  perform taskwarden._check_run_accepts_tasks(enqueue_tasks.run_id);

  return query
    insert into taskwarden.tasks as t (task_type, payload, run_id, max_attempts, run_at, priority, timeout_seconds)
    select v_type, p.payload, enqueue_tasks.run_id, v_max_attempts, enqueue_tasks.run_at,
           enqueue_tasks.priority, enqueue_tasks.timeout_seconds
    from unnest(payloads) with ordinality as p (payload, n)
    order by p.n
    returning t.*;

  -- One wake-up per call, not per row.
  perform pg_notify('taskwarden_tasks', v_type);
end
$$;
comment on function taskwarden.enqueue_tasks(text, jsonb[], uuid, integer, timestamptz, integer, integer) is 'Enqueues one queued task per payload in one statement and sends one NOTIFY.';

create function taskwarden.enqueue_task(
  task_type text,
  payload jsonb default '{}'::jsonb,
  run_id uuid default null,
  max_attempts integer default null,
  run_at timestamptz default now(),
  priority integer default 0,
  timeout_seconds integer default null
)
returns taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
begin
  if payload is null then
    raise exception 'payload must not be null' using errcode = 'TW002', hint = 'Use ''{}'' for an empty payload.';
  end if;
  select * into v_task
  from taskwarden.enqueue_tasks(task_type, array[payload], run_id, max_attempts, run_at, priority, timeout_seconds);
  return v_task;
end
$$;
comment on function taskwarden.enqueue_task(text, jsonb, uuid, integer, timestamptz, integer, integer) is 'Enqueues one queued task (a NOTIFY on channel taskwarden_tasks wakes listening workers).';

create function taskwarden.claim_tasks(
  worker_id text,
  task_types text[] default null,
  batch_size integer default 1,
  lease_seconds integer default null,
  run_id uuid default null
)
returns setof taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_worker text := claim_tasks.worker_id;
  v_types text[] := claim_tasks.task_types;
  v_run uuid := claim_tasks.run_id;
  v_lease integer := coalesce(claim_tasks.lease_seconds, taskwarden._setting_num('lease_seconds')::integer);
  v_claimed taskwarden.tasks[];
begin
  perform taskwarden._check_text('worker_id', v_worker);
  perform taskwarden._check_range('batch_size', claim_tasks.batch_size, 1, 1000);
  perform taskwarden._check_range('lease_seconds', v_lease, 1, 86400);
  if v_types is not null and cardinality(v_types) = 0 then
    raise exception 'task_types must be null (any type) or a non-empty array'
      using errcode = 'TW002', hint = 'Pass null to claim any task type.';
  end if;
  if array_position(v_types, null) is not null then
    raise exception 'task_types must not contain null'
      using errcode = 'TW002', hint = 'List task type names, or pass task_types => null to claim any type.';
  end if;
  if v_run is not null and not exists (select from taskwarden.runs r where r.id = v_run) then
    raise exception 'run % not found', v_run using errcode = 'TW003', hint = 'Check run_id.';
  end if;
  -- A worker asked to drain, or already stopped, takes nothing new.
  if exists (select from taskwarden.worker_heartbeats w
             where w.worker_id = v_worker and (w.stop_requested_at is not null or w.status = 'stopped')) then
    return;
  end if;

  with candidates as (
    select t.id
    from taskwarden.tasks t
    where t.status = 'queued'
      and t.run_at <= now()
      and (v_types is null or t.task_type = any (v_types))
      and (v_run is null or t.run_id = v_run)
      -- A claim an operator revoked may still be running: wait until its holder hands it back
      -- (which clears revoked_until), dies, or its old lease runs out.
      and (t.revoked_until is null or t.revoked_until <= now()
           or exists (select from taskwarden.worker_heartbeats w
                      where w.worker_id = t.revoked_owner_id
                        and w.last_heartbeat_at < now() - taskwarden._dead_after()))
    order by t.priority desc, t.run_at, t.id
    limit claim_tasks.batch_size
    for update skip locked
  ), claimed as (
    update taskwarden.tasks t
    set status = 'running',
        owner_id = v_worker,
        lease_token = gen_random_uuid(),
        lease_seconds = v_lease,
        lease_expires_at = now() + make_interval(secs => v_lease),
        last_heartbeat = now(),
        attempts = t.attempts + 1,
        started_at = now(),
        revoked_owner_id = null,
        revoked_lease_token = null,
        revoked_until = null,
        updated_at = now()
    from candidates c
    where t.id = c.id
    returning t
  )
  select coalesce(array_agg(c.t order by (c.t).priority desc, (c.t).run_at, (c.t).id), '{}') into v_claimed
  from claimed c;

  if cardinality(v_claimed) = 0 then
    return;
  end if;

  -- SKIP LOCKED: this claim already holds task rows, and cancel_run / finish_run hold the run row
  -- while they lock its tasks; waiting here would deadlock. Whoever holds a run row moves it
  -- out of pending anyway.
  update taskwarden.runs r
  set status = 'running', started_at = coalesce(r.started_at, now()), updated_at = now()
  where r.id in (select p.id from taskwarden.runs p
                 where p.status = 'pending' and p.id in (select c.run_id from unnest(v_claimed) c where c.run_id is not null)
                 order by p.id
                 for update skip locked);

  if taskwarden._setting_bool('log_success_events') then
    insert into taskwarden.task_events (task_id, run_id, event, worker_id, attempt)
    select c.id, c.run_id, 'claimed', v_worker, c.attempts from unnest(v_claimed) c;
  end if;

  return query select * from unnest(v_claimed);
end
$$;
comment on function taskwarden.claim_tasks(text, text[], integer, integer, uuid) is 'Claims up to batch_size due tasks (FOR UPDATE SKIP LOCKED) under a fresh lease_token each; spends one attempt; skips tasks whose revoked claim may still run.';

create function taskwarden.renew_task_lease(task_id bigint, lease_token uuid, lease_seconds integer default null)
returns taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
  v_lease integer := coalesce(renew_task_lease.lease_seconds, taskwarden._setting_num('lease_seconds')::integer);
begin
  perform taskwarden._check_fence_args(renew_task_lease.task_id, renew_task_lease.lease_token);
  perform taskwarden._check_range('lease_seconds', v_lease, 1, 86400);
  update taskwarden.tasks t
  set lease_expires_at = now() + make_interval(secs => v_lease),
      lease_seconds = v_lease,
      last_heartbeat = now()
  where t.id = renew_task_lease.task_id and t.lease_token = renew_task_lease.lease_token and t.status = 'running'
  returning t.* into v_task;
  if not found then
    perform taskwarden._raise_lease_lost(renew_task_lease.task_id, renew_task_lease.lease_token);
  end if;
  return v_task;
end
$$;
comment on function taskwarden.renew_task_lease(bigint, uuid, integer) is 'Extends a task lease; fenced by lease_token (TW001 when lost).';

create function taskwarden.complete_task(task_id bigint, lease_token uuid, result jsonb default null)
returns taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
begin
  perform taskwarden._check_fence_args(complete_task.task_id, complete_task.lease_token);
  perform taskwarden._check_jsons('result', array[complete_task.result]);
  update taskwarden.tasks t
  set status = 'completed',
      result = complete_task.result,
      completed_at = now(),
      lease_expires_at = null,
      updated_at = now()
  where t.id = complete_task.task_id and t.lease_token = complete_task.lease_token and t.status = 'running'
  returning t.* into v_task;
  if not found then
    -- A retried call whose first answer was lost in transit: same token, already completed
    -- (a completed row keeps the token that completed it).
    select * into v_task from taskwarden.tasks t
    where t.id = complete_task.task_id and t.lease_token = complete_task.lease_token and t.status = 'completed';
    if found then
      return v_task;
    end if;
    perform taskwarden._raise_lease_lost(complete_task.task_id, complete_task.lease_token);
  end if;
  if taskwarden._setting_bool('log_success_events') then
    insert into taskwarden.task_events (task_id, run_id, event, worker_id, attempt)
    values (v_task.id, v_task.run_id, 'completed', v_task.owner_id, v_task.attempts);
  end if;
  return v_task;
end
$$;
comment on function taskwarden.complete_task(bigint, uuid, jsonb) is 'Marks a task completed with its result; fenced by lease_token (TW001 when lost), idempotent for the same token.';

-- The one answer to "attempts left?" for every path that ends a claim with a failure or a
-- take-back (fail_task, the reaper's steps, startup recovery): River's explicit decision type.
-- p_max_attempts is the budget that applies (a caller with a budget of its own passes the lower).
create function taskwarden._retry_decision(
  p_attempts integer, p_max_attempts integer, p_retryable boolean default true,
  out final boolean, out status text, out run_at timestamptz, out event text
)
language sql stable
set search_path = ''
as $$
  select d.final,
         case when d.final then 'failed' else 'queued' end,
         case when not d.final then now() + taskwarden._retry_delay(p_attempts) end,
         case when d.final then 'dead_lettered' else 'requeued' end
  -- A running task has spent at least one attempt (legacy rows may say 0).
  from (select not p_retryable or greatest(p_attempts, 1) >= p_max_attempts as final) d
$$;
comment on function taskwarden._retry_decision(integer, integer, boolean) is 'Requeue with backoff or fail for good: the next status, run_at (null when final) and reaper event for a task that spent p_attempts of p_max_attempts.';

create function taskwarden.fail_task(task_id bigint, lease_token uuid, error text, retryable boolean default true)
returns taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
  v_next record;
  v_owner text;
  v_error text := left(fail_task.error, 10000);
begin
  perform taskwarden._check_fence_args(fail_task.task_id, fail_task.lease_token);
  perform taskwarden._check_text('error', v_error, 10000);
  if retryable is null then
    raise exception 'retryable must not be null' using errcode = 'TW002', hint = 'Pass true or false.';
  end if;
  select * into v_task from taskwarden.tasks t
  where t.id = fail_task.task_id and t.lease_token = fail_task.lease_token and t.status = 'running'
  for update;
  if not found then
    -- A retry whose first answer was lost: the same answer again, whatever happened since.
    v_task := taskwarden._fence_answer(fail_task.task_id, fail_task.lease_token, 'failed');
    if v_task.id is not null then
      return v_task;
    end if;
    perform taskwarden._raise_lease_lost(fail_task.task_id, fail_task.lease_token);
  end if;
  select * into v_next from taskwarden._retry_decision(v_task.attempts, v_task.max_attempts, retryable);
  v_owner := v_task.owner_id;

  update taskwarden.tasks t
  set status = v_next.status,
      run_at = coalesce(v_next.run_at, t.run_at),
      completed_at = case when v_next.final then now() end,
      owner_id = case when v_next.final then t.owner_id end,
      lease_token = null,
      lease_expires_at = null,
      last_heartbeat = null,
      last_error = v_error,
      errors = t.errors || jsonb_build_array(jsonb_build_object(
        'attempt', t.attempts, 'at', now(), 'reason', 'error', 'error', v_error, 'worker_id', t.owner_id)),
      updated_at = now()
  where t.id = v_task.id
  returning t.* into v_task;

  insert into taskwarden.task_events (task_id, run_id, event, reason, worker_id, attempt, error, details)
  values (v_task.id, v_task.run_id, 'failed', case when retryable then 'error' else 'non_retryable' end,
          v_owner, v_task.attempts, v_error,
          jsonb_build_object('retryable', retryable, 'final', v_next.final, 'retry_at', v_next.run_at)
            || taskwarden._fence_record(v_task, fail_task.lease_token));
  if v_next.final then
    insert into taskwarden.task_events (task_id, run_id, event, reason, worker_id, attempt, error)
    values (v_task.id, v_task.run_id, v_next.event,
            case when retryable then 'max_attempts' else 'non_retryable' end, v_owner, v_task.attempts, v_error);
  end if;
  return v_task;
end
$$;
comment on function taskwarden.fail_task(bigint, uuid, text, boolean) is 'Records a handler error; requeues with backoff while attempts remain, else fails for good. Fenced by lease_token, idempotent for the same token.';

-- The one way a running claim goes back to the queue without spending an attempt: a graceful
-- release_task, stop_worker, and a heartbeat's handback of a claim its worker lost track of.
create function taskwarden._release_claims(p_ids bigint[], p_reason text)
returns setof taskwarden.tasks
language plpgsql
set search_path = ''
as $$
begin
  -- Callers pass ids they locked in this transaction; only rows still running are given back.
  if coalesce(cardinality(p_ids), 0) = 0 then
    return;
  end if;
  return query
    with held as (
      select t.id, t.owner_id as prev_owner, t.lease_token as old_token
      from taskwarden.tasks t
      where t.id = any (p_ids) and t.status = 'running'
    ), released as (
      update taskwarden.tasks t
      set status = 'queued', attempts = greatest(t.attempts - 1, 0), run_at = now(),
          owner_id = null, lease_token = null, lease_expires_at = null, last_heartbeat = null, updated_at = now()
      from held h
      where t.id = h.id
      returning t as task_row, h.prev_owner, h.old_token
    ), logged as (
      -- The event remembers the claim it ended and its answer: a retried release_task gets it again.
      insert into taskwarden.task_events (task_id, run_id, event, reason, worker_id, attempt, details)
      select (r.task_row).id, (r.task_row).run_id, 'released', p_reason, r.prev_owner, (r.task_row).attempts,
             taskwarden._fence_record(r.task_row, r.old_token)
      from released r
    )
    select (r.task_row).* from released r order by (r.task_row).id;
end
$$;
comment on function taskwarden._release_claims(bigint[], text) is 'Gives the given running tasks back to the queue without spending an attempt and logs a released event (with the claim it ended) per task.';

create function taskwarden.release_task(task_id bigint, lease_token uuid)
returns taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
begin
  perform taskwarden._check_fence_args(release_task.task_id, release_task.lease_token);
  perform from taskwarden.tasks t
  where t.id = release_task.task_id and t.lease_token = release_task.lease_token and t.status = 'running'
  for update;
  if not found then
    -- A retry whose first answer was lost (or stop_worker / a heartbeat gave the claim back
    -- first): the claim was released, and that is the answer.
    v_task := taskwarden._fence_answer(release_task.task_id, release_task.lease_token, 'released');
    if v_task.id is not null then
      return v_task;
    end if;
    perform taskwarden._raise_lease_lost(release_task.task_id, release_task.lease_token);
  end if;
  select * into v_task from taskwarden._release_claims(array[release_task.task_id], 'worker_shutdown');
  return v_task;
end
$$;
comment on function taskwarden.release_task(bigint, uuid) is 'Gives a held task back to the queue without spending an attempt (graceful shutdown). Fenced by lease_token, idempotent for the same token.';

create function taskwarden._cancel_tasks(p_ids bigint[], p_reason text, p_actor text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
begin
  -- Rows are locked in id order, as every multi-row write does, so this never deadlocks with a
  -- batch completion of the same tasks.
  perform from taskwarden.tasks t
  where t.id = any (p_ids) and t.status in ('queued', 'running')
  order by t.id
  for update;
  with cancelled as (
    update taskwarden.tasks t
    set status = 'cancelled', completed_at = now(), lease_token = null, lease_expires_at = null,
        -- A running holder is told at its next heartbeat; until it hands the claim back (or
        -- dies, or its lease runs out) a later requeue_task does not hand the task out again.
        revoked_owner_id = case when t.status = 'running' and t.lease_token is not null then t.owner_id
                                else t.revoked_owner_id end,
        revoked_lease_token = case when t.status = 'running' and t.lease_token is not null then t.lease_token
                                   else t.revoked_lease_token end,
        revoked_until = case when t.status = 'running' and t.lease_token is not null
                             then coalesce(t.lease_expires_at, now() + taskwarden._dead_after())
                             else t.revoked_until end,
        last_error = coalesce(p_reason, t.last_error), updated_at = now()
    where t.id = any (p_ids) and t.status in ('queued', 'running')
    returning t.id, t.run_id, t.owner_id, t.attempts
  ), logged as (
    insert into taskwarden.task_events (task_id, run_id, event, reason, worker_id, actor, attempt)
    select c.id, c.run_id, 'cancelled', p_reason, c.owner_id, p_actor, c.attempts from cancelled c
    returning 1
  )
  select count(*) into v_count from logged;
  return v_count;
end
$$;
comment on function taskwarden._cancel_tasks(bigint[], text, text) is 'Cancels the given queued or running tasks (rows locked in id order; holders learn it on their next heartbeat) and logs why.';

create function taskwarden.cancel_task(task_id bigint, reason text default null)
returns taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
begin
  if cancel_task.task_id is null then
    raise exception 'task_id must not be null' using errcode = 'TW002', hint = 'Pass the id of the task to cancel.';
  end if;
  select * into v_task from taskwarden.tasks t where t.id = cancel_task.task_id for update;
  if not found then
    raise exception 'task % not found', cancel_task.task_id using errcode = 'TW003', hint = 'Check task_id.';
  end if;
  if v_task.status in ('completed', 'failed') then
    raise exception 'task % is already %: it cannot be cancelled', v_task.id, v_task.status
      using errcode = 'TW004', hint = 'Only queued or running tasks can be cancelled.';
  end if;
  perform taskwarden._cancel_tasks(array[v_task.id], coalesce(cancel_task.reason, 'cancelled'), 'admin');
  select * into v_task from taskwarden.tasks t where t.id = cancel_task.task_id;
  return v_task;
end
$$;
comment on function taskwarden.cancel_task(bigint, text) is 'Cancels a queued or running task (a running holder''s lease is revoked at once); idempotent on cancelled tasks, TW004 on completed or failed ones.';

create function taskwarden.requeue_task(task_id bigint, reason text default null)
returns taskwarden.tasks
language plpgsql
set search_path = ''
as $$
declare
  v_task taskwarden.tasks;
  v_prev taskwarden.tasks;
  v_revoke boolean;
begin
  if requeue_task.task_id is null then
    raise exception 'task_id must not be null' using errcode = 'TW002', hint = 'Pass the id of the task to requeue.';
  end if;
  select * into v_prev from taskwarden.tasks t where t.id = requeue_task.task_id for update;
  if not found then
    raise exception 'task % not found', requeue_task.task_id using errcode = 'TW003', hint = 'Check task_id.';
  end if;
  if v_prev.status = 'completed' then
    raise exception 'task % is completed: enqueue a new task instead', requeue_task.task_id
      using errcode = 'TW004', hint = 'Completed tasks are never run again.';
  end if;
  -- Taking a running task back revokes its claim now (the holder's renewals and writes are
  -- refused), but the task is handed out again only once that claim cannot still be running:
  -- see claim_tasks and the heartbeat's handback.
  v_revoke := v_prev.status = 'running' and v_prev.lease_token is not null;
  update taskwarden.tasks t
  set status = 'queued', run_at = now(), owner_id = null, lease_token = null, lease_expires_at = null,
      last_heartbeat = null, completed_at = null,
      -- A failed or cancelled task gets a fresh retry budget. A running one gets back the
      -- attempt the operator interrupted: the operator's decision, not the task's failure, and
      -- attempts never pass max_attempts (a task at its last attempt stays claimable once).
      attempts = case when v_prev.status in ('failed', 'cancelled') then 0
                      when v_prev.status = 'running' then greatest(t.attempts - 1, 0)
                      else t.attempts end,
      revoked_owner_id = case when v_revoke then v_prev.owner_id else t.revoked_owner_id end,
      revoked_lease_token = case when v_revoke then v_prev.lease_token else t.revoked_lease_token end,
      revoked_until = case when v_revoke then coalesce(v_prev.lease_expires_at, now() + taskwarden._dead_after())
                           else t.revoked_until end,
      updated_at = now()
  where t.id = requeue_task.task_id
  returning t.* into v_task;
  insert into taskwarden.task_events (task_id, run_id, event, reason, worker_id, actor, attempt, details)
  values (v_task.id, v_task.run_id, 'requeued', 'admin', v_prev.owner_id, 'admin', v_task.attempts,
          jsonb_build_object('previous_status', v_prev.status, 'note', requeue_task.reason,
                             'revoked_lease_token', case when v_revoke then v_prev.lease_token end,
                             'claimable_after', v_task.revoked_until));
  return v_task;
end
$$;
comment on function taskwarden.requeue_task(bigint, text) is 'Operator action: puts a running, failed, cancelled or queued task back in the queue; a running holder''s lease is revoked at once, and the task is claimable once that holder handed it back, died or its old lease ran out.';

create function taskwarden.get_task(task_id bigint)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_task jsonb;
begin
  if get_task.task_id is null then
    raise exception 'task_id must not be null' using errcode = 'TW002', hint = 'Pass a task id.';
  end if;
  select to_jsonb(t) into v_task from taskwarden.tasks t where t.id = get_task.task_id;
  if v_task is null then
    raise exception 'task % not found', get_task.task_id using errcode = 'TW003', hint = 'Check task_id.';
  end if;
  return jsonb_build_object('task', v_task, 'events', coalesce((
    select jsonb_agg(to_jsonb(e) order by e.id) from taskwarden.task_events e where e.task_id = get_task.task_id), '[]'::jsonb));
end
$$;
comment on function taskwarden.get_task(bigint) is 'A task and its whole event history, as jsonb (for operators).';

create function taskwarden._requeue_or_fail(
  p_ids bigint[], p_reason text, p_error text, p_dry_run boolean, p_budget integer default null
)
returns table (task_id bigint, task_type text, run_id uuid, owner_id text, attempts integer, action text, reason text)
language plpgsql
set search_path = ''
as $$
begin
  -- Callers pass ids they selected FOR UPDATE in this transaction; the status re-check below
  -- keeps a completion that landed first from being undone.
  if coalesce(cardinality(p_ids), 0) = 0 then
    return; -- the common case of an idle reap: no statement, no generic plan over the whole table
  end if;
  if p_dry_run then
    return query
      select t.id, t.task_type, t.run_id, t.owner_id, t.attempts,
             case when d.final then 'would_fail' else 'would_requeue' end,
             p_reason
      from taskwarden.tasks t
      cross join lateral taskwarden._retry_decision(t.attempts, least(t.max_attempts, coalesce(p_budget, t.max_attempts))) d
      where t.id = any (p_ids) and t.status = 'running'
      order by t.id;
    return;
  end if;

  return query
    with c as (
      select t.id, t.owner_id as prev_owner, t.lease_token as prev_token, d.final, d.status, d.run_at, d.event
      from taskwarden.tasks t
      cross join lateral taskwarden._retry_decision(t.attempts, least(t.max_attempts, coalesce(p_budget, t.max_attempts))) d
      where t.id = any (p_ids) and t.status = 'running'
    ), moved as (
      update taskwarden.tasks t
      set status = c.status,
          run_at = coalesce(c.run_at, t.run_at),
          completed_at = case when c.final then now() end,
          owner_id = null, lease_token = null, lease_seconds = null, lease_expires_at = null, last_heartbeat = null,
          crash_count = t.crash_count + 1,
          last_error = p_error,
          errors = t.errors || jsonb_build_array(jsonb_build_object(
            'attempt', t.attempts, 'at', now(), 'reason', p_reason, 'error', p_error, 'worker_id', c.prev_owner)),
          updated_at = now()
      from c
      where t.id = c.id and t.status = 'running'
      returning t.id, t.task_type, t.run_id, c.prev_owner, c.prev_token, t.attempts, c.final, c.event
    ), logged as (
      -- The claim it ended is recorded, so a zombie's refused write can be matched to this event.
      insert into taskwarden.task_events (task_id, run_id, event, reason, worker_id, actor, attempt, error, details)
      select m.id, m.run_id, m.event, p_reason,
             m.prev_owner, 'reaper', m.attempts, p_error, jsonb_build_object('lease_token', m.prev_token)
      from moved m
    )
    select m.id, m.task_type, m.run_id, m.prev_owner, m.attempts,
           case when m.final then 'failed' else 'requeued' end, p_reason
    from moved m
    order by m.id;
end
$$;
comment on function taskwarden._requeue_or_fail(bigint[], text, text, boolean, integer) is 'Takes running tasks back from their holders: requeue with backoff, or fail once the retry budget is spent; logs each with its reason.';
