// Worker processes under real signals: SIGKILL, SIGSTOP/SIGCONT, SIGTERM, a run that ends
// under a RUN_FILTER_ID worker, and a bad environment. Each worker is `node --import tsx
// test/fixtures/worker.ts` (its own pid, so signals reach the worker itself) on a private
// database with the real migrations.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as netConnect, createServer, type AddressInfo, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";
import { connect, type Taskwarden } from "../src/rpc/index.ts";
import type { SqlTransport } from "../src/rpc/sql.ts";
import { ReaperLoop } from "../src/reaper/loop.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIXTURE = "test/fixtures/worker.ts";

type LogLine = { msg: string; level: string; time: string; [k: string]: unknown };

interface Child {
  proc: ChildProcess;
  lines: LogLine[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
}

const children: Child[] = [];
let url: string;
let tw: Taskwarden;
let sql: SqlTransport;

function spawnWorker(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", FIXTURE], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "info", DATABASE_URL: url, WORKER_HEARTBEAT_INTERVAL: "1", TASK_LEASE_S: "30", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: LogLine[] = [];
  const waiters: (() => void)[] = [];
  let buf = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ msg: line, level: "raw", time: "" });
      }
      waiters.forEach((w) => w());
    }
  });
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.on("exit", (code, signal) => {
      resolve({ code, signal, at: performance.now() });
      waiters.forEach((w) => w());
    }),
  );
  const child: Child = {
    proc,
    lines,
    stderr: () => err,
    exited,
    waitFor: (pred, what, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (hit) return resolve(hit), true;
          if (proc.exitCode !== null || proc.signalCode !== null) {
            reject(new Error(`worker exited before "${what}"; stderr:\n${err}\nstdout:\n${lines.map((l) => l.msg).join("\n")}`));
            return true;
          }
          return false;
        };
        if (check()) return;
        const timer = setTimeout(() => reject(new Error(`timed out waiting for "${what}"; stderr:\n${err}`)), timeoutMs);
        waiters.push(() => {
          if (check()) clearTimeout(timer);
        });
      }),
  };
  children.push(child);
  return child;
}

const started = (taskId?: number) => (l: LogLine) => l.msg === (taskId === undefined ? "worker started" : "task started") && (taskId === undefined || l.task_id === taskId);

async function task(id: number) {
  return (await tw.getTask({ task_id: id })).task;
}
async function resultRows(taskId: number): Promise<{ worker_id: string; attempt: number }[]> {
  return sql.query("select worker_id, attempt from public.test_results where task_id = $1 order by at", [taskId]);
}

beforeAll(async () => {
  url = await freshDatabase();
  tw = await connect({ DATABASE_URL: url });
  sql = tw.transport as SqlTransport;
  // These tests read the whole audit trail: claimed and completed events too (off by default).
  await sql.query("update taskwarden.settings set value = 'true' where key = 'log_success_events'");
  await sql.query(
    "create table public.test_results (task_id bigint not null, worker_id text not null, attempt int, at timestamptz not null default clock_timestamp())",
  );
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) {
      c.proc.kill("SIGCONT");
      c.proc.kill("SIGKILL");
      await c.exited;
    }
  }
});

afterAll(async () => {
  await tw?.close();
});

