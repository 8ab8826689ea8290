// What the dashboard and `taskwarden status` / `workers list` show, read through the SQL API.
// Counts, dead workers, stale runs and the chart come from functions; the full worker list and
// the reaper's latest actions have no function yet, so they are read from the views / audit
// tables over a direct connection (DATABASE_URL or the embedded PGlite).
import { isSqlTransport, TaskwardenError, type Taskwarden } from "../rpc/index.ts";
import type { ActivityBucket, HealthSummary } from "../rpc/client.ts";

/** A run id. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface WorkerView {
  worker_id: string;
  worker_type: string;
  status: string;
  dead: boolean;
  current_task: string | null;
  current_run_id: string | null;
  host: string | null;
  pid: number | null;
  started_at: string;
  last_heartbeat_at: string;
  seconds_since_heartbeat: number;
  held_tasks: number;
  stop_requested_at: string | null;
}

export interface ReaperAction {
  id: number;
  task_id: number;
  event: string;
  reason: string | null;
  worker_id: string | null;
  attempt: number | null;
  created_at: string;
}

export interface Snapshot {
  health: HealthSummary;
  /** null when the connection cannot read the views (supabase-js); `notes` says why. */
  workers: WorkerView[] | null;
  reaperActions: ReaperAction[] | null;
  activity: ActivityBucket[];
  activityMinutes: number;
  activityBucketSeconds: number;
  notes: string[];
}

const DIRECT_ONLY =
  "the worker list and reaper actions need a direct database connection (DATABASE_URL); through supabase-js only counts and dead workers are shown";

// to_jsonb: the same JSON shapes (ISO timestamps, numbers) from postgres.js and PGlite.
const WORKERS_SQL = `
select to_jsonb(w) as row from (
  select a.worker_id, a.worker_type, a.status, false as dead, a.current_task, a.current_run_id, a.host, a.pid,
         a.started_at, a.last_heartbeat_at, a.seconds_since_heartbeat::float8 as seconds_since_heartbeat,
         a.held_tasks::int as held_tasks, a.stop_requested_at
  from taskwarden.v_active_workers a
  union all
  select d.worker_id, d.worker_type, d.status, true, d.current_task, d.current_run_id, d.host, d.pid,
         d.started_at, d.last_heartbeat_at, d.seconds_since_heartbeat::float8, d.held_tasks::int, h.stop_requested_at
  from taskwarden.v_dead_workers d
  join taskwarden.worker_heartbeats h on h.worker_id = d.worker_id
) w
order by w.dead desc, w.worker_type, w.worker_id`;

const REAPER_ACTIONS_SQL = `
select to_jsonb(e) as row from (
  select e.id, e.task_id, e.event, e.reason, e.worker_id, e.attempt, e.created_at
  from taskwarden.task_events e
  where e.actor = 'reaper'
  order by e.id desc
  limit $1::int
) e`;

async function readRows<T>(tw: Taskwarden, text: string, params: unknown[] = []): Promise<T[] | null> {
  const t = tw.transport;
  if (!isSqlTransport(t)) return null;
  const rows = await t.query<{ row: unknown }>(text, params);
  return rows.map((r) => (typeof r.row === "string" ? JSON.parse(r.row) : r.row) as T);
}

/** Live and dead workers (not stopped ones), dead first. Throws on supabase-js, which cannot read views here. */
export async function listWorkers(tw: Taskwarden): Promise<WorkerView[]> {
  const rows = await readRows<WorkerView>(tw, WORKERS_SQL);
  if (!rows) throw new TaskwardenError(`workers list: ${DIRECT_ONLY}`, { hint: "Set DATABASE_URL." });
  return rows;
}

export async function listReaperActions(tw: Taskwarden, limit = 15): Promise<ReaperAction[] | null> {
  return readRows<ReaperAction>(tw, REAPER_ACTIONS_SQL, [limit]);
}

export interface SnapshotOptions {
  /** Chart window. */
  minutes?: number;
  bucketSeconds?: number;
}

export async function loadSnapshot(tw: Taskwarden, opts: SnapshotOptions = {}): Promise<Snapshot> {
  const minutes = opts.minutes ?? 30;
  const bucketSeconds = opts.bucketSeconds ?? 60;
  const [health, workers, reaperActions, activity] = await Promise.all([
    tw.getWorkerHealthSummary(),
    readRows<WorkerView>(tw, WORKERS_SQL),
    listReaperActions(tw),
    tw.getTaskActivity({ minutes, bucket_seconds: bucketSeconds }),
  ]);
  return {
    health,
    workers,
    reaperActions,
    activity,
    activityMinutes: minutes,
    activityBucketSeconds: bucketSeconds,
    notes: workers === null ? [DIRECT_ONLY] : [],
  };
}
