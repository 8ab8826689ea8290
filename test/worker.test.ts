// The Worker and WorkerHeartbeat in-process against the real Postgres (and once on PGlite):
// results, status, recovery, lost leases, failures, timeouts, concurrency, NOTIFY wake-ups,
// drains, runToCompletion. Process-level behaviour (signals, crashes) is in worker-process.test.ts.
import { Writable } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";
import { connect, Taskwarden, TaskwardenError, type ClaimedTask } from "../src/rpc/index.ts";
import { PGliteTransport } from "../src/rpc/pglite.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { migrate } from "../src/rpc/migrate.ts";
import { Completions } from "../src/worker/completions.ts";
import { createLogger } from "../src/log.ts";
import type { SqlTransport } from "../src/rpc/sql.ts";
import { deferred } from "./support/wait.ts";
import {
  LeaseLostError,
  NonRetryableError,
  runToCompletion,
  TaskTimeoutError,
  Worker,
  WorkerHeartbeat,
  type TaskHandler,
  type WorkerOptions,
} from "../src/worker/index.ts";

let tw: Taskwarden;
let sql: SqlTransport;
let dbUrl: string;

beforeAll(async () => {
  dbUrl = await freshDatabase();
  tw = await connect({ DATABASE_URL: dbUrl });
  sql = tw.transport as SqlTransport;
  // These tests read the whole audit trail: claimed and completed events too (off by default).
  await sql.query("update taskwarden.settings set value = 'true' where key = 'log_success_events'");
});
afterAll(async () => {
  await tw?.close();
});

const fast = { heartbeatSeconds: 0.3, leaseSeconds: 5, idleSleep: 100, handleSignals: false, shutdownGraceMs: 2000 };

function worker(type: string, handler: TaskHandler, opts: Partial<WorkerOptions> = {}): Worker {
  return new Worker({ type, handler, rpc: tw, ...fast, ...opts });
}


async function workerRow(id: string) {
  const [row] = await sql.query("select status, current_task, stopped_at from taskwarden.worker_heartbeats where worker_id = $1", [id]);
  return row as { status: string; current_task: string | null; stopped_at: unknown } | undefined;
}
const task = async (id: number) => (await tw.getTask({ task_id: id })).task;

/** The real client, with the RPC calls it carries counted by function name. */
function countingClient(): { client: Taskwarden; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const client = new Taskwarden({
    call: (fn, args) => (calls.set(fn, (calls.get(fn) ?? 0) + 1), tw.transport.call(fn, args)),
    close: async () => {},
  });
  return { client, calls };
}

/** Starts `w` on `n` fresh tasks of its type, waits until all are completed, stops it. */
async function drain(w: Worker, taskType: string, payloads: unknown[]) {
  const tasks = await tw.enqueueTasks({ task_type: taskType, payloads });
  const running = w.start();
  await expect
    .poll(async () => {
      const [{ n }] = await sql.query("select count(*)::int as n from taskwarden.tasks where task_type = $1 and status = 'completed'", [taskType]);
      return n;
    }, { timeout: 10_000, message: "tasks completed" })
    .toBe(payloads.length);
  const summary = await w.stop();
  await running;
  return { tasks, summary };
}