describe("a worker killed with SIGKILL mid-task", () => {
  it("another worker completes the task after the reaper runs; the work committed exactly once", async () => {
    // heartbeat 1 s / dead after 5 s / reap every 1 s; everything else at its default.
    await sql.query("update taskwarden.settings set value = '5' where key = 'dead_worker_seconds'");
    const reaper = new ReaperLoop({ client: tw, intervalMs: 1000, source: "test" });
    try {
      const a = spawnWorker({ FIXTURE_TYPE: "kill" });
      await a.waitFor(started(), "A started");
      // The work happens inside the transaction that will complete the task: A's row is
      // written but uncommitted when it dies.
      const t = await tw.enqueueTask({ task_type: "kill", payload: { ms: 60_000, inTx: true } });
      await a.waitFor(started(t.id), "A took the task");
      const b = spawnWorker({ FIXTURE_TYPE: "kill", FIXTURE_IDLE_MS: "1000" });
      await b.waitFor(started(), "B started");
      // Once the task is back in the queue it should be quick (the payload is read at claim time).
      await sql.query("update taskwarden.tasks set payload = '{\"ms\": 100, \"inTx\": true}' where id = $1", [t.id]);

      reaper.start();
      const killedAt = Date.now();
      a.proc.kill("SIGKILL");
      const exit = await a.exited;
      expect(exit.signal).toBe("SIGKILL");

      const done = await b.waitFor((l) => l.msg === "task completed" && l.task_id === t.id, "B completed it", 40_000);
      const aId = a.lines.find(started())!.worker_id;
      expect(done.worker_id).not.toBe(aId);
      const final = await task(t.id);
      expect(final.status).toBe("completed");
      expect(final.attempts).toBe(2);
      expect(final.crash_count).toBe(1);
      const rows = await resultRows(t.id);
      expect(rows).toHaveLength(1); // A's uncommitted row died with its connection
      expect(rows[0].worker_id).toBe(done.worker_id);
      expect(rows[0].attempt).toBe(2);
      const events = (await tw.getTask({ task_id: t.id })).events.map((e) => `${e.event}:${e.reason ?? ""}`);
      expect(events).toEqual(["claimed:", "requeued:worker_dead", "claimed:", "completed:"]);

      const killToComplete = Date.parse(final.completed_at!) - killedAt;
      console.log(`[measure] SIGKILL -> completed by another worker (hb 1 s, dead 5 s, reap 1 s, retry base 5 s, poll 1 s): ${killToComplete} ms`);
      // dead after 5 s since the last beat, + <= 1 s reap, + 5 s retry backoff, + <= 1 s poll.
      expect(killToComplete).toBeGreaterThan(4_000 + 5_000);
      expect(killToComplete).toBeLessThan(15_000);
    } finally {
      await reaper.stop();
      await sql.query("update taskwarden.settings set value = '300' where key = 'dead_worker_seconds'");
    }
  }, 60_000);
});

describe("a worker frozen with SIGSTOP past its lease, then resumed", () => {
  it("sees the abort, its completion is refused before it reaches the database, and no duplicate result is recorded", async () => {
    await sql.query("update taskwarden.settings set value = '0.1' where key = 'retry_base_seconds'");
    try {
      const a = spawnWorker({ FIXTURE_TYPE: "freeze", TASK_LEASE_S: "3" });
      await a.waitFor(started(), "A started");
      // A handler that ignores its signal and tries to complete anyway: only the fence stops it.
      const t = await tw.enqueueTask({ task_type: "freeze", payload: { ms: 2500, ignoreAbort: true } });
      await a.waitFor(started(t.id), "A took the task");
      a.proc.kill("SIGSTOP");
      await new Promise((r) => setTimeout(r, 4000)); // past the 3 s lease
      const reaped = await tw.reap({ source: "test" });
      expect(reaped.lease_expired).toEqual({ requeued: 1, failed: 0 });

      // Another worker takes it and commits its result with the completion.
      await new Promise((r) => setTimeout(r, 200)); // the 0.1 s retry backoff
      const [again] = await tw.claimTasks({ worker_id: "other#1", task_types: ["freeze"] });
      expect(again.id).toBe(t.id);
      await sql.transaction(async (tx) => {
        await tx.query("insert into public.test_results (task_id, worker_id, attempt) values ($1, 'other#1', $2)", [t.id, again.attempts]);
        await tx.call("complete_task", { task_id: t.id, lease_token: again.lease_token, result: { by: "other" } });
      });

      a.proc.kill("SIGCONT");
      const saw = await a.waitFor((l) => l.msg === "handler saw abort", "A's handler saw the abort");
      expect(saw.reason).toBe("LeaseLostError");
      // Resumed past its local deadline (or told the claim is lost by its first beat), the worker
      // ended the claim: the handler's late ctx.transaction is refused before any write.
      await a.waitFor((l) => l.msg === "task abandoned: result not reported" && l.task_id === t.id, "A's result not reported");

      const rows = await resultRows(t.id);
      expect(rows).toEqual([{ worker_id: "other#1", attempt: 2 }]);
      const final = await task(t.id);
      expect(final).toMatchObject({ status: "completed", result: { by: "other" }, owner_id: "other#1" });
      a.proc.kill("SIGTERM");
      expect((await a.exited).code).toBe(0);
    } finally {
      await sql.query("update taskwarden.settings set value = '5' where key = 'retry_base_seconds'");
    }
  }, 40_000);
});

