// Worker: turns an async function into a well-behaved taskwarden worker. It holds no queue
// logic: claims, renewals, completions, failures, releases and recovery are RPCs; the Worker
// only decides when to call them and keeps its handlers honest (abort on lost lease, timeout,
// shutdown).

import { Taskwarden, type ClaimedTask } from "../rpc/client.ts";
import { TaskwardenError, type RpcTransport } from "../rpc/transport.ts";
import { isSqlTransport, type SqlTransaction } from "../rpc/sql.ts";
import { loadConfig, workerIdVariable, type Config } from "../config.ts";
import { log as rootLog, type Logger } from "../log.ts";
import { stopSignals } from "../cli/signals.ts";
import { makeWorkerId, WorkerHeartbeat } from "./heartbeat.ts";
import { Completions } from "./completions.ts";

/** After a stop signal: how long past the grace period releasing tasks and stop_worker may take. */
const SHUTDOWN_MARGIN_MS = 15_000;

/** The reason a handler's signal is aborted when the task is no longer this worker's. */
export class LeaseLostError extends Error {
  constructor(readonly taskId: number) {
    super(`lease lost on task ${taskId}: it was reaped, cancelled or claimed again; its result will not be reported`);
    this.name = "LeaseLostError";
  }
}

/** The reason a handler's signal is aborted when it ran past its timeout. */
export class TaskTimeoutError extends Error {
  constructor(readonly taskId: number, readonly seconds: number) {
    super(`task ${taskId} timed out after ${seconds} s`);
    this.name = "TaskTimeoutError";
  }
}

/** The reason a handler's signal is aborted when the worker shuts down before it finished. */
export class WorkerShutdownError extends Error {
  constructor(readonly taskId: number) {
    super(`worker shutting down: task ${taskId} is handed back to the queue`);
    this.name = "WorkerShutdownError";
  }
}

/** Throw this from a handler to fail the task for good instead of retrying it. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NonRetryableError";
  }
}

export interface TaskContext {
  /** Aborted when the lease is lost, the task times out, or the worker shuts down before it finished. */
  signal: AbortSignal;
  /** Beats now (renewing this lease); throws LeaseLostError when the task is no longer ours. */
  heartbeat(): Promise<void>;
  /**
   * Direct connections only: runs `fn` and `complete_task` in ONE transaction, with `fn`'s
   * return value as the result. If the lease was lost meanwhile the fence raises TW001, the
   * transaction rolls back and none of `fn`'s writes exist: exactly-once effects.
   */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  workerId: string;
  /** 1 on the first claim, 2 on the first retry, … */
  attempt: number;
  log: Logger;
}

/** Resolves with the task's result (stored as jsonb; undefined becomes null) or throws to fail it. */
export type TaskHandler = (task: ClaimedTask, ctx: TaskContext) => unknown;

export interface WorkerOptions {
  /** The worker type (worker_heartbeats.worker_type); also the default task type it claims. */
  type: string;
  handler: TaskHandler;
  /** Task types to claim; default [type]; null claims any type. */
  taskTypes?: string[] | null;
  /** Tasks run at once (default WORKER_CONCURRENCY, 1). */
  concurrency?: number;
  /**
   * Tasks claimed ahead of a free slot and held (leased, renewed by the heartbeat) in a local
   * queue, so a busy worker claims in batches instead of once per finished task (default 0).
   * For many short tasks; a prefetched task waits for this worker even when another is idle,
   * and its timeout_seconds counts from the claim.
   */
  prefetch?: number;
  /** Lease per claim and per renewal (default TASK_LEASE_S, 600). */
  leaseSeconds?: number;
  /** Seconds between heartbeats (default WORKER_HEARTBEAT_INTERVAL, 30). */
  heartbeatSeconds?: number;
  /** Claim only this run's tasks, and exit when it is terminal (default RUN_FILTER_ID). */
  runFilterId?: string | null;
  /** Stop after this many claim polls, finishing what is in flight (default WORKER_MAX_LOOPS). */
  maxLoops?: number;
  /** Milliseconds between polls of an empty queue (default 1000; 5000 when NOTIFY wakes the worker). */
  idleSleep?: number;
  rpc: RpcTransport | Taskwarden;
  /** The id base (default `<TYPE>_WORKER_ID`, else generated); a boot suffix is always added. */
  workerId?: string;
  /** Per-task timeout when the task has no timeout_seconds of its own. */
  taskTimeoutSeconds?: number;
  /** How long in-flight tasks may run on after a stop before they are released (default WORKER_SHUTDOWN_GRACE_S, 30 s). */
  shutdownGraceMs?: number;
  /** Stop gracefully on SIGTERM / SIGINT; a second signal (more than 1 s later) exits at once (default true). */
  handleSignals?: boolean;
  /** Defaults for the options above; loadConfig(process.env) when omitted. */
  config?: Config;
  logger?: Logger;
  metadata?: Record<string, unknown>;
}

