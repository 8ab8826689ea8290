// One idle worker process with each system's default settings on an empty queue: what the
// memory figure measures. Prints "ready", then after <idleSeconds> one JSON line {"rss": bytes}.
// Usage: idle-worker.ts <taskwarden|pg-boss|graphile-worker> <url> <idleSeconds>
import PgBoss from "pg-boss";
import { run } from "graphile-worker";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { Worker } from "../src/worker/worker.ts";
import { exitWithParent } from "./lib/proc.ts";
import { graphileOptions, TASK } from "./systems/graphile.ts";
import { QUEUE } from "./systems/pgboss.ts";
import { quietLogger, TASK_TYPE } from "./systems/taskwarden.ts";

const [system, url, idle] = process.argv.slice(2);
const idleSeconds = Number(idle);
exitWithParent();

if (!url || !(idleSeconds > 0)) {
  console.error("usage: idle-worker.ts <taskwarden|pg-boss|graphile-worker> <url> <idleSeconds>");
  process.exit(2);
}

if (system === "taskwarden") {
  const worker = new Worker({ type: TASK_TYPE, rpc: new PostgresTransport({ url }), handler: () => {}, handleSignals: false, logger: quietLogger });
  void worker.start();
} else if (system === "pg-boss") {
  const boss = new PgBoss({ connectionString: url });
  boss.on("error", (err) => console.error(`pg-boss: ${err.message}`));
  await boss.start();
  await boss.work(QUEUE, async () => {});
} else if (system === "graphile-worker") {
  await run({ ...graphileOptions(url, { concurrency: 1, batchSize: 1, profile: "defaults" }), taskList: { [TASK]: async () => {} } });
} else {
  console.error(`unknown system ${system}`);
  process.exit(2);
}
console.log("ready");
setTimeout(() => console.log(JSON.stringify({ rss: process.memoryUsage().rss })), idleSeconds * 1000);