describe("SIGTERM during work", () => {
  it("lets the in-flight task finish, releases the rest without spending an attempt, ends stopped, exit 0", async () => {
    const a = spawnWorker({ FIXTURE_TYPE: "term", WORKER_CONCURRENCY: "2", WORKER_SHUTDOWN_GRACE_S: "1.5" });
    await a.waitFor(started(), "A started");
    const [short, long, waiting] = await tw.enqueueTasks({
      task_type: "term",
      payloads: [{ ms: 800 }, { ms: 30_000 }, { ms: 10 }],
    });
    await a.waitFor(started(short.id), "short started");
    await a.waitFor(started(long.id), "long started");
    const workerId = String(a.lines.find(started())!.worker_id);

    const sentAt = performance.now();
    a.proc.kill("SIGTERM");
    const exit = await a.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    // The grace period (1.5 s) bounds the wait, not the long task (30 s): half of it tells the two
    // apart on a loaded host too.
    expect(exit.at - sentAt).toBeLessThan(15_000);

    expect(await task(short.id)).toMatchObject({ status: "completed", attempts: 1 });
    expect(await resultRows(short.id)).toHaveLength(1);
    expect(await task(long.id)).toMatchObject({ status: "queued", attempts: 0, owner_id: null, lease_token: null });
    expect(await resultRows(long.id)).toHaveLength(0);
    const longEvents = (await tw.getTask({ task_id: long.id })).events.map((e) => e.event);
    expect(longEvents).toEqual(["claimed", "released"]);
    expect(await task(waiting.id)).toMatchObject({ status: "queued", attempts: 0 }); // never claimed
    const [row] = await sql.query("select status, stopped_at from taskwarden.worker_heartbeats where worker_id = $1", [workerId]);
    expect(row.status).toBe("stopped");
    expect(row.stopped_at).not.toBeNull();
    expect(a.lines.some((l) => l.msg === "handler saw abort" && l.reason === "WorkerShutdownError")).toBe(true);
    await tw.cancelTask({ task_id: long.id });
    await tw.cancelTask({ task_id: waiting.id });
  }, 30_000);

  it("a doubled signal (terminal + npm forwarding it) is still one graceful stop", async () => {
    const a = spawnWorker({ FIXTURE_TYPE: "term3", WORKER_SHUTDOWN_GRACE_S: "10" });
    await a.waitFor(started(), "A started");
    const t = await tw.enqueueTask({ task_type: "term3", payload: { ms: 1500 } });
    await a.waitFor(started(t.id), "task started");
    a.proc.kill("SIGINT");
    a.proc.kill("SIGINT");
    expect((await a.exited).code).toBe(0);
    expect(await task(t.id)).toMatchObject({ status: "completed" });
  }, 30_000);

  it("a second signal exits at once", async () => {
    const a = spawnWorker({ FIXTURE_TYPE: "term2", WORKER_SHUTDOWN_GRACE_S: "60" });
    await a.waitFor(started(), "A started");
    const t = await tw.enqueueTask({ task_type: "term2", payload: { ms: 30_000 } });
    await a.waitFor(started(t.id), "task started");
    a.proc.kill("SIGTERM");
    await a.waitFor((l) => l.msg === "waiting for in-flight tasks", "draining");
    await new Promise((r) => setTimeout(r, 1200)); // past the window in which a repeat is a duplicate
    const sentAt = performance.now();
    a.proc.kill("SIGTERM");
    const exit = await a.exited;
    expect(exit.code).toBe(143);
    // At once, not after the 60 s grace.
    expect(exit.at - sentAt).toBeLessThan(30_000);
    await tw.cancelTask({ task_id: t.id });
  }, 30_000);
});