export interface WorkerSummary {
  workerId: string;
  /** Why it stopped: "signal:SIGTERM", "stop_requested:run_cancelled", "max_loops", "stop()". */
  reason: string;
  completed: number;
  failed: number;
  lost: number;
  /** Tasks handed back at shutdown. */
  released: number;
  recovered: number;
}

type EntryState = "running" | "reporting" | "lost" | "timed_out" | "released";

interface Entry {
  task: ClaimedTask;
  ac: AbortController;
  state: EntryState;
  completedInTx: boolean;
}

const FATAL_SQLSTATES = new Set(["TW002", "TW003", "42883", "42501"]);
/** How long a stopping worker waits for reports after the grace period. */
const REPORT_MARGIN_MS = 5000;
/** How long a starting worker waits for an unreachable database before it gives up. */
const STARTUP_RETRY_MS = 30_000;

function isTransient(err: unknown): boolean {
  return !(err instanceof TaskwardenError) || err.transient;
}

export class Worker {
  readonly workerId: string;
  readonly type: string;
  readonly tw: Taskwarden;
  readonly heartbeat: WorkerHeartbeat;

  readonly #handler: TaskHandler;
  readonly #taskTypes: string[] | null;
  readonly #concurrency: number;
  readonly #prefetch: number;
  readonly #leaseSeconds: number;
  readonly #runFilterId: string | null;
  readonly #maxLoops: number | undefined;
  #idleSleep: number;
  readonly #idleSleepGiven: boolean;
  readonly #taskTimeoutSeconds: number | undefined;
  readonly #graceMs: number;
  readonly #handleSignals: boolean;
  readonly #log: Logger;

  readonly #inflight = new Map<number, Entry>();
  /** Claimed, leased, not started yet (prefetch). */
  #queue: ClaimedTask[] = [];
  /** Every task from its start until its outcome is reported. */
  readonly #reporting = new Set<Promise<void>>();
  #loops = 0;
  #started = false;
  #stopReason: string | undefined;
  #graceful = true;
  #graceDeadline: number | undefined;
  #fatal: unknown;
  #wake: (() => void) | undefined;
  #done: Promise<WorkerSummary> | undefined;
  #summary: WorkerSummary;
  #completions: Completions;

