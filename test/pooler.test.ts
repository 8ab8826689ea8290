// Workers through a transaction-mode pooler, as most Supabase projects connect (Supavisor, port
// 6543): Debian's PgBouncer in transaction mode stands in for it. A server connection is lent for
// one transaction at a time, so prepared statements and LISTEN do not carry over. The worker's
// core cases and a short chaos run go through it with no prepared-statement or LISTEN errors,
// and an idle worker, with no NOTIFY to wake it, still claims within its poll interval.
import { Writable } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOutcome, runChaos } from "../bench/chaos.ts";
import { privateCluster } from "../bench/lib/cluster.ts";
import { connect as benchConnect } from "../bench/lib/db.ts";
import { createLogger } from "../src/log.ts";
import { connect, TaskwardenError, type Taskwarden } from "../src/rpc/index.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { Worker, type TaskHandler, type WorkerOptions } from "../src/worker/index.ts";
import { cloneTemplate, type Cluster } from "./support/cluster.ts";
import { adminUrl, freshDatabase } from "./support/db.ts";
import { poolerMissing, startPooler, type Pooler } from "./support/pgbouncer.ts";

const skip = poolerMissing();
if (skip) console.warn(`transaction-mode pooler tests ${skip}`);

let pooler: Pooler;
let directUrl: string;
let direct: Taskwarden;
const logs: { level: number; msg: string; err?: { message?: string } }[] = [];
const logger = createLogger({
  level: "debug",
  destination: new Writable({ write: (c, _e, cb) => (logs.push(JSON.parse(String(c))), cb()) }),
});

beforeAll(async () => {
  if (skip) return;
  directUrl = await freshDatabase();
  direct = await connect({ DATABASE_URL: directUrl });
  pooler = await startPooler(adminUrl());
}, 60_000);

afterAll(async () => {
  await direct?.close();
  await pooler?.stop();
});

/** Errors a pooler would cause: a prepared statement on another server connection, or LISTEN. */
const POOLER_ERRORS = /prepared statement|LISTEN|unsupported startup parameter/i;

function worker(tw: Taskwarden, type: string, handler: TaskHandler, opts: Partial<WorkerOptions> = {}): Worker {
  return new Worker({
    type, handler, rpc: tw, logger, heartbeatSeconds: 0.3, leaseSeconds: 5, idleSleep: 100, handleSignals: false, shutdownGraceMs: 2000,
    ...opts,
  });
}

