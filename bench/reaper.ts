// Reaper cost: reap() on a tasks table of 10^4, 10^5 and 10^6 rows in a steady state (1% running,
// the rest completed, one event per completed task, VACUUM ANALYZE done), first with no lease
// expired (an idle reap: must not grow with the table), then with the 1% expired (one call
// requeues them all). The plans of reap()'s own statements come from auto_explain.
import postgres from "postgres";
import { connect, createDatabase, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { median, percentile } from "./lib/stats.ts";

export interface IdleFigures {
  running: number;
  medianMs: number;
  p95Ms: number;
  serverMedianMs: number;
  calls: number;
}

export interface ReaperRun {
  rows: number;
  /** No lease expired, 100 tasks in flight: the steady state the < 5 ms target is about. */
  idle: IdleFigures;
  /** No lease expired, `percent` of the table running (the in-flight set is what an idle reap reads). */
  idleInFlight: IdleFigures;
  /** `percent` of the rows running with an expired lease. */
  expired: {
    expired: number;
    /** The first reap() call: it requeues up to reap_batch * reap_max_rounds rows. */
    firstCallMs: number;
    firstCallRequeued: number;
    /** reap() calls until every expired task is requeued, and their total time. */
    calls: number;
    drainMs: number;
    msPerRequeued: number;
    reps: number;
  };
  /** auto_explain output for the statements of reap() that read tasks. */
  plans: { idle: string[]; idleInFlight: string[]; expired: string[] };
}

const WORKERS = 100;

async function build(sql: Sql, rows: number, every: number): Promise<void> {
  await sql`
    insert into taskwarden.worker_heartbeats (worker_id, worker_type, status, last_heartbeat_at, lease_expires_at)
    select 'bench-' || g || '#b', 'bench', 'processing', now(), now() + interval '5 minutes'
    from generate_series(0, ${WORKERS - 1}::int) g`;
  // Every `every`-th row is running (a live lease, a fresh heartbeat); the rest completed.
  await sql`
    insert into taskwarden.tasks (task_type, payload, status, attempts, max_attempts, owner_id, lease_token,
                                  lease_seconds, lease_expires_at, last_heartbeat, started_at, completed_at,
                                  result, created_at, updated_at)
    select case when g % ${every}::int = 0 then 'bench_running' else 'bench' end,
           jsonb_build_object('n', g),
           case when g % ${every}::int = 0 then 'running' else 'completed' end,
           1, 3, 'bench-' || ((g / 100) % ${WORKERS}::int) || '#b', gen_random_uuid(), 600,
           case when g % ${every}::int = 0 then now() + interval '10 minutes' end,
           now() - interval '1 minute', now() - interval '2 minutes',
           case when g % ${every}::int = 0 then null else now() - interval '1 minute' end,
           case when g % ${every}::int = 0 then null else '{"ok": true}'::jsonb end,
           now() - interval '1 hour', now() - interval '1 minute'
    from generate_series(1, ${rows}::int) g`;
  await sql`
    insert into taskwarden.task_events (task_id, event, worker_id, attempt, created_at)
    select id, 'completed', owner_id, 1, completed_at from taskwarden.tasks where status = 'completed'`;
  await sql`vacuum analyze`;
}

/** Puts the in-flight share back in the state "running, lease expired 1 minute ago", as if nothing happened. */
async function expireRunning(sql: Sql): Promise<void> {
  await sql`
    update taskwarden.tasks
    set status = 'running', owner_id = 'bench-' || (((payload ->> 'n')::int / 100) % ${WORKERS}::int) || '#b',
        lease_token = gen_random_uuid(), lease_seconds = 600, lease_expires_at = now() - interval '1 minute',
        last_heartbeat = now() - interval '1 minute', attempts = 1, crash_count = 0, errors = '[]',
        last_error = null, run_at = created_at, completed_at = null
    where task_type = 'bench_running'`;
  await sql`delete from taskwarden.task_events where event in ('requeued', 'dead_lettered')`;
  await sql`vacuum analyze`;
}

async function timedReap(sql: Sql): Promise<{ ms: number; serverMs: number; requeued: number }> {
  const t0 = performance.now();
  const [{ r }] = await sql`select taskwarden.reap('bench') as r`;
  const ms = performance.now() - t0;
  const s = r as { duration_ms: number; lease_expired: { requeued: number } };
  return { ms, serverMs: Number(s.duration_ms), requeued: s.lease_expired.requeued };
}

/** Runs one reap() with auto_explain on and returns the plans of its statements that read tasks. */
async function explain(url: string): Promise<string[]> {
  const plans: string[] = [];
  const sql = postgresWithNotices(url, (m) => plans.push(m));
  try {
    await sql.begin(async (tx) => {
      await tx.unsafe(`load 'auto_explain'`);
      await tx.unsafe(`set local auto_explain.log_min_duration = 0`);
      await tx.unsafe(`set local auto_explain.log_analyze = on`);
      await tx.unsafe(`set local auto_explain.log_timing = on`);
      await tx.unsafe(`set local auto_explain.log_nested_statements = on`);
      await tx.unsafe(`set local auto_explain.log_level = notice`);
      await tx.unsafe(`select taskwarden.reap('explain')`);
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
  // Keep the statements that touch tasks; drop the outer "select reap()" and the query texts.
  return plans
    .filter((p) => /on tasks\b/.test(p) && !/Query Text: select taskwarden\.reap/.test(p) && !/FOR KEY SHARE/.test(p))
    .map((p) => p.replace(/^duration: [\d.]+ ms\s+plan:\s*/, "").trim());
}

function postgresWithNotices(url: string, onNotice: (message: string) => void): Sql {
  return postgres(url, { max: 1, onnotice: (n) => onNotice(String(n.message)) });
}

async function idleFigures(sql: Sql, running: number, calls: number): Promise<IdleFigures> {
  for (let i = 0; i < 3; i++) await timedReap(sql); // plan caches warm, as under pg_cron
  const runs = [];
  for (let i = 0; i < calls; i++) runs.push(await timedReap(sql));
  if (runs.some((r) => r.requeued !== 0)) throw new Error("an idle reap requeued tasks: the fixture is wrong");
  return {
    running,
    medianMs: median(runs.map((r) => r.ms)),
    p95Ms: percentile(runs.map((r) => r.ms), 95),
    serverMedianMs: median(runs.map((r) => r.serverMs)),
    calls,
  };
}

export async function measureReaper(o: {
  admin: Sql;
  baseUrl: string;
  template: string;
  rows: number;
  idleCalls?: number;
  expiredReps?: number;
  /** The share of rows in flight, then expired (default 1). */
  percent?: number;
}): Promise<ReaperRun> {
  const db = "bench_reaper";
  await createDatabase(o.admin, db, o.template);
  const url = withDatabase(o.baseUrl, db);
  const sql = connect(url);
  const idleCalls = o.idleCalls ?? 30;
  try {
    const every = Math.round(100 / (o.percent ?? 1));
    await build(sql, o.rows, every);
    const inFlight = Math.floor(o.rows / every);

    const idleInFlight = await idleFigures(sql, inFlight, idleCalls);
    const idleInFlightPlans = await explain(url);

    const reps = o.expiredReps ?? 3;
    const drains = [];
    for (let i = 0; i < reps; i++) {
      await expireRunning(sql);
      const calls = [];
      let total = 0;
      while (total < inFlight) {
        const r = await timedReap(sql);
        if (r.requeued === 0) throw new Error(`reap() stopped after ${total} of ${inFlight} expired tasks`);
        total += r.requeued;
        calls.push(r);
      }
      drains.push(calls);
    }
    await expireRunning(sql);
    const expiredPlans = await explain(url);

    // Back to a small in-flight set: 100 running tasks with live leases; the rest is history.
    await sql`
      update taskwarden.tasks
      set status = case when (payload ->> 'n')::int <= 100 * ${every}::int then 'running' else 'completed' end,
          completed_at = case when (payload ->> 'n')::int <= 100 * ${every}::int then null else now() end,
          owner_id = 'bench-' || (((payload ->> 'n')::int / 100) % ${WORKERS}::int) || '#b',
          lease_token = gen_random_uuid(), lease_seconds = 600,
          lease_expires_at = case when (payload ->> 'n')::int <= 100 * ${every}::int then now() + interval '10 minutes' end,
          last_heartbeat = now(), run_at = created_at, attempts = 1, crash_count = 0, errors = '[]', last_error = null
      where task_type = 'bench_running'`;
    await sql`vacuum analyze`;
    const [{ n }] = await sql`select count(*)::int as n from taskwarden.tasks where status = 'running'`;
    const idle = await idleFigures(sql, n as number, idleCalls);
    const idlePlans = await explain(url);

    const drainMs = median(drains.map((calls) => calls.reduce((a, r) => a + r.ms, 0)));
    return {
      rows: o.rows,
      idle,
      idleInFlight,
      expired: {
        expired: inFlight,
        firstCallMs: median(drains.map((calls) => calls[0].ms)),
        firstCallRequeued: drains[0][0].requeued,
        calls: drains[0].length,
        drainMs,
        msPerRequeued: drainMs / inFlight,
        reps,
      },
      plans: { idle: idlePlans, idleInFlight: idleInFlightPlans, expired: expiredPlans },
    };
  } finally {
    await sql.end({ timeout: 5 });
    await dropDatabase(o.admin, db);
  }
}
