// A worker process that takes 100 jobs and never finishes them: the victim the recovery
// benchmark SIGKILLs. Usage: recovery-victim.ts <taskwarden|pg-boss|graphile-worker> <url> <fast|defaults>
import PgBoss from "pg-boss";
import { run } from "graphile-worker";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { Worker } from "../src/worker/worker.ts";
import { exitWithParent } from "./lib/proc.ts";
import { graphileOptions, TASK } from "./systems/graphile.ts";
import { QUEUE } from "./systems/pgboss.ts";
import { quietLogger, TASK_TYPE } from "./systems/taskwarden.ts";

const [system, url, mode] = process.argv.slice(2);
const HELD = 100;
const forever = () => new Promise<never>(() => {});
exitWithParent();

if (!url || (mode !== "fast" && mode !== "defaults")) {
  console.error("usage: recovery-victim.ts <taskwarden|pg-boss|graphile-worker> <url> <fast|defaults>");
  process.exit(2);
}

if (system === "taskwarden") {
  const worker = new Worker({
    type: TASK_TYPE,
    rpc: new PostgresTransport({ url }),
    concurrency: HELD,
    heartbeatSeconds: mode === "fast" ? 1 : undefined,
    handler: forever,
    handleSignals: false,
    logger: quietLogger,
  });
  void worker.start();
} else if (system === "pg-boss") {
  const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
  boss.on("error", (err) => console.error(`pg-boss: ${err.message}`));
  await boss.start();
  await boss.work(QUEUE, { batchSize: HELD, pollingIntervalSeconds: 0.5 }, forever);
} else if (system === "graphile-worker") {
  await run({
    ...graphileOptions(url, { concurrency: HELD, batchSize: HELD, profile: "throughput" }),
    taskList: { [TASK]: forever },
  });
} else {
  console.error(`unknown system ${system}`);
  process.exit(2);
}
console.log("ready");
