// A worker that fences itself (issue 11), against the real Postgres through a real TCP proxy that
// refuses connections or silently drops bytes: the self-fence aborts a handler before its lease
// can expire and no second execution overlaps it; in-flight work is keyed by lease token; a
// finished task's report outlives an outage; a result Postgres cannot store fails the attempt at
// once; a handler that ignores its signal keeps its slot and is reported; a heartbeat interval
// that would make the worker look dead is refused.
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";
import { startProxy, type FaultProxy } from "./support/proxy.ts";
import { connect, Taskwarden } from "../src/rpc/index.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { createLogger, type Logger } from "../src/log.ts";
import type { SqlTransport } from "../src/rpc/sql.ts";
import { fenceMargin, Worker, WorkerFatalError, type TaskHandler, type WorkerOptions } from "../src/worker/index.ts";
import { deferred } from "./support/wait.ts";

let tw: Taskwarden;
let sql: SqlTransport;
let dbUrl: string;

beforeAll(async () => {
  dbUrl = await freshDatabase();
  tw = await connect({ DATABASE_URL: dbUrl });
  sql = tw.transport as SqlTransport;
  // Reaped tasks are retried after 1 s instead of 5.
  await sql.query("update taskwarden.settings set value = '1' where key = 'retry_base_seconds'");
  // These tests read the whole audit trail: claimed and completed events too (off by default).
  await sql.query("update taskwarden.settings set value = 'true' where key = 'log_success_events'");
});
afterAll(async () => {
  await tw?.close();
});

interface LogLine {
  msg: string;
  level: number | string;
  [k: string]: unknown;
}

function capture(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({
    level: "info",
    destination: new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }),
  });
  return { logger, lines };
}


const task = async (id: number) => (await tw.getTask({ task_id: id })).task;
const events = async (id: number, event: string) =>
  (await sql.query<{ n: number }>("select count(*)::int as n from taskwarden.task_events where task_id = $1 and event = $2", [id, event]))[0].n;

/** One execution of a handler: wall-clock start and end (same host as Postgres). */
interface Execution {
  worker: string;
  attempt: number;
  start: number;
  end?: number;
  abortedWith?: string;
}

function assertNoOverlap(runs: Execution[]) {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    expect(sorted[i - 1].end, `execution ${i - 1} never ended`).toBeDefined();
    expect(sorted[i].start, `execution ${i} (${sorted[i].worker}) started before execution ${i - 1} (${sorted[i - 1].worker}) ended`).toBeGreaterThanOrEqual(
      sorted[i - 1].end!,
    );
  }
}

/** A handler that records its execution and works until its signal aborts (or `ms` pass). */
function recording(runs: Execution[], name: string, ms = 120_000, started?: () => void): TaskHandler {
  return async (_t, ctx) => {
    const run: Execution = { worker: name, attempt: ctx.attempt, start: Date.now() };
    runs.push(run);
    started?.();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        ctx.signal.addEventListener("abort", () => (clearTimeout(timer), reject(ctx.signal.reason)), { once: true });
      });
      return { by: name };
    } catch (err) {
      run.abortedWith = (err as Error).name;
      throw err;
    } finally {
      run.end = Date.now();
    }
  };
}

function viaProxy(proxy: FaultProxy): PostgresTransport {
  // A short connect timeout: a drop makes every new connection hang until it.
  return new PostgresTransport({ url: proxy.url(dbUrl), connectTimeoutMs: 2000 });
}

const base: Partial<WorkerOptions> = { idleSleep: 200, handleSignals: false, shutdownGraceMs: 1000 };