describe("Worker", () => {
  it("runs the handler, completes with its result, and its row follows the work", async () => {
    const gate = deferred();
    const seen: ClaimedTask[] = [];
    const w = worker("basic", async (t, ctx) => {
      seen.push(t);
      expect(ctx.attempt).toBe(1);
      await gate.promise;
      return { doubled: (t.payload as { n: number }).n * 2 };
    });
    const running = w.start();
    await expect.poll(() => workerRow(w.workerId), { timeout: 10_000, message: "registered" }).toBeTruthy();
    expect(w.workerId).toMatch(/^basic-.+#[0-9a-f]{8}$/);
    const t = await tw.enqueueTask({ task_type: "basic", payload: { n: 21 } });
    await expect.poll(async () => (await workerRow(w.workerId))?.status, { timeout: 10_000, message: "processing row" }).toBe("processing");
    expect((await workerRow(w.workerId))?.current_task).toBe(`basic#${t.id}`);
    expect(w.status).toBe("processing");
    gate.resolve();
    await expect.poll(async () => (await task(t.id)).status, { timeout: 10_000, message: "completed" }).toBe("completed");
    expect(await task(t.id)).toMatchObject({ result: { doubled: 42 }, attempts: 1, owner_id: w.workerId });
    await expect.poll(async () => (await workerRow(w.workerId))?.status, { timeout: 10_000, message: "idle row" }).toBe("idle");
    expect(seen[0].lease_token).toMatch(/^[0-9a-f-]{36}$/);

    const summary = await w.stop();
    expect(summary).toMatchObject({ reason: "stop()", completed: 1, failed: 0, lost: 0, released: 0 });
    expect(await running).toBe(summary);
    expect((await workerRow(w.workerId))?.status).toBe("stopped");
  });

  it("recovers the tasks an earlier boot of its id left running before it claims", async () => {
    // The requeue waits out the retry backoff (5 s by default): shorten it for this test.
    await sql.query("update taskwarden.settings set value = '0.05' where key = 'retry_base_seconds'");
    const orphan = await tw.enqueueTask({ task_type: "recover" });
    await tw.claimTasks({ worker_id: "recover-1#oldboot", task_types: ["recover"] });
    const w = worker("recover", async () => "redone", { workerId: "recover-1" });
    expect(w.workerId).toMatch(/^recover-1#/);
    const running = w.start();
    await expect.poll(async () => (await task(orphan.id)).status, { timeout: 10_000, message: "completed" }).toBe("completed");
    const summary = await w.stop();
    expect(summary.recovered).toBe(1);
    await running;
    const events = (await tw.getTask({ task_id: orphan.id })).events.map((e) => `${e.event}:${e.reason ?? ""}:${e.worker_id}`);
    expect(events).toEqual([
      "claimed::recover-1#oldboot",
      "requeued:recovered:recover-1#oldboot",
      `claimed::${w.workerId}`,
      `completed::${w.workerId}`,
    ]);
    await sql.query("update taskwarden.settings set value = '5' where key = 'retry_base_seconds'");
  });

  it("a task taken away aborts its handler with LeaseLostError, and its result is never reported", async () => {
    const aborted = deferred<unknown>();
    const w = worker("taken", async (_t, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      aborted.resolve(ctx.signal.reason);
      await expect(ctx.heartbeat()).rejects.toBeInstanceOf(LeaseLostError);
      return { should: "not be stored" };
    });
    const running = w.start();
    const t = await tw.enqueueTask({ task_type: "taken" });
    await expect.poll(async () => (await task(t.id)).status, { timeout: 10_000, message: "running" }).toBe("running");
    await tw.cancelTask({ task_id: t.id, reason: "changed my mind" });
    const reason = await aborted.promise;
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect((reason as LeaseLostError).taskId).toBe(t.id);
    const summary = await w.stop();
    await running;
    expect(summary).toMatchObject({ lost: 1, completed: 0, failed: 0 });
    expect(await task(t.id)).toMatchObject({ status: "cancelled", result: null });
  });

  it("a handler error fails the task for a retry with backoff; NonRetryableError fails it for good", async () => {
    const w = worker("failing", async (t) => {
      if ((t.payload as { fatal?: boolean }).fatal) throw new NonRetryableError("bad input: no such company");
      throw new Error("upstream 503");
    });
    const running = w.start();
    const [retry, fatal] = await tw.enqueueTasks({ task_type: "failing", payloads: [{}, { fatal: true }] });
    await expect.poll(async () => (await task(retry.id)).last_error && (await task(fatal.id)).status === "failed", { timeout: 10_000, message: "both reported" }).toBeTruthy();
    const summary = await w.stop();
    await running;
    const r = await task(retry.id);
    expect(r).toMatchObject({ status: "queued", attempts: 1, last_error: "Error: upstream 503", owner_id: null });
    expect(Date.parse(r.run_at)).toBeGreaterThan(Date.now() + 2000); // 5 s backoff
    expect(await task(fatal.id)).toMatchObject({ status: "failed", attempts: 1, last_error: "NonRetryableError: bad input: no such company" });
    expect(summary.failed).toBe(2);
    await tw.cancelTask({ task_id: retry.id });
  });

  it("a per-task timeout aborts the handler and fails the task, even if the handler ignores the signal", async () => {
    let reason: unknown;
    const w = worker(
      "slow",
      async (_t, ctx) => {
        ctx.signal.addEventListener("abort", () => (reason = ctx.signal.reason));
        await new Promise((r) => setTimeout(r, 3000));
        return "too late";
      },
      { taskTimeoutSeconds: 0.3 },
    );
    const running = w.start();
    const t = await tw.enqueueTask({ task_type: "slow", max_attempts: 1 });
    const started = Date.now();
    await expect.poll(async () => (await task(t.id)).status, { timeout: 10_000, message: "failed" }).toBe("failed");
    expect(Date.now() - started).toBeLessThan(2500);
    expect(reason).toBeInstanceOf(TaskTimeoutError);
    expect((await task(t.id)).last_error).toBe(`TaskTimeoutError: task ${t.id} timed out after 0.3 s`);
    await w.stop();
    await running;
  });

  it("runs up to `concurrency` tasks at once", async () => {
    let now = 0;
    let max = 0;
    const gate = deferred();
    const w = worker(
      "parallel",
      async () => {
        max = Math.max(max, ++now);
        await gate.promise;
        now--;
      },
      { concurrency: 3 },
    );
    const running = w.start();
    const tasks = await tw.enqueueTasks({ task_type: "parallel", payloads: [{}, {}, {}, {}, {}, {}] });
    await expect.poll(() => now, { timeout: 10_000, message: "three running" }).toBe(3);
    await new Promise((r) => setTimeout(r, 300)); // room to overshoot if it would
    const [{ n }] = await sql.query("select count(*)::int as n from taskwarden.tasks where task_type = 'parallel' and status = 'running'");
    expect(n).toBe(3);
    expect((await workerRow(w.workerId))?.current_task).toMatch(/^parallel#\d+ \(\+2 more\)$/);
    gate.resolve();
    await expect
      .poll(async () => (await Promise.all(tasks.map((t) => task(t.id)))).map((t) => t.status), { timeout: 10_000, message: "all done" })
      .toEqual(tasks.map(() => "completed"));
    expect(max).toBe(3);
    await w.stop();
    await running;
  });

  it("a heartbeat that crosses a completion on its way does not make the completed task lost", async () => {
    // complete_tasks commits, but its answer is held back until a heartbeat listing the claim
    // has been answered: that beat finds the task completed, no longer running.
    const answered = deferred();
    const client = new Taskwarden({
      call: async (fn, args) => {
        const rows = await tw.transport.call(fn, args);
        if (fn === "complete_tasks") await answered.promise;
        return rows;
      },
      close: async () => {},
    });
    const w = new Worker({ type: "crossing", handler: async () => ({ ok: true }), rpc: client, ...fast, heartbeatSeconds: 10, leaseSeconds: 600 });
    const t = await tw.enqueueTask({ task_type: "crossing" });
    const running = w.start();
    await expect.poll(async () => (await task(t.id)).status, { timeout: 10_000, message: "completed in the database" }).toBe("completed");
    const beat = await w.heartbeat.beat();
    expect(beat?.lost_task_ids).toEqual([t.id]); // the database no longer has it running
    answered.resolve();
    const summary = await w.stop();
    await running;
    expect(summary).toMatchObject({ completed: 1, lost: 0 });
  });

  it("coalesces completions: a busy worker sends one complete_tasks per wave, not one call per task", async () => {
    const { client: counted, calls } = countingClient();
    const w = new Worker({ type: "coalesce", handler: async (t) => ({ n: (t.payload as { n: number }).n }), rpc: counted, ...fast, concurrency: 16 });
    const { tasks, summary } = await drain(w, "coalesce", Array.from({ length: 400 }, (_, n) => ({ n })));
    expect(summary.completed).toBe(400);
    const [{ results, events }] = await sql.query(
      `select count(*) filter (where (t.result->>'n')::int = (t.payload->>'n')::int)::int as results,
              (select count(*)::int from taskwarden.task_events e where e.task_id = any($1::bigint[]) and e.event = 'completed') as events
       from taskwarden.tasks t where t.task_type = 'coalesce'`,
      [`{${tasks.map((t) => t.id).join(",")}}`],
    );
    expect(results).toBe(400); // each task got its own handler's result
    expect(events).toBe(400); // one completed event each
    expect(calls.get("complete_task") ?? 0).toBe(0);
    expect(calls.get("complete_tasks")).toBeGreaterThan(0);
    expect(calls.get("complete_tasks")).toBeLessThan(400);
    console.log(`[measure] 400 completions at concurrency 16 in ${calls.get("complete_tasks")} complete_tasks calls, ${calls.get("claim_tasks")} claims`);
  });

  it("prefetch: holds claimed tasks in a local queue, renews their leases, and a stop hands the unstarted back", async () => {
    const gate = deferred();
    let started = 0;
    const w = worker(
      "prefetch",
      async () => {
        started++;
        await gate.promise;
      },
      { concurrency: 2, prefetch: 10, leaseSeconds: 2 },
    );
    const tasks = await tw.enqueueTasks({ task_type: "prefetch", payloads: Array.from({ length: 20 }, () => ({})) });
    const running = w.start();
    await expect.poll(() => started, { timeout: 10_000, message: "two started" }).toBe(2);
    const held = async () =>
      (await sql.query(
        `select count(*)::int as n, min(lease_expires_at) as first_expiry from taskwarden.tasks
         where task_type = 'prefetch' and status = 'running' and owner_id = $1`,
        [w.workerId],
      ))[0] as { n: number; first_expiry: string };
    const before = await held();
    expect(before.n).toBe(12); // 2 running + 10 prefetched, all leased to this worker
    // Past the 2 s lease: the heartbeat kept every lease alive, the queued ones included.
    await new Promise((r) => setTimeout(r, 2500));
    const later = await held();
    expect(later.n).toBe(12);
    expect(new Date(later.first_expiry).getTime()).toBeGreaterThan(new Date(before.first_expiry).getTime());
    expect(started).toBe(2);
    const stopping = w.stop();
    gate.resolve();
    const summary = await stopping;
    await running;
    expect(summary.completed).toBe(2);
    expect(summary.released).toBe(10);
    const rows = await Promise.all(tasks.map((t) => task(t.id)));
    const by = (s: string) => rows.filter((t) => t.status === s);
    expect(by("completed")).toHaveLength(2);
    expect(by("queued")).toHaveLength(18);
    // Handed back without spending an attempt: the 10 prefetched count as never run.
    expect(by("queued").every((t) => t.attempts === 0 && t.owner_id === null)).toBe(true);
  });

  it("prefetch: a busy worker claims in batches, not once per finished task", async () => {
    const { client: counted, calls } = countingClient();
    const w = new Worker({ type: "prefetch_many", handler: async () => {}, rpc: counted, ...fast, concurrency: 1, prefetch: 50 });
    const { summary } = await drain(w, "prefetch_many", Array.from({ length: 300 }, () => ({})));
    expect(summary.completed).toBe(300);
    // 300 tasks, one slot: without prefetch that is >= 300 claims; with 50 refilled at half, about 300 / 25.
    expect(calls.get("claim_tasks")).toBeLessThan(40);
  });

  it("NOTIFY wakes an idle worker at once over a direct connection (its poll is a minute)", async () => {
    const picked = deferred<number>();
    const w = worker("wake", async () => picked.resolve(Date.now()), { idleSleep: 60_000 });
    const running = w.start();
    await expect.poll(async () => (await workerRow(w.workerId))?.status, { timeout: 10_000, message: "idle" }).toBe("idle");
    await new Promise((r) => setTimeout(r, 200)); // its first (empty) claim is behind it
    const enqueued = Date.now();
    await tw.enqueueTask({ task_type: "wake" });
    const latency = (await picked.promise) - enqueued;
    console.log(`[measure] NOTIFY wake-up: enqueue -> handler start ${latency} ms`);
    expect(latency).toBeLessThan(1000);
    await w.stop();
    await running;
  });

  it("without TASK_LEASE_S its claims and heartbeats take the database's lease_seconds setting", async () => {
    await sql.query("update taskwarden.settings set value = '40' where key = 'lease_seconds'");
    try {
      const gate = deferred();
      const w = worker("dblease", async () => gate.promise, { leaseSeconds: undefined });
      const running = w.start();
      const t = await tw.enqueueTask({ task_type: "dblease" });
      await expect.poll(async () => (await task(t.id)).status, { timeout: 10_000, message: "claimed" }).toBe("running");
      // Renewed by a later beat (lease_seconds null: the claim's own lease), still 40 s long.
      const beats = async () => Number((await sql.query("select beats::int as beats from taskwarden.worker_heartbeats where worker_id = $1", [w.workerId]))[0]?.beats);
      const claimedAt = await beats();
      await expect.poll(beats, { timeout: 10_000, message: "a beat after the claim" }).toBeGreaterThan(claimedAt + 1);
      const [lease] = await sql.query(
        "select lease_seconds, extract(epoch from lease_expires_at - last_heartbeat)::int as left_s from taskwarden.tasks where id = $1", [t.id]);
      expect(lease).toEqual({ lease_seconds: 40, left_s: 40 });
      gate.resolve();
      await expect.poll(async () => (await task(t.id)).status, { timeout: 10_000, message: "completed" }).toBe("completed");
      await w.stop();
      await running;
    } finally {
      await sql.query("update taskwarden.settings set value = '600' where key = 'lease_seconds'");
    }
  });

  it("WORKER_MAX_LOOPS: stops after that many claim polls", async () => {
    const w = worker("loops", async () => "ok", { maxLoops: 3, idleSleep: 20 });
    const summary = await w.start();
    expect(summary.reason).toBe("max_loops");
    expect((await workerRow(w.workerId))?.status).toBe("stopped");
  });

  it("WORKER_MAX_LOOPS with prefetch: the last loop claims only what it runs", async () => {
    await tw.enqueueTasks({ task_type: "loops_prefetch", payloads: Array.from({ length: 12 }, () => ({})) });
    const w = worker("loops_prefetch", async () => "ok", { maxLoops: 1, concurrency: 1, prefetch: 10 });
    const summary = await w.start();
    expect(summary).toMatchObject({ reason: "max_loops", completed: 1, released: 0 });
    const [{ untouched }] = await sql.query(
      "select count(*)::int as untouched from taskwarden.tasks where task_type = 'loops_prefetch' and status = 'queued' and attempts = 0",
    );
    expect(untouched).toBe(11);
  });

  it("refuses a prefetch that would hold more than one heartbeat renews", () => {
    expect(() => worker("too_many", async () => {}, { concurrency: 10, prefetch: 9_995 })).toThrow(
      /Worker option prefetch plus concurrency must be at most 10000 \(got 10 \+ 9995\)/,
    );
  });

  it("a remote drain (request_worker_stop) stops it after its next heartbeat", async () => {
    const w = worker("drain", async () => "ok");
    const running = w.start();
    await expect.poll(() => workerRow(w.workerId), { timeout: 10_000, message: "registered" }).toBeTruthy();
    await tw.requestWorkerStop({ worker_id: w.workerId });
    const at = Date.now();
    const summary = await running;
    expect(summary.reason).toBe("stop_requested:drain_requested");
    expect(Date.now() - at).toBeLessThan(300 + 1200); // one 0.3 s beat, then the shutdown
  });

  it("a RUN filter naming no run stops it at its first heartbeat, before any claim", async () => {
    const stray = await tw.enqueueTask({ task_type: "filtered" });
    const w = worker("filtered", async () => "ok", { runFilterId: "00000000-0000-4000-8000-00000000abcd" });
    const summary = await w.start();
    expect(summary.reason).toBe("stop_requested:run_missing");
    expect((await workerRow(w.workerId))?.status).toBe("stopped");
    expect(await task(stray.id)).toMatchObject({ status: "queued", attempts: 0 });
    await tw.cancelTask({ task_id: stray.id });
  });

  it("refuses bad options, naming the option", () => {
    const h = async () => "ok";
    expect(() => new Worker({ type: "x", handler: h, rpc: tw, concurrency: 0 })).toThrow(/Worker option concurrency must be a whole number >= 1 \(got 0\)/);
    expect(() => new Worker({ type: "x", handler: h, rpc: tw, heartbeatSeconds: 30, leaseSeconds: 60 })).toThrow(/Worker option leaseSeconds .* above 2 x heartbeatSeconds/);
    expect(() => new Worker({ type: "", handler: h, rpc: tw })).toThrow(/Worker option type/);
    expect(() => new Worker({ type: "x", handler: h, rpc: tw, workerId: "a#b" })).toThrow(/must not contain "#"/);
    expect(() => new Worker({ type: "x", handler: h, rpc: tw, taskTypes: [] })).toThrow(/Worker option taskTypes/);
  });
});

describe("WorkerHeartbeat on its own", () => {
  it("start, updateTask (renewing the held lease), markIdle, stop (releasing what it holds)", async () => {
    const hb = new WorkerHeartbeat({ rpc: tw, workerType: "legacy", intervalSeconds: 60, leaseSeconds: 900 });
    const first = await hb.start();
    expect(first.stop_requested).toBe(false);
    expect((await workerRow(hb.workerId))?.status).toBe("idle");

    const t = await tw.enqueueTask({ task_type: "legacy" });
    const [claimed] = await tw.claimTasks({ worker_id: hb.workerId, task_types: ["legacy"], lease_seconds: 60 });
    const beat = await hb.updateTask(`legacy#${t.id}`, { heldTaskIds: [claimed.id] });
    expect(beat?.renewed_task_ids).toEqual([claimed.id]);
    const renewed = await task(t.id);
    expect(Date.parse(renewed.lease_expires_at!) - Date.parse(claimed.lease_expires_at!)).toBeGreaterThan(800_000);
    expect(await workerRow(hb.workerId)).toMatchObject({ status: "processing", current_task: `legacy#${t.id}` });

    await hb.markIdle();
    expect(await workerRow(hb.workerId)).toMatchObject({ status: "idle", current_task: null });
    expect(await hb.stop()).toBe(1); // the task it still owned goes back
    expect(await task(t.id)).toMatchObject({ status: "queued", attempts: 0 });
    expect((await workerRow(hb.workerId))?.status).toBe("stopped");
    await tw.cancelTask({ task_id: t.id });
  });

  it("a failed beat is logged and retried, never thrown at the caller", async () => {
    // Real failures: the heartbeat table is locked and this connection's statements time out.
    const db = new pg.Pool({ connectionString: dbUrl, max: 2, options: "-c statement_timeout=150" });
    const lines: { msg: string }[] = [];
    const logger = createLogger({
      level: "warn",
      destination: new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }),
    });
    const hb = new WorkerHeartbeat({ rpc: new PostgresTransport({ pool: db }), workerType: "flaky", intervalSeconds: 0.1, logger });
    try {
      await hb.start();
      const before = hb.lastResult!.server_time;
      await sql.transaction(async (tx) => {
        await tx.query("lock table taskwarden.worker_heartbeats in access exclusive mode");
        await expect.poll(() => hb.failures, { timeout: 10_000, message: "a failed beat" }).toBeGreaterThanOrEqual(2);
      });
      await expect.poll(() => hb.failures === 0 && hb.lastResult!.server_time > before, { timeout: 10_000, message: "recovered" }).toBeTruthy();
      expect(lines.some((l) => l.msg === "heartbeat failed; retrying")).toBe(true);
      expect(await hb.beat()).toBeDefined();
      expect(await hb.stop()).toBe(0);
    } finally {
      await db.end();
    }
  });
});

describe("runToCompletion", () => {
  it("finishes the run completed when fn succeeds, failed with the error when it throws", async () => {
    const ok = await tw.createRun({ name: "job ok" });
    expect(await runToCompletion(tw, ok.id, async () => 7)).toBe(7);
    const bad = await tw.createRun({ name: "job crash" });
    await expect(runToCompletion(tw.transport, bad.id, async () => {
      throw new Error("OOM-ish crash");
    })).rejects.toThrow("OOM-ish crash");
    const [okRun, badRun] = await Promise.all([ok.id, bad.id].map(async (id) => (await sql.query("select status, error, completed_at from taskwarden.runs where id = $1", [id]))[0]));
    expect(okRun).toMatchObject({ status: "completed", error: null });
    expect(badRun).toMatchObject({ status: "failed", error: "OOM-ish crash" });
    expect(okRun.completed_at).not.toBeNull();
    expect(badRun.completed_at).not.toBeNull();
  });
});

describe("on the embedded PGlite", () => {
  it("a worker completes a task with its own write in the same transaction", async () => {
    const t = await PGliteTransport.open();
    await migrate(t);
    try {
      await t.query("create table public.effects (task_id bigint primary key)");
      const local = new Taskwarden(t);
      const w = new Worker({
        type: "embedded",
        rpc: local,
        ...fast,
        handler: (task, ctx) =>
          ctx.transaction(async (tx) => {
            await tx.query("insert into public.effects values ($1)", [task.id]);
            return { wrote: task.id };
          }),
      });
      const running = w.start();
      const queued = await local.enqueueTask({ task_type: "embedded" });
      await expect.poll(async () => (await local.getTask({ task_id: queued.id })).task.status, { timeout: 10_000, message: "completed" }).toBe("completed");
      expect((await local.getTask({ task_id: queued.id })).task.result).toEqual({ wrote: queued.id });
      expect(await t.query("select task_id::int as task_id from public.effects")).toEqual([{ task_id: queued.id }]);
      expect((await w.stop()).completed).toBe(1);
      await running;
    } finally {
      await t.close();
    }
  });
});

describe("Completions", () => {
  it("one bad result in a coalesced batch fails alone; the others complete", async () => {
    const claimed = async (n: number) => {
      await tw.enqueueTasks({ task_type: "batch_bad", payloads: Array.from({ length: n }, () => ({})) });
      return tw.claimTasks({ worker_id: "batch-bad#1", task_types: ["batch_bad"], batch_size: n });
    };
    const [a, b, c] = await claimed(3);
    const completions = new Completions(tw);
    // a goes alone at once; b and c queue behind it and share the next complete_tasks.
    const outcomes = await Promise.allSettled([
      completions.complete(a.id, a.lease_token, { ok: 1 }),
      completions.complete(b.id, b.lease_token, { bad: "\u0000" }), // jsonb cannot store NUL
      completions.complete(c.id, c.lease_token, { ok: 3 }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const err = (outcomes[1] as PromiseRejectedResult).reason as TaskwardenError;
    expect(err).toBeInstanceOf(TaskwardenError);
    expect(err.sqlstate).toBe("22P05");
    expect((await task(a.id)).status).toBe("completed");
    expect((await task(b.id)).status).toBe("running");
    expect((await task(c.id)).result).toEqual({ ok: 3 });
  });

  it("a lost lease in a batch rejects that task with TW001 and completes the rest", async () => {
    await tw.enqueueTasks({ task_type: "batch_lost", payloads: [{}, {}, {}] });
    const [a, b, c] = await tw.claimTasks({ worker_id: "batch-lost#1", task_types: ["batch_lost"], batch_size: 3 });
    const completions = new Completions(tw);
    const outcomes = await Promise.allSettled([
      completions.complete(a.id, a.lease_token, null),
      completions.complete(b.id, "00000000-0000-4000-8000-000000000000", null),
      completions.complete(c.id, c.lease_token, null),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(((outcomes[1] as PromiseRejectedResult).reason as TaskwardenError).leaseLost).toBe(true);
    expect((await task(b.id)).status).toBe("running");
  });
});
