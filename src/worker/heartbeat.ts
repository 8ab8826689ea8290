// WorkerHeartbeat: registers a worker and beats in the background. One beat renews every
// lease the worker holds and brings back the directives (stop, lost tasks). Usable on its own
// around an existing loop; the Worker uses it for all of its beats.

import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { Taskwarden, type HeartbeatResult } from "../rpc/client.ts";
import { timedClient } from "./timed.ts";
import type { RpcTransport } from "../rpc/transport.ts";
import { workerIdVariable } from "../config.ts";
import { log as rootLog, type Logger } from "../log.ts";

export type WorkerStatus = "active" | "idle" | "processing" | "stopping" | "stopped";

export interface WorkerHeartbeatOptions {
  rpc: RpcTransport | Taskwarden;
  workerType: string;
  /** The full worker id; default makeWorkerId(workerType). */
  workerId?: string;
  /** Seconds between beats (default 30). */
  intervalSeconds?: number;
  /** Lease length each beat renews held tasks to; null keeps each task's own (default null). */
  leaseSeconds?: number | null;
  runFilterId?: string | null;
  metadata?: Record<string, unknown>;
  /** The task ids to renew on each beat (the Worker's in-flight set). Default: what updateTask was given. */
  heldTaskIds?: () => number[];
  /**
   * The claims to renew on each beat, (task id, lease token): a task is renewed only while that
   * token is still its claim, so a task taken back and claimed again is never renewed for the old
   * claim. Takes precedence over heldTaskIds.
   */
  heldClaims?: () => { id: number; token: string }[];
  /** Every successful answer, with when its request was sent (performance.now()) and the claims it listed. */
  onAnswer?: (result: HeartbeatResult, beat: { sentAt: number; claims: { id: number; token: string }[] }) => void;
  /** Metadata computed at each beat, merged over `metadata` (e.g. stuck handlers). */
  liveMetadata?: () => Record<string, unknown>;
  /** Milliseconds a beat may take before it counts as failed (default 80 % of the interval, at least 1.5 s). */
  timeoutMs?: number;
  onStopRequested?: (reason: string, result: HeartbeatResult) => void;
  onLostTasks?: (taskIds: number[], result: HeartbeatResult) => void;
  logger?: Logger;
}

let generated = 0;

/** The timeout of the first beat and of stop_worker: a stopping worker must end even when the database is unreachable. */
const STOP_TIMEOUT_MS = 10_000;

/** The least time between two status-change reports (reportSoon). */
const STATUS_REPORT_GAP_MS = 1000;

/**
 * `<base>#<boot>`: the base is `workerId` or `<TYPE>_WORKER_ID`, else generated per process;
 * the boot suffix is new on every start, so a restarted process is never taken for the live one.
 */
export function makeWorkerId(workerType: string, base?: string, env: Record<string, string | undefined> = process.env): string {
  let b = base ?? env[workerIdVariable(workerType)]?.trim();
  if (!b) {
    // Unique per process (and per Worker in it): recover_worker_tasks requeues every running
    // task of any boot of a base, so two live workers must never share one.
    const n = generated++;
    b = `${workerType}-${hostname()}-${process.pid}${n > 0 ? `-${n}` : ""}`;
  }
  if (b.includes("#")) throw new TypeError(`worker id base "${b}" must not contain "#" (it separates the boot id)`);
  return `${b}#${randomUUID().slice(0, 8)}`;
}

export class WorkerHeartbeat {
  readonly workerId: string;
  readonly workerType: string;
  readonly tw: Taskwarden;
  status: WorkerStatus = "active";
  currentTask: string | null = null;
  currentRunId: string | null = null;
  /** The last successful answer. */
  lastResult: HeartbeatResult | undefined;
  /** Beats that failed in a row. */
  failures = 0;

  readonly #opts: WorkerHeartbeatOptions;
  readonly #intervalMs: number;
  readonly #beatTw: Taskwarden;
  readonly #startTw: Taskwarden;
  readonly #log: Logger;
  #held: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inflight: Promise<HeartbeatResult | undefined> | undefined;
  #queued: Promise<HeartbeatResult | undefined> | undefined;
  #running = false;
  #stopSignalled = false;
  #lastSentAt = -Infinity;
  #soon: ReturnType<typeof setTimeout> | undefined;

  constructor(options: WorkerHeartbeatOptions) {
    this.#opts = options;
    this.tw = options.rpc instanceof Taskwarden ? options.rpc : new Taskwarden(options.rpc);
    this.workerType = options.workerType;
    this.workerId = options.workerId ?? makeWorkerId(options.workerType);
    const interval = options.intervalSeconds ?? 30;
    if (!(interval > 0)) throw new TypeError(`intervalSeconds must be > 0 (got ${interval})`);
    this.#intervalMs = interval * 1000;
    // Below the interval: a beat that hangs on a dead link must fail (and be logged and retried)
    // before the next one is due, and long before the leases it renews run out. The 1.5 s floor is
    // for short intervals: on a loaded host a beat answered after 1 s still renews (its deadline
    // counts from when it was sent), and timing it out would only cost a connection; beats never
    // overlap, so a slow one only delays the next.
    this.#beatTw = timedClient(this.tw, options.timeoutMs ?? Math.max(this.#intervalMs * 0.8, 1500));
    // The first beat may open the connection and read the function signatures: it gets the
    // timeout of any other call (start() retries it while the database is unreachable).
    this.#startTw = timedClient(this.tw, Math.max(options.timeoutMs ?? 0, STOP_TIMEOUT_MS));
    this.#log = options.logger ?? rootLog.child({ worker_id: this.workerId, worker_type: this.workerType });
  }

