// Cost at any age: a tasks table of 10^6 and 10^7 rows that retention keeps (direct inserts:
// completed and cancelled within the last 23 h, failed within 6 days, one event per task, 1,000
// queued, 10^3 or 10^5 running under live leases held by 100 beating workers), plus 10% more
// rows past their retention period. At each size: prune() until done, with table and index sizes
// before and after; then, on the 10^6 / 10^7 rows left, the HOT share of lease renewals
// (heartbeats renewing every running task, which also leaves their pages as a live system has
// them), reap() with nothing to do, get_worker_health_summary (what `taskwarden status` calls),
// get_task_counts, the dashboard's data call (loadSnapshot: its four SQL calls, with the activity
// roll-ups caught up as a running reaper keeps them), and for comparison the old exact
// v_task_status_counts and the chart counted from the rows alone. Each SQL figure is given as a
// round-trip median, as the server's execution time (EXPLAIN ANALYZE) and, where the load of a
// shared machine would swamp both, as the server's CPU time per call.
import { connect as connectTaskwarden } from "../src/rpc/index.ts";
import { loadSnapshot } from "../src/dashboard/data.ts";
import { connect, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { taskwardenDatabase } from "./lib/cluster.ts";
import { median, percentile } from "./lib/stats.ts";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";

export interface ScaleSize {
  rows: number;
  running: number;
}

export interface ScaleResult extends ScaleSize {
  buildSeconds: number;
  /** reap() with nothing to do: server-side duration_ms (median, p95) and round trip median. */
  reap: { medianMs: number; p95Ms: number; clientMedianMs: number; scanned: number };
  healthMs: number;
  taskCountsMs: number;
  dashboardMs: number;
  exactViewMs: number;
  /** Server-side execution times (EXPLAIN ANALYZE medians) of the SQL calls above. */
  server: { health: number; taskCounts: number; listWorkers: number; reaperActions: number; activity: number; activityLive: number };
  /** The server's CPU time per call (null with a remote server): reap() with nothing to do, the health summary, the dashboard's four calls together. */
  cpu: { reap: number | null; health: number | null; dashboard: number | null };
  /** Reaps it took the activity roll-ups to catch up with the fixture's last 35 minutes. */
  rollUpReaps: number;
  hot: { updates: number; hot: number; share: number };
  before: Sizes;
  afterPrune: Sizes;
  prune: { seconds: number; calls: number; tasks: number; events: number };
  /** reap() while prune() still has a backlog (its bounded share of the deletes in every call). */
  reapWithBacklogMs: number;
  loadAverage: number;
}

export interface Sizes {
  tasksRows: number;
  tasksTableMiB: number;
  tasksIndexesMiB: number;
  eventsTableMiB: number;
  eventsIndexesMiB: number;
}

const WORKERS = 100;
const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function medianMs(fn: () => Promise<unknown>, calls = 15): Promise<number> {
  for (let i = 0; i < 3; i++) await fn(); // plans cached, buffers warm, as on a live server
  const s: number[] = [];
  for (let i = 0; i < calls; i++) s.push((await timed(fn)).ms);
  return Math.round(median(s) * 100) / 100;
}

async function sizes(sql: Sql): Promise<Sizes> {
  const [r] = await sql`
    select (select count(*) from taskwarden.tasks)::bigint as rows,
           pg_table_size('taskwarden.tasks') as tt, pg_indexes_size('taskwarden.tasks') as ti,
           pg_table_size('taskwarden.task_events') as et, pg_indexes_size('taskwarden.task_events') as ei`;
  return { tasksRows: Number(r.rows), tasksTableMiB: mib(Number(r.tt)), tasksIndexesMiB: mib(Number(r.ti)), eventsTableMiB: mib(Number(r.et)), eventsIndexesMiB: mib(Number(r.ei)) };
}

/**
 * One `insert ... select generate_series` per million rows, each writing the tasks and their
 * events in one statement. Indexes that finished rows enter (and the events' foreign key, checked
 * row by row otherwise) are dropped first and built (validated) once at the end; the partial
 * indexes of live rows stay, since finished rows never enter them. Every table stays logged.
 */
async function build(sql: Sql, size: ScaleSize, progress: (s: string) => void): Promise<void> {
  await sql`set maintenance_work_mem = '512MB'`;
  const idx = await sql<{ name: string; def: string }[]>`
    select i.indexname as name, i.indexdef as def from pg_indexes i
    join pg_index x on x.indexrelid = format('%I.%I', i.schemaname, i.indexname)::regclass
    where i.schemaname = 'taskwarden' and i.tablename in ('tasks', 'task_events')
      and not x.indisprimary and x.indpred is null`;
  const fks = await sql<{ name: string; def: string }[]>`
    select conname as name, pg_get_constraintdef(oid) as def from pg_constraint
    where conrelid = 'taskwarden.task_events'::regclass and contype = 'f'`;
  for (const i of idx) await sql.unsafe(`drop index taskwarden.${i.name}`);
  for (const f of fks) await sql.unsafe(`alter table taskwarden.task_events drop constraint ${f.name}`);
  // The workers are simulated: they must not count as dead while the table is built.
  await sql`update taskwarden.settings set value = '3600' where key = 'dead_worker_seconds'`;
  await sql`
    insert into taskwarden.worker_heartbeats (worker_id, worker_type, status, last_heartbeat_at, lease_expires_at)
    select 'scale-' || g || '#b', 'scale', 'processing', now(), now() + interval '5 minutes'
    from generate_series(0, ${WORKERS - 1}::int) g`;
  const chunk = 1_000_000;
  const old = Math.round(size.rows / 10);
  const finished = old + size.rows - size.running - 1000;
  for (let from = 1; from <= finished; from += chunk) {
    const to = Math.min(finished, from + chunk - 1);
    // 90% completed, 5% failed, 5% cancelled, oldest first: the first `old` rows past their
    // period (finished 2 to 14 days ago; failed 8 to 14), the rest within it (23 h; failed 6 days).
    await sql`
      with t as (
        insert into taskwarden.tasks (task_type, payload, status, attempts, max_attempts, started_at, completed_at,
                                      result, last_error, created_at, updated_at)
        select 'scale', jsonb_build_object('n', g), x.status, 1, 3, f - interval '1 second', f,
               case when x.status <> 'failed' then '{"ok": true}'::jsonb end,
               case when x.status = 'failed' then 'boom' end, f - interval '2 seconds', f
        from generate_series(${from}::bigint, ${to}::bigint) g,
             lateral (select case when g % 20 = 0 then 'failed' when g % 20 = 1 then 'cancelled' else 'completed' end as status) x,
             lateral (select case when g <= ${old}::bigint
                                  then now() - (case when x.status = 'failed' then interval '8 days' else interval '2 days' end)
                                       - interval '6 days' * (1 - g::float8 / ${old}::float8)
                                  else now() - (case when x.status = 'failed' then interval '6 days' else interval '23 hours' end)
                                       * (1 - (g - ${old}::bigint)::float8 / ${finished - old}::float8)
                             end as f) y
        returning id, status, completed_at
      )
      insert into taskwarden.task_events (task_id, event, attempt, created_at)
      select t.id, case t.status when 'failed' then 'dead_lettered' else t.status end, 1, t.completed_at from t`;
    progress(`scale ${size.rows}: ${to} finished rows`);
  }
  await sql`
    with t as (
      insert into taskwarden.tasks (task_type, payload, status, run_at)
      select 'scale', jsonb_build_object('q', g), 'queued', now() + interval '1 hour' from generate_series(1, 1000) g
      returning id
    )
    insert into taskwarden.task_events (task_id, event, attempt) select t.id, 'requeued', 1 from t`;
  await sql`
    with t as (
      insert into taskwarden.tasks (task_type, payload, status, attempts, owner_id, lease_token, lease_seconds,
                                    lease_expires_at, last_heartbeat, started_at)
      select 'scale', jsonb_build_object('r', g), 'running', 1, 'scale-' || (g % ${WORKERS}::int) || '#b',
             gen_random_uuid(), 600, now() + interval '1 day', now(), now()
      from generate_series(1, ${size.running}::int) g
      returning id, owner_id
    )
    insert into taskwarden.task_events (task_id, event, worker_id, attempt) select t.id, 'claimed', t.owner_id, 1 from t`;
  progress(`scale ${size.rows}: rows in, building ${idx.length} indexes and ${fks.length} foreign key(s)`);
  for (const i of idx) await sql.unsafe(i.def);
  for (const f of fks) await sql.unsafe(`alter table taskwarden.task_events add constraint ${f.name} ${f.def}`);
  await sql`vacuum analyze taskwarden.tasks`;
  await sql`vacuum analyze taskwarden.task_events`;
  await sql`vacuum analyze taskwarden.worker_heartbeats`;
}

/**
 * The steady state of a reaper that runs every few seconds: the activity roll-ups cover the
 * dashboard's window up to the lag. The fixture is inserted directly, so the roll-ups start 35
 * minutes back and reaps catch up (each rolls up activity_rollup_max_seconds at most).
 */
/**
 * CPU time the server process spent per call (utime + stime of its backend, from /proc), over
 * `calls` calls: on a machine whose load average is several times its cores, wall-clock times
 * measure the queue for a core as much as the work; this does not. Null when the server is not
 * on this machine.
 */
async function cpuMs(sql: Sql, query: string, calls = 50): Promise<number | null> {
  const [{ pid }] = await sql`select pg_backend_pid() as pid`;
  const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;
  const cpu = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return ((Number(f[11]) + Number(f[12])) * 1000) / ticks; // utime, stime (fields 14 and 15)
    } catch {
      return null;
    }
  };
  await sql.unsafe(query);
  const before = cpu();
  for (let i = 0; i < calls; i++) await sql.unsafe(query);
  const after = cpu();
  return before === null || after === null ? null : Math.round(((after - before) / calls) * 100) / 100;
}

