// The Worker's options: what a caller may pass, validated by one zod schema, with every default
// resolved in one place. `new Worker()` reads no environment: its defaults are the design's
// (loadConfig({})) unless a Config is given; Worker.fromEnv() passes loadConfig(process.env).

import { z } from "zod";
import type { ClaimedTask } from "../rpc/client.ts";
import type { SqlTransaction } from "../rpc/sql.ts";
import type { RpcTransport } from "../rpc/transport.ts";
import { Taskwarden } from "../rpc/client.ts";
import { loadConfig, workerIdVariable, type Config } from "../config.ts";
import type { Logger } from "../log.ts";

export interface TaskContext {
  /** Aborted when the lease is lost (or about to be: the self-fence), the task times out, or the worker shuts down. */
  signal: AbortSignal;
  /** Beats now (renewing this lease); throws LeaseLostError when the task is no longer ours. */
  heartbeat(): Promise<void>;
  /**
   * Direct connections only: runs `fn` and `complete_task` in ONE transaction, with `fn`'s
   * return value as the result. If the lease was lost meanwhile the fence raises TW001, the
   * transaction rolls back and none of `fn`'s writes exist: exactly-once effects. When the
   * signal aborts meanwhile it rejects at once with the abort reason, and the transaction rolls
   * back whenever its statement answers. Each statement times out after `statementTimeoutMs`
   * (default 30 s) with a transient TaskwardenError.
   */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>, options?: { statementTimeoutMs?: number }): Promise<T>;
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
  /** Handlers run at once (default WORKER_CONCURRENCY, 1). A slot frees when its handler settles. */
  concurrency?: number;
  /**
   * Tasks claimed ahead of a free slot and held (leased, renewed by the heartbeat) in a local
   * queue, so a busy worker claims in batches instead of once per finished task (default 0).
   * For many short tasks; a prefetched task waits for this worker even when another is idle,
   * and its timeout_seconds counts from the claim.
   */
  prefetch?: number;
  /**
   * Claims a busy worker may have on their way at once (default 2): the next wave is claimed
   * while the last one runs and is reported. 1 claims only after the previous claim answered.
   * WORKER_MAX_LOOPS counts claims one at a time, so it implies 1.
   */
  claimsInFlight?: number;
  /** Lease per claim and per renewal (default TASK_LEASE_S; unset, the database's lease_seconds setting). */
  leaseSeconds?: number;
  /** Seconds between heartbeats (default WORKER_HEARTBEAT_INTERVAL, 10). */
  heartbeatSeconds?: number;
  /** Claim only this run's tasks, and exit when it is terminal (default RUN_FILTER_ID). */
  runFilterId?: string | null;
  /** Stop after this many claim polls, finishing what is in flight (default WORKER_MAX_LOOPS). */
  maxLoops?: number;
  /** Milliseconds between polls of an empty queue (default 1000; 5000 when NOTIFY wakes the worker). */
  idleSleep?: number;
  rpc: RpcTransport | Taskwarden;
  /** The id base (default `<TYPE>_WORKER_ID` of the config, else generated); a boot suffix is always added. */
  workerId?: string;
  /** Per-task timeout when the task has no timeout_seconds of its own. */
  taskTimeoutSeconds?: number;
  /** How long in-flight tasks may run on after a stop before they are released (default WORKER_SHUTDOWN_GRACE_S, 30 s). */
  shutdownGraceMs?: number;
  /**
   * A handler still running this long after its signal was aborted is reported as stuck: in the
   * log and in the heartbeat's metadata.stuck_handlers, which the dashboard shows (default 10 s).
   */
  stuckHandlerGraceMs?: number;
  /**
   * A handler still running this long after its signal was aborted makes start() reject with a
   * WorkerFatalError (exit code 1): its slot can never free, and only a new process gets it back.
   * The entry point exits; the supervisor restarts it (default 5 min).
   */
  stuckHandlerLimitMs?: number;
  /**
   * Stop gracefully on SIGTERM / SIGINT (default true). A second signal (more than 1 s later), or
   * a shutdown that does not finish in time, makes start() reject with a WorkerFatalError whose
   * exitCode the entry point exits with.
   */
  handleSignals?: boolean;
  /** Defaults for the options above (default loadConfig({}): the design's defaults, no environment). */
  config?: Config;
  logger?: Logger;
  metadata?: Record<string, unknown>;
}

const positive = z.number({ error: "must be > 0" }).positive("must be > 0");
const whole = (min: number) => {
  const must = `must be a whole number >= ${min}`;
  return z.number({ error: must }).int(must).min(min, must);
};