  /** Registers the worker (the first beat must succeed) and starts beating in the background. */
  async start(status: WorkerStatus = "idle"): Promise<HeartbeatResult> {
    this.status = status;
    this.#running = true;
    const result = await this.#send(true, this.#startTw);
    this.#schedule(this.#intervalMs);
    return result!;
  }

  /** Marks the worker processing `currentTask` and reports it now. */
  updateTask(currentTask: string, opts: { runId?: string | null; heldTaskIds?: number[] } = {}): Promise<HeartbeatResult | undefined> {
    this.status = "processing";
    this.currentTask = currentTask;
    if (opts.runId !== undefined) this.currentRunId = opts.runId;
    if (opts.heldTaskIds) this.#held = [...opts.heldTaskIds];
    return this.beat();
  }

  /** Marks the worker idle (no current task) and reports it now. */
  markIdle(): Promise<HeartbeatResult | undefined> {
    this.status = "idle";
    this.currentTask = null;
    this.currentRunId = null;
    this.#held = [];
    return this.beat();
  }

  /**
   * Reports the current status soon: now when nothing was sent in the last second, else when
   * that second is over. A worker flipping between idle and processing many times a second
   * costs at most one extra write a second, and its row is never more than a second behind.
   */
  reportSoon(): void {
    if (!this.#running || this.#soon) return;
    const wait = this.#lastSentAt + STATUS_REPORT_GAP_MS - performance.now();
    if (wait <= 0) {
      void this.beat();
      return;
    }
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.beat();
    }, wait);
    this.#soon.unref?.();
  }

  /**
   * Beats now. Overlapping requests share one follow-up beat instead of piling up. Resolves
   * with the answer, or undefined when the beat failed (it is logged and retried).
   */
  beat(): Promise<HeartbeatResult | undefined> {
    if (this.#queued) return this.#queued;
    if (this.#inflight) {
      this.#queued = this.#inflight.then(() => {
        this.#queued = undefined;
        return this.#beatNow();
      });
      return this.#queued;
    }
    return this.#beatNow();
  }

  #beatNow(): Promise<HeartbeatResult | undefined> {
    const p = this.#send(false).finally(() => {
      if (this.#inflight === p) this.#inflight = undefined;
    });
    this.#inflight = p;
    return p;
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(async () => {
      const ok = (await this.beat()) !== undefined;
      // A failed beat is retried sooner, but never faster than every 2 s.
      this.#schedule(ok ? this.#intervalMs : Math.min(this.#intervalMs, 2000));
    }, ms);
    // The work keeps the process alive, not the heartbeat.
    this.#timer.unref?.();
  }

  async #send(throwOnError: boolean, via: Taskwarden = this.#beatTw): Promise<HeartbeatResult | undefined> {
    const claims = this.#opts.heldClaims?.();
    const held = claims ? claims.map((c) => c.id) : this.#opts.heldTaskIds ? this.#opts.heldTaskIds() : this.#held;
    const sentAt = performance.now();
    this.#lastSentAt = sentAt;
    let result: HeartbeatResult;
    try {
      const args = {
        worker_id: this.workerId,
        worker_type: this.workerType,
        status: this.status,
        current_run_id: this.currentRunId,
        current_task: this.currentTask,
        held_task_ids: held,
        ...(claims ? { held_lease_tokens: claims.map((c) => c.token) } : {}),
        lease_seconds: this.#opts.leaseSeconds ?? null,
        metadata: { host: hostname(), pid: process.pid, ...this.#opts.metadata, ...this.#opts.liveMetadata?.() },
        run_filter_id: this.#opts.runFilterId ?? null,
      };
      result = await via.upsertWorkerHeartbeat(args as Parameters<Taskwarden["upsertWorkerHeartbeat"]>[0]);
    } catch (err) {
      if (throwOnError) throw err;
      this.failures++;
      this.#log.warn({ err, failures: this.failures }, "heartbeat failed; retrying");
      return undefined;
    }
    if (this.failures > 0) this.#log.info({ failures: this.failures }, "heartbeat recovered");
    this.failures = 0;
    this.lastResult = result;
    this.#opts.onAnswer?.(result, { sentAt, claims: claims ?? [] });
    if (result.lost_task_ids.length > 0) {
      this.#held = this.#held.filter((id) => !result.lost_task_ids.includes(id));
      this.#opts.onLostTasks?.(result.lost_task_ids, result);
    }
    if (result.stop_requested && !this.#stopSignalled) {
      this.#stopSignalled = true;
      this.#log.info({ stop_reason: result.stop_reason }, "stop requested");
      this.#opts.onStopRequested?.(result.stop_reason ?? "stop_requested", result);
    }
    return result;
  }

  /**
   * Stops beating and marks the worker stopped (stop_worker); with releaseTasks (default) the
   * tasks it still holds go back to the queue without spending an attempt. Resolves with their count.
   */
  async stop(opts: { releaseTasks?: boolean } = {}): Promise<number> {
    this.#running = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#soon);
    await this.#queued?.catch(() => {});
    await this.#inflight?.catch(() => {});
    this.status = "stopped";
    return timedClient(this.tw, STOP_TIMEOUT_MS).stopWorker({ worker_id: this.workerId, release_tasks: opts.releaseTasks ?? true });
  }
}
