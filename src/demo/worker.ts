// A demo worker process (started by `npm start`): claims "demo" tasks and "works" on each for
// payload.ms milliseconds, failing where the payload says so. Now and then one of these is killed
// with SIGKILL mid-task to show the reaper.
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../config.ts";
import { connect } from "../rpc/index.ts";
import { exitCodeOf, Worker } from "../worker/index.ts";
import type { DemoPayload } from "./demo.ts";

// Started with an IPC channel by `npm start`: when that process is gone, stop instead of
// polling a database that no longer exists (or, worse, a later one on the same port). A parent
// that died while this script was still loading closed the channel before anyone listened.
if (!process.connected) process.exit(0);
let onParentGone = (): void => process.exit(0); // nothing started yet
process.once("disconnect", () => onParentGone());

const config = loadConfig();
const tw = await connect({ ...config, migrate: false });

const worker = new Worker({
  type: "demo",
  rpc: tw,
  config,
  // Delayed retries (the reaper's backoff) are found by polling: keep it short for the demo.
  idleSleep: 500,
  handler: async (task, ctx) => {
    const payload = (task.payload ?? {}) as Partial<DemoPayload>;
    await sleep(Math.min(Math.max(Number(payload.ms) || 1000, 0), 60_000), undefined, { signal: ctx.signal });
    if (payload.fail === "always" || (payload.fail === "first" && ctx.attempt === 1)) {
      throw new Error(`simulated failure on attempt ${ctx.attempt}`);
    }
    return { done_by: ctx.workerId, attempt: ctx.attempt };
  },
});

onParentGone = () => void worker.stop("parent exited");

try {
  await worker.start();
} catch (err) {
  // The SDK has logged it; one line here, not a stack trace.
  process.stderr.write(`demo worker ${worker.workerId}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = exitCodeOf(err);
} finally {
  // The library never exits; this entry point does, without waiting on a pool a cut connection holds.
  await Promise.race([tw.close().catch(() => {}), sleep(2000)]);
  if (process.connected) process.disconnect?.();
  process.exit();
}
