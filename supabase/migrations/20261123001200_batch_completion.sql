-- taskwarden: fenced completion of many tasks in one call (throughput). A lost lease does not
-- raise here (it would roll back the others): it comes back as completed = false.

create function taskwarden.complete_tasks(task_ids bigint[], lease_tokens uuid[], results jsonb[] default null)
returns table (task_id bigint, completed boolean)
language plpgsql
set search_path = ''
as $$
begin
  if task_ids is null or lease_tokens is null or cardinality(task_ids) <> cardinality(lease_tokens) then
    raise exception 'task_ids and lease_tokens must be arrays of the same length'
      using errcode = 'TW002', hint = 'Pass one lease_token per task_id.';
  end if;
  if results is not null and cardinality(results) <> cardinality(task_ids) then
    raise exception 'results must be null or have one entry per task_id'
      using errcode = 'TW002', hint = 'Pass null, or one result (possibly null) per task.';
  end if;
  perform taskwarden._check_range('task_ids length', cardinality(task_ids), 1, 10000);
  if array_position(task_ids, null) is not null then
    raise exception 'task_ids must not contain null' using errcode = 'TW002', hint = 'Pass the id of each claimed task.';
  end if;
  if array_position(lease_tokens, null) is not null then
    raise exception 'lease_tokens must not contain null'
      using errcode = 'TW002', hint = 'Pass the lease_token claim_tasks returned with each task.';
  end if;

  if results is not null then
    perform taskwarden._check_jsons('results', results);
  end if;

  -- Rows are locked in id order whatever order the caller listed them in, as every multi-row
  -- write does: in input order, a batch and cancel_run deadlocked in 7 of 10 rounds.
  perform from taskwarden.tasks t
  where t.id = any (complete_tasks.task_ids) and t.status = 'running'
  order by t.id
  for update;

  -- Rows are found by primary key whatever the statistics say (t.id = any (...)): planned from
  -- statistics taken while nothing was running, the join read every running row per call,
  -- slowing down as the backlog it caused grew (a worker fell from 5,000 to 1,000 tasks/s).
  -- Answers match (task id, lease token), never the id alone: one id listed twice with a real
  -- and a bogus token is completed once and answered true once. A task already completed with
  -- the same token is a retry whose first answer was lost, and is answered true again.
  return query
    with input as (
      select i.id, i.token, i.result, i.n
      from unnest(task_ids, lease_tokens, coalesce(results, array_fill(null::jsonb, array[cardinality(task_ids)])))
             with ordinality as i (id, token, result, n)
    ), done as (
      update taskwarden.tasks t
      set status = 'completed', result = i.result, completed_at = now(), lease_expires_at = null, updated_at = now()
      from input i
      where t.id = any (complete_tasks.task_ids) and t.id = i.id and t.lease_token = i.token and t.status = 'running'
      returning t.id, t.lease_token, t.run_id, t.owner_id, t.attempts
    ), logged as (
      insert into taskwarden.task_events (task_id, run_id, event, worker_id, attempt)
      select d.id, d.run_id, 'completed', d.owner_id, d.attempts
      from done d
      where taskwarden._setting_bool('log_success_events')
    )
    select i.id,
           exists (select from done d where d.id = i.id and d.lease_token = i.token)
           or exists (select from taskwarden.tasks t where t.id = i.id and t.lease_token = i.token and t.status = 'completed')
    from input i
    order by i.n;
end
$$;
comment on function taskwarden.complete_tasks(bigint[], uuid[], jsonb[]) is 'Completes many held tasks in one statement (rows locked in id order); fenced per (task, token), completed = false when the lease is lost; idempotent for the same token.';

revoke all on function taskwarden.complete_tasks(bigint[], uuid[], jsonb[]) from public, anon, authenticated;
grant execute on function taskwarden.complete_tasks(bigint[], uuid[], jsonb[]) to service_role;