  constructor(options: WorkerOptions) {
    const cfg = options.config ?? loadConfig();
    const bad = (name: string, problem: string) => new TypeError(`Worker option ${name} ${problem}`);
    if (!options.type?.trim()) throw bad("type", "must be a non-empty string");
    if (typeof options.handler !== "function") throw bad("handler", "must be a function (task, ctx) => result");
    if (!options.rpc) throw bad("rpc", "is required (a transport or a Taskwarden client)");
    this.type = options.type;
    this.#handler = options.handler;
    this.#taskTypes = options.taskTypes === undefined ? [options.type] : options.taskTypes;
    if (this.#taskTypes && this.#taskTypes.length === 0) throw bad("taskTypes", "must be null (any type) or non-empty");
    this.#concurrency = options.concurrency ?? cfg.WORKER_CONCURRENCY;
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1) throw bad("concurrency", `must be a whole number >= 1 (got ${this.#concurrency})`);
    this.#prefetch = options.prefetch ?? 0;
    if (!Number.isInteger(this.#prefetch) || this.#prefetch < 0) throw bad("prefetch", `must be a whole number >= 0 (got ${this.#prefetch})`);
    // Every held task is renewed by one heartbeat, which takes at most 10,000 ids.
    if (this.#concurrency + this.#prefetch > 10_000) throw bad("prefetch", `plus concurrency must be at most 10000 (got ${this.#concurrency} + ${this.#prefetch})`);
    const heartbeatSeconds = options.heartbeatSeconds ?? cfg.WORKER_HEARTBEAT_INTERVAL;
    if (!(heartbeatSeconds > 0)) throw bad("heartbeatSeconds", `must be > 0 (got ${heartbeatSeconds})`);
    this.#leaseSeconds = options.leaseSeconds ?? cfg.TASK_LEASE_S;
    if (!Number.isInteger(this.#leaseSeconds) || this.#leaseSeconds <= 2 * heartbeatSeconds) {
      throw bad("leaseSeconds", `must be a whole number of seconds above 2 x heartbeatSeconds (${this.#leaseSeconds} vs ${heartbeatSeconds}): a lease must survive a missed beat`);
    }
    this.#runFilterId = options.runFilterId === undefined ? (cfg.RUN_FILTER_ID ?? null) : options.runFilterId;
    this.#maxLoops = options.maxLoops ?? cfg.WORKER_MAX_LOOPS;
    if (this.#maxLoops !== undefined && !(Number.isInteger(this.#maxLoops) && this.#maxLoops >= 1)) throw bad("maxLoops", `must be a whole number >= 1 (got ${this.#maxLoops})`);
    this.#idleSleepGiven = options.idleSleep !== undefined;
    this.#idleSleep = options.idleSleep ?? 1000;
    if (!(this.#idleSleep >= 0)) throw bad("idleSleep", `must be >= 0 ms (got ${this.#idleSleep})`);
    this.#taskTimeoutSeconds = options.taskTimeoutSeconds;
    if (this.#taskTimeoutSeconds !== undefined && !(this.#taskTimeoutSeconds > 0)) throw bad("taskTimeoutSeconds", `must be > 0 (got ${this.#taskTimeoutSeconds})`);
    this.#graceMs = options.shutdownGraceMs ?? cfg.WORKER_SHUTDOWN_GRACE_S * 1000;
    this.#handleSignals = options.handleSignals ?? true;

    this.tw = options.rpc instanceof Taskwarden ? options.rpc : new Taskwarden(options.rpc);
    this.#completions = new Completions(this.tw);
    this.workerId = makeWorkerId(options.type, options.workerId ?? cfg.WORKER_IDS[workerIdVariable(options.type)]);
    this.#log = (options.logger ?? rootLog).child({ worker_id: this.workerId, worker_type: this.type });
    this.heartbeat = new WorkerHeartbeat({
      rpc: this.tw,
      workerType: this.type,
      workerId: this.workerId,
      intervalSeconds: heartbeatSeconds,
      leaseSeconds: this.#leaseSeconds,
      runFilterId: this.#runFilterId,
      metadata: { concurrency: this.#concurrency, task_types: this.#taskTypes, ...options.metadata },
      heldTaskIds: () => [
        ...[...this.#inflight.values()].filter((e) => e.state === "running").map((e) => e.task.id),
        ...this.#queue.map((t) => t.id),
      ],
      onLostTasks: (ids) => this.#onLost(ids),
      onStopRequested: (reason) => this.#requestStop(`stop_requested:${reason}`),
      logger: this.#log,
    });
    this.#summary = { workerId: this.workerId, reason: "", completed: 0, failed: 0, lost: 0, released: 0, recovered: 0 };
  }

  get status(): string {
    return this.heartbeat.status;
  }

  /** Runs until stopped; resolves with what it did. Rejects only when it could not run at all. */
  start(): Promise<WorkerSummary> {
    if (this.#started) throw new Error("Worker.start() was already called");
    this.#started = true;
    this.#done = this.#main();
    return this.#done;
  }

  /** Stops gracefully: no new claims, in-flight tasks get the grace period, the rest are released. */
  stop(reason = "stop()"): Promise<WorkerSummary> {
    this.#requestStop(reason);
    return this.#done ?? Promise.resolve(this.#summary);
  }

  async #main(): Promise<WorkerSummary> {
    // One Ctrl-C often arrives twice (the terminal's, and npm / npx forwarding it): both are one
    // graceful stop; only a signal well after the first exits at once.
    const signals = this.#handleSignals
      ? stopSignals((signal) => {
          this.#log.warn({ signal }, "second signal: exiting now");
          process.exit(signal === "SIGINT" ? 130 : 143);
        })
      : undefined;
    void signals?.first.then((signal) => this.#onSignal(signal));
    let unlisten: (() => Promise<void>) | undefined;
    try {
      const first = await this.#untilReachable(() => this.heartbeat.start("idle"));
      this.#log.info(
        { task_types: this.#taskTypes, concurrency: this.#concurrency, lease_seconds: this.#leaseSeconds, run_filter_id: this.#runFilterId },
        "worker started",
      );
      if (!first.stop_requested) {
        this.#summary.recovered = await this.#untilReachable(() => this.tw.recoverWorkerTasks({ worker_id: this.workerId }));
        if (this.#summary.recovered > 0) this.#log.warn({ recovered: this.#summary.recovered }, "requeued tasks left running by an earlier boot");
        unlisten = await this.#listen();
        await this.#loop();
      }
    } catch (err) {
      this.#fatal ??= err;
    }
    try {
      await this.#shutdown();
    } catch (err) {
      this.#log.error({ err }, "shutdown failed");
      this.#fatal ??= err;
    } finally {
      await unlisten?.().catch(() => {});
      signals?.dispose();
    }
    if (this.#fatal) {
      this.#log.error({ err: this.#fatal }, "worker stopped on an error");
      throw this.#fatal;
    }
    const { workerId: _, ...counts } = this.#summary;
    this.#log.info(counts, "worker stopped");
    if (this.#summary.reason.startsWith("signal:")) {
      // The process was asked to terminate: exit 0 even if something else (an unclosed pool,
      // a stray timer) would keep it alive. Unref'd, so a clean process exits sooner on its own.
      process.exitCode ??= 0;
      setTimeout(() => process.exit(), 2000).unref();
    }
    return this.#summary;
  }

  /**
   * Startup calls ride out a database that is restarting or briefly unreachable (a worker
   * replaced during a failover must not die with it); after STARTUP_RETRY_MS, or on any other
   * error, the worker fails to start and its supervisor decides.
   */
  async #untilReachable<T>(call: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + STARTUP_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        const retry = err instanceof TaskwardenError && err.transient && this.#stopReason === undefined;
        if (!retry || performance.now() >= deadline) throw err;
        this.#log.warn({ err, attempt }, "database unreachable at start; retrying");
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 5000)));
      }
    }
  }

  async #listen(): Promise<(() => Promise<void>) | undefined> {
    if (!isSqlTransport(this.tw.transport)) return undefined;
    try {
      const unlisten = await this.tw.transport.listen("taskwarden_tasks", (taskType) => {
        if (!this.#taskTypes || this.#taskTypes.includes(taskType)) this.#wake?.();
      });
      if (!this.#idleSleepGiven) this.#idleSleep = 5000; // the poll is now only for delayed retries
      return unlisten;
    } catch (err) {
      this.#log.warn({ err }, "LISTEN failed; polling only");
      return undefined;
    }
  }

  async #loop(): Promise<void> {
    while (this.#stopReason === undefined) {
      this.#startQueued();
      const free = this.#concurrency - this.#inflight.size;
      // With a local queue, refill it once it is half empty rather than after every task.
      let want = free > 0 || this.#queue.length <= this.#prefetch / 2 ? free + this.#prefetch - this.#queue.length : 0;
      // The last loop WORKER_MAX_LOOPS allows claims only what it will run; claim_tasks takes 1000 at most.
      if (this.#maxLoops !== undefined && this.#loops + 1 >= this.#maxLoops) want = Math.min(want, free);
      want = Math.min(want, 1000);
      // Backpressure: results not yet reported count against the claim, so a database that
      // reports slower than handlers run does not let claimed-but-unreported tasks pile up.
      if (this.#reporting.size - this.#inflight.size >= this.#concurrency + this.#prefetch) want = 0;
      if (want > 0) {
        let tasks: ClaimedTask[];
        try {
          tasks = await this.tw.claimTasks({
            worker_id: this.workerId,
            task_types: this.#taskTypes,
            batch_size: want,
            lease_seconds: this.#leaseSeconds,
            run_id: this.#runFilterId,
          });
        } catch (err) {
          if (err instanceof TaskwardenError && err.sqlstate && FATAL_SQLSTATES.has(err.sqlstate)) {
            // A bad argument or an unknown run will not get better by retrying.
            this.#fatal = err;
            this.#requestStop("error");
            break;
          }
          this.#log.warn({ err }, "claim failed; retrying");
          await this.#sleep(this.#idleSleep || 1000);
          continue;
        }
        this.#loops++;
        this.#queue.push(...tasks);
        this.#startQueued();
        if (this.#maxLoops !== undefined && this.#loops >= this.#maxLoops) {
          this.#requestStop("max_loops", false);
          break;
        }
        if (tasks.length === want) continue; // there may be more
      }
      await this.#sleep(this.#idleSleep);
    }
  }

  /** Sleeps until woken (NOTIFY, a finished task, a stop) or `ms` pass. */
  #sleep(ms: number): Promise<void> {
    if (this.#stopReason !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  #requestStop(reason: string, graceful = true): void {
    if (this.#stopReason !== undefined) return;
    this.#stopReason = reason;
    this.#graceful = graceful;
    this.#log.info({ reason, in_flight: this.#inflight.size }, "stopping");
    this.#wake?.();
  }

  #onSignal(signal: NodeJS.Signals): void {
    // A process asked to terminate must terminate, even if a database call never answers (a
    // driver stuck on a cut connection): after the grace period and time to hand tasks back, it
    // exits 1; its heartbeat stops, so the reaper takes back whatever it still held.
    const limitMs = this.#graceMs + SHUTDOWN_MARGIN_MS;
    setTimeout(() => {
      this.#log.error({ signal, limit_ms: limitMs }, "shutdown did not finish in time; exiting");
      process.exit(1);
    }, limitMs).unref();
    if (this.#stopReason !== undefined && !this.#graceful) {
      // Already finishing in-flight work without a limit (max loops): a signal bounds it.
      this.#graceful = true;
      this.#graceDeadline ??= performance.now() + this.#graceMs;
      this.#log.info({ signal }, "signal while finishing: in-flight tasks now get the grace period");
      return;
    }
    this.#requestStop(`signal:${signal}`);
  }

  #onLost(ids: number[]): void {
    const lostQueued = this.#queue.filter((t) => ids.includes(t.id)).length;
    if (lostQueued > 0) {
      this.#queue = this.#queue.filter((t) => !ids.includes(t.id));
      this.#summary.lost += lostQueued;
      this.#log.warn({ lost: lostQueued }, "lease lost on prefetched tasks: dropped unstarted");
    }
    for (const id of ids) {
      const e = this.#inflight.get(id);
      if (!e || e.state !== "running") continue;
      e.state = "lost";
      this.#summary.lost++;
      this.#log.warn({ task_id: id }, "lease lost: aborting the handler; its result will not be reported");
      e.ac.abort(new LeaseLostError(id));
    }
  }

  #label(): { task: string | null; runId: string | null } {
    const running = [...this.#inflight.values()];
    if (running.length === 0) return { task: null, runId: null };
    const first = running[0].task;
    const more = running.length > 1 ? ` (+${running.length - 1} more)` : "";
    return { task: `${first.task_type}#${first.id}${more}`, runId: first.run_id };
  }

  #reportStatus(): void {
    if (this.heartbeat.status === "stopping" || this.heartbeat.status === "stopped") return;
    const { task, runId } = this.#label();
    const status = task === null ? "idle" : "processing";
    const changed = this.heartbeat.status !== status;
    this.heartbeat.status = status;
    this.heartbeat.currentTask = task;
    this.heartbeat.currentRunId = runId;
    // A status change is reported within a second; a new current task rides on the regular beats.
    if (changed) this.heartbeat.reportSoon();
  }

  /** Moves prefetched tasks into free slots; nothing new starts once the worker is stopping. */
  #startQueued(): void {
    while (this.#stopReason === undefined && this.#queue.length > 0 && this.#inflight.size < this.#concurrency) {
      this.#run(this.#queue.shift()!);
    }
  }

  #run(task: ClaimedTask): void {
    const entry: Entry = { task, ac: new AbortController(), state: "running", completedInTx: false };
    this.#inflight.set(task.id, entry);
    this.#reportStatus();
    let freed = false;
    // The slot frees when the handler is done; its report goes on in the background (coalesced
    // with others), so a worker's throughput is not one round trip per task.
    const free = () => {
      if (freed) return;
      freed = true;
      this.#inflight.delete(task.id);
      this.#startQueued();
      this.#reportStatus();
      this.#wake?.();
    };
    const done = this.#execute(entry, free).finally(() => {
      free();
      this.#reporting.delete(done);
      this.#wake?.();
    });
    this.#reporting.add(done);
  }

  #context(entry: Entry): TaskContext {
    const { task } = entry;
    const log = this.#log.child({ task_id: task.id, task_type: task.task_type, attempt: task.attempts });
    return {
      signal: entry.ac.signal,
      workerId: this.workerId,
      attempt: task.attempts,
      log,
      heartbeat: async () => {
        await this.heartbeat.beat();
        if (entry.state === "lost") throw new LeaseLostError(task.id);
      },
      transaction: async <T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> => {
        const transport = this.tw.transport;
        if (!isSqlTransport(transport)) {
          throw new Error("ctx.transaction needs a direct database connection (DATABASE_URL or PGlite), not supabase-js");
        }
        // No early return on an aborted signal: the fence inside the transaction is the authority.
        const value = await transport.transaction(async (tx) => {
          const result = await fn(tx);
          await tx.call("complete_task", { task_id: task.id, lease_token: task.lease_token, result: result ?? null });
          return result;
        });
        entry.completedInTx = true;
        return value;
      },
    };
  }

  async #execute(entry: Entry, free: () => void): Promise<void> {
    const { task } = entry;
    const ctx = this.#context(entry);
    const timeoutSeconds = task.timeout_seconds ?? this.#taskTimeoutSeconds;
    const timer =
      timeoutSeconds === undefined
        ? undefined
        : setTimeout(() => {
            if (entry.state !== "running") return;
            entry.state = "timed_out";
            entry.ac.abort(new TaskTimeoutError(task.id, timeoutSeconds));
          }, timeoutSeconds * 1000);
    ctx.log.info("task started");
    const started = performance.now();
    const handled = Promise.resolve().then(() => this.#handler(task, ctx));
    // Once aborted we stop waiting; a handler that ignores its signal finishes on its own and
    // any completion it attempts is refused by the fence.
    handled.catch((err) => {
      if (entry.state === "running" || entry.state === "reporting") return; // reported below
      if (err instanceof TaskwardenError && err.leaseLost) ctx.log.warn({ err }, "lease lost: the result was refused");
      else ctx.log.debug({ err }, "abandoned handler settled");
    });
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await untilAborted(handled, entry.ac.signal) };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      clearTimeout(timer);
    }
    const ms = Math.round(performance.now() - started);
    free();

