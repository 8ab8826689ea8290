// A small taskwarden worker. Run it against the embedded database (PGlite, no setup):
//
//   npx tsx examples/worker.ts
//
// or against a Postgres / Supabase database (migrated first with `npx taskwarden migrate`):
//
//   DATABASE_URL=postgres://postgres:postgres@localhost:54322/postgres npx tsx examples/worker.ts
//
// It enqueues a few "greet" tasks in a run (EXAMPLE_TASKS, default 5; 0 enqueues none), then
// works on them: one fails on its first attempt to show a retry. Ctrl-C stops it gracefully
// (a second Ctrl-C exits at once). On the embedded database it uses the one `npm start` serves
// when that runs (its tasks show on the dashboard); otherwise it opens the database itself and
// serves it to other processes (more workers, `npx taskwarden status`) until it exits.
import { loadConfig } from "../src/config.ts";
import { connect, type Taskwarden } from "../src/rpc/index.ts";
import { exitCodeOf, NonRetryableError, Worker } from "../src/worker/index.ts";

const config = loadConfig();
let tw: Taskwarden;
try {
  tw = await connect({
    ...config,
    embedded: {
      onWait: (owner) =>
        console.error(`examples/worker.ts: waiting for ${owner ? `pid ${owner.pid} (${owner.role})` : "another process"}, which is opening the embedded database`),
    },
  });
} catch (err) {
  // One line, e.g. the embedded database is held by a process that does not share it.
  console.error(`examples/worker.ts: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

const count = Number(process.env.EXAMPLE_TASKS ?? 5);
if (count > 0) {
  const run = await tw.createRun({ name: "example greetings" });
  const names = ["Ada", "Grace", "flaky Linus", "Barbara", "Edsger", "Margaret", "Donald"];
  await tw.enqueueTasks({
    task_type: "greet",
    run_id: run.id,
    payloads: Array.from({ length: count }, (_, i) => ({ name: names[i % names.length], ms: 300 })),
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });
}

// The Worker's summary counts every failed attempt; one with attempts left is retried, not failed.
let retried = 0;

// `npm start`'s demo counts a worker as dead after a few seconds without a heartbeat (the setting
// dead_worker_seconds, kept in its database): beat well within what the database says.
const { dead_after_seconds } = await tw.getWorkerHealthSummary();

const worker = new Worker({
  type: "greet",
  rpc: tw,
  config,
  concurrency: 2,
  heartbeatSeconds: Math.min(config.WORKER_HEARTBEAT_INTERVAL, dead_after_seconds / 3),
  handler: async (task, ctx) => {
    const { name, ms } = task.payload as { name?: string; ms?: number };
    if (!name) throw new NonRetryableError("payload.name is missing"); // retrying will not help
    // Stop working the moment the task is no longer ours (lease lost, timeout, shutdown).
    await sleep(ms ?? 300, ctx.signal);
    if (name.startsWith("flaky") && ctx.attempt === 1) {
      if (ctx.attempt < task.max_attempts) retried++;
      throw new Error("flaky upstream: try again");
    }
    ctx.log.info({ greeting: `Hello, ${name}!` }, "greeted");
    return { greeting: `Hello, ${name}!`, attempt: ctx.attempt };
  },
});

// The SDK never exits the process: this entry point does. A WorkerFatalError (a second Ctrl-C,
// a handler stuck past its limit) carries the exit code a supervisor should see.
try {
  const summary = await worker.start();
  const failed = Math.max(0, summary.failed - retried);
  console.error(`stopped (${summary.reason}): ${summary.completed} completed, ${failed} failed, ${summary.released} released, ${retried} retried`);
} catch (err) {
  console.error(`examples/worker.ts: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = exitCodeOf(err);
} finally {
  await Promise.race([tw.close(), new Promise((r) => setTimeout(r, 2000))]);
  process.exit();
}
