// The typed client: one method per function of the SQL API, taking the SQL's own named
// arguments, with every result validated by zod. It works over any RpcTransport.
// Web-standard (zod only): the Deno edge function uses it too.

import { z } from "zod";
import { TaskwardenError, type Row, type RpcTransport } from "./transport.ts";
import { retry } from "../retry.ts";

const timestamp = z.string();
const id = z.number().int();
const uuid = z.string();

export const taskSchema = z.looseObject({
  id,
  run_id: uuid.nullable(),
  task_type: z.string(),
  payload: z.unknown(),
  status: z.enum(["queued", "running", "completed", "failed", "cancelled"]),
  priority: z.number().int(),
  run_at: timestamp,
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  crash_count: z.number().int(),
  owner_id: z.string().nullable(),
  lease_token: uuid.nullable(),
  lease_seconds: z.number().int().nullable(),
  lease_expires_at: timestamp.nullable(),
  last_heartbeat: timestamp.nullable(),
  timeout_seconds: z.number().int().nullable(),
  result: z.unknown(),
  last_error: z.string().nullable(),
  errors: z.array(z.unknown()),
  created_at: timestamp,
  started_at: timestamp.nullable(),
  completed_at: timestamp.nullable(),
  updated_at: timestamp,
  // Set while an operator's requeue / cancel of a running task waits for that claim to settle.
  revoked_owner_id: z.string().nullable().optional(),
  revoked_lease_token: uuid.nullable().optional(),
  revoked_until: timestamp.nullable().optional(),
});
export type Task = z.infer<typeof taskSchema>;
/** A task as claim_tasks returns it: running, with its lease. */
export type ClaimedTask = Task & { lease_token: string; owner_id: string };

export const runSchema = z.looseObject({
  id: uuid,
  name: z.string(),
  status: z.enum(["pending", "running", "completed", "failed", "cancelled", "archived"]),
  metadata: z.record(z.string(), z.unknown()),
  error: z.string().nullable(),
  created_at: timestamp,
  started_at: timestamp.nullable(),
  completed_at: timestamp.nullable(),
  updated_at: timestamp,
});
export type Run = z.infer<typeof runSchema>;

export const heartbeatResultSchema = z.looseObject({
  stop_requested: z.boolean(),
  stop_reason: z.string().nullable(),
  /** Held claims that are no longer this worker's, in id order. */
  lost_task_ids: z.array(id),
  // The last four are always answered by this schema's migrations; optional so that a worker can
  // still read a database migrated before them (it then counts the lease alone).
  /** Parallel to lost_task_ids: the token of the lost claim (null when the beat sent no tokens). */
  lost_lease_tokens: z.array(uuid.nullable()).nullable().optional(),
  renewed_task_ids: z.array(id),
  /** The earliest lease expiry among the renewed claims (database clock). */
  lease_expires_at: timestamp.nullable(),
  server_time: timestamp,
  /** now() + dead_worker_seconds: when the reaper would count this worker dead if it does not beat again. */
  worker_expires_at: timestamp.nullable().optional(),
  dead_after_seconds: z.number().int().nullable().optional(),
  /** Claims this worker owned but did not list (their answer never reached it), given back without spending an attempt. */
  handed_back_task_ids: z.array(id).nullable().optional(),
});
export type HeartbeatResult = z.infer<typeof heartbeatResultSchema>;

export const workerRowSchema = z.looseObject({
  worker_id: z.string(),
  worker_type: z.string(),
  status: z.enum(["active", "idle", "processing", "stopping", "stopped"]),
  last_heartbeat_at: timestamp,
  current_run_id: uuid.nullable(),
  current_task: z.string().nullable(),
  started_at: timestamp,
  metadata: z.record(z.string(), z.unknown()),
  run_filter_id: uuid.nullable(),
  stop_requested_at: timestamp.nullable(),
});
export type WorkerRow = z.infer<typeof workerRowSchema>;