    if (entry.state === "lost" || entry.state === "released") {
      ctx.log.info({ ms, state: entry.state }, "task abandoned: result not reported");
      return;
    }
    if (entry.completedInTx) {
      this.#summary.completed++;
      if (!outcome.ok) ctx.log.warn({ err: outcome.error, ms }, "handler threw after its transaction committed; the task stays completed");
      else ctx.log.info({ ms }, "task completed");
      return;
    }
    const timedOut = entry.state === "timed_out";
    entry.state = "reporting";
    if (outcome.ok && !timedOut) {
      const reported = await this.#report(ctx.log, "complete", () =>
        this.#completions.complete(task.id, task.lease_token, outcome.value ?? null),
      );
      if (!reported.ok) return;
      this.#summary.completed++;
      ctx.log.info({ ms }, "task completed");
      return;
    }
    const error = timedOut
      ? new TaskTimeoutError(task.id, timeoutSeconds!)
      : !outcome.ok
        ? outcome.error
        : new Error("unknown failure");
    if (error instanceof TaskwardenError && error.leaseLost) {
      // The handler's own fenced write (ctx.transaction) found the lease gone.
      this.#summary.lost++;
      ctx.log.warn({ err: error, ms }, "lease lost: the result was refused");
      return;
    }
    const message = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)) || "error";
    const retryable = !(error instanceof NonRetryableError);
    const failed = await this.#report(ctx.log, "fail", () =>
      this.tw.failTask({ task_id: task.id, lease_token: task.lease_token, error: message, retryable }),
    );
    if (!failed.ok) return;
    this.#summary.failed++;
    ctx.log.warn({ err: error, ms, retryable, next_status: failed.value.status }, "task failed");
  }

  /**
   * A completion or failure report, retried on connection trouble (a retried completion whose
   * first answer was lost is recognised by its token; a retried failure reads as a lost lease,
   * which is harmless). A lost lease is counted and logged, not thrown; so is a report that never
   * got through.
   */
  async #report<T>(log: Logger, what: string, call: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { ok: true, value: await call() };
      } catch (err) {
        if (err instanceof TaskwardenError && err.leaseLost) {
          this.#summary.lost++;
          log.warn({ err }, `lease lost: ${what} refused, the result is discarded`);
          return { ok: false };
        }
        if (!isTransient(err) || attempt >= 5) {
          log.error({ err }, `${what} failed`);
          return { ok: false };
        }
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  }

  async #shutdown(): Promise<void> {
    this.#summary.reason = this.#stopReason ?? "stopped";
    this.#stopReason ??= "stopped";
    this.heartbeat.status = "stopping";
    void this.heartbeat.beat();
    if (this.#inflight.size > 0) {
      if (this.#graceful) this.#graceDeadline = performance.now() + this.#graceMs;
      this.#log.info({ in_flight: this.#inflight.size, grace_ms: this.#graceful ? this.#graceMs : null }, "waiting for in-flight tasks");
      await this.#drained();
    }
    for (const e of this.#inflight.values()) {
      if (e.state !== "running") continue;
      e.state = "released";
      e.ac.abort(new WorkerShutdownError(e.task.id));
    }
    // Results still on their way must land before stop_worker hands back what is left; a report
    // stuck past the grace period (plus a few seconds) is abandoned: its task is handed back, and
    // a late completion is refused by the fence.
    const reportDeadline = Math.max(this.#graceDeadline ?? 0, performance.now()) + REPORT_MARGIN_MS - performance.now();
    await Promise.race([Promise.allSettled([...this.#reporting]), new Promise((r) => setTimeout(r, reportDeadline).unref?.())]);
    // stop_worker hands back, without spending an attempt, every task this worker still holds.
    this.#summary.released = await this.heartbeat.stop({ releaseTasks: true });
    this.#queue = [];
    if (this.#summary.released > 0) this.#log.info({ released: this.#summary.released }, "released unfinished tasks");
  }

  /** Until nothing is in flight or the grace deadline (which a signal may set later) passes. */
  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const poll = setInterval(() => {
        const late = this.#graceDeadline !== undefined && performance.now() >= this.#graceDeadline;
        if (this.#inflight.size === 0 || late) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
  }
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
