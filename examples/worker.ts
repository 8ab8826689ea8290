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
// (a second Ctrl-C exits at once). With PGlite, only one process can open the database at a
// time, so this process both enqueues and works.
import { loadConfig } from "../src/config.ts";
import { connect } from "../src/rpc/index.ts";
import { NonRetryableError, Worker } from "../src/worker/index.ts";

const config = loadConfig();
const tw = await connect({ ...config, migrate: !config.DATABASE_URL && !config.SUPABASE_URL });

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

const worker = new Worker({
  type: "greet",
  rpc: tw,
  config,
  concurrency: 2,
  handler: async (task, ctx) => {
    const { name, ms } = task.payload as { name?: string; ms?: number };
    if (!name) throw new NonRetryableError("payload.name is missing"); // retrying will not help
    // Stop working the moment the task is no longer ours (lease lost, timeout, shutdown).
    await sleep(ms ?? 300, ctx.signal);
    if (name.startsWith("flaky") && ctx.attempt === 1) throw new Error("flaky upstream: try again");
    ctx.log.info({ greeting: `Hello, ${name}!` }, "greeted");
    return { greeting: `Hello, ${name}!`, attempt: ctx.attempt };
  },
});

try {
  const summary = await worker.start();
  console.error(`stopped (${summary.reason}): ${summary.completed} completed, ${summary.failed} failed, ${summary.released} released`);
} finally {
  await tw.close();
}
