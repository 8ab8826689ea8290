-- taskwarden: settings with their defaults, and the small helpers every function uses to read
-- them and to validate arguments (SQLSTATE TW002 names the argument).

insert into taskwarden.settings (key, value, description) values
  ('lease_seconds',              '600',  'Default lease of a claim, seconds.'),
  ('dead_worker_seconds',        '300',  'A worker whose last heartbeat is older than this is dead; its tasks are requeued.'),
  ('task_stale_seconds',         '900',  'A running task with no heartbeat for this long is stale (legacy rows without a lease included).'),
  ('max_requeue',                '3',    'Retry budget of the stale-task cleanup run by the reaper.'),
  ('reap_batch',                 '200',  'Rows per reaper step and round.'),
  ('reap_max_rounds',            '10',   'Rounds of reap_batch rows per step in one reap() while a step fills its batch.'),
  ('run_stale_hours',            '24',   'A running run with no task progress for this long is failed by the reaper.'),
  ('retry_base_seconds',         '5',    'Backoff of a retried task: least(retry_max_seconds, retry_base_seconds * 2^(attempts-1)).'),
  ('retry_max_seconds',          '3600', 'Upper bound of the retry backoff.'),
  ('worker_retention_minutes',   '60',   'Stopped or dead worker rows are deleted after this (unless they still hold tasks).'),
  ('reaper_runs_retention_days', '7',    'reaper_runs rows are kept this long.'),
  ('event_retention_days',       '30',   'task_events rows are kept this long.'),
  ('log_success_events',         'true', 'Write claimed / completed events (failures and reaper actions are always logged).')
on conflict (key) do nothing;

create function taskwarden._setting_num(p_key text, p_default numeric)
returns numeric
language sql stable
set search_path = ''
as $$
  select coalesce((select (s.value #>> '{}')::numeric from taskwarden.settings s where s.key = p_key), p_default)
$$;
comment on function taskwarden._setting_num(text, numeric) is 'A numeric setting from taskwarden.settings, or the default when unset.';

create function taskwarden._setting_bool(p_key text, p_default boolean)
returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce((select (s.value #>> '{}')::boolean from taskwarden.settings s where s.key = p_key), p_default)
$$;
comment on function taskwarden._setting_bool(text, boolean) is 'A boolean setting from taskwarden.settings, or the default when unset.';

create function taskwarden._dead_after()
returns interval
language sql stable
set search_path = ''
as $$
  select make_interval(secs => taskwarden._setting_num('dead_worker_seconds', 300))
$$;
comment on function taskwarden._dead_after() is 'Heartbeat age after which a worker counts as dead (setting dead_worker_seconds).';

create function taskwarden._check_range(p_name text, p_value numeric, p_min numeric, p_max numeric)
returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_value is null then
    raise exception '% must not be null', p_name
      using errcode = 'TW002', hint = format('Pass %s between %s and %s.', p_name, p_min, p_max);
  end if;
  if p_value < p_min or p_value > p_max then
    raise exception '% must be between % and % (got %)', p_name, p_min, p_max, p_value
      using errcode = 'TW002', hint = format('Pass %s between %s and %s.', p_name, p_min, p_max);
  end if;
end
$$;
comment on function taskwarden._check_range(text, numeric, numeric, numeric) is 'Raises TW002 naming the argument unless p_min <= value <= p_max.';

create function taskwarden._check_text(p_name text, p_value text, p_max_length integer default 200)
returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_value is null or length(btrim(p_value)) = 0 then
    raise exception '% must be a non-empty string', p_name
      using errcode = 'TW002', hint = format('Pass a non-empty %s.', p_name);
  end if;
  if length(p_value) > p_max_length then
    raise exception '% is too long (% characters, at most %)', p_name, length(p_value), p_max_length
      using errcode = 'TW002', hint = format('Shorten %s.', p_name);
  end if;
end
$$;
comment on function taskwarden._check_text(text, text, integer) is 'Raises TW002 naming the argument unless the text is non-blank and short enough.';

create function taskwarden._retry_delay(p_attempts integer)
returns interval
language sql stable
set search_path = ''
as $$
  select make_interval(secs => least(
    taskwarden._setting_num('retry_max_seconds', 3600),
    taskwarden._setting_num('retry_base_seconds', 5) * power(2, greatest(p_attempts, 1) - 1)))
$$;
comment on function taskwarden._retry_delay(integer) is 'Exponential backoff before a retried task may run again.';
