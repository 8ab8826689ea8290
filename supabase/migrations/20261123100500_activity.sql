-- taskwarden: the activity chart (get_task_activity) at a cost that does not follow the throughput.
--
-- Counting every task and event in a 30-minute window costs what the throughput makes it (at
-- 10^7 tasks a day, some 200,000 rows each refresh). Instead the reaper rolls closed 10-second
-- buckets up into task_activity, from a watermark (the newest roll-up), a bounded slice per reap
-- and off the hot path: no completion writes a counter (one hot counter row would serialize
-- every worker). get_task_activity reads the roll-ups for the part of the window they cover and
-- counts the rest (the last minute or so, and anything before the first roll-up) from the rows.
--
-- What is counted, from rows that are always written:
--   completed  tasks by completed_at (tasks_finished_idx), not `completed` events, which
--              log_success_events may turn off;
--   failed     failed attempts: a handler's `failed` event, and the reaper's `dead_lettered` (a
--              crashed last attempt); fail_task's own `dead_lettered` follows a `failed` event for
--              the same attempt and is not counted again;
--   requeued   `requeued` and `released` events;
--   claimed    `claimed` events: written only while log_success_events is on.
--
-- The trade: a roll-up covers buckets older than activity_rollup_lag_seconds. A transaction that
-- stamps a completion (now() is its start) and commits later than that, after the roll-up
-- passed, is missing from the chart; the rows themselves are untouched.

insert into taskwarden.settings (key, value, value_type, min_value, max_value, description) values
  ('activity_rollup_lag_seconds', '60', 'integer', 0, 3600,
   'The reaper rolls up activity buckets older than this; younger ones are counted from the rows on each read.'),
  ('activity_rollup_max_seconds', '300', 'integer', 10, 86400,
   'Seconds of activity one reap() rolls up at most (after an outage, the backlog drains over the next reaps).'),
  ('activity_retention_days', '7', 'integer', 1, 3650,
   'Activity roll-ups are kept this long (get_task_activity shows at most 7 days).')
on conflict (key) do nothing;

create table taskwarden.task_activity (
  bucket_start  timestamptz primary key,
  completed     bigint not null default 0,
  failed        bigint not null default 0,
  requeued      bigint not null default 0,
  claimed       bigint not null default 0,
  constraint task_activity_bucket_aligned check (extract(epoch from bucket_start) % 10 = 0)
);
comment on table taskwarden.task_activity is 'Task activity per 10-second bucket, rolled up by the reaper; one row per bucket, empty ones included, so the covered span is min..max.';
alter table taskwarden.task_activity enable row level security;

create function taskwarden._activity_grain()
returns interval
language sql immutable
set search_path = ''
as $$ select interval '10 seconds' $$;
comment on function taskwarden._activity_grain() is 'The width of a task_activity bucket (its check constraint says the same).';

create function taskwarden._count_task_activity(p_from timestamptz, p_to timestamptz, p_bucket interval)
returns table (bucket_start timestamptz, completed bigint, failed bigint, requeued bigint, claimed bigint)
language plpgsql stable
set search_path = ''
set jit = off
as $$
begin
  -- plpgsql, not sql: its plans are cached for the session. Both scans are index range scans.
  return query
    select x.b, sum(x.c)::bigint, sum(x.f)::bigint, sum(x.r)::bigint, sum(x.cl)::bigint
    from (
      select date_bin(p_bucket, t.completed_at, timestamptz 'epoch') as b, count(*) as c, 0 as f, 0 as r, 0 as cl
      from taskwarden.tasks t
      where t.status = 'completed' and t.completed_at >= p_from and t.completed_at < p_to
      group by 1
      union all
      select date_bin(p_bucket, e.created_at, timestamptz 'epoch'), 0,
             count(*) filter (where e.event = 'failed' or (e.event = 'dead_lettered' and e.actor = 'reaper')),
             count(*) filter (where e.event in ('requeued', 'released')),
             count(*) filter (where e.event = 'claimed')
      from taskwarden.task_events e
      where e.created_at >= p_from and e.created_at < p_to
      group by 1
    ) x
    group by x.b;
end
$$;
comment on function taskwarden._count_task_activity(timestamptz, timestamptz, interval) is 'Task activity in [p_from, p_to) per bucket, counted from the tasks and their events.';

create function taskwarden._roll_up_task_activity(p_dry_run boolean)
returns jsonb
language plpgsql
set search_path = ''
set jit = off
as $$
declare
  v_grain constant interval := taskwarden._activity_grain();
  v_to timestamptz := date_bin(v_grain,
    now() - make_interval(secs => taskwarden._setting_num('activity_rollup_lag_seconds')), timestamptz 'epoch');
  v_from timestamptz;
  v_n integer := 0;
  v_deleted integer := 0;