export const taskActionSchema = z.looseObject({
  task_id: id,
  task_type: z.string(),
  run_id: uuid.nullable(),
  owner_id: z.string().nullable(),
  attempts: z.number().int(),
  action: z.enum(["requeued", "failed", "would_requeue", "would_fail"]),
  reason: z.string(),
});
export type TaskAction = z.infer<typeof taskActionSchema>;

export const staleRunSchema = z.looseObject({
  run_id: uuid,
  name: z.string(),
  status: z.string(),
  started_at: timestamp.nullable(),
  last_progress_at: timestamp.nullable(),
  stale_for_hours: z.number(),
  tasks_total: z.number().int(),
  tasks_queued: z.number().int(),
  tasks_running: z.number().int(),
  tasks_completed: z.number().int(),
  tasks_failed: z.number().int(),
});
export type StaleRun = z.infer<typeof staleRunSchema>;
export const staleRunActionSchema = staleRunSchema.extend({ action: z.enum(["would_fail", "failed"]) });
export type StaleRunAction = z.infer<typeof staleRunActionSchema>;

export const workerStatsSchema = z.looseObject({
  worker_type: z.string(),
  active: z.number().int(),
  idle: z.number().int(),
  processing: z.number().int(),
  stopping: z.number().int(),
  dead: z.number().int(),
  stopped: z.number().int(),
  total: z.number().int(),
});
export type WorkerStats = z.infer<typeof workerStatsSchema>;

const counts = z.looseObject({ requeued: z.number().int(), failed: z.number().int() });
export const reapSummarySchema = z.looseObject({
  reaper_run_id: id,
  source: z.string(),
  dry_run: z.boolean(),
  skipped: z.boolean(),
  reason: z.string().optional(),
  lease_expired: counts.optional(),
  worker_dead: counts.optional(),
  timed_out: counts.optional(),
  stale: counts.optional(),
  stale_runs_failed: z.number().int().optional(),
  workers_deleted: z.number().int().optional(),
  duration_ms: z.number().optional(),
});
export type ReapSummary = z.infer<typeof reapSummarySchema>;

const workerCounts = z.looseObject({
  total: z.number(),
  active: z.number(),
  idle: z.number(),
  processing: z.number(),
  stopping: z.number(),
  dead: z.number(),
  stopped: z.number(),
});
export const healthSummarySchema = z.looseObject({
  generated_at: timestamp,
  healthy: z.boolean(),
  dead_after_seconds: z.number(),
  workers: workerCounts,
  by_type: z.array(z.looseObject({ worker_type: z.string() })),
  dead_workers: z.array(
    z.looseObject({
      worker_id: z.string(),
      worker_type: z.string(),
      status: z.string(),
      last_heartbeat_at: timestamp,
      seconds_since_heartbeat: z.number(),
      held_tasks: z.number(),
    }),
  ),
  tasks: z.looseObject({
    queued: z.number(),
    running: z.number(),
    completed: z.number(),
    failed: z.number(),
    cancelled: z.number(),
    stale_running: z.number(),
  }),
  stale_runs: z.array(z.looseObject({ run_id: uuid, name: z.string() })),
  last_reap: z.looseObject({ id }).nullable(),
});
export type HealthSummary = z.infer<typeof healthSummarySchema>;

export const taskEventSchema = z.looseObject({
  id,
  task_id: id,
  event: z.string(),
  reason: z.string().nullable(),
  worker_id: z.string().nullable(),
  created_at: timestamp,
});
export const taskDetailSchema = z.looseObject({ task: taskSchema, events: z.array(taskEventSchema) });
export type TaskDetail = z.infer<typeof taskDetailSchema>;

export const activityBucketSchema = z.looseObject({
  bucket_start: timestamp,
  completed: z.number().int(),
  failed: z.number().int(),
  requeued: z.number().int(),
  claimed: z.number().int(),
});
export type ActivityBucket = z.infer<typeof activityBucketSchema>;

export const completionSchema = z.looseObject({ task_id: id, completed: z.boolean() });

