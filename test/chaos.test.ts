// The short chaos run (npm run chaos is the 60-second one): 8 real worker processes built on the
// SDK's Worker drain 1,000 tasks whose handler writes a result row in the same transaction as
// complete_task, while the driver SIGKILLs workers, SIGSTOPs one past its lease and restarts
// Postgres. It runs on a cluster of its own: restarting the shared one would break other files.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOutcome, checkOverlaps, runChaos, type ChaosReport } from "../bench/chaos.ts";
import { privateCluster } from "../bench/lib/cluster.ts";
import { connect } from "../bench/lib/db.ts";
import { cloneTemplate, type Cluster } from "./support/cluster.ts";

let cluster: Cluster | undefined;
let url: string;

beforeAll(async () => {
  cluster = await privateCluster();
  url = await cloneTemplate(cluster.url, "chaos");
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("chaos", () => {
  let report: ChaosReport;

  it("1,000 tasks under SIGKILL, SIGSTOP past the lease, partitions, operator requeues and a Postgres restart: each completed exactly once, no executions overlapping", async () => {
    const lines: string[] = [];
    report = await runChaos({
      url,
      restartPostgres: () => cluster!.restart(),
      tasks: 1000,
      workers: 8,
      durationSeconds: 10,
      log: (l) => lines.push(l),
    });
    expect(report.failures, lines.join("\n")).toEqual([]);
    expect(report.final.statuses).toEqual({ completed: 1000 });
    expect(report.final.results).toBe(1000);
    expect(report.final.distinctResults).toBe(1000);
    expect(report.uniqueViolationsByLeaseHolder).toBe(0);
    expect(report.kills).toBeGreaterThan(0);
    expect(report.freezes).toBeGreaterThan(0);
    expect(report.postgresRestarts).toBe(1);
    // Single workers cut off (dropped bytes), operator requeues mid-run, and never two executions
    // of one task at once.
    expect(report.partitions.dropped).toBeGreaterThan(0);
    expect(report.operatorRequeues).toBeGreaterThan(0);
    expect(report.executions).toBeGreaterThanOrEqual(1000);
    expect(report.overlappingExecutions).toBe(0);
    // The kills and the freeze took work away from its holders: the reaper gave it back.
    const requeued = Object.values(report.requeues).reduce((a, b) => a + b, 0);
    expect(requeued).toBeGreaterThan(0);
  }, 120_000);

  it("the checks catch a lost task, a result nobody completed and a double completion", async () => {
    expect(report, "the chaos run above must have produced a database to tamper with").toBeDefined();
    const sql = connect(url);
    try {
      const [{ id }] = await sql`select min(task_id)::int as id from public.chaos_results`;
      await sql`delete from public.chaos_results where task_id = ${id}`;
      await sql`insert into public.chaos_results (task_id, worker_id) values (-1, 'ghost#0')`;
      await sql`insert into taskwarden.task_events (task_id, event, worker_id) values (${id + 1}, 'completed', 'ghost#0')`;
      const outcome = await checkOutcome(sql, { tasks: 1000, stoppedWorkerIds: [] });
      // The row count alone is still 1,000: the other checks are what catch it.
      expect(outcome.final.results).toBe(1000);
      expect(outcome.failures).toEqual([
        "1 tasks without a result row (lost)",
        "1 result rows of tasks not completed",
        "1 tasks without exactly one completed event",
      ]);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});

describe("the overlap check", () => {
  it("catches two executions of one task at once, ends a killed process's open one at its exit, and sets frozen ones apart", () => {
    type W = { frozenWindows: [number, number][]; exitedAt: number | undefined };
    const live: W = { frozenWindows: [], exitedAt: undefined };
    const killed: W = { frozenWindows: [], exitedAt: 1500 };
    const frozen: W = { frozenWindows: [[1100, 1200]], exitedAt: undefined };
    const x = (taskId: number, workerId: string, start: number, end: number | undefined, worker: W) => ({ taskId, workerId, start, end, worker });
    expect(checkOverlaps([x(1, "a", 1000, 2000, live), x(1, "b", 2000, 3000, live), x(2, "a", 1000, 1100, live)])).toMatchObject({ overlapping: 0, paused: 0 });
    expect(checkOverlaps([x(1, "a", 1000, 2000, live), x(1, "b", 1999, 3000, live)])).toMatchObject({ overlapping: 1 });
    expect(checkOverlaps([x(1, "a", 1000, undefined, killed), x(1, "b", 1400, 3000, live)])).toMatchObject({ overlapping: 1 });
    expect(checkOverlaps([x(1, "a", 1000, undefined, killed), x(1, "b", 1500, 3000, live)])).toMatchObject({ overlapping: 0 });
    expect(checkOverlaps([x(1, "a", 1000, 1300, frozen), x(1, "b", 1250, 3000, live)])).toMatchObject({ overlapping: 0, paused: 1 });
  });
});

describe("bad arguments name the problem", () => {
  const run = (script: string, args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(new URL(`../bench/${script}`, import.meta.url)), ...args], {
      encoding: "utf8",
      timeout: 30_000,
    });

  it("npm run chaos -- --tasks=abc", () => {
    const r = run("run-chaos.ts", ["--tasks=abc"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--tasks must be a whole number >= 1 (got "abc")');
  });

  it("npm run bench -- --only=nope", () => {
    const r = run("run.ts", ["--only=throughput,nope"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--only: unknown section nope");
  });
});