begin
  select a.bucket_start + v_grain into v_from from taskwarden.task_activity a order by a.bucket_start desc limit 1;
  -- The first roll-up starts one bucket back: earlier windows are counted from the rows.
  v_from := coalesce(v_from, v_to - v_grain);
  v_to := least(v_to, date_bin(v_grain,
    v_from + make_interval(secs => taskwarden._setting_num('activity_rollup_max_seconds')), timestamptz 'epoch'));
  if p_dry_run or v_to <= v_from then
    return jsonb_build_object('buckets', 0, 'deleted', 0, 'rolled_up_to', v_from);
  end if;
  -- reap() holds its advisory lock: one roll-up at a time, so the watermark only moves forward.
  insert into taskwarden.task_activity (bucket_start, completed, failed, requeued, claimed)
  select g.b, coalesce(c.completed, 0), coalesce(c.failed, 0), coalesce(c.requeued, 0), coalesce(c.claimed, 0)
  from generate_series(v_from, v_to - v_grain, v_grain) g (b)
  left join taskwarden._count_task_activity(v_from, v_to, v_grain) c on c.bucket_start = g.b;
  get diagnostics v_n = row_count;
  -- Oldest first, so the roll-ups stay one unbroken span.
  with gone as (
    delete from taskwarden.task_activity a
    where a.bucket_start in (
      select o.bucket_start from taskwarden.task_activity o
      where o.bucket_start < now() - make_interval(days => taskwarden._setting_num('activity_retention_days')::integer)
      order by o.bucket_start
      limit taskwarden._setting_num('prune_batch')::integer)
    returning 1
  )
  select count(*) into v_deleted from gone;
  return jsonb_build_object('buckets', v_n, 'deleted', v_deleted, 'rolled_up_to', v_to);
end
$$;
comment on function taskwarden._roll_up_task_activity(boolean) is 'Reaper step: rolls closed 10-second buckets of task activity up into task_activity, from the newest roll-up on; deletes roll-ups past their retention.';

create function taskwarden.get_task_activity(minutes integer default 60, bucket_seconds integer default 60)
returns table (bucket_start timestamptz, completed bigint, failed bigint, requeued bigint, claimed bigint)
language plpgsql stable
set search_path = ''
set jit = off
as $$
declare
  v_step interval := make_interval(secs => get_task_activity.bucket_seconds);
  v_from timestamptz;
  v_to timestamptz;
  v_lo timestamptz;
  v_hi timestamptz;
begin
  perform taskwarden._check_range('minutes', get_task_activity.minutes, 1, 10080);
  perform taskwarden._check_range('bucket_seconds', get_task_activity.bucket_seconds, 1, 86400);
  v_from := date_bin(v_step, now() - make_interval(mins => get_task_activity.minutes), timestamptz 'epoch');
  v_to := date_bin(v_step, now(), timestamptz 'epoch') + v_step;
  -- The roll-ups cover [v_lo, v_hi) without a gap. A bucket that is not a whole number of them
  -- cannot be built from them: such a chart is counted from the rows (what it costs then follows
  -- the throughput).
  if get_task_activity.bucket_seconds % extract(epoch from taskwarden._activity_grain())::integer = 0 then
    select min(a.bucket_start), max(a.bucket_start) + taskwarden._activity_grain() into v_lo, v_hi
    from taskwarden.task_activity a;
  end if;
  v_lo := coalesce(v_lo, v_to);
  v_hi := coalesce(v_hi, v_to);
  return query
    with counts as (
      select * from taskwarden._count_task_activity(v_from, least(v_lo, v_to), v_step)
      union all
      select date_bin(v_step, a.bucket_start, timestamptz 'epoch'), a.completed, a.failed, a.requeued, a.claimed
      from taskwarden.task_activity a
      where a.bucket_start >= greatest(v_from, v_lo) and a.bucket_start < least(v_hi, v_to)
      union all
      select * from taskwarden._count_task_activity(greatest(v_hi, v_from), v_to, v_step)
    )
    select b.b, coalesce(sum(c.completed), 0)::bigint, coalesce(sum(c.failed), 0)::bigint,
           coalesce(sum(c.requeued), 0)::bigint, coalesce(sum(c.claimed), 0)::bigint
    from generate_series(v_from, v_to - v_step, v_step) b (b)
    left join counts c on c.bucket_start = b.b
    group by b.b
    order by b.b;
end
$$;
comment on function taskwarden.get_task_activity(integer, integer) is 'Tasks per time bucket for charts: completed (from the tasks), failed attempts, requeued or released, claimed (claim events); roll-ups where they cover the window.';

revoke all on table taskwarden.task_activity from public, anon, authenticated;
grant select, insert, update, delete on table taskwarden.task_activity to service_role;
revoke all on function taskwarden._activity_grain() from public, anon, authenticated;
revoke all on function taskwarden._count_task_activity(timestamptz, timestamptz, interval) from public, anon, authenticated;
revoke all on function taskwarden._roll_up_task_activity(boolean) from public, anon, authenticated;
revoke all on function taskwarden.get_task_activity(integer, integer) from public, anon, authenticated;
grant execute on function taskwarden._activity_grain() to service_role;
grant execute on function taskwarden._count_task_activity(timestamptz, timestamptz, interval) to service_role;
grant execute on function taskwarden._roll_up_task_activity(boolean) to service_role;
grant execute on function taskwarden.get_task_activity(integer, integer) to service_role;