/** A run id (or any uuid) as the API takes it. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const workerViewSchema = z.looseObject({
  worker_id: z.string(),
  worker_type: z.string(),
  status: z.enum(["active", "idle", "processing", "stopping", "stopped"]),
  dead: z.boolean(),
  current_task: z.string().nullable(),
  current_run_id: uuid.nullable(),
  host: z.string().nullable(),
  pid: z.number().int().nullable(),
  started_at: timestamp,
  last_heartbeat_at: timestamp,
  seconds_since_heartbeat: z.number(),
  held_tasks: z.number().int(),
  stop_requested_at: timestamp.nullable(),
  /** The running tasks it owns, read from the tasks (not from its own, possibly stale, label). */
  held_task_ids: z.array(id),
  /** "#12 demo, #13 demo", or null when it holds none. */
  held_task: z.string().nullable(),
});
export type WorkerView = z.infer<typeof workerViewSchema>;

export const reaperActionSchema = z.looseObject({
  id,
  task_id: id,
  event: z.string(),
  reason: z.string().nullable(),
  worker_id: z.string().nullable(),
  attempt: z.number().int().nullable(),
  created_at: timestamp,
});
export type ReaperAction = z.infer<typeof reaperActionSchema>;

export const pendingAlertSchema = z.looseObject({
  alert_id: id,
  channel: z.string(),
  kind: z.enum(["dead_worker", "stale_run"]),
  subject: z.string(),
  event: z.enum(["open", "resolved"]),
  details: z.record(z.string(), z.unknown()),
  opened_at: timestamp,
  resolved_at: timestamp.nullable(),
});
export type PendingAlert = z.infer<typeof pendingAlertSchema>;

type Json = unknown;

/** Omitted arguments take the SQL defaults; `null` is sent as SQL NULL. */
export class Taskwarden {
  constructor(readonly transport: RpcTransport) {}

  /** Calls any function of the SQL API by name, unvalidated. */
  call(fn: string, args?: Record<string, unknown>): Promise<Row[]> {
    return this.transport.call(fn, args);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  async #rows<S extends z.ZodType>(fn: string, schema: S, args?: object): Promise<z.output<S>[]> {
    const rows = await this.transport.call(fn, args as Record<string, unknown> | undefined);
    const parsed = z.array(schema).safeParse(rows);
    if (!parsed.success) throw badResult(fn, parsed.error);
    return parsed.data;
  }

