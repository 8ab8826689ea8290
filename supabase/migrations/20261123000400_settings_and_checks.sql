-- taskwarden: settings with their defaults, and the small helpers every function uses to read
-- them and to validate arguments (SQLSTATE TW002 names the argument).

-- Every setting is typed and range-checked when written (the trigger below), so a bad value is
-- refused with an error naming the key instead of silently stopping the reaper later.
create function taskwarden._settings_validate()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_text text;
  v_num numeric;
  v_range text;
  v_hint text;
begin
  if tg_op = 'DELETE' then
    raise exception 'setting % cannot be deleted', old.key
      using errcode = 'TW002', hint = 'Set its value instead: every setting is read by the reaper.';
  end if;
  -- A rename would delete the setting under its old name just as surely.
  if tg_op = 'UPDATE' and new.key is distinct from old.key then
    raise exception 'setting % cannot be renamed', old.key
      using errcode = 'TW002', hint = 'Set its value instead: every setting is read by the reaper.';
  end if;
  new.updated_at := now();
  v_range := case when new.min_value is not null and new.max_value is not null
                  then format(' between %s and %s', trim_scale(new.min_value), trim_scale(new.max_value)) else '' end;
  v_hint := format('For example: update taskwarden.settings set value = %L where key = %L',
                   case new.value_type when 'boolean' then 'true' else coalesce(trim_scale(new.min_value), 1)::text end,
                   new.key);
  if new.value is null or jsonb_typeof(new.value) not in ('number', 'string', 'boolean') then
    raise exception '%', format('setting %s must be a single %s value%s (got %s)', new.key, new.value_type, v_range,
                                coalesce(new.value::text, 'null'))
      using errcode = 'TW002', hint = v_hint;
  end if;
  v_text := btrim(new.value #>> '{}');
  if new.value_type = 'boolean' then
    if lower(v_text) not in ('true', 'false') then
      raise exception 'setting % must be true or false (got %)', new.key, new.value
        using errcode = 'TW002', hint = v_hint;
    end if;
    new.value := to_jsonb(lower(v_text)::boolean);
    return new;
  end if;
  if v_text !~ '^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$'
     or (new.value_type = 'integer' and v_text !~ '^[-+]?[0-9]+(\.0*)?$') then
    raise exception '%', format('setting %s must be a %s%s (got %s)', new.key,
                                case new.value_type when 'integer' then 'whole number' else 'number' end, v_range, new.value)
      using errcode = 'TW002', hint = v_hint;
  end if;
  v_num := v_text::numeric;
  if (new.min_value is not null and v_num < new.min_value) or (new.max_value is not null and v_num > new.max_value) then
    raise exception '%', format('setting %s must be%s (got %s)', new.key, v_range, trim_scale(v_num))
      using errcode = 'TW002', hint = v_hint;
  end if;
  new.value := to_jsonb(v_num);
  return new;
end
$$;
comment on function taskwarden._settings_validate() is 'Trigger: a setting''s value must match its value_type and range (TW002 naming the key); settings cannot be deleted.';

create trigger settings_validate
before insert or update or delete on taskwarden.settings
for each row execute function taskwarden._settings_validate();

insert into taskwarden.settings (key, value, value_type, min_value, max_value, description) values
  ('lease_seconds',              '600',     'integer', 1,    86400,     'Lease of a claim or renewal that names no lease_seconds, seconds.'),
  ('max_attempts',               '3',       'integer', 1,    1000,      'Attempts of a task enqueued without max_attempts (its retry budget).'),
  ('dead_worker_seconds',        '30',      'integer', 1,    604800,    'A worker whose last heartbeat is older than this is dead; its tasks are requeued.'),
  ('task_stale_seconds',         '900',     'integer', 1,    604800,    'A running task without a lease and with no heartbeat for this long is stale (legacy rows).'),
  ('max_requeue',                '3',       'integer', 1,    1000,      'Retry budget of the stale-task cleanup (the reaper''s, and cleanup_stale_running_tasks without max_attempts).'),
  ('reap_batch',                 '200',     'integer', 1,    10000,     'Rows per reaper step and round (and cleanup_stale_running_tasks without batch_size).'),
  ('reap_max_rounds',            '10',      'integer', 1,    1000,      'Rounds of reap_batch rows per step in one reap() while a step fills its batch.'),
  ('run_stale_hours',            '24',      'number',  0.01, 87600,     'A running run with no task progress for this long is failed by the reaper.'),
  ('retry_base_seconds',         '5',       'number',  0,    86400,     'Backoff of a retried task: least(retry_max_seconds, retry_base_seconds * 2^(attempts-1)).'),
  ('retry_max_seconds',          '3600',    'number',  0,    604800,    'Upper bound of the retry backoff.'),
  ('worker_retention_minutes',   '60',      'integer', 1,    525600,    'Stopped or dead worker rows are deleted after this (unless they still hold tasks).'),
  ('reaper_runs_retention_days', '7',       'integer', 1,    3650,      'reaper_runs rows are kept this long.'),
  ('log_success_events',         'false',   'boolean', null, null,      'Write claimed / completed events (off: the task row keeps owner_id, started_at and completed_at; failures, releases, cancellations and reaper actions are always logged).'),
  ('max_json_bytes',             '1048576', 'integer', 1024, 104857600, 'Largest payload, result or metadata accepted, in bytes of its JSON text.')
on conflict (key) do nothing;

-- The one place a setting's default lives is its row above (or in the migration of its concern):
-- these readers carry no fallback value. Settings cannot be deleted, so a missing key is a broken
-- install or a typo, and is said so loudly instead of turning into a silent null.
create function taskwarden._missing_setting(p_key text)
returns text
language plpgsql stable
set search_path = ''
as $$
begin
  raise exception 'setting % is missing from taskwarden.settings', p_key
    using errcode = 'TW003', hint = 'Apply every migration in supabase/migrations: they insert each setting with its default.';
end
$$;
comment on function taskwarden._missing_setting(text) is 'Raises TW003 naming a setting that is not in taskwarden.settings (the readers'' only fallback).';

-- One SQL statement per read (readers run on the claim and completion paths); the error call is
-- reached only when the row is missing.
create function taskwarden._setting_num(p_key text)
returns numeric
language sql stable
set search_path = ''
as $$
  select coalesce((select (s.value #>> '{}')::numeric from taskwarden.settings s where s.key = p_key),
                  taskwarden._missing_setting(p_key)::numeric)
$$;
comment on function taskwarden._setting_num(text) is 'A numeric setting from taskwarden.settings (TW003 when the key does not exist).';

create function taskwarden._setting_bool(p_key text)
returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce((select (s.value #>> '{}')::boolean from taskwarden.settings s where s.key = p_key),
                  taskwarden._missing_setting(p_key)::boolean)
$$;
comment on function taskwarden._setting_bool(text) is 'A boolean setting from taskwarden.settings (TW003 when the key does not exist).';

create function taskwarden._dead_after()
returns interval
language sql stable
set search_path = ''
as $$
  select make_interval(secs => taskwarden._setting_num('dead_worker_seconds'))
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
  -- btrim() strips spaces only: tabs, newlines and Unicode spaces count as blank too.
  if p_value is null or p_value ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$' then
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
    taskwarden._setting_num('retry_max_seconds'),
    taskwarden._setting_num('retry_base_seconds') * power(2, greatest(p_attempts, 1) - 1)))
$$;
comment on function taskwarden._retry_delay(integer) is 'Exponential backoff before a retried task may run again.';

create function taskwarden._check_json(p_name text, p_value jsonb)
returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_limit integer := taskwarden._setting_num('max_json_bytes')::integer;
  v_bytes integer;
  v_level jsonb[];
  v_depth integer := 0;
begin
  if p_value is null then
    return;
  end if;
  v_bytes := octet_length(p_value::text);
  if v_bytes > v_limit then
    raise exception '% is too large (% bytes of JSON, at most % by the setting max_json_bytes)', p_name, v_bytes, v_limit
      using errcode = 'TW002',
            hint = format('Store large data elsewhere and pass a reference, or raise the setting max_json_bytes (now %s).', v_limit);
  end if;
  -- Breadth-first, one level at a time: deep nesting is refused before anything recurses over it.
  v_level := array[p_value];
  while cardinality(v_level) > 0 loop
    v_depth := v_depth + 1;
    if v_depth > 64 then
      raise exception '% is nested too deeply (more than 64 levels)', p_name
        using errcode = 'TW002', hint = format('Flatten %s.', p_name);
    end if;
    v_level := array(
      select c.value
      from unnest(v_level) as l (v)
      cross join lateral (
        select e.value from jsonb_each(case when jsonb_typeof(l.v) = 'object' then l.v end) e
        union all
        select a.value from jsonb_array_elements(case when jsonb_typeof(l.v) = 'array' then l.v end) a
      ) c
      where jsonb_typeof(c.value) in ('object', 'array'));
  end loop;
end
$$;
comment on function taskwarden._check_json(text, jsonb) is 'Raises TW002 naming the argument when a JSON value exceeds max_json_bytes or 64 levels of nesting.';

create function taskwarden._check_jsons(p_name text, p_values jsonb[])
returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_limit numeric := taskwarden._setting_num('max_json_bytes');
begin
  -- Each value on its own: the size limit is per value, not per batch. _check_json walks a value
  -- level by level (about a millisecond), so it sees only the values that could fail it: over
  -- the limit, or with more than 64 brackets (nesting deeper than 64 needs at least 65).
  perform taskwarden._check_json(case when cardinality(p_values) = 1 then p_name else format('%s[%s]', p_name, v.n) end, v.value)
  from (select u.value, u.n, u.value::text as txt from unnest(p_values) with ordinality as u (value, n)) v
  where v.value is not null
    and (octet_length(v.txt) > v_limit or length(v.txt) - length(translate(v.txt, '[{', '')) > 64);
end
$$;
comment on function taskwarden._check_jsons(text, jsonb[]) is 'Applies _check_json to every value of an array (named "name[n]"), reading the limit once and skipping values that cannot fail it.';
