-- taskwarden: alert de-duplication. A problem (a dead worker, a stale run) opens one episode per
-- alert channel; each channel is told once when it opens and once when it resolves. Whoever reaps
-- delivers (the edge function, `npm start`, `taskwarden reap`), so sync_alerts hands each pending
-- alert to one caller at a time under a short delivery lease: a caller that fails says so and the
-- alert is offered again on the next call; one that dies mid-delivery loses it when the lease ends.

create table taskwarden.alerts (
  id                bigint generated always as identity primary key,
  alert_key         text not null,            -- 'dead_worker:<worker_id>' / 'stale_run:<run_id>'
  kind              text not null check (kind in ('dead_worker', 'stale_run')),
  subject           text not null,            -- the worker id or run id
  channel           text not null check (length(btrim(channel)) between 1 and 50),
  details           jsonb not null,
  opened_at         timestamptz not null default now(),
  resolved_at       timestamptz,
  open_sent_at      timestamptz,
  resolved_sent_at  timestamptz,
  delivering_until  timestamptz              -- a caller of sync_alerts is delivering it until then
);
comment on table taskwarden.alerts is 'Alert episodes per problem and channel: opened, resolved, and when each was sent.';
create unique index alerts_one_open_per_channel on taskwarden.alerts (alert_key, channel) where resolved_at is null;
create index alerts_unsent_idx on taskwarden.alerts (channel) where open_sent_at is null or resolved_sent_at is null;
alter table taskwarden.alerts enable row level security;

create function taskwarden.sync_alerts(channels text[])
returns table (alert_id bigint, channel text, kind text, subject text, event text, details jsonb,
               opened_at timestamptz, resolved_at timestamptz)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_channels text[] := sync_alerts.channels;
  v_problems jsonb;
  v_bad text;
begin
  if v_channels is null or cardinality(v_channels) = 0 or array_position(v_channels, null) is not null then
    raise exception 'channels must be a non-empty array of channel names'
      using errcode = 'TW002', hint = 'For example array[''email'', ''webhook''].';
  end if;
  -- Checked here, before any write: a constraint violation would break alerting exactly when a
  -- problem exists, with an error that names no argument.
  select c into v_bad from unnest(v_channels) c
  where c ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$' or length(btrim(c)) > 50
  limit 1;
  if found then
    raise exception 'channels must be non-blank names of at most 50 characters (got "%")', v_bad
      using errcode = 'TW002', hint = 'For example array[''email'', ''webhook''].';
  end if;
  select c into v_bad from unnest(v_channels) c group by c having count(*) > 1 order by c limit 1;
  if found then
    raise exception 'channels must not repeat a channel (% is given twice)', v_bad
      using errcode = 'TW002', hint = 'Pass each channel once.';
  end if;

  select coalesce(jsonb_agg(jsonb_build_object('alert_key', p.alert_key, 'kind', p.kind, 'subject', p.subject,
                                                'details', p.details)), '[]'::jsonb)
  into v_problems
  from (
    select 'dead_worker:' || d.worker_id as alert_key, 'dead_worker' as kind, d.worker_id as subject, to_jsonb(d) as details
    from taskwarden.v_dead_workers d
    union all
    select 'stale_run:' || s.run_id, 'stale_run', s.run_id::text, to_jsonb(s)
    from taskwarden.find_stale_runs(taskwarden._setting_num('run_stale_hours')) s
  ) p;

  -- Problems that went away resolve their open episodes.
  update taskwarden.alerts a
  set resolved_at = now()
  where a.resolved_at is null and a.channel = any (v_channels)
    and not exists (select from jsonb_to_recordset(v_problems) as p (alert_key text) where p.alert_key = a.alert_key);

  -- New problems open an episode per channel; known ones refresh their details.
  insert into taskwarden.alerts as a (alert_key, kind, subject, channel, details)
  select p.alert_key, p.kind, p.subject, c.ch, p.details
  from jsonb_to_recordset(v_problems) as p (alert_key text, kind text, subject text, details jsonb)
  cross join unnest(v_channels) as c (ch)
  on conflict (alert_key, channel) where resolved_at is null
  do update set details = excluded.details;

  -- Taken under a delivery lease, locked in id order: a concurrent caller skips the rows being
  -- taken, and once this call commits it finds them leased. Two minutes outlast one delivery
  -- round (each channel gives up after 10 s a step).
  return query
    with pick as (
      select p.id from taskwarden.alerts p
      where p.channel = any (v_channels)
        and (p.delivering_until is null or p.delivering_until < now())
        and ((p.resolved_at is null and p.open_sent_at is null)
             -- a recovery is news only to a channel that heard of the problem
             or (p.resolved_at is not null and p.open_sent_at is not null and p.resolved_sent_at is null))
      order by p.id
      for update skip locked
    ), offered as (
      update taskwarden.alerts a
      set delivering_until = now() + interval '2 minutes'
      from pick
      where a.id = pick.id
      returning a.*
    )
    select o.id, o.channel, o.kind, o.subject,
           case when o.resolved_at is null then 'open' else 'resolved' end, o.details, o.opened_at, o.resolved_at
    from offered o
    order by o.channel, o.kind, o.id;
end
$$;
comment on function taskwarden.sync_alerts(text[]) is 'Opens and resolves alert episodes from dead workers and stale runs; returns what each channel still has to send, each to one caller at a time (a 2-minute delivery lease).';

create function taskwarden.mark_alerts_sent(alert_ids bigint[], event text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
begin
  if mark_alerts_sent.event is null or mark_alerts_sent.event not in ('open', 'resolved', 'failed') then
    raise exception 'event must be open, resolved or failed (got %)', coalesce(mark_alerts_sent.event, 'null')
      using errcode = 'TW002', hint = 'Pass the event sync_alerts() returned, or failed when the channel did not take it.';
  end if;
  update taskwarden.alerts a
  set open_sent_at = case when mark_alerts_sent.event = 'open' then coalesce(a.open_sent_at, now()) else a.open_sent_at end,
      resolved_sent_at = case when mark_alerts_sent.event = 'resolved' then coalesce(a.resolved_sent_at, now()) else a.resolved_sent_at end,
      delivering_until = null
  where a.id = any (coalesce(mark_alerts_sent.alert_ids, '{}'));
  get diagnostics v_count = row_count;
  -- Fully told episodes are history: keep a week of it.
  delete from taskwarden.alerts a
  where a.resolved_at < now() - interval '7 days';
  return v_count;
end
$$;
comment on function taskwarden.mark_alerts_sent(bigint[], text) is 'Records that a channel delivered the given alerts (open or resolved), so they are not sent again, or failed to (failed), so the next sync_alerts offers them again.';

revoke all on table taskwarden.alerts from public, anon, authenticated;
grant select, insert, update, delete on table taskwarden.alerts to service_role;
revoke all on function taskwarden.sync_alerts(text[]) from public, anon, authenticated;
revoke all on function taskwarden.mark_alerts_sent(bigint[], text) from public, anon, authenticated;
grant execute on function taskwarden.sync_alerts(text[]) to service_role;
grant execute on function taskwarden.mark_alerts_sent(bigint[], text) to service_role;