  async #one<S extends z.ZodType>(fn: string, schema: S, args?: object): Promise<z.output<S>> {
    const rows = await this.#rows(fn, schema, args);
    if (rows.length !== 1) throw badResult(fn, `expected one row, got ${rows.length}`);
    return rows[0];
  }

  async #scalar<S extends z.ZodType>(fn: string, schema: S, args?: object): Promise<z.output<S>> {
    const row = await this.#one(fn, z.object({ [fn]: schema }), args);
    return (row as Record<string, z.output<S>>)[fn];
  }

  // Runs

  createRun(args: { name: string; metadata?: Record<string, Json> }): Promise<Run> {
    return this.#one("create_run", runSchema, args);
  }
  startRun(args: { run_id: string }): Promise<Run> {
    return this.#one("start_run", runSchema, args);
  }
  finishRun(args: { run_id: string; error?: string | null }): Promise<Run> {
    return this.#one("finish_run", runSchema, args);
  }
  cancelRun(args: { run_id: string; reason?: string | null }): Promise<Run> {
    return this.#one("cancel_run", runSchema, args);
  }
  archiveRun(args: { run_id: string; note?: string | null }): Promise<Run> {
    return this.#one("archive_run", runSchema, args);
  }
  isRunStale(args: { run_id: string; stale_hours?: number }): Promise<boolean> {
    return this.#scalar("is_run_stale", z.boolean(), args);
  }
  findStaleRuns(args: { stale_hours?: number } = {}): Promise<StaleRun[]> {
    return this.#rows("find_stale_runs", staleRunSchema, args);
  }
  cleanupStaleRuns(args: { stale_hours?: number; dry_run?: boolean } = {}): Promise<StaleRunAction[]> {
    return this.#rows("cleanup_stale_runs", staleRunActionSchema, args);
  }

  /**
   * Starts the run, runs `fn`, and always finishes the run, so a crashed job can never leave it
   * `running`. It fits both shapes of job:
   * - work done inline: `fn` does the work itself; the run is completed when `fn` returns.
   * - work fanned out as tasks: `fn` only enqueues tasks into the run (`run_id`) and returns;
   *   workers run them. The run is completed once every one of them is finished: `finish_run`
   *   refuses (TW004) while any is queued or running, so this retries it every `pollMs` (1 s)
   *   and resolves with `fn`'s value when the run is completed.
   * When `fn` throws, or `signal` aborts the wait, the run is failed with that error, its
   * unfinished tasks are cancelled, and the error is rethrown. A run cancelled or archived
   * meanwhile stays as it is. If this process dies while waiting, the run stays `running` until
   * the reaper fails it as stale (`run_stale_hours` without task progress).
   */
  async runToCompletion<T>(
    runId: string,
    fn: () => Promise<T>,
    opts: { pollMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const pollMs = opts.pollMs ?? 1000;
    await this.startRun({ run_id: runId });
    const fail = async (err: unknown): Promise<never> => {
      const error = (err instanceof Error ? err.message : String(err)) || "error";
      // finish_run is idempotent on terminal runs. A failure here must not hide the error itself.
      await this.finishRun({ run_id: runId, error }).catch(() => {});
      throw err;
    };
    let value: T;
    try {
      value = await fn();
    } catch (err) {
      return fail(err);
    }
    try {
      await retry(() => this.finishRun({ run_id: runId }), {
        // TW004 is finish_run's "tasks still unfinished"; anything else is the caller's to see.
        retryIf: (err) => err instanceof TaskwardenError && err.sqlstate === "TW004",
        delayMs: () => pollMs,
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) return fail(opts.signal.reason);
      throw err;
    }
    return value;
  }

  // Tasks

  enqueueTask(
    args: {
      task_type: string;
      payload?: Json;
      run_id?: string | null;
      max_attempts?: number;
      run_at?: string | Date;
      priority?: number;
      timeout_seconds?: number | null;
    },
  ): Promise<Task> {
    return this.#one("enqueue_task", taskSchema, args);
  }
  enqueueTasks(
    args: {
      task_type: string;
      payloads: Json[];
      run_id?: string | null;
      max_attempts?: number;
      run_at?: string | Date;
      priority?: number;
      timeout_seconds?: number | null;
    },
  ): Promise<Task[]> {
    return this.#rows("enqueue_tasks", taskSchema, args);
  }
  claimTasks(
    args: {
      worker_id: string;
      task_types?: string[] | null;
      batch_size?: number;
      lease_seconds?: number;
      run_id?: string | null;
    },
  ): Promise<ClaimedTask[]> {
    return this.#rows("claim_tasks", taskSchema, args) as Promise<ClaimedTask[]>;
  }
  renewTaskLease(args: { task_id: number; lease_token: string; lease_seconds?: number }): Promise<Task> {
    return this.#one("renew_task_lease", taskSchema, args);
  }
  /** Fenced; a retry with the same token (its first answer lost) gets the completed task again. */
  completeTask(args: { task_id: number; lease_token: string; result?: Json }): Promise<Task> {
    return this.#one("complete_task", taskSchema, args);
  }
  /** One answer per (task_id, lease_token) pair, in the order given; true for a retry of a completion. */
  completeTasks(
    args: { task_ids: number[]; lease_tokens: string[]; results?: Json[] | null },
  ): Promise<{ task_id: number; completed: boolean }[]> {
    return this.#rows("complete_tasks", completionSchema, args);
  }
  /** Fenced; a retry with the same token gets the first answer (queued or failed), never a newer holder's token. */
  failTask(args: { task_id: number; lease_token: string; error: string; retryable?: boolean }): Promise<Task> {
    return this.#one("fail_task", taskSchema, args);
  }
  /** Fenced; a retry with the same token (or after stop_worker / a heartbeat gave the claim back) gets the release answer. */
  releaseTask(args: { task_id: number; lease_token: string }): Promise<Task> {
    return this.#one("release_task", taskSchema, args);
  }
  cancelTask(args: { task_id: number; reason?: string | null }): Promise<Task> {
    return this.#one("cancel_task", taskSchema, args);
  }
  requeueTask(args: { task_id: number; reason?: string | null }): Promise<Task> {
    return this.#one("requeue_task", taskSchema, args);
  }
  getTask(args: { task_id: number }): Promise<TaskDetail> {
    return this.#scalar("get_task", taskDetailSchema, args);
  }
  getTaskActivity(args: { minutes?: number; bucket_seconds?: number } = {}): Promise<ActivityBucket[]> {
    return this.#rows("get_task_activity", activityBucketSchema, args);
  }

  // Workers

  upsertWorkerHeartbeat(
    args: {
      worker_id: string;
      worker_type: string;
      status?: "active" | "idle" | "processing" | "stopping" | "stopped";
      current_run_id?: string | null;
      current_task?: string | null;
      held_task_ids?: number[];
      lease_seconds?: number | null;
      metadata?: Record<string, Json>;
      run_filter_id?: string | null;
      /** One lease_token per held_task_ids entry: renewals and lost answers then match (id, token). */
      held_lease_tokens?: string[] | null;
    },
  ): Promise<HeartbeatResult> {
    return this.#one("upsert_worker_heartbeat", heartbeatResultSchema, args);
  }
  stopWorker(args: { worker_id: string; release_tasks?: boolean }): Promise<number> {
    return this.#scalar("stop_worker", z.number().int(), args);
  }
  requestWorkerStop(args: { worker_id: string }): Promise<WorkerRow> {
    return this.#one("request_worker_stop", workerRowSchema, args);
  }
  recoverWorkerTasks(args: { worker_id: string }): Promise<number> {
    return this.#scalar("recover_worker_tasks", z.number().int(), args);
  }
  releaseDeadWorkerLeases(args: { dead_after_seconds?: number } = {}): Promise<TaskAction[]> {
    return this.#rows("release_dead_worker_leases", taskActionSchema, args);
  }
  cleanupStaleRunningTasks(
    args: { stale_minutes?: number; max_attempts?: number; batch_size?: number; dry_run?: boolean } = {},
  ): Promise<TaskAction[]> {
    return this.#rows("cleanup_stale_running_tasks", taskActionSchema, args);
  }
  cleanupStaleWorkers(args: { stale_minutes?: number } = {}): Promise<number> {
    return this.#scalar("cleanup_stale_workers", z.number().int(), args);
  }
  getWorkerStats(): Promise<WorkerStats[]> {
    return this.#rows("get_worker_stats", workerStatsSchema);
  }
  getWorkerHealthSummary(): Promise<HealthSummary> {
    return this.#scalar("get_worker_health_summary", healthSummarySchema);
  }
  /** Every worker until cleanup deletes its row: dead first, stopped last. */
  listWorkers(): Promise<WorkerView[]> {
    return this.#rows("list_workers", workerViewSchema, {});
  }
  listReaperActions(args: { max_rows?: number } = {}): Promise<ReaperAction[]> {
    return this.#rows("list_reaper_actions", reaperActionSchema, args);
  }

  // Alerts

  /** Opens and resolves alert episodes; returns what each channel still has to send. */
  syncAlerts(args: { channels: string[] }): Promise<PendingAlert[]> {
    return this.#rows("sync_alerts", pendingAlertSchema, args);
  }
  markAlertsSent(args: { alert_ids: number[]; event: "open" | "resolved" | "failed" }): Promise<number> {
    return this.#scalar("mark_alerts_sent", z.number().int(), args);
  }

  // The reaper

  reap(args: { source?: string; dry_run?: boolean } = {}): Promise<ReapSummary> {
    return this.#scalar("reap", reapSummarySchema, args);
  }
}

function badResult(fn: string, problem: z.ZodError | string): TaskwardenError {
  const detail = typeof problem === "string" ? problem : z.prettifyError(problem);
  return new TaskwardenError(`unexpected result from taskwarden.${fn}: ${detail}`, {
    fn,
    hint: "The database schema and this client disagree; apply the latest migrations.",
  });
}
