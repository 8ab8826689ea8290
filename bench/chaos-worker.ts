// One chaos worker process: the SDK's Worker over a direct connection, whose handler writes one
// row into chaos_results IN THE SAME TRANSACTION as complete_task (ctx.transaction). If the lease
// was lost meanwhile (the process was frozen, the reaper took the task back) the fence raises,
// the transaction rolls back, and the result row never exists: exactly-once effects.
//
// It prints one JSON line per event the driver counts ({"event":"ready"|"refused"|
// "unique_violation_by_holder"|"stopped", ...}); SDK logs go to stderr. Configured by environment:
// DATABASE_URL, CHAOS_CONCURRENCY, CHAOS_WORK_MS, CHAOS_LEASE_S, CHAOS_HEARTBEAT_S, CHAOS_LOG_LEVEL.
import { pino } from "pino";
import { createLogger } from "../src/log.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { TaskwardenError } from "../src/rpc/transport.ts";
import { Worker } from "../src/worker/worker.ts";
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

const transport = new PostgresTransport({ url, max: 4 });
const worker = new Worker({
  type: CHAOS_TASK_TYPE,
  rpc: transport,
  concurrency: env("CHAOS_CONCURRENCY", 4),
  leaseSeconds: env("CHAOS_LEASE_S", 3),
  heartbeatSeconds: env("CHAOS_HEARTBEAT_S", 1),
  idleSleep: 200,
  // At the final SIGTERM every task is done; a handler still "in flight" then is stuck on a
  // connection the restart cut, and need not hold the exit for the default 30 s.
  shutdownGraceMs: 5000,
  logger: createLogger({ level: process.env.CHAOS_LOG_LEVEL === "info" ? "info" : "error", destination: pino.destination(2) }),
  handler: async (task, ctx) => {
    // Simulated work; deliberately deaf to ctx.signal, like a zombie: the fence must stop it.
    await new Promise((r) => setTimeout(r, workMs * (0.5 + Math.random())));
    try {
      return await ctx.transaction(async (tx) => {
        await tx.query("insert into public.chaos_results (task_id, worker_id) values ($1::bigint, $2::text)", [task.id, ctx.workerId]);
        return { by: ctx.workerId };
      });
    } catch (err) {
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
done.then(
  (summary) => {
    emit("stopped", { ...summary });
    return transport.close().then(() => process.exit(0));
  },
  (err) => {
    emit("crashed", { error: String(err) });
    process.exit(1);
  },
);
