// Worker: turns an async function into a well-behaved taskwarden worker. It holds no queue
// logic: claims, renewals, completions, failures, releases and recovery are RPCs. The Worker
// decides when to call them, and keeps its handlers honest. Its parts:
// - options.ts: the options, validated with zod, defaults resolved in one place;
// - lease-clock.ts: every claim held, keyed by lease token, with its local deadline (self-fence);
// - local-queue.ts: claims waiting for a slot (prefetch);
// - runner.ts: the handlers, a slot per handler until it settles, stuck handlers;
// - reporter.ts: completions and failures, retried until delivered or the lease is known lost;
// - heartbeat.ts: the beats that renew every held claim and bring back the directives.
// Nothing here exits the process: start() resolves or rejects, and the entry point decides.

import { Taskwarden, type ClaimedTask } from "../rpc/client.ts";
import { TaskwardenError } from "../rpc/transport.ts";
import { isSqlTransport, type SqlTransaction } from "../rpc/sql.ts";
import { loadConfig } from "../config.ts";
import { lazyChild, log as rootLog, type Logger } from "../log.ts";
import { stopSignals } from "../signals.ts";
import { backoff, retry } from "../retry.ts";
import { makeWorkerId, WorkerHeartbeat } from "./heartbeat.ts";
import { LeaseLostError, WorkerFatalError, WorkerShutdownError } from "./errors.ts";
import { resolveOptions, type ResolvedOptions, type TaskContext, type WorkerOptions } from "./options.ts";
import { LeaseClock, type BeatAnswer, type Claim } from "./lease-clock.ts";
import { LocalQueue } from "./local-queue.ts";
import { TaskRunner, type Outcome } from "./runner.ts";
import { Reporter } from "./reporter.ts";
import { timedClient } from "./timed.ts";

export { LeaseLostError, NonRetryableError, TaskTimeoutError, WorkerShutdownError, WorkerFatalError, exitCodeOf } from "./errors.ts";
export type { TaskContext, TaskHandler, WorkerOptions } from "./options.ts";

/** After a stop signal: how long past the grace period releasing tasks and stop_worker may take. */
const SHUTDOWN_MARGIN_MS = 15_000;
/** How long a stopping worker waits for reports after the grace period. */
const REPORT_MARGIN_MS = 5000;
/** How long a starting worker waits for an unreachable database before it gives up. */
const STARTUP_RETRY_MS = 30_000;
/**
 * Timeout of a claim, a report and the other calls outside the heartbeat. Well below the
 * database's lost_claim_grace_seconds (30 s): a claim whose answer was lost is handed back by
 * the heartbeat only after that grace, so it must never be mistaken for one still on its way.
 */
export const CALL_TIMEOUT_MS = 10_000;
/**
 * Statement timeout inside ctx.transaction: a handler's transaction over a cut link fails and
 * its handler settles, instead of holding its slot for as long as TCP takes to notice.
 */
const TRANSACTION_STATEMENT_TIMEOUT_MS = 30_000;

const FATAL_SQLSTATES = new Set(["TW002", "TW003", "42883", "42501"]);

export interface WorkerSummary {
  workerId: string;
  /** Why it stopped: "signal:SIGTERM", "stop_requested:run_cancelled", "max_loops", "stop()", "stuck_handler". */
  reason: string;
  completed: number;
  failed: number;
  /** Claims the database took back (reaped, cancelled, requeued, claimed again): their results were not reported. */
  lost: number;
  /** Of those, claims this worker gave up itself when their local deadline passed (the self-fence). */
  fenced: number;
  /** Tasks handed back at shutdown. */
  released: number;
  recovered: number;
}

export class Worker {
  readonly workerId: string;
  readonly type: string;
  readonly tw: Taskwarden;
  readonly heartbeat: WorkerHeartbeat;

  readonly #o: ResolvedOptions;
  readonly #log: Logger;
  readonly #calls: Taskwarden;
  readonly #clock: LeaseClock;
  readonly #queue = new LocalQueue();
  readonly #runner: TaskRunner;
  readonly #reporter: Reporter;
  #idleSleep: number;