describe("the self-fence: the database is unreachable for longer than the lease", () => {
  it.each(["refuse", "drop"] as const)(
    "%s: the handler's signal fires before the lease expires, and the worker that gets the task next never overlaps it",
    async (mode) => {
      const proxy = await startProxy({ host: "127.0.0.1", port: Number(new URL(dbUrl).port) });
      const transportA = viaProxy(proxy);
      const runs: Execution[] = [];
      const { logger, lines } = capture();
      const type = `fence_${mode}`;
      const startedA = deferred();
      const leaseSeconds = 6;
      const a = new Worker({ ...base, type, rpc: transportA, leaseSeconds, heartbeatSeconds: 1, logger, handler: recording(runs, "A", 120_000, startedA.resolve) });
      const runningA = a.start();
      let b: Worker | undefined;
      try {
        const t = await tw.enqueueTask({ task_type: type, max_attempts: 5 });
        await startedA.promise;
        // Let one beat renew it, then cut the link.
        await new Promise((r) => setTimeout(r, 1500));
        if (mode === "refuse") await proxy.refuse();
        else proxy.drop();
        const cutAt = Date.now();
        const expiresAt = Date.parse((await task(t.id)).lease_expires_at!);

        await expect.poll(() => runs[0].end !== undefined, { timeout: 15_000, message: "A's handler aborted" }).toBeTruthy();
        expect(runs[0].abortedWith).toBe("LeaseLostError");
        // Before the lease could expire in the database, by at least most of the margin.
        expect(runs[0].end!).toBeLessThan(expiresAt);
        expect(expiresAt - runs[0].end!).toBeGreaterThan(fenceMargin(leaseSeconds * 1000) / 2);
        // A failed beat is logged (on dropped bytes it fails by its own timeout, not by an error).
        const failed = () => lines.filter((l) => l.msg === "heartbeat failed; retrying").length;
        expect(failed()).toBeGreaterThanOrEqual(1);
        expect(lines.some((l) => l.msg.startsWith("lease lost (fenced)"))).toBe(true);
        const failedAtFence = failed();

        // The reaper takes the task back once the lease expired; B (a direct connection) runs it.
        b = new Worker({ ...base, type, rpc: tw, leaseSeconds: 30, heartbeatSeconds: 1, handler: recording(runs, "B", 200) });
        const runningB = b.start();
        await expect
          .poll(async () => {
            await tw.reap({ source: "test" });
            return (await task(t.id)).status !== "running" || (await task(t.id)).owner_id !== a.workerId;
          }, { timeout: 30_000, message: "reaped" })
          .toBe(true);
        await expect.poll(async () => (await task(t.id)).status, { timeout: 30_000, message: "B completed it" }).toBe("completed");
        expect(await task(t.id)).toMatchObject({ owner_id: b.workerId, result: { by: "B" } });
        expect(runs.map((r) => r.worker)).toEqual(["A", "B"]);
        assertNoOverlap(runs);
        expect(runs[1].start).toBeGreaterThan(cutAt);
        await b.stop();
        await runningB;
        // Meanwhile A's heartbeat loop kept trying, and logged each failure.
        expect(failed()).toBeGreaterThan(failedAtFence);

        await proxy.heal();
        const summary = await a.stop();
        await runningA;
        expect(summary).toMatchObject({ completed: 0, fenced: 1, lost: 1 });
        expect(await events(t.id, "completed")).toBe(1);
      } finally {
        await proxy.heal().catch(() => {});
        await a.stop().catch(() => {});
        await b?.stop().catch(() => {});
        await transportA.close();
        await proxy.close();
      }
    },
    90_000,
  );
});

describe("in-flight work is keyed by lease token", () => {
  it("an operator requeues a running task and the same worker claims it again: the first run is aborted first, one execution at a time, the second renewed", async () => {
    const runs: Execution[] = [];
    const type = "requeue_same";
    const first = deferred();
    const { logger, lines } = capture();
    // Concurrency 2: a free slot is there for the new claim while the first run still winds down.
    const w = new Worker({
      ...base,
      type,
      rpc: tw,
      concurrency: 2,
      leaseSeconds: 3,
      heartbeatSeconds: 0.3,
      logger,
      handler: async (t, ctx) => {
        // An operator's requeue spends no attempt: tell the runs apart by their order.
        if (runs.length === 0) {
          const h = recording(runs, "first", 60_000, first.resolve);
          // Winds down slowly after its abort: the second run must wait for it.
          return (h(t, ctx) as Promise<unknown>).catch(async (err: unknown) => {
            await new Promise((r) => setTimeout(r, 500));
            runs[0].end = Date.now();
            throw err;
          });
        }
        return recording(runs, "second", 4000)(t, ctx);
      },
    });
    const running = w.start();
    try {
      const t = await tw.enqueueTask({ task_type: type, max_attempts: 5 });
      await first.promise;
      const firstToken = (await task(t.id)).lease_token;
      await tw.requeueTask({ task_id: t.id, reason: "operator" });
      await expect.poll(() => runs.length === 2, { timeout: 20_000, message: "the second run started" }).toBeTruthy();
      const second = await task(t.id);
      expect(second.status).toBe("running");
      expect(second.owner_id).toBe(w.workerId);
      expect(second.lease_token).not.toBe(firstToken);
      // The second claim is renewed by the heartbeat (its 3 s lease outlives its 4 s run).
      const claimedExpiry = Date.parse(second.lease_expires_at!);
      await expect.poll(async () => Date.parse((await task(t.id)).lease_expires_at ?? "0") > claimedExpiry + 500, { timeout: 5000, message: "renewed" }).toBeTruthy();
      await expect.poll(async () => (await task(t.id)).status, { timeout: 20_000, message: "completed" }).toBe("completed");
      expect(runs[0].abortedWith).toBe("LeaseLostError");
      expect(runs[1].abortedWith).toBeUndefined();
      assertNoOverlap(runs);
      expect(await task(t.id)).toMatchObject({ result: { by: "second" }, owner_id: w.workerId });
      expect(lines.some((l) => l.msg.startsWith("lease lost"))).toBe(true);
    } finally {
      await w.stop();
      await running;
    }
  }, 60_000);
});