describe("a worker with RUN_FILTER_ID", () => {
  it("exits within one heartbeat after its run is finished, cancelled or archived", async () => {
    const endings = ["finish", "cancel", "archive"] as const;
    const runs = await Promise.all(endings.map((e) => tw.createRun({ name: `filter-${e}` })));
    // The cancelled run has a task in flight: its worker learns the task is gone and aborts it.
    const busy = await tw.enqueueTask({ task_type: "filtered", payload: { ms: 30_000 }, run_id: runs[1].id });
    const workers = runs.map((r) => spawnWorker({ FIXTURE_TYPE: "filtered", RUN_FILTER_ID: r.id }));
    await Promise.all(workers.map((w) => w.waitFor(started(), "started")));
    await workers[1].waitFor(started(busy.id), "busy task started");

    const calledAt: number[] = []; // wall clock, comparable with the workers' log times
    const calledAtMono: number[] = [];
    await Promise.all(
      endings.map(async (e, i) => {
        const run_id = runs[i].id;
        if (e === "finish") await tw.finishRun({ run_id });
        if (e === "cancel") await tw.cancelRun({ run_id, reason: "test" });
        if (e === "archive") await tw.archiveRun({ run_id });
        calledAt[i] = Date.now();
        calledAtMono[i] = performance.now();
      }),
    );
    const exits = await Promise.all(workers.map((w) => w.exited));
    const learned = workers.map((w, i) => Date.parse(w.lines.find((l) => l.msg === "stop requested")!.time) - calledAt[i]);
    const exited = exits.map((x, i) => Math.round(x.at - calledAtMono[i]));
    console.log(
      `[measure] RUN_FILTER_ID worker after finish / cancel / archive (heartbeat 1 s): stop learned ${learned.join(" / ")} ms, process gone ${exited.join(" / ")} ms`,
    );
    for (const [i, x] of exits.entries()) {
      expect(x.code).toBe(0);
      // Learned from a heartbeat (every 1 s), not from the idle poll (5 s) or a lease running out
      // (30 s): the bound separates those with room for a loaded host; the [measure] line above
      // has the figures.
      expect(learned[i]).toBeLessThan(4_000);
      // Then a clean shutdown and exit.
      expect(exited[i]).toBeLessThan(15_000);
      const stop = workers[i].lines.find((l) => l.msg === "stop requested")!;
      expect(stop.stop_reason).toBe(`run_${["completed", "cancelled", "archived"][i]}`);
    }
    expect(workers[1].lines.some((l) => l.msg === "handler saw abort" && l.reason === "LeaseLostError")).toBe(true);
    expect(await task(busy.id)).toMatchObject({ status: "cancelled" });
    expect(await resultRows(busy.id)).toHaveLength(0);
  }, 30_000);
});

describe("configuration errors", () => {
  it("a bad environment stops the worker at start with every bad variable named", async () => {
    const a = spawnWorker({ WORKER_HEARTBEAT_INTERVAL: "soon", TASK_LEASE_S: "-5", RUN_FILTER_ID: "run-42" });
    const exit = await a.exited;
    expect(exit.code).toBe(1);
    const err = a.stderr();
    expect(err).toContain("WORKER_HEARTBEAT_INTERVAL");
    expect(err).toContain('"soon"');
    expect(err).toContain("TASK_LEASE_S");
    expect(err).toContain("RUN_FILTER_ID");
    expect(err).not.toContain("at "); // a message, not a stack trace
  }, 20_000);
});

