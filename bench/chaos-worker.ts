// One chaos worker process: the SDK's Worker over a direct connection (through the driver's fault
// proxy), whose handler writes one row into chaos_results IN THE SAME TRANSACTION as
// complete_task (ctx.transaction). If the lease was lost meanwhile (the process was frozen or cut
// off, the reaper or an operator took the task back) the fence raises, the transaction rolls back,
// and the result row never exists: exactly-once effects.
//
// It prints one JSON line per event the driver counts ({"event":"ready"|"exec_start"|"exec_end"|
// "refused"|"aborted_lost"|"unique_violation_by_holder"|"stopped", ...}); SDK logs go to stderr.
// Configured by environment: DATABASE_URL, CHAOS_CONCURRENCY, CHAOS_WORK_MS, CHAOS_LEASE_S,
// CHAOS_HEARTBEAT_S, CHAOS_LOG_LEVEL.
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { createLogger } from "../src/log.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { TaskwardenError } from "../src/rpc/transport.ts";
import { exitCodeOf, LeaseLostError, Worker } from "../src/worker/index.ts";
import { CHAOS_TASK_TYPE } from "./chaos.ts";
import { exitWithParent } from "./lib/proc.ts";

const env = (name: string, fallback: number) => {
  const raw = process.env[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got "${raw}")`);
  return n;
};

const url = process.env.DATABASE_URL;
if (!url) throw new Error("DATABASE_URL is required");
const workMs = env("CHAOS_WORK_MS", 100);
const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);

// Short connect and statement timeouts: a partition (dropped bytes) must fail calls quickly so
// they are retried, not hang on connections the proxy black-holes.
const transport = new PostgresTransport({ url, max: 4, connectTimeoutMs: 2000 });

const worker = new Worker({
  type: CHAOS_TASK_TYPE,
  rpc: transport,
  concurrency: env("CHAOS_CONCURRENCY", 4),
  leaseSeconds: env("CHAOS_LEASE_S", 5),
  heartbeatSeconds: env("CHAOS_HEARTBEAT_S", 1),
  idleSleep: 200,
  // At the final SIGTERM every task is done; a handler still "in flight" then is stuck on a
  // connection the restart cut, and need not hold the exit for the default 30 s.
  shutdownGraceMs: 5000,
  logger: createLogger({ level: process.env.CHAOS_LOG_LEVEL === "info" ? "info" : "error", destination: pino.destination(2) }),
  handler: async (task, ctx) => {
    // Every execution's start and end, on the wall clock (one host): the driver checks that no
    // two executions of one task overlap.
    const start = Date.now();
    emit("exec_start", { task_id: task.id, worker_id: ctx.workerId, at: start });
    let outcome = "completed";
    try {
      await sleep(workMs * (0.5 + Math.random()), undefined, { signal: ctx.signal });
      // Retried through short outages (a partition that heals, a restart) for as long as the
      // claim is ours: the signal ends it.
      for (let attempt = 1; ; attempt++) {
        try {
          return await ctx.transaction(
            async (tx) => {
              await tx.query("insert into public.chaos_results (task_id, worker_id) values ($1::bigint, $2::text)", [task.id, ctx.workerId]);
              return { by: ctx.workerId };
            },
            // As long as the lease: a statement slower than that on a loaded host still counts.
            { statementTimeoutMs: env("CHAOS_LEASE_S", 5) * 1000 },
          );
        } catch (err) {
          if (err instanceof TaskwardenError && err.transient && !ctx.signal.aborted && attempt < 50) {
            await sleep(200, undefined, { signal: ctx.signal });
            continue;
          }
          throw err;
        }
      }
    } catch (thrown) {
      // An aborted pause rejects with an AbortError; what ended the execution is the signal's reason.
      const err: unknown = ctx.signal.aborted && thrown instanceof Error && thrown.name === "AbortError" ? ctx.signal.reason : thrown;
      outcome = err instanceof Error ? err.name : "error";
      if (err instanceof LeaseLostError) emit("aborted_lost", { task_id: task.id });
      if (err instanceof TaskwardenError && err.leaseLost) emit("refused", { task_id: task.id, by: "fence" });
      if (err instanceof TaskwardenError && err.sqlstate === "23505") {
        // The row exists already. A zombie meets it when the task's new holder committed first:
        // its late effect is refused by the key before the fence is reached. The current holder
        // can never meet it unless a task's effect was committed twice.
        const [row] = await transport.query<{ mine: boolean }>(
          "select status = 'running' and lease_token = $2::uuid as mine from taskwarden.tasks where id = $1::bigint",
          [task.id, task.lease_token],
        );
        emit(row?.mine ? "unique_violation_by_holder" : "refused", { task_id: task.id, by: "unique_key" });
      }
      throw err;
    } finally {
      emit("exec_end", { task_id: task.id, worker_id: ctx.workerId, start, at: Date.now(), outcome });
    }
  },
});

// Node would print an unhandled rejection without saying which query it was: name the query
// (a driver defect hides there: a query the driver starts and nobody awaits), then crash.
process.on("unhandledRejection", (err) => {
  const q = (err as { query?: string } | undefined)?.query;
  process.stderr.write(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}${q ? `\nquery: ${q.trim()}` : ""}\n`);
  process.exit(1);
});

// The driver owns this process: when it goes away, so does the worker.
exitWithParent();

const done = worker.start();
emit("ready", { worker_id: worker.workerId, pid: process.pid });
// The library never exits; this entry point does, with the code a supervisor would see.
done.then(
  (summary) => {
    emit("stopped", { ...summary });
    return Promise.race([transport.close(), sleep(2000)]).then(() => process.exit(0));
  },
  (err) => {
    emit("crashed", { error: String(err) });
    process.exit(exitCodeOf(err));
  },
);
