-- complete_tasks answers a retried call the way complete_task does: a task already completed
-- with the same lease_token counts as completed, so a worker that lost the first answer in
-- transit (a connection reset after the commit) does not mistake its own completion for a
-- lost lease. And it finds its rows by primary key whatever the statistics say: planned from
-- statistics taken while nothing was running, the join read every running row on each call,
-- slowing down as the backlog it caused grew (a worker's throughput fell from 5,000 to 1,000
-- tasks/s).

create or replace function taskwarden.complete_tasks(task_ids bigint[], lease_tokens uuid[], results jsonb[] default null)
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

  return query
    with input as (
      select i.id, i.token, i.result
      from unnest(task_ids, lease_tokens, coalesce(results, array_fill(null::jsonb, array[cardinality(task_ids)])))
             as i (id, token, result)
    ), done as (
      update taskwarden.tasks t
      set status = 'completed', result = i.result, completed_at = now(), lease_expires_at = null, updated_at = now()
      from input i
      where t.id = any (complete_tasks.task_ids) and t.id = i.id and t.lease_token = i.token and t.status = 'running'
      returning t.id, t.run_id, t.owner_id, t.attempts
    ), logged as (
      insert into taskwarden.task_events (task_id, run_id, event, worker_id, attempt)
      select d.id, d.run_id, 'completed', d.owner_id, d.attempts
      from done d
      where taskwarden._setting_bool('log_success_events', true)
    )
    select i.id,
           exists (select from done d where d.id = i.id)
           or exists (select from taskwarden.tasks t where t.id = i.id and t.lease_token = i.token and t.status = 'completed')
    from input i;
end
$$;
comment on function taskwarden.complete_tasks(bigint[], uuid[], jsonb[]) is 'Completes many held tasks in one statement; fenced per task (completed = false when the lease is lost), idempotent for the same token.';