async function rollUpActivity(sql: Sql): Promise<number> {
  await sql`delete from taskwarden.task_activity`;
  await sql`insert into taskwarden.task_activity (bucket_start)
            values (date_bin(interval '10 seconds', now() - interval '35 minutes', timestamptz 'epoch'))`;
  let reaps = 0;
  for (;;) {
    await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now()`;
    const [{ r }] = await sql`select taskwarden.reap('bench') as r`;
    reaps++;
    if (Number((r as { activity: { buckets: number } }).activity.buckets) === 0 || reaps > 100) return reaps;
  }
}

/** Server-side execution time (EXPLAIN ANALYZE), median of `calls` after warm-up: less sensitive to load than a round trip. */
async function serverMs(sql: Sql, query: string, calls = 9): Promise<number> {
  const once = async () => {
    const [row] = await sql.unsafe(`explain (analyze, timing off, format json) ${query}`);
    return Number((row["QUERY PLAN"] as [{ "Execution Time": number }])[0]["Execution Time"]);
  };
  for (let i = 0; i < 2; i++) await once();
  const s: number[] = [];
  for (let i = 0; i < calls; i++) s.push(await once());
  return Math.round(median(s) * 100) / 100;
}

async function reapIdle(sql: Sql): Promise<ScaleResult["reap"]> {
  // Building 10^7 rows takes longer than any lease: the simulated workers have just beaten.
  await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now()`;
  await sql`update taskwarden.tasks set lease_expires_at = now() + interval '1 day' where status = 'running' and lease_expires_at < now() + interval '1 hour'`;
  const server: number[] = [];
  const client: number[] = [];
  let scanned = 0;
  for (let i = 0; i < 23; i++) {
    const { ms, value } = await timed(() => sql`select taskwarden.reap('bench') as r`);
    const r = value[0].r as { duration_ms: number; lease_expired: { requeued: number }; prune: { tasks: Record<string, number> }; lease_scan: { scanned: number } };
    if (r.lease_expired.requeued !== 0) throw new Error("an idle reap requeued tasks: the fixture is wrong");
    if (i < 3) continue;
    server.push(Number(r.duration_ms));
    client.push(ms);
    scanned = r.lease_scan.scanned;
  }
  return { medianMs: median(server), p95Ms: percentile(server, 95), clientMedianMs: Math.round(median(client) * 100) / 100, scanned };
}

/** Every worker beats once, renewing all its running tasks: the HOT share of those updates. */
async function renewals(sql: Sql): Promise<ScaleResult["hot"]> {
  const stat = async () => {
    await sql`select pg_stat_force_next_flush()`;
    const [r] = await sql`select n_tup_upd::bigint as u, n_tup_hot_upd::bigint as h from pg_stat_user_tables where relid = 'taskwarden.tasks'::regclass`;
    return { u: Number(r.u), h: Number(r.h) };
  };
  const before = await stat();
  for (let round = 0; round < 2; round++) {
    for (let w = 0; w < WORKERS; w++) {
      const id = `scale-${w}#b`;
      await sql`
        select taskwarden.upsert_worker_heartbeat(${id}, 'scale', 'processing',
          held_task_ids => (select coalesce(array_agg(t.id), '{}') from taskwarden.tasks t where t.status = 'running' and t.owner_id = ${id}))`;
    }
  }
  const after = await stat();
  const updates = after.u - before.u;
  const hot = after.h - before.h;
  return { updates, hot, share: updates ? hot / updates : 0 };
}

async function pruneAll(sql: Sql): Promise<ScaleResult["prune"]> {
  // Bench-sized batches (the defaults, 10 x 1,000 rows per call, are for a reaper every few seconds).
  await sql`update taskwarden.settings set value = '10000' where key = 'prune_batch'`;
  await sql`update taskwarden.settings set value = '50' where key = 'prune_max_batches'`;
  const t0 = performance.now();
  let calls = 0, tasks = 0, events = 0;
  for (;;) {
    const [{ r }] = await sql`select taskwarden.prune() as r`;
    const p = r as { tasks: Record<string, number>; task_events: number; more: boolean };
    calls++;
    tasks += Object.values(p.tasks).reduce((a, b) => a + b, 0);
    events += p.task_events;
    if (!p.more) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  await sql`vacuum analyze taskwarden.tasks`;
  await sql`vacuum analyze taskwarden.task_events`;
  return { seconds: Math.round(seconds * 10) / 10, calls, tasks, events };
}

export async function measureScale(baseUrl: string, admin: Sql, size: ScaleSize, progress: (s: string) => void): Promise<ScaleResult> {
  const name = `bench_scale_${size.rows}`;
  await dropDatabase(admin, name);
  const url = await taskwardenDatabase(baseUrl, name);
  const sql = connect(url);
  const tw = await connectTaskwarden({ DATABASE_URL: withDatabase(baseUrl, name) });
  try {
    const t0 = performance.now();
    await build(sql, size, progress);
    const buildSeconds = Math.round((performance.now() - t0) / 100) / 10;
    progress(`scale ${size.rows}: built in ${buildSeconds} s; pruning`);
    const before = await sizes(sql);
    // One reap() with the default prune batches while the backlog is there: the bounded extra.
    await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now()`;
    const [{ r: withBacklog }] = await sql`select taskwarden.reap('bench') as r`;
    const reapWithBacklogMs = Number((withBacklog as { duration_ms: number }).duration_ms);
    const prune = await pruneAll(sql);
    const afterPrune = await sizes(sql);
    progress(`scale ${size.rows}: pruned ${prune.tasks} tasks in ${prune.seconds} s; measuring at ${afterPrune.tasksRows} rows`);
    const rollUpReaps = await rollUpActivity(sql);
    // First, as on a live system: renewals leave the running rows' pages not all-visible, so the
    // reads below fetch heap rows instead of answering from the index alone.
    const hot = await renewals(sql);
    const reap = await reapIdle(sql);
    const healthMs = await medianMs(() => sql`select taskwarden.get_worker_health_summary()`);
    const taskCountsMs = await medianMs(() => sql`select taskwarden.get_task_counts()`);
    const dashboardMs = await medianMs(() => loadSnapshot(tw));
    const exactViewMs = await medianMs(() => sql`select * from taskwarden.v_task_status_counts`, 1);
    const server = {
      health: await serverMs(sql, "select taskwarden.get_worker_health_summary()"),
      taskCounts: await serverMs(sql, "select taskwarden.get_task_counts()"),
      listWorkers: await serverMs(sql, "select * from taskwarden.list_workers()"),
      reaperActions: await serverMs(sql, "select * from taskwarden.list_reaper_actions()"),
      activity: await serverMs(sql, "select * from taskwarden.get_task_activity(minutes => 30, bucket_seconds => 30)"),
      // What the chart would cost counted from the rows alone (no roll-ups): it follows the throughput.
      activityLive: await serverMs(sql, "select * from taskwarden._count_task_activity(now() - interval '30 minutes', now(), interval '30 seconds')", 3),
    };
    const dashboardCalls = [
      "select taskwarden.get_worker_health_summary()", "select * from taskwarden.list_workers()",
      "select * from taskwarden.list_reaper_actions()", "select * from taskwarden.get_task_activity(minutes => 30, bucket_seconds => 30)",
    ];
    await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now()`;
    const cpu = {
      reap: await cpuMs(sql, "select taskwarden.reap('bench')"),
      health: await cpuMs(sql, dashboardCalls[0]!),
      dashboard: await cpuMs(sql, dashboardCalls.join("; "), 20),
    };
    progress(`scale ${size.rows}: reap ${reap.medianMs} ms, health ${healthMs} ms, dashboard ${dashboardMs} ms, HOT ${(hot.share * 100).toFixed(1)}%`);
    return { ...size, buildSeconds, reap, healthMs, taskCountsMs, dashboardMs, exactViewMs, server, cpu, rollUpReaps, hot, before, afterPrune, prune, reapWithBacklogMs, loadAverage: Math.round(loadavg()[0] * 10) / 10 };
  } finally {
    await tw.close();
    await sql.end({ timeout: 5 });
    // BENCH_SCALE_KEEP=1 (with DATABASE_URL naming a server of your own) keeps it for EXPLAIN.
    if (process.env.BENCH_SCALE_KEEP === "1") progress(`scale ${size.rows}: kept database ${name}`);
    else await dropDatabase(admin, name);
  }
}

const cpuText = (ms: number | null) => (ms === null ? "– (server not on this machine)" : `${ms} ms`);

export function scaleTable(results: ScaleResult[]): string {
  const head = ["figure", ...results.map((r) => `${r.afterPrune.tasksRows.toLocaleString("en")} rows, ${r.running.toLocaleString("en")} running`)];
  const row = (label: string, f: (r: ScaleResult) => string) => [label, ...results.map(f)];
  const rows = [
    row("reap(), nothing to do: server median / p95 (target < 10 ms)", (r) => `${r.reap.medianMs} / ${r.reap.p95Ms} ms (${r.reap.scanned} running rows read)`),
    row("reap(), nothing to do: server CPU per call", (r) => cpuText(r.cpu.reap)),
    row("get_worker_health_summary = `taskwarden status` (target < 50 ms): round trip / server", (r) => `${r.healthMs} / ${r.server.health} ms`),
    row("get_worker_health_summary: server CPU per call", (r) => cpuText(r.cpu.health)),
    row("get_task_counts, the dashboard's counts (target < 50 ms): round trip / server", (r) => `${r.taskCountsMs} / ${r.server.taskCounts} ms`),
    row("dashboard data call, loadSnapshot: four calls in parallel (target < 50 ms), round trip", (r) => `${r.dashboardMs} ms`),
    row("its calls, server: list_workers / list_reaper_actions / get_task_activity(30 min, 30 s)", (r) => `${r.server.listWorkers} / ${r.server.reaperActions} / ${r.server.activity} ms`),
    row("its four calls one after another: server CPU", (r) => cpuText(r.cpu.dashboard)),
    row("the same chart counted from the rows alone (no roll-ups), server", (r) => `${r.server.activityLive} ms`),
    row("v_task_status_counts (exact, every row; for comparison)", (r) => `${r.exactViewMs} ms`),
    row("lease renewals that were HOT (target >= 95%)", (r) => `${(r.hot.share * 100).toFixed(1)}% of ${r.hot.updates}`),
    row("tasks: table + indexes before prune() (10% of the rows past their period)", (r) => `${r.before.tasksTableMiB} + ${r.before.tasksIndexesMiB} MiB (${r.before.tasksRows.toLocaleString("en")} rows)`),
    row("task_events: table + indexes before prune()", (r) => `${r.before.eventsTableMiB} + ${r.before.eventsIndexesMiB} MiB`),
    row("prune() until done (bench batches 50 x 10,000)", (r) => `${r.prune.tasks.toLocaleString("en")} tasks + ${r.prune.events.toLocaleString("en")} events in ${r.prune.seconds} s, ${r.prune.calls} calls`),
    row("tasks after prune() + vacuum (files keep their size; the space is reused)", (r) => `${r.afterPrune.tasksTableMiB} + ${r.afterPrune.tasksIndexesMiB} MiB (${r.afterPrune.tasksRows.toLocaleString("en")} rows)`),
    row("one reap() while prune() has a backlog (one batch per kind: 3 x 1,000 tasks)", (r) => `${r.reapWithBacklogMs} ms`),
    row("load average (1 min) on the 2-core machine when measured", (r) => `${r.loadAverage}`),
  ];
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}
