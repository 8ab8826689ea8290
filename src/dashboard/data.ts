// What the dashboard and `taskwarden status` / `workers list` show, read through the SQL API
// only, so it works over every transport (supabase-js included).
import type { Taskwarden } from "../rpc/index.ts";
import type { ActivityBucket, HealthSummary, ReaperAction, WorkerView } from "../rpc/client.ts";

export type { ReaperAction, WorkerView };

export interface Snapshot {
  health: HealthSummary;
  workers: WorkerView[];
  reaperActions: ReaperAction[];
  activity: ActivityBucket[];
  activityMinutes: number;
  activityBucketSeconds: number;
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
    tw.listWorkers(),
    tw.listReaperActions(),
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