describe.skipIf(skip)("through PgBouncer in transaction mode", () => {
  it("the pooler really is transaction-mode: a connection's prepared statement is gone in its next transaction", async () => {
    const raw = new pg.Pool({ connectionString: pooler.urlFor(directUrl), max: 4 });
    try {
      const named = (i: number) => raw.query({ name: "probe", text: "select $1::int + 1 as n", values: [i] });
      const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => named(i)));
      const errors = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
      expect(errors.join("\n")).toMatch(/prepared statement "probe" (does not exist|already exists)/);
      // And it refuses the `options` startup parameter, as the transport used to send on every connection.
      const withOptions = new pg.Client({ connectionString: pooler.urlFor(directUrl), options: "-c TimeZone=UTC" });
      await expect(withOptions.connect()).rejects.toThrow(/unsupported startup parameter: options/);
    } finally {
      await raw.end();
    }
  });

  it("a pooler the URL does not reveal: the transport stops naming statements, and LISTEN is found not to work", async () => {
    // pooled: false, and no flag in the URL: what a worker behind an unknown pooler would run.
    // A pooler of its own: the LISTEN it tries stays on a server connection of that pooler.
    const own = await startPooler(adminUrl());
    const pool = new pg.Pool({ connectionString: own.urlFor(directUrl), max: 4 });
    const unflagged = new PostgresTransport({ pool, pooled: false });
    try {
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => unflagged.query<{ n: number }>("select $1::int + 1 as n", [i])));
      expect(results.map((r) => r[0]!.n)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const err = await unflagged.listen("taskwarden_tasks", () => {}).catch((e: Error) => e);
      expect(err).toBeInstanceOf(TaskwardenError);
      expect((err as TaskwardenError).message).toMatch(/^LISTEN got no notification back/);
      expect((err as TaskwardenError).hint).toMatch(/pgbouncer=true/);
    } finally {
      await unflagged.close();
      await pool.end();
      await own.stop();
    }
    // Over the direct connection the same check passes, and NOTIFY arrives.
    const ok = new PostgresTransport({ url: directUrl });
    try {
      const got: string[] = [];
      const unlisten = await ok.listen("taskwarden_tasks", (p) => got.push(p));
      await ok.query("select pg_notify('taskwarden_tasks', 'x')");
      await expect.poll(() => got).toEqual(["x"]);
      await unlisten();
    } finally {
      await ok.close();
    }
  });

  describe("a worker on the pooled URL (?pgbouncer=true, as for Supavisor's port 6543)", () => {
    let tw: Taskwarden;
    beforeAll(async () => {
      tw = await connect({ DATABASE_URL: pooler.urlFor(directUrl, { pgbouncer: "true" }) });
      expect((tw.transport as PostgresTransport).pooled).toBe(true);
    });
    afterAll(async () => {
      await tw?.close();
    });

    it("claims, completes, fails, beats; no prepared-statement or LISTEN errors", async () => {
      logs.length = 0;
      const poolerLogBefore = pooler.log().length; // the tests above provoke errors on purpose
      const tasks = await direct.enqueueTasks({ task_type: "pooled", payloads: Array.from({ length: 60 }, (_, i) => ({ i })) });
      const ids = tasks.map((t) => t.id);
      const w = worker(tw, "pooled", async (t) => {
        const i = (t.payload as { i: number }).i;
        if (i % 10 === 0) throw new Error(`task ${i} fails on purpose`);
        return { doubled: i * 2 };
      }, { concurrency: 4, prefetch: 4 });
      const running = w.start();
      try {
        await expect
          .poll(async () => {
            const rows = await Promise.all(ids.map(async (id) => (await direct.getTask({ task_id: id })).task));
            return rows.filter((r) => r.status === "completed").length;
          }, { timeout: 30_000, interval: 250 })
          .toBe(54);
        const failed = await Promise.all(ids.filter((_, i) => i % 10 === 0).map(async (id) => (await direct.getTask({ task_id: id })).task));
        expect(failed.every((t) => t.status === "queued" || t.status === "failed")).toBe(true);
        expect(failed.every((t) => t.last_error?.includes("fails on purpose"))).toBe(true);
        const done = (await direct.getTask({ task_id: ids[3]! })).task;
        expect(done.result).toEqual({ doubled: 6 });
        // Its heartbeat row follows it through the pooler.
        const [row] = await (direct.transport as PostgresTransport).query<{ beats: number; status: string }>(
          "select beats::int as beats, status from taskwarden.worker_heartbeats where worker_id = $1", [w.workerId]);
        expect(row!.beats).toBeGreaterThan(1);
      } finally {
        await w.stop();
        await running;
      }
      const errors = logs.filter((l) => l.level >= 40 && POOLER_ERRORS.test(`${l.msg} ${l.err?.message ?? ""}`) && !/polling only/.test(l.msg));
      expect(errors).toEqual([]);
      expect(logs.filter((l) => l.level >= 50)).toEqual([]);
      expect(pooler.log().slice(poolerLogBefore)).not.toMatch(/prepared statement|unsupported|WARNING|ERROR/);
    });

    it("with no NOTIFY to wake it, an idle worker still claims within its poll interval", async () => {
      logs.length = 0;
      const POLL_MS = 1000;
      const started: number[] = [];
      const w = worker(tw, "pooled-wake", async () => void started.push(Date.now()), { idleSleep: POLL_MS });
      const running = w.start();
      try {
        await expect
          .poll(async () => (await (direct.transport as PostgresTransport).query<{ status: string }>(
            "select status from taskwarden.worker_heartbeats where worker_id = $1", [w.workerId]))[0]?.status, { timeout: 30_000 })
          .toBe("idle");
        // It knows LISTEN cannot work here, and says it polls instead (right after it registers).
        await expect.poll(() => logs.some((l) => /LISTEN failed; polling only/.test(l.msg)), { timeout: 15_000 }).toBe(true);
        const waits: number[] = [];
        for (let i = 0; i < 3; i++) {
          const enqueued = Date.now();
          await direct.enqueueTask({ task_type: "pooled-wake" });
          await expect.poll(() => started.length, { timeout: 10_000, interval: 20 }).toBe(i + 1);
          waits.push(started[i]! - enqueued);
        }
        console.log(`[measure] through the pooler, enqueue -> handler start (poll ${POLL_MS} ms): ${waits.join(", ")} ms`);
        // One poll interval plus a claim round trip; generous for a loaded machine, but a worker
        // that waited for a NOTIFY that never comes would wait forever.
        for (const wait of waits) expect(wait).toBeLessThan(POLL_MS + 4000);
      } finally {
        await w.stop();
        await running;
      }
    });
  });

  describe("a short chaos run through the pooler", () => {
    let cluster: Cluster | undefined;
    let chaosPooler: Pooler | undefined;
    afterAll(async () => {
      await chaosPooler?.stop();
      await cluster?.stop();
    });

    it("200 tasks under SIGKILL, SIGSTOP and a Postgres restart: each completed exactly once, no pooler errors", { timeout: 180_000 }, async () => {
      cluster = await privateCluster();
      const url = await cloneTemplate(cluster.url, "chaos_pooled");
      chaosPooler = await startPooler(cluster.url, { poolSize: 20 });
      const lines: string[] = [];
      const report = await runChaos({
        url,
        workerUrl: chaosPooler.urlFor(url, { pgbouncer: "true" }),
        restartPostgres: () => cluster!.restart(),
        tasks: 200,
        workers: 4,
        durationSeconds: 8,
        log: (l) => lines.push(l),
      });
      console.log(`[measure] chaos through the pooler: startup ${report.startupSeconds} s, total ${report.totalSeconds} s, ` +
        `kills ${report.kills}, freezes ${report.freezes}, slowest take-back ${report.slowestTakeBackSeconds} s`);
      expect(report.failures, lines.join("\n")).toEqual([]);
      expect(report.final.statuses).toEqual({ completed: 200 });
      expect(report.final.distinctResults).toBe(200);
      expect(report.uniqueViolationsByLeaseHolder).toBe(0);
      expect(report.kills).toBeGreaterThan(0);
      expect(report.crashes).toEqual([]);
      expect(lines.join("\n")).not.toMatch(POOLER_ERRORS);
      const sql = benchConnect(url);
      try {
        expect((await checkOutcome(sql, { tasks: 200, stoppedWorkerIds: [] })).failures).toEqual([]);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  });
});