const schema = z
  .object({
    type: z.string().trim().min(1, "must be a non-empty string"),
    handler: z.custom<TaskHandler>((v) => typeof v === "function", "must be a function (task, ctx) => result"),
    taskTypes: z.array(z.string().min(1)).min(1, "must be null (any type) or non-empty").nullable(),
    concurrency: whole(1),
    prefetch: whole(0),
    claimsInFlight: whole(1).max(16, "must be at most 16"),
    leaseSeconds: whole(1).optional(),
    heartbeatSeconds: positive,
    runFilterId: z.string().nullable(),
    maxLoops: whole(1).optional(),
    idleSleep: z.number({ error: "must be >= 0 ms" }).min(0, "must be >= 0 ms"),
    rpc: z.custom<RpcTransport | Taskwarden>(
      (v) => v instanceof Taskwarden || (typeof v === "object" && v !== null && typeof (v as RpcTransport).call === "function"),
      "is required (a transport or a Taskwarden client)",
    ),
    workerId: z.string().min(1).optional(),
    taskTimeoutSeconds: positive.optional(),
    shutdownGraceMs: z.number({ error: "must be >= 0 ms" }).min(0, "must be >= 0 ms"),
    stuckHandlerGraceMs: z.number({ error: "must be >= 0 ms" }).min(0, "must be >= 0 ms"),
    stuckHandlerLimitMs: positive,
    handleSignals: z.boolean(),
    logger: z.custom<Logger>().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((o, ctx) => {
    // Every held task is renewed by one heartbeat, which takes at most 10,000 ids.
    if (o.concurrency + o.prefetch > 10_000) {
      ctx.addIssue({ code: "custom", path: ["prefetch"], message: `plus concurrency must be at most 10000 (got ${o.concurrency} + ${o.prefetch})` });
    }
    // Unset, the lease is the database's setting; the worker checks the first lease it is granted.
    if (o.leaseSeconds !== undefined && o.leaseSeconds <= 2 * o.heartbeatSeconds) {
      ctx.addIssue({
        code: "custom",
        path: ["leaseSeconds"],
        message: `must be a whole number of seconds above 2 x heartbeatSeconds (${o.leaseSeconds} vs ${o.heartbeatSeconds}): a lease must survive a missed beat`,
      });
    }
    if (o.stuckHandlerLimitMs <= o.stuckHandlerGraceMs) {
      ctx.addIssue({ code: "custom", path: ["stuckHandlerLimitMs"], message: `must be above stuckHandlerGraceMs (${o.stuckHandlerLimitMs} vs ${o.stuckHandlerGraceMs})` });
    }
  });

export type ResolvedOptions = z.infer<typeof schema> & { idleSleepGiven: boolean; workerIdBase: string | undefined };

/** Fills the defaults and validates; throws a TypeError naming the first bad option. */
export function resolveOptions(options: WorkerOptions): ResolvedOptions {
  const cfg = options.config ?? loadConfig({});
  const input = {
    type: options.type,
    handler: options.handler,
    taskTypes: options.taskTypes === undefined ? (typeof options.type === "string" ? [options.type] : null) : options.taskTypes,
    concurrency: options.concurrency ?? cfg.WORKER_CONCURRENCY,
    prefetch: options.prefetch ?? 0,
    claimsInFlight: options.claimsInFlight ?? 2,
    leaseSeconds: options.leaseSeconds ?? cfg.TASK_LEASE_S,
    heartbeatSeconds: options.heartbeatSeconds ?? cfg.WORKER_HEARTBEAT_INTERVAL,
    runFilterId: options.runFilterId === undefined ? (cfg.RUN_FILTER_ID ?? null) : options.runFilterId,
    maxLoops: options.maxLoops ?? cfg.WORKER_MAX_LOOPS,
    idleSleep: options.idleSleep ?? 1000,
    rpc: options.rpc,
    workerId: options.workerId,
    taskTimeoutSeconds: options.taskTimeoutSeconds,
    shutdownGraceMs: options.shutdownGraceMs ?? cfg.WORKER_SHUTDOWN_GRACE_S * 1000,
    stuckHandlerGraceMs: options.stuckHandlerGraceMs ?? 10_000,
    stuckHandlerLimitMs: options.stuckHandlerLimitMs ?? 300_000,
    handleSignals: options.handleSignals ?? true,
    logger: options.logger,
    metadata: options.metadata,
  };
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0] ?? "options");
    const got = (input as Record<string, unknown>)[name];
    const shown = typeof got === "number" || typeof got === "string" ? ` (got ${JSON.stringify(got)})` : "";
    const message = issue.code === "custom" || issue.message.startsWith("must") ? issue.message : `is invalid: ${issue.message}`;
    throw new TypeError(`Worker option ${name} ${message}${issue.code === "custom" ? "" : shown}`);
  }
  return {
    ...parsed.data,
    idleSleepGiven: options.idleSleep !== undefined,
    workerIdBase: options.workerId ?? cfg.WORKER_IDS[workerIdVariable(options.type)],
  };
}