describe("an idle worker", () => {
  it("stays small: RSS measured from /proc", async () => {
    const a = spawnWorker({ FIXTURE_TYPE: "idle" });
    await a.waitFor(started(), "started");
    await new Promise((r) => setTimeout(r, 3000)); // a few polls and beats
    const status = readFileSync(`/proc/${a.proc.pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
    console.log(`[measure] idle worker RSS (node + tsx + node-postgres, heartbeat 1 s): ${(rssKb / 1024).toFixed(1)} MiB`);
    expect(rssKb).toBeGreaterThan(10_000);
    expect(rssKb).toBeLessThan(200_000);
    a.proc.kill("SIGINT");
    expect((await a.exited).code).toBe(0);
  }, 20_000);
});

/**
 * A TCP proxy in front of the real server. "refuse" resets every new connection, as a server
 * that is restarting does; "blackhole" leaves sockets open and silent, as a partition or a
 * stuck driver would; "forward" passes bytes through.
 */
async function dbProxy() {
  const target = new URL(url);
  const sockets: Socket[] = [];
  const state = { mode: "forward" as "forward" | "refuse" | "blackhole", refused: 0 };
  const server = createServer((client) => {
    if (state.mode === "refuse") {
      state.refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = netConnect(Number(target.port), target.hostname);
    sockets.push(client, upstream);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on("data", (d) => state.mode === "blackhole" || to.write(d));
      from.on("error", () => {});
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const via = new URL(url);
  via.port = String((server.address() as AddressInfo).port);
  return {
    state,
    url: via.toString(),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("a worker whose database is restarting when it starts", () => {
  it("waits for it, then starts and works (a replacement started during a failover must not die with it)", async () => {
    const proxy = await dbProxy();
    try {
      proxy.state.mode = "refuse";
      const a = spawnWorker({ FIXTURE_TYPE: "restarting", DATABASE_URL: proxy.url });
      await a.waitFor((l) => l.msg === "database unreachable at start; retrying", "a retry");
      await new Promise((r) => setTimeout(r, 1500));
      expect(proxy.state.refused).toBeGreaterThanOrEqual(2);
      expect(a.lines.some((l) => l.msg === "worker started")).toBe(false);
      proxy.state.mode = "forward";
      await a.waitFor(started(), "started", 15_000);
      const { id } = await tw.enqueueTask({ task_type: "restarting", payload: { ms: 0 } });
      await a.waitFor((l) => l.msg === "task completed" && l.task_id === id, "the task completed");
      expect((await task(id)).status).toBe("completed");
      a.proc.kill("SIGTERM");
      expect((await a.exited).code).toBe(0);
    } finally {
      await proxy.close();
    }
  }, 40_000);
});

describe("a worker whose database stops answering", () => {
  it("still exits after SIGTERM: 1, once the grace period and the margin for handing back are over", async () => {
    const proxy = await dbProxy();
    try {
      const a = spawnWorker({ FIXTURE_TYPE: "partitioned", DATABASE_URL: proxy.url, WORKER_SHUTDOWN_GRACE_S: "1" });
      await a.waitFor(started(), "started");
      proxy.state.mode = "blackhole";
      const t0 = performance.now();
      a.proc.kill("SIGTERM");
      const exit = await a.exited;
      const seconds = (exit.at - t0) / 1000;
      expect(exit.code).toBe(1);
      // grace 1 s + the 15 s margin: not at once (it waited for its answer), not never.
      expect(seconds).toBeGreaterThan(15);
      expect(seconds).toBeLessThan(25);
      expect(a.lines.some((l) => l.msg === "shutdown did not finish in time; exiting")).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 40_000);
});
