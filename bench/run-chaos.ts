// `npm run chaos`: 8 worker processes, 10,000 tasks, 60 s of SIGKILL / SIGSTOP / network
// partitions of single workers (dropped bytes, refused connections) / operator requeues / a Postgres
// restart on a private cluster of its own, then the exactly-once and no-overlap checks. Exit code 1
// when a check fails.
//
//   npm run chaos -- --tasks=10000 --workers=8 --seconds=60 --seed=123
import { parseArgs } from "node:util";
import { runChaos } from "./chaos.ts";
import { privateCluster, taskwardenDatabase } from "./lib/cluster.ts";

const { values: args } = parseArgs({
  options: {
    tasks: { type: "string", default: "10000" },
    workers: { type: "string", default: "8" },
    seconds: { type: "string", default: "60" },
    seed: { type: "string" },
  },
});

function wholeNumber(name: string, raw: string | undefined, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be a whole number >= ${min} (got "${raw}")`);
    process.exit(2);
  }
  return n;
}

const tasks = wholeNumber("tasks", args.tasks, 1);
const workers = wholeNumber("workers", args.workers, 2);
const seconds = wholeNumber("seconds", args.seconds, 5);
const seed = args.seed === undefined ? undefined : wholeNumber("seed", args.seed, 0);

const cluster = await privateCluster();
let ok = false;
try {
  const url = await taskwardenDatabase(cluster.url, "chaos");
  const report = await runChaos({
    url,
    restartPostgres: () => cluster.restart(),
    tasks,
    workers,
    durationSeconds: seconds,
    seed,
    log: (line) => console.error(line),
  });
  const requeued = Object.entries(report.requeues).map(([k, v]) => `${v} ${k}`).join(", ") || "none";
  console.log(
    [
      `chaos: ${report.tasks} tasks, ${report.workers} workers, ${report.durationSeconds} s of chaos (seed ${report.seed}); all done after ${report.totalSeconds.toFixed(1)} s`,
      `  kills ${report.kills}, freezes ${report.freezes}, Postgres restarts ${report.postgresRestarts} (completions resumed after ${report.postgresRestartRecoverySeconds?.toFixed(2) ?? "-"} s)`,
      `  worker crashes ${report.crashes.length}` +
        (report.crashes.length ? " (restarted)" : ""),
      `  requeues: ${requeued}; released ${report.released}; refused zombie completions ${report.refusedZombieCompletions.fence} by the fence + ${report.refusedZombieCompletions.uniqueKey} by the unique key; unique violations met by a lease holder ${report.uniqueViolationsByLeaseHolder}`,
      `  self-fence margin ${report.selfFenceMarginMs} ms; partitions ${report.partitions.dropped} dropped + ${report.partitions.refused} refused (longest ${report.partitions.longestSeconds.toFixed(1)} s; ` +
        `longest after which the cut-off worker still delivered a held task: ${report.longestPartitionThenDeliveredSeconds?.toFixed(1) ?? "-"} s); operator requeues ${report.operatorRequeues}`,
      `  executions ${report.executions}: overlapping ${report.overlappingExecutions}, paused by SIGSTOP ${report.pausedExecutions}; handlers stopped by the SDK on a lost lease ${report.abortedOnLostLease}`,
      `  taken back (kill or freeze until none of the victim's tasks runs under it): slowest ${report.slowestTakeBackSeconds.toFixed(2)} s, median ${report.medianTakeBackSeconds.toFixed(2)} s`,
      `  recovery (kill or freeze until the victim's tasks are completed): slowest ${report.slowestRecoverySeconds.toFixed(2)} s, median ${report.medianRecoverySeconds.toFixed(2)} s; max attempts of a task ${report.maxAttempts}`,
      `  final: ${JSON.stringify(report.final.statuses)}, ${report.final.results} result rows (${report.final.distinctResults} distinct), ` +
        `${report.final.tasksWithoutResult} lost, ${report.final.tasksNotCompletedExactlyOnce} not completed exactly once`,
      report.ok ? "  OK: every task completed exactly once, nothing left running" : `  FAILED:\n    ${report.failures.join("\n    ")}`,
    ].join("\n"),
  );
  console.log(JSON.stringify(report));
  ok = report.ok;
} finally {
  await cluster.stop();
}
process.exit(ok ? 0 : 1);
