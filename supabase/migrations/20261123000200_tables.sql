-- taskwarden: the tables. Hot tables (tasks, worker_heartbeats) get a lower fillfactor and
-- aggressive autovacuum so heartbeats and lease renewals stay HOT updates.

create table taskwarden.runs (
  id            uuid primary key default gen_random_uuid(),
  name          text not null check (length(btrim(name)) between 1 and 500),
  status        text not null default 'pending'
                check (status in ('pending', 'running', 'completed', 'failed', 'cancelled', 'archived')),
  metadata      jsonb not null default '{}'::jsonb,
  error         text,
  created_at    timestamptz not null default now(),
  started_at    timestamptz,
  completed_at  timestamptz,
  updated_at    timestamptz not null default now(),
  constraint runs_terminal_has_completed_at
    check (status in ('pending', 'running') or completed_at is not null)
);
comment on table taskwarden.runs is 'A group of tasks (a lead list, a benchmark run). Terminal runs always have completed_at.';

create table taskwarden.tasks (
  id                bigint generated always as identity primary key,
  run_id            uuid references taskwarden.runs (id) on delete cascade,
  task_type         text not null check (length(btrim(task_type)) between 1 and 200),
  payload           jsonb not null default '{}'::jsonb,
  status            text not null default 'queued'
                    check (status in ('queued', 'running', 'completed', 'failed', 'cancelled')),
  priority          integer not null default 0,
  run_at            timestamptz not null default now(),
  attempts          integer not null default 0 check (attempts >= 0),
  max_attempts      integer not null default 3 check (max_attempts between 1 and 1000),
  crash_count       integer not null default 0 check (crash_count >= 0),
  owner_id          text,
  lease_token       uuid,
  lease_seconds     integer check (lease_seconds > 0),
  lease_expires_at  timestamptz,
  last_heartbeat    timestamptz,
  timeout_seconds   integer check (timeout_seconds > 0),
  result            jsonb,
  last_error        text,
  errors            jsonb not null default '[]'::jsonb,
  created_at        timestamptz not null default now(),
  started_at        timestamptz,
  completed_at      timestamptz,
  updated_at        timestamptz not null default now(),
  -- An operator's requeue or cancel of a running task revokes its claim at once (lease_token is
  -- cleared, so the holder's renewals and writes are refused), but the holder may still be
  -- running its handler: the task is not handed out again before that holder handed it back
  -- (a heartbeat that no longer lists the claim), died, or its old lease ran out.
  revoked_owner_id     text,
  revoked_lease_token  uuid,
  revoked_until        timestamptz,
  constraint tasks_terminal_has_completed_at
    check (status in ('queued', 'running') or completed_at is not null),
  -- The retry budget is a bound, never a suggestion: nothing may claim past it, and a queued
  -- task always has an attempt left, so a claim can never be the one that breaks it.
  constraint tasks_attempts_within_max check (attempts <= max_attempts),
  constraint tasks_queued_has_attempt_left check (status <> 'queued' or attempts < max_attempts),
  constraint tasks_revocation_complete
    check ((revoked_owner_id is null) = (revoked_lease_token is null) and (revoked_owner_id is null) = (revoked_until is null))
) with (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
comment on table taskwarden.tasks is 'Units of work. A running task is held under a lease (owner_id, lease_token, lease_expires_at); attempts counts claims, crash_count counts times the reaper took it back.';
comment on column taskwarden.tasks.revoked_until is 'Set with revoked_owner_id / revoked_lease_token when an operator requeued or cancelled a running task: until then (or until that owner hands the claim back or dies) the task is not claimed again.';
comment on column taskwarden.tasks.errors is 'Error history: one object per failed or reaped attempt {attempt, at, reason, error, worker_id}.';

create table taskwarden.worker_heartbeats (
  worker_id          text primary key check (length(btrim(worker_id)) between 1 and 200),
  worker_type        text not null check (length(btrim(worker_type)) between 1 and 200),
  last_heartbeat_at  timestamptz not null default now(),
  status             text not null default 'active'
                     check (status in ('active', 'idle', 'processing', 'stopping', 'stopped')),
  current_run_id     uuid,
  current_task       text,
  lease_expires_at   timestamptz,
  started_at         timestamptz not null default now(),
  metadata           jsonb not null default '{}'::jsonb,
  host               text,
  pid                integer,
  run_filter_id      uuid,
  stop_requested_at  timestamptz,
  stopped_at         timestamptz,
  beats              bigint not null default 0
) with (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 200,
        autovacuum_analyze_scale_factor = 0.1);
comment on table taskwarden.worker_heartbeats is 'One row per worker process start. "Dead" is derived from last_heartbeat_at, never stored.';
comment on column taskwarden.worker_heartbeats.lease_expires_at is 'When this worker will be considered dead if it does not beat again.';

create table taskwarden.task_events (
  id          bigint generated always as identity primary key,
  task_id     bigint not null references taskwarden.tasks (id) on delete cascade,
  run_id      uuid,
  event       text not null
              check (event in ('claimed', 'completed', 'failed', 'requeued', 'dead_lettered', 'cancelled', 'released')),
  reason      text,
  worker_id   text,
  actor       text,
  attempt     integer,
  error       text,
  details     jsonb,
  created_at  timestamptz not null default now()
);
comment on table taskwarden.task_events is 'Audit trail of every task transition, with who (worker_id, actor) and why (reason).';

create table taskwarden.reaper_runs (
  id                 bigint generated always as identity primary key,
  source             text not null,
  dry_run            boolean not null default false,
  skipped            boolean not null default false,
  started_at         timestamptz not null default now(),
  finished_at        timestamptz,
  duration_ms        numeric,
  requeued           integer not null default 0,
  failed             integer not null default 0,
  stale_runs_failed  integer not null default 0,
  workers_deleted    integer not null default 0,
  summary            jsonb not null default '{}'::jsonb
);
comment on table taskwarden.reaper_runs is 'One row per reap() call: source, counts, duration.';

create table taskwarden.settings (
  key          text primary key,
  value        jsonb not null,
  value_type   text not null check (value_type in ('integer', 'number', 'boolean')),
  min_value    numeric,
  max_value    numeric,
  description  text not null,
  updated_at   timestamptz not null default now(),
  constraint settings_range_ordered check (min_value is null or max_value is null or min_value <= max_value)
);
comment on table taskwarden.settings is 'Defaults the reaper and the functions read; edit with UPDATE (each value is checked against value_type and its range when written).';

alter table taskwarden.runs enable row level security;
alter table taskwarden.tasks enable row level security;
alter table taskwarden.worker_heartbeats enable row level security;
alter table taskwarden.task_events enable row level security;
alter table taskwarden.reaper_runs enable row level security;
alter table taskwarden.settings enable row level security;
