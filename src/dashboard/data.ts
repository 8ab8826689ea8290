// What the dashboard and `taskwarden status` / `workers list` show, read through the SQL API
// only, so it works over every transport (supabase-js included).
import type { Taskwarden } from "../rpc/index.ts";
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
  /** The running tasks it owns, read from the tasks (not from its own, possibly stale, label). */
  held_task_ids: number[];
  /** "#12 demo, #13 demo", or null when it holds none. */
  held_task: string | null;
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
  workers: WorkerView[];
  reaperActions: ReaperAction[];
  activity: ActivityBucket[];
  activityMinutes: number;
  activityBucketSeconds: number;
}

/** Every worker until cleanup deletes its row: dead first, stopped last. */
export async function listWorkers(tw: Taskwarden): Promise<WorkerView[]> {
  return (await tw.transport.call("list_workers", {})) as unknown as WorkerView[];
}

export async function listReaperActions(tw: Taskwarden, limit = 15): Promise<ReaperAction[]> {
  return (await tw.transport.call("list_reaper_actions", { max_rows: limit })) as unknown as ReaperAction[];
}

export interface SnapshotOptions {
  /** Chart window. */
  minutes?: number;
  bucketSeconds?: number;
}

export async function loadSnapshot(tw: Taskwarden, opts: SnapshotOptions = {}): Promise<Snapshot> {
  const minutes = opts.minutes ?? 30;
  // Half-minute buckets: a steady trickle reads as a line within a minute or two, not a spike.
  const bucketSeconds = opts.bucketSeconds ?? 30;
  const [health, workers, reaperActions, activity] = await Promise.all([
    tw.getWorkerHealthSummary(),
    listWorkers(tw),
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
  };
}