describe("a finished task's report outlives an outage", () => {
  // A worker silent for 60 s must not count as dead either: its expiry also bounds the self-fence.
  let deadBefore: unknown;
  beforeAll(async () => {
    [{ value: deadBefore }] = await sql.query("select value from taskwarden.settings where key = 'dead_worker_seconds'");
    await sql.query("update taskwarden.settings set value = '300' where key = 'dead_worker_seconds'");
  });
  afterAll(async () => {
    await sql.query("update taskwarden.settings set value = $1 where key = 'dead_worker_seconds'", [deadBefore]);
  });
  it.each([
    ["refused", 15],
    ["dropped", 60],
  ] as const)(
    "connections %s for %i s after the handler finished: one execution, one completion",
    async (how, seconds) => {
      const proxy = await startProxy({ host: "127.0.0.1", port: Number(new URL(dbUrl).port) });
      const transport = viaProxy(proxy);
      const type = `outage_${seconds}`;
      const gate = deferred();
      const started = deferred();
      let executions = 0;
      const { logger, lines } = capture();
      // The lease outlives the outage and the self-fence margin (120 s - 12 s); so does the worker's row (300 s).
      const w = new Worker({
        ...base,
        type,
        rpc: transport,
        leaseSeconds: 120,
        heartbeatSeconds: 1,
        logger,
        handler: async () => {
          executions++;
          started.resolve();
          await gate.promise;
          return { ok: true };
        },
      });
      const running = w.start();
      try {
        const t = await tw.enqueueTask({ task_type: type });
        await started.promise;
        if (how === "refused") await proxy.refuse();
        else proxy.drop();
        gate.resolve();
        await new Promise((r) => setTimeout(r, seconds * 1000));
        expect((await task(t.id)).status).toBe("running");
        await proxy.heal();
        await expect.poll(async () => (await task(t.id)).status, { timeout: 30_000, message: "completed" }).toBe("completed");
        expect(executions).toBe(1);
        expect(await task(t.id)).toMatchObject({ attempts: 1, result: { ok: true }, owner_id: w.workerId });
        expect(await events(t.id, "completed")).toBe(1);
        expect(lines.some((l) => l.msg === "complete delivered after retries")).toBe(true);
        const summary = await w.stop();
        expect(summary).toMatchObject({ completed: 1, lost: 0, fenced: 0 });
      } finally {
        await proxy.heal().catch(() => {});
        await w.stop().catch(() => {});
        await running.catch(() => {});
        await transport.close();
        await proxy.close();
      }
    },
    120_000,
  );
});

describe("a result Postgres cannot store", () => {
  const unstorable = () =>
    new Worker({
      ...base,
      type: "unstorable",
      rpc: tw,
      leaseSeconds: 60,
      heartbeatSeconds: 1,
      handler: (t) => ((t.payload as { big?: boolean }).big ? { blob: "x".repeat(4096) } : { text: "a\u0000b" }),
    });

  it("a \\u0000 in a string (22P05): the attempt fails at once with the real cause in last_error", async () => {
    const w = unstorable();
    const running = w.start();
    try {
      const nul = await tw.enqueueTask({ task_type: "unstorable", payload: {}, max_attempts: 1 });
      await expect.poll(async () => (await task(nul.id)).status, { timeout: 10_000, message: "failed" }).toBe("failed");
      const failed = await task(nul.id);
      expect(failed.last_error).toMatch(/result could not be stored: 22P05/);
      expect(failed.last_error).not.toMatch(/lease/i);
    } finally {
      await w.stop();
      await running;
    }
  }, 30_000);

  it("a result over max_json_bytes (TW002): the attempt fails at once with the real cause in last_error", async () => {
    const w = unstorable();
    const running = w.start();
    try {
      await sql.query("update taskwarden.settings set value = '1024' where key = 'max_json_bytes'");
      const big = await tw.enqueueTask({ task_type: "unstorable", payload: { big: true }, max_attempts: 1 });
      await expect.poll(async () => (await task(big.id)).status !== "running" && (await task(big.id)).status !== "queued", { timeout: 10_000, message: "failed" }).toBeTruthy();
      const done = await task(big.id);
      expect(done.status).toBe("failed");
      expect(done.last_error).toMatch(/result could not be stored: TW002 .*max_json_bytes/);
    } finally {
      await sql.query("update taskwarden.settings set value = '1048576' where key = 'max_json_bytes'");
      await w.stop();
      await running;
    }
  }, 30_000);
});

