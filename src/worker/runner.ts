// The task runner: runs one handler per claim and keeps the count of handlers that have not
// settled. A slot is free only when its handler settled: an aborted handler that ignores its
// signal keeps its slot, so concurrency is never exceeded. Such a handler is reported as stuck
// after a grace period, and past a hard limit the runner says so (the Worker then fails, and its
// supervisor restarts the process: nothing else can stop a handler that ignores its signal).

import type { ClaimedTask } from "../rpc/client.ts";
import type { Logger } from "../log.ts";
import type { Claim } from "./lease-clock.ts";
import type { TaskContext, TaskHandler } from "./options.ts";
import { TaskTimeoutError } from "./errors.ts";

/** What a handler did: its value, or why it failed (a throw, or the reason its signal was aborted with). */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Execution {
  claim: Claim;
  log: Logger;
  abortedAt: number | undefined;
  reportedStuck: boolean;
  overLimit: boolean;
}

export interface StuckHandler {
  task_id: number;
  task_type: string;
  /** Seconds since its signal was aborted. */
  aborted_seconds_ago: number;
}

export interface TaskRunnerOptions {
  handler: TaskHandler;
  stuckGraceMs: number;
  stuckLimitMs: number;
  /** A handler settled: its slot is free. */
  onSettled: (claim: Claim) => void;
  /** The set of stuck handlers changed (report it in the heartbeat). */
  onStuckChanged: () => void;
  /** A handler stayed unsettled past the hard limit. */
  onStuckLimit: (claim: Claim, abortedForMs: number) => void;
}

const STUCK_TICK_MS = 250;

export class TaskRunner {
  readonly #o: TaskRunnerOptions;
  readonly #running = new Set<Execution>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: TaskRunnerOptions) {
    this.#o = options;
  }

  /** Handlers that have not settled: the slots in use. */
  get size(): number {
    return this.#running.size;
  }

  /** An execution of task `id` has not settled. */
  busy(id: number): boolean {
    for (const e of this.#running) if (e.claim.id === id) return true;
    return false;
  }

  /** Claims whose handler has not settled. */
  claims(): Claim[] {
    return [...this.#running].map((e) => e.claim);
  }

  /**
   * Runs the handler. Resolves with its outcome as soon as it settles or its signal is aborted,
   * whichever comes first; the slot stays taken until it settles.
   */
  run(claim: Claim, ctx: TaskContext, timeoutSeconds: number | undefined): Promise<Outcome> {
    const task: ClaimedTask = claim.task;
    const signal = claim.ac.signal;
    const exec: Execution = { claim, log: ctx.log, abortedAt: undefined, reportedStuck: false, overLimit: false };
    this.#running.add(exec);
    this.#tick();
    const onAbort = () => (exec.abortedAt = performance.now());
    signal.addEventListener("abort", onAbort, { once: true });
    const timer =
      timeoutSeconds === undefined
        ? undefined
        : setTimeout(() => {
            if (!signal.aborted) claim.ac.abort(new TaskTimeoutError(task.id, timeoutSeconds));
          }, timeoutSeconds * 1000);
    const handled = Promise.resolve().then(() => this.#o.handler(task, ctx));
    void handled
      .catch((err) => {
        if (signal.aborted) ctx.log.debug({ err }, "aborted handler settled");
      })
      .finally(() => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#running.delete(exec);
        if (exec.reportedStuck) {
          ctx.log.warn({ stuck_ms: Math.round(performance.now() - exec.abortedAt!) }, "stuck handler settled at last; its slot is free");
          this.#o.onStuckChanged();
        }
        this.#o.onSettled(claim);
      });
    return new Promise<Outcome>((resolve) => {
      if (signal.aborted) return resolve({ ok: false, error: signal.reason });
      const aborted = () => resolve({ ok: false, error: signal.reason });
      signal.addEventListener("abort", aborted, { once: true });
      handled.then(
        (value) => (signal.removeEventListener("abort", aborted), resolve({ ok: true, value })),
        (error) => (signal.removeEventListener("abort", aborted), resolve({ ok: false, error })),
      );
    });
  }

  /** Handlers still running past the grace period after their abort. */
  stuck(now = performance.now()): StuckHandler[] {
    return [...this.#running]
      .filter((e) => e.reportedStuck)
      .map((e) => ({
        task_id: e.claim.id,
        task_type: e.claim.task.task_type,
        aborted_seconds_ago: Math.round((now - e.abortedAt!) / 100) / 10,
      }));
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running.size === 0) return this.stop();
      this.check();
    }, STUCK_TICK_MS);
    this.#timer.unref?.();
  }

  check(now = performance.now()): void {
    let changed = false;
    for (const e of this.#running) {
      if (e.abortedAt === undefined) continue;
      const age = now - e.abortedAt;
      if (!e.reportedStuck && age >= this.#o.stuckGraceMs) {
        e.reportedStuck = true;
        changed = true;
        e.log.error(
          { aborted_ms: Math.round(age), reason: (e.claim.ac.signal.reason as Error | undefined)?.name },
          "handler ignores its abort signal: it keeps its slot until it settles",
        );
      }
      if (!e.overLimit && age >= this.#o.stuckLimitMs) {
        e.overLimit = true;
        this.#o.onStuckLimit(e.claim, age);
      }
    }
    if (changed) this.#o.onStuckChanged();
  }
}