  /** Every handler from its start until its outcome is delivered (or given up). */
  readonly #reporting = new Set<Promise<void>>();
  /** Claims completed by the handler's own transaction (ctx.transaction). */
  readonly #completedInTx = new WeakSet<Claim>();
  #loops = 0;
  #leaseChecked = false;
  #started = false;
  #stopReason: string | undefined;
  #graceful = true;
  #graceDeadline: number | undefined;
  #giveUpReports = false;
  #fatal: unknown;
  #die: ((err: Error) => void) | undefined;
  #wake: (() => void) | undefined;
  #done: Promise<WorkerSummary> | undefined;
  #summary: WorkerSummary;

  /** A Worker configured from the environment (loadConfig(env)): the variables of the design set its defaults. */
  static fromEnv(options: Omit<WorkerOptions, "config">, env: Record<string, string | undefined> = process.env): Worker {
    return new Worker({ ...options, config: loadConfig(env) });
  }

  /** Reads no environment: defaults are the design's, or those of `options.config`. */
  constructor(options: WorkerOptions) {
    const o = resolveOptions(options);
    this.#o = o;
    this.type = o.type;
    this.#idleSleep = o.idleSleep;
    this.tw = o.rpc instanceof Taskwarden ? o.rpc : new Taskwarden(o.rpc);
    this.#calls = timedClient(this.tw, CALL_TIMEOUT_MS);
    this.workerId = makeWorkerId(o.type, o.workerIdBase, {});
    this.#log = (o.logger ?? rootLog).child({ worker_id: this.workerId, worker_type: this.type });
    this.#clock = new LeaseClock({ onEnd: (claim, reason) => this.#onClaimEnd(claim, reason) });
    this.#runner = new TaskRunner({
      handler: o.handler,
      stuckGraceMs: o.stuckHandlerGraceMs,
      stuckLimitMs: o.stuckHandlerLimitMs,
      onSettled: () => {
        this.#startQueued();
        this.#reportStatus();
        this.#wake?.();
      },
      onStuckChanged: () => this.heartbeat.reportSoon(),
      onStuckLimit: (claim, ms) => this.#onStuckLimit(claim, ms),
    });
    this.#reporter = new Reporter({
      tw: this.#calls,
      end: (claim, why) => this.#clock.end(claim, why),
      giveUp: () => this.#giveUpReports,
    });
    this.heartbeat = new WorkerHeartbeat({
      rpc: this.tw,
      workerType: this.type,
      workerId: this.workerId,
      intervalSeconds: o.heartbeatSeconds,
      leaseSeconds: o.leaseSeconds,
      runFilterId: o.runFilterId,
      metadata: { concurrency: o.concurrency, task_types: o.taskTypes, ...o.metadata },
      liveMetadata: () => ({ stuck_handlers: this.#runner.stuck() }),
      heldClaims: () => this.#listed(),
      onAnswer: (result, beat) => this.#clock.applyBeat(beat.claims as Claim[], beat.sentAt, result as BeatAnswer),
      onStopRequested: (reason) => this.#requestStop(`stop_requested:${reason}`),
      logger: this.#log,
    });
    this.#summary = { workerId: this.workerId, reason: "", completed: 0, failed: 0, lost: 0, fenced: 0, released: 0, recovered: 0 };
  }

  get status(): string {
    return this.heartbeat.status;
  }

  /**
   * Runs until stopped; resolves with what it did. Rejects when it could not run at all, and
   * with a WorkerFatalError when the process should end (an insisted signal, a shutdown that did
   * not finish in time, a handler stuck past stuckHandlerLimitMs): the entry point exits with its
   * exitCode and the supervisor restarts it.
   */
  start(): Promise<WorkerSummary> {
    if (this.#started) throw new Error("Worker.start() was already called");
    this.#started = true;
    const dying = new Promise<never>((_, reject) => (this.#die = reject));
    this.#done = Promise.race([this.#main(), dying]);
    return this.#done;
  }

  /** Stops gracefully: no new claims, in-flight tasks get the grace period, the rest are released. */
  stop(reason = "stop()"): Promise<WorkerSummary> {
    this.#requestStop(reason);
    return this.#done ?? Promise.resolve(this.#summary);
  }

  async #main(): Promise<WorkerSummary> {
    // One Ctrl-C often arrives twice (the terminal's, and npm / npx forwarding it): both are one
    // graceful stop; only a signal well after the first ends the worker at once.
    const signals = this.#o.handleSignals
      ? stopSignals((signal) => {
          this.#log.warn({ signal }, "second signal: exiting now");
          this.#die?.(new WorkerFatalError(`second ${signal}: stopped without finishing`, signal === "SIGINT" ? 130 : 143));
        })
      : undefined;
    void signals?.first.then((signal) => this.#onSignal(signal));
    let unlisten: (() => Promise<void>) | undefined;
    try {
      const first = (await this.#untilReachable(() => this.heartbeat.start("idle"))) as BeatAnswer;
      this.#checkHeartbeatInterval(first);
      this.#clock.start();
      this.#log.info(
        {
          task_types: this.#o.taskTypes,
          concurrency: this.#o.concurrency,
          lease_seconds: this.#o.leaseSeconds,
          dead_after_seconds: first.dead_after_seconds,
          run_filter_id: this.#o.runFilterId,
        },
        "worker started",
      );
      if (!first.stop_requested) {
        this.#summary.recovered = await this.#untilReachable(() => this.#calls.recoverWorkerTasks({ worker_id: this.workerId }));
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
      this.#clock.stop();
      this.#runner.stop();
      await unlisten?.().catch(() => {});
      signals?.dispose();
    }
    if (this.#fatal) {
      this.#log.error({ err: this.#fatal }, "worker stopped on an error");
      throw this.#fatal;
    }
    const { workerId: _, ...counts } = this.#summary;
    this.#log.info(counts, "worker stopped");
    return this.#summary;
  }

  /**
   * A worker whose beats are further apart than half of dead_worker_seconds looks dead between
   * two of them, and the reaper would take its tasks while it works on them.
   */
  #checkHeartbeatInterval(first: BeatAnswer): void {
    const dead = first.dead_after_seconds;
    const every = this.#o.heartbeatSeconds;
    if (typeof dead === "number" && every * 2 >= dead) {
      throw new WorkerFatalError(
        `heartbeatSeconds ${every} is too long for the database's dead_worker_seconds ${dead}: ` +
          `a live worker would look dead between two beats; beat more often than every ${dead / 2} s ` +
          `(WORKER_HEARTBEAT_INTERVAL) or raise the setting dead_worker_seconds`,
      );
    }
  }

  /**
   * With no leaseSeconds of its own the worker takes the database's lease_seconds setting, which
   * resolveOptions could not compare with the heartbeat: a lease that a missed beat outlives
   * makes the worker fence (abort) healthy handlers. Said once, on the first lease granted.
   */
  #checkGrantedLease(task: ClaimedTask): void {
    if (this.#o.leaseSeconds !== undefined || this.#leaseChecked) return;
    this.#leaseChecked = true;
    const lease = task.lease_seconds;
    if (typeof lease === "number" && lease <= 2 * this.#o.heartbeatSeconds) {
      this.#log.warn(
        { lease_seconds: lease, heartbeat_seconds: this.#o.heartbeatSeconds },
        "the database's lease_seconds setting is not more than twice the heartbeat interval: a missed beat ends a lease; " +
          "raise the setting, or set TASK_LEASE_S / leaseSeconds for this worker",
      );
    }
  }

  /**
   * Startup calls ride out a database that is restarting or briefly unreachable (a worker
   * replaced during a failover must not die with it); after STARTUP_RETRY_MS, or on any other
   * error, the worker fails to start and its supervisor decides.
   */
  #untilReachable<T>(call: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + STARTUP_RETRY_MS;
    return retry(call, {
      retryIf: (err) => err instanceof TaskwardenError && err.transient && this.#stopReason === undefined && performance.now() < deadline,
      delayMs: backoff(250, 5000),
      onRetry: (err, attempt) => this.#log.warn({ err, attempt }, "database unreachable at start; retrying"),
    });
  }

  async #listen(): Promise<(() => Promise<void>) | undefined> {
    if (!isSqlTransport(this.tw.transport)) return undefined;
    try {
      const unlisten = await this.tw.transport.listen("taskwarden_tasks", (taskType) => {
        if (!this.#o.taskTypes || this.#o.taskTypes.includes(taskType)) this.#wake?.();
      });
      if (!this.#o.idleSleepGiven) this.#idleSleep = 5000; // the poll is now only for delayed retries
      return unlisten;
    } catch (err) {
      this.#log.warn({ err }, "LISTEN failed; polling only");
      return undefined;
    }
  }

  /**
   * What every heartbeat lists: each claim still held, and each claim whose handler has not
   * settled yet even though the claim ended (the database keeps a revoked task from being handed
   * out again while its old holder still lists it). One entry per lease token.
   */
  #listed(): Claim[] {
    const byToken = new Map<string, Claim>();
    for (const c of this.#clock.held()) byToken.set(c.token, c);
    for (const c of this.#runner.claims()) if (!byToken.has(c.token) && c.ended !== "reported") byToken.set(c.token, c);
    return [...byToken.values()];
  }

  #unreported(): number {
    return this.#clock.held().filter((c) => c.phase === "finished").length;
  }

  async #loop(): Promise<void> {
    const { concurrency, prefetch, maxLoops } = this.#o;
    // WORKER_MAX_LOOPS counts claims one after the other: no pipelining then.
    const depth = maxLoops === undefined ? this.#o.claimsInFlight : 1;
    const inFlight = new Set<Promise<void>>();
    /** Tasks asked for by the claims in flight: they count against the local queue's room. */
    let asked = 0;
    /** A claim came back short (the queue is drained) or failed: wait for a wake-up or the poll. */
    let pause: number | undefined;
    while (this.#stopReason === undefined) {
      this.#startQueued();
      if (pause !== undefined) {
        const ms = pause;
        pause = undefined;
        await this.#sleep(ms);
        continue;
      }
      const free = Math.max(0, concurrency - this.#runner.size);
      const coming = this.#queue.length + asked;
      // With a local queue, refill it once it is half empty, in one claim, rather than claim a
      // task or two each time a slot frees (a claim costs a round trip and a statement whatever
      // its size); claim at once only when slots would otherwise stay idle.
      const refill = free > coming || coming <= prefetch / 2;
      let want = refill ? free + prefetch - coming : 0;
      // The last loop WORKER_MAX_LOOPS allows claims only what it will run; claim_tasks takes 1000 at most.
      if (maxLoops !== undefined && this.#loops + 1 >= maxLoops) want = Math.min(want, free);
      want = Math.min(want, 1000);
      // Backpressure: results not yet reported count against the claim, so a database that
      // reports slower than handlers run does not let claimed-but-unreported tasks pile up. With
      // claims pipelined, one wave may be reported while the next is claimed and run.
      if (this.#unreported() + asked >= (concurrency + prefetch) * depth) want = 0;
      // No beat got through for longer than the worker's own row lasts: a claim now would be
      // past its deadline at once. Wait for the heartbeat instead.
      if (this.#clock.workerExpired()) want = 0;
      if (want > 0 && inFlight.size < depth) {
        asked += want;
        const claiming: Promise<void> = this.#claim(want)
          .then((outcome) => {
            if (outcome === "short") pause = this.#idleSleep;
            else if (outcome === "failed") pause = this.#idleSleep || 1000;
            else this.#wake?.(); // there may be more
          })
          .finally(() => {
            asked -= want;
            inFlight.delete(claiming);
            if (pause !== undefined) this.#wake?.();
          });
        inFlight.add(claiming);
        if (inFlight.size < depth) continue;
      }
      await this.#sleep(this.#idleSleep);
    }
    // Claims still on their way land in the local queue, which the shutdown hands back.
    await Promise.allSettled([...inFlight]);
  }

  /** One claim_tasks call; its tasks join the local queue and start in free slots. */
  async #claim(want: number): Promise<"full" | "short" | "failed" | "fatal"> {
    const sentAt = performance.now();
    let tasks: ClaimedTask[];
    try {
      tasks = await this.#calls.claimTasks({
        worker_id: this.workerId,
        task_types: this.#o.taskTypes,
        batch_size: want,
        lease_seconds: this.#o.leaseSeconds,
        run_id: this.#o.runFilterId,
      });
    } catch (err) {
      if (err instanceof TaskwardenError && err.sqlstate && FATAL_SQLSTATES.has(err.sqlstate)) {
        // A bad argument or an unknown run will not get better by retrying.
        this.#fatal ??= err;
        this.#requestStop("error");
        return "fatal";
      }
      this.#log.warn({ err }, "claim failed; retrying");
      return "failed";
    }
    this.#loops++;
    if (tasks.length > 0) this.#checkGrantedLease(tasks[0]);
    for (const task of tasks) this.#accept(task, sentAt);
    this.#startQueued();
    if (this.#o.maxLoops !== undefined && this.#loops >= this.#o.maxLoops) {
      this.#requestStop("max_loops", false);
      return "full";
    }
    return tasks.length === want ? "full" : "short";
  }

  /**
   * A new claim. If this worker still holds an older claim of the same task (it was taken back,
   * by an operator or the reaper, and handed to this worker again), that claim is over: its run
   * is aborted first, and the new one starts only once the old handler has settled.
   */
  #accept(task: ClaimedTask, sentAt: number): void {
    const old = this.#clock.heldFor(task.id);
    if (old && this.#clock.end(old, "replaced")) {
      this.#summary.lost++;
      this.#log.warn({ task_id: task.id, phase: old.phase }, "claimed again under a new lease token: the older claim is over, its run aborted");
      this.#endLocally(old, new LeaseLostError(task.id, "it was taken back and claimed again by this worker"));
    }
    this.#queue.push(this.#clock.add(task, sentAt));
  }

  /** A claim ended by the heartbeat's answer ("lost") or by its own deadline ("fenced"). */
  #onClaimEnd(claim: Claim, reason: "lost" | "fenced"): void {
    this.#summary.lost++;
    if (reason === "fenced") this.#summary.fenced++;
    const why =
      reason === "fenced"
        ? "no renewal reached the database in time: its local deadline passed, before the lease could expire there"
        : "it was reaped, cancelled or requeued";
    this.#log.warn({ task_id: claim.id, phase: claim.phase, reason }, `lease lost (${reason}): ${claim.phase === "running" ? "aborting the handler; " : ""}its result will not be reported`);
    this.#endLocally(claim, new LeaseLostError(claim.id, why));
  }

  #endLocally(claim: Claim, reason: Error): void {
    if (claim.phase === "queued") this.#queue.remove(claim);
    if (claim.phase === "running") claim.ac.abort(reason);
    this.#reportStatus();
  }

  #onStuckLimit(claim: Claim, ms: number): void {
    const err = new WorkerFatalError(
      `the handler of task ${claim.id} still runs ${Math.round(ms / 1000)} s after its signal was aborted ` +
        `(stuckHandlerLimitMs ${this.#o.stuckHandlerLimitMs}): its slot can only be freed by a new process`,
    );
    this.#log.error({ task_id: claim.id, aborted_ms: Math.round(ms) }, "stuck handler past its limit: stopping the worker");
    this.#fatal ??= err;
    this.#requestStop("stuck_handler");
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
    this.#log.info({ reason, in_flight: this.#runner.size }, "stopping");
    this.#wake?.();
  }

  #onSignal(signal: NodeJS.Signals): void {
    // A process asked to terminate must terminate, even if shutting down hangs: after the grace
    // period and time to hand tasks back, start() rejects (exit code 1); the heartbeat stops, so
    // the reaper takes back whatever the worker still held.
    const limitMs = this.#o.shutdownGraceMs + SHUTDOWN_MARGIN_MS;
    setTimeout(() => {
      this.#log.error({ signal, limit_ms: limitMs }, "shutdown did not finish in time; exiting");
      this.#die?.(new WorkerFatalError(`shutdown after ${signal} did not finish within ${limitMs} ms`, 1));
    }, limitMs).unref();
    if (this.#stopReason !== undefined && !this.#graceful) {
      // Already finishing in-flight work without a limit (max loops): a signal bounds it.
      this.#graceful = true;
      this.#graceDeadline ??= performance.now() + this.#o.shutdownGraceMs;
      this.#log.info({ signal }, "signal while finishing: in-flight tasks now get the grace period");
      return;
    }
    this.#requestStop(`signal:${signal}`);
  }

  #running(): Claim[] {
    return this.#clock.held().filter((c) => c.phase === "running");
  }

  #reportStatus(): void {
    if (this.heartbeat.status === "stopping" || this.heartbeat.status === "stopped") return;
    const running = this.#running();
    const first = running[0]?.task;
    const task = first ? `${first.task_type}#${first.id}${running.length > 1 ? ` (+${running.length - 1} more)` : ""}` : null;
    const status = task === null ? "idle" : "processing";
    const changed = this.heartbeat.status !== status;
    this.heartbeat.status = status;
    this.heartbeat.currentTask = task;
    this.heartbeat.currentRunId = first?.run_id ?? null;
    // A status change is reported within a second; a new current task rides on the regular beats.
    if (changed) this.heartbeat.reportSoon();
  }

  /** Moves queued claims into free slots; nothing new starts once the worker is stopping. */
  #startQueued(): void {
    while (this.#stopReason === undefined && this.#runner.size < this.#o.concurrency) {
      const claim = this.#queue.take((id) => this.#runner.busy(id));
      if (!claim) break;
      this.#run(claim);
    }
  }

  #run(claim: Claim): void {
    claim.phase = "running";
    this.#reportStatus();
    const ctx = this.#context(claim);
    const timeoutSeconds = claim.task.timeout_seconds ?? this.#o.taskTimeoutSeconds;
    ctx.log.info("task started");
    const started = performance.now();
    const done: Promise<void> = this.#runner
      .run(claim, ctx, timeoutSeconds)
      .then((outcome) => this.#finish(claim, outcome, ctx.log, started))
      .catch((err) => ctx.log.error({ err }, "reporting the outcome failed"))
      .finally(() => {
        this.#reporting.delete(done);
        this.#reportStatus();
        this.#wake?.();
      });
    this.#reporting.add(done);
  }

  #context(claim: Claim): TaskContext {
    const { task } = claim;
    const log = lazyChild(this.#log, { task_id: task.id, task_type: task.task_type, attempt: task.attempts });
    return {
      signal: claim.ac.signal,
      workerId: this.workerId,
      attempt: task.attempts,
      log,
      heartbeat: async () => {
        await this.heartbeat.beat();
        if (!claim.held) throw new LeaseLostError(task.id);
      },
      transaction: async <T>(fn: (tx: SqlTransaction) => Promise<T>, options: { statementTimeoutMs?: number } = {}): Promise<T> => {
        const transport = this.tw.transport;
        if (!isSqlTransport(transport)) {
          throw new Error("ctx.transaction needs a direct database connection (DATABASE_URL or PGlite), not supabase-js");
        }
        const signal = claim.ac.signal;
        if (signal.aborted) throw signal.reason;
        const committed = transport.transaction(
          async (tx) => {
            const result = await fn(tx);
            // Once the claim ended (its deadline passed, the database took it back, the caller
            // stopped waiting) the result is never reported, not even by a commit; before that,
            // the fence inside complete_task is the authority.
            if (signal.aborted || !claim.held) throw new LeaseLostError(task.id, `the claim ended (${claim.ended ?? "aborted"}) before the transaction committed`);
            await tx.call("complete_task", { task_id: task.id, lease_token: task.lease_token, result: result ?? null });
            return result;
          },
          { statementTimeoutMs: options.statementTimeoutMs ?? TRANSACTION_STATEMENT_TIMEOUT_MS },
        );
        // A transaction stuck on a cut link must not keep the handler past its abort: the caller
        // gets the abort reason at once, and the transaction, whenever it gets an answer, rolls back.
        const value = await new Promise<T>((resolve, reject) => {
          const onAbort = () => reject(signal.reason);
          if (signal.aborted) return onAbort();
          signal.addEventListener("abort", onAbort, { once: true });
          committed.then(
            (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
            (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
          );
        });
        committed.catch(() => {});
        this.#completedInTx.add(claim);
        this.#clock.end(claim, "reported");
        return value;
      },
    };
  }

  async #finish(claim: Claim, outcome: Outcome, log: Logger, started: number): Promise<void> {
    const ms = Math.round(performance.now() - started);
    if (this.#completedInTx.has(claim)) {
      this.#summary.completed++;
      if (!outcome.ok) log.warn({ err: outcome.error, ms }, "handler threw after its transaction committed; the task stays completed");
      else log.info({ ms }, "task completed");
      return;
    }
    if (!claim.held) {
      log.info({ ms, why: claim.ended }, "task abandoned: result not reported");
      return;
    }
    claim.phase = "finished";
    this.#reportStatus();
    if (!outcome.ok && outcome.error instanceof TaskwardenError && outcome.error.leaseLost) {
      // The handler's own fenced write (ctx.transaction) found the lease gone.
      this.#clock.end(claim, "lost");
      this.#summary.lost++;
      log.warn({ err: outcome.error, ms }, "lease lost: the result was refused");
      return;
    }
    const delivery = outcome.ok ? await this.#reporter.complete(claim, outcome.value, log) : await this.#reporter.fail(claim, outcome.error, log);
    switch (delivery.kind) {
      case "completed":
        this.#summary.completed++;
        log.info({ ms }, "task completed");
        break;
      case "failed":
        this.#summary.failed++;
        log.warn({ err: outcome.ok ? undefined : outcome.error, cause: delivery.cause, ms, next_status: delivery.status }, "task failed");
        break;
      case "lost":
        if (delivery.why === "refused_by_fence") this.#summary.lost++;
        break;
      case "refused":
        break;
    }
  }

  async #shutdown(): Promise<void> {
    this.#summary.reason = this.#stopReason ?? "stopped";
    this.#stopReason ??= "stopped";
    this.heartbeat.status = "stopping";
    void this.heartbeat.beat();
    if (this.#running().length > 0) {
      if (this.#graceful) this.#graceDeadline = performance.now() + this.#o.shutdownGraceMs;
      this.#log.info({ in_flight: this.#running().length, grace_ms: this.#graceful ? this.#o.shutdownGraceMs : null }, "waiting for in-flight tasks");
      await this.#drained();
    }
    for (const claim of this.#clock.held()) {
      if (claim.phase === "finished") continue; // its report is on its way
      this.#clock.end(claim, "released");
      this.#endLocally(claim, new WorkerShutdownError(claim.id));
    }
    this.#queue.clear();
    // Results still on their way must land before stop_worker hands back what is left; a report
    // stuck past the grace period (plus a few seconds) is abandoned: its task is handed back, and
    // a late completion is refused by the fence.
    const reportMs = Math.max(this.#graceDeadline ?? 0, performance.now()) + REPORT_MARGIN_MS - performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.#reporting]), new Promise((r) => (timer = setTimeout(r, reportMs)))]);
    clearTimeout(timer);
    this.#giveUpReports = true;
    // stop_worker hands back, without spending an attempt, every task this worker still holds.
    this.#summary.released = await this.heartbeat.stop({ releaseTasks: true });
    if (this.#summary.released > 0) this.#log.info({ released: this.#summary.released }, "released unfinished tasks");
  }

  /** Until no held claim is running or the grace deadline (which a signal or a fatal error may set later) passes. */
  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const poll = setInterval(() => {
        const late = this.#graceDeadline !== undefined && performance.now() >= this.#graceDeadline;
        if (this.#running().length === 0 || late) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
  }
}