describe("a handler that ignores its AbortSignal", () => {
  it("concurrency 1, 1 s timeout: never two handlers at once; reported stuck in the log and the heartbeat's metadata", async () => {
    const type = "deaf";
    let alive = 0;
    let maxAlive = 0;
    const { logger, lines } = capture();
    const w = new Worker({
      ...base,
      type,
      rpc: tw,
      concurrency: 1,
      taskTimeoutSeconds: 1,
      leaseSeconds: 30,
      heartbeatSeconds: 0.3,
      stuckHandlerGraceMs: 500,
      stuckHandlerLimitMs: 60_000,
      logger,
      handler: async () => {
        alive++;
        maxAlive = Math.max(maxAlive, alive);
        await new Promise((r) => setTimeout(r, 3000)); // deaf to ctx.signal
        alive--;
      },
    });
    const running = w.start();
    try {
      const tasks = await tw.enqueueTasks({ task_type: type, payloads: [{}, {}, {}], max_attempts: 1 });
      await expect
        .poll(async () => {
          const [row] = await sql.query<{ stuck: unknown[] | null }>(
            "select metadata -> 'stuck_handlers' as stuck from taskwarden.worker_heartbeats where worker_id = $1",
            [w.workerId],
          );
          return row?.stuck?.[0];
        }, { timeout: 20_000, message: "stuck_handlers in the worker row" })
        .toMatchObject({ task_type: type });
      expect(lines.some((l) => l.msg.startsWith("handler ignores its abort signal"))).toBe(true);
      await expect.poll(async () => (await Promise.all(tasks.map((t) => task(t.id)))).map((t) => t.status), { timeout: 30_000 }).toEqual(["failed", "failed", "failed"]);
      for (const t of tasks) expect((await task(t.id)).last_error).toMatch(/TaskTimeoutError/);
      expect(maxAlive).toBe(1);
    } finally {
      await w.stop();
      await running;
    }
  }, 60_000);

  it("past the hard limit start() rejects with a WorkerFatalError (exit code 1) and the worker ends stopped", async () => {
    const type = "deaf_forever";
    const w = new Worker({
      ...base,
      type,
      rpc: tw,
      taskTimeoutSeconds: 1,
      leaseSeconds: 30,
      heartbeatSeconds: 0.3,
      stuckHandlerGraceMs: 300,
      stuckHandlerLimitMs: 1500,
      handler: () => new Promise(() => {}),
    });
    const running = w.start();
    await tw.enqueueTask({ task_type: type, max_attempts: 1 });
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkerFatalError);
    expect((err as WorkerFatalError).exitCode).toBe(1);
    expect((err as Error).message).toMatch(/stuckHandlerLimitMs 1500/);
    const [row] = await sql.query<{ status: string }>("select status from taskwarden.worker_heartbeats where worker_id = $1", [w.workerId]);
    expect(row.status).toBe("stopped");
  }, 30_000);
});

describe("heartbeat settings that make a live worker look dead", () => {
  it("are refused at start with an error naming both values", async () => {
    const [{ value: before }] = await sql.query("select value from taskwarden.settings where key = 'dead_worker_seconds'");
    await sql.query("update taskwarden.settings set value = '10' where key = 'dead_worker_seconds'");
    try {
      const w = new Worker({ ...base, type: "slow_beats", rpc: tw, heartbeatSeconds: 5, leaseSeconds: 60, handler: async () => {} });
      const err = await w.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/heartbeatSeconds 5 .*dead_worker_seconds 10/);
      const [row] = await sql.query<{ status: string }>("select status from taskwarden.worker_heartbeats where worker_id = $1", [w.workerId]);
      expect(row.status).toBe("stopped");
      // Just inside the rule: beats every 4.9 s against 10 s start fine.
      const ok = new Worker({ ...base, type: "slow_beats", rpc: tw, heartbeatSeconds: 4.9, leaseSeconds: 60, handler: async () => {} });
      const started = ok.start();
      await expect.poll(async () => ok.heartbeat.lastResult !== undefined, { timeout: 20_000, message: "registered" }).toBeTruthy();
      await ok.stop();
      await expect(started).resolves.toMatchObject({ reason: "stop()" });
    } finally {
      await sql.query("update taskwarden.settings set value = $1 where key = 'dead_worker_seconds'", [before]);
    }
  }, 30_000);
});
