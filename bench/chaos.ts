// The chaos run: real worker processes (bench/chaos-worker.ts, built on the SDK's Worker) drain
// a queue whose handler writes one result row per task in the same transaction as
// complete_task, while a driver SIGKILLs workers and starts replacements, SIGSTOPs one past its
// lease and resumes it, cuts single workers off the database (each talks through its own TCP
// fault proxy: silently dropped bytes, or refused connections), requeues running tasks as an
// operator would, and restarts Postgres once. At the end every task must be completed exactly
// once, with exactly one result row, nothing may be left running, and no two executions of one
// task may have overlapped in time.
import { setTimeout as sleep } from "node:timers/promises";
import type { ChildProcess } from "node:child_process";
import { Taskwarden } from "../src/rpc/client.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { ReaperLoop } from "../src/reaper/loop.ts";
import { fenceMargin } from "../src/worker/lease-clock.ts";
import { startProxy, type FaultProxy } from "../test/support/proxy.ts";
import { connect, type Sql } from "./lib/db.ts";
import { killAndWait, spawnTs } from "./lib/proc.ts";
import { median } from "./lib/stats.ts";

const WORKER_SCRIPT = new URL("./chaos-worker.ts", import.meta.url);
export const CHAOS_TASK_TYPE = "chaos";

export interface ChaosOptions {
  /** A database with the taskwarden migrations applied and nothing else in it. */
  url: string;
  /** What the worker processes connect to (default `url`): a pooler's URL, say. */
  workerUrl?: string;
  /** Restarts the Postgres server (stop, start); called once, mid-run. */
  restartPostgres: () => Promise<void>;
  tasks: number;
  workers: number;
  /** Length of the chaos window; the drain afterwards is not counted in it. */
  durationSeconds: number;
  /** Tasks each worker runs at once. */
  concurrency?: number;
  seed?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  tasks: number;
  workers: number;
  durationSeconds: number;
  /** Seconds until every worker process was up (before the chaos clock starts). */
  startupSeconds: number;
  /** Seconds from the start of the chaos window until the last task completed. */
  totalSeconds: number;
  kills: number;
  freezes: number;
  postgresRestarts: number;
  /** Worker processes that died on their own (and were restarted). */
  crashes: Crash[];
  /** Seconds from the restart until the first completion after it. */
  postgresRestartRecoverySeconds: number | null;
  requeues: Record<string, number>;
  released: number;
  /** Late results of workers that had lost their lease, refused by the fence (TW001) or, when
   *  the task's new holder had already committed, by the results table's unique key. */
  refusedZombieCompletions: { fence: number; uniqueKey: number };
  /** Unique violations met by a worker that still held the lease: a task's effect committed twice. Must be 0. */
  uniqueViolationsByLeaseHolder: number;
  /** Handlers the SDK aborted because their claim was lost or past its local deadline, before any write was refused. */
  abortedOnLostLease: number;
  /** The self-fence margin of the run's lease (ms). */
  selfFenceMarginMs: number;
  /** Single workers cut off the database through their proxy: by mode, and the longest (s). */
  partitions: { dropped: number; refused: number; longestSeconds: number };
  /** Longest partition after which the cut-off worker still committed a task it held when it was cut (s). */
  longestPartitionThenDeliveredSeconds: number | null;
  /** Running tasks requeued by the driver as an operator (requeue_task). */
  operatorRequeues: number;
  /** Handler executions seen (exec_start lines) and pairs of executions of one task that overlapped in time. Must be 0. */
  executions: number;
  overlappingExecutions: number;
  /** Executions whose process was frozen (SIGSTOP) while they ran: a paused process cannot fence itself; not counted as overlaps. */
  pausedExecutions: number;
  /**
   * Seconds from a kill or freeze until every task the victim held was completed (by anyone).
   * A requeued task waits for its retry delay and then queues behind older due tasks (claims go
   * by priority, run_at, id), so under a backlog this includes the wait for the backlog.
   */
  slowestRecoverySeconds: number;
  medianRecoverySeconds: number;
  /** Seconds from a kill or freeze until none of the victim's tasks was still running under it. */
  slowestTakeBackSeconds: number;
  medianTakeBackSeconds: number;
  maxAttempts: number;
  final: {
    statuses: Record<string, number>;
    results: number;
    distinctResults: number;
    tasksWithoutResult: number;
    resultsWithoutCompletedTask: number;
    resultWriterIsNotFinalOwner: number;
    tasksNotCompletedExactlyOnce: number;
    workerRowsNotStopped: number;
  };
  failures: string[];
  ok: boolean;
}

interface ChaosWorker {
  child: ChildProcess;
  proxy: FaultProxy;
  /** Partitioned right now. */
  cut: boolean;
  /** Wall-clock windows during which the process was frozen. */
  frozenWindows: [number, number][];
  /** Wall-clock time of its exit. */
  exitedAt: number | undefined;
  workerId: string | undefined;
  frozen: boolean;
  exited: boolean;
  /** The driver sent the signal that ended it (SIGKILL in the chaos, SIGTERM at the end). */
  endedByDriver: boolean;
  /** Got the final SIGTERM (it must then exit 0 with its worker row stopped). */
  terminated: boolean;
  stderr: string;
}

/**
 * A worker process that died without being killed; the driver restarts it, as a supervisor
 * would, and the run fails: a worker must ride out kills of its peers and a database restart.
 */
export interface Crash {
  workerId: string | undefined;
  exit: string;
  error: string;
}

interface Execution {
  taskId: number;
  workerId: string;
  start: number;
  end: number | undefined;
  worker: ChaosWorker;
}

interface Partition {
  workerId: string;
  mode: "drop" | "refuse";
  at: number;
  seconds: number;
  taskIds: number[];
}

interface PendingRecovery {
  what: string;
  at: number;
  owner: string;
  taskIds: number[];
  /** When none of taskIds was still running under the victim (the reaper took them back, or it finished them). */
  takenBackAt?: number;
}

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with the same choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Retries a read through a Postgres restart. */
async function retrying<T>(fn: () => Promise<T>, attempts = 100): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(100);
    }
  }
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = prng(seed);
  const log = o.log ?? (() => {});
  const concurrency = o.concurrency ?? 4;
  // Work per task sized so the queue lasts about the chaos window: the faults hit work in flight.
  const workMs = Math.max(20, Math.round(((o.workers * concurrency * o.durationSeconds) / o.tasks) * 800));
  // A 5 s lease (and dead_worker_seconds 5): a fence margin of 2 s leaves 3 s, three 1 s beats.
  const leaseSeconds = 5;
  const sql = connect(o.url, 2);
  const tw = new Taskwarden(new PostgresTransport({ url: o.url, max: 2 }));
  const reaper = new ReaperLoop({ client: tw, intervalMs: 1000, source: "chaos", onError: () => {} });
  const workers: ChaosWorker[] = [];
  const pending: PendingRecovery[] = [];
  const recoveries: number[] = [];
  const takeBacks: number[] = [];
  const refused = { fence: 0, uniqueKey: 0 };
  let abortedOnLostLease = 0;
  const executions: Execution[] = [];
  const openExecutions = new Map<string, Execution>();
  const partitions: Partition[] = [];
  let operatorRequeues = 0;
  let uniqueViolations = 0;
  let kills = 0;
  let freezes = 0;
  let restarts = 0;
  let restartRecovery: number | null = null;
  const crashes: Crash[] = [];
  let stopping = false;

  const workerUrl = o.workerUrl ?? o.url;
  const target = new URL(workerUrl);
  const spawnWorker = async (): Promise<ChaosWorker> => {
    // Each worker reaches Postgres through a proxy of its own, so one can be cut off alone.
    const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const child = spawnTs(WORKER_SCRIPT, [], {
      DATABASE_URL: proxy.url(workerUrl),
      CHAOS_CONCURRENCY: String(concurrency),
      CHAOS_WORK_MS: String(workMs),
      CHAOS_LEASE_S: String(leaseSeconds),
      CHAOS_HEARTBEAT_S: "1",
    });
    const w: ChaosWorker = {
      child, proxy, cut: false, frozenWindows: [], exitedAt: undefined,
      workerId: undefined, frozen: false, exited: false, endedByDriver: false, terminated: false, stderr: "",
    };
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith("{")) continue;
        const e = JSON.parse(line) as { event: string; worker_id?: string; by?: "fence" | "unique_key"; task_id?: number; at?: number; start?: number };
        if (e.event === "ready") w.workerId = e.worker_id;
        else if (e.event === "refused") refused[e.by === "unique_key" ? "uniqueKey" : "fence"]++;
        else if (e.event === "unique_violation_by_holder") uniqueViolations++;
        else if (e.event === "aborted_lost") abortedOnLostLease++;
        else if (e.event === "exec_start") {
          const x: Execution = { taskId: e.task_id!, workerId: e.worker_id!, start: e.at!, end: undefined, worker: w };
          executions.push(x);
          openExecutions.set(`${e.worker_id}/${e.task_id}/${e.at}`, x);
        } else if (e.event === "exec_end") {
          const key = `${e.worker_id}/${e.task_id}/${e.start}`;
          const x = openExecutions.get(key);
          if (x) x.end = e.at;
          openExecutions.delete(key);
        }
      }
    });
    // SDK errors during the chaos are expected (the database restarts); kept for the failure report.
    child.stderr!.on("data", (chunk: Buffer) => (w.stderr = (w.stderr + chunk.toString()).slice(-20000)));
    child.on("exit", (code, signal) => {
      w.exited = true;
      w.exitedAt = Date.now();
      void proxy.close();
      if (w.endedByDriver || stopping) return;
      const crash: Crash = {
        workerId: w.workerId,
        exit: String(signal ?? code),
        error: w.stderr.trim().split("\n").slice(-12).join("\n"),
      };
      crashes.push(crash);
      log(`chaos: ${elapsed().toFixed(1)} s worker ${w.workerId} crashed (${crash.exit}); restarting it`);
      void spawnWorker();
    });
    workers.push(w);
    return w;
  };

  const live = () => workers.filter((w) => !w.exited && !w.frozen && !w.cut && w.workerId !== undefined);
  const heldBy = (workerId: string) =>
    retrying(async () =>
      (await sql`select id from taskwarden.tasks where status = 'running' and owner_id = ${workerId}`).map((r) => Number(r.id)),
    );

  // Restarted when the chaos clock starts (after every worker is up).
  let started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  try {
    await sql`create table if not exists public.chaos_results (
      task_id bigint primary key, worker_id text not null, at timestamptz not null default clock_timestamp())`;
    // Fast failure detection, quick retries: the chaos window is short.
    await sql`update taskwarden.settings set value = ${String(leaseSeconds)} where key = 'dead_worker_seconds'`;
    await sql`update taskwarden.settings set value = '1' where key = 'retry_base_seconds'`;
    // The audit checks exactly one completed event per task, written by the final lease holder.
    await sql`update taskwarden.settings set value = 'true' where key = 'log_success_events'`;
    log(`chaos: seed ${seed}, ${o.tasks} tasks, ${o.workers} workers x ${concurrency}, ~${workMs} ms of work per task`);
    for (let i = 0; i < o.workers; i++) await spawnWorker();
    reaper.start();
    // The chaos clock starts when every worker is up.
    while (live().length < o.workers) {
      if (elapsed() > 300) throw new Error(`only ${live().length} of ${o.workers} workers started within 300 s`);
      await sleep(50);
    }
    const startupSeconds = elapsed();
    for (let done = 0; done < o.tasks; done += 1000) {
      const n = Math.min(1000, o.tasks - done);
      // A generous retry budget: every kill, freeze and restart may spend an attempt of a task.
      await tw.enqueueTasks({ task_type: CHAOS_TASK_TYPE, payloads: Array.from({ length: n }, (_, i) => ({ n: done + i })), max_attempts: 25 });
    }
    started = performance.now();

    // Recovery tracker: a kill or freeze is recovered when every task its victim held is completed.
    let tracking = true;
    const tracker = (async () => {
      while (tracking || pending.length > 0) {
        for (const p of [...pending]) {
          if (p.takenBackAt === undefined) {
            const [h] = await retrying(
              () => sql`select count(*)::int as n from taskwarden.tasks
                        where id = any(${p.taskIds}::bigint[]) and status = 'running' and owner_id = ${p.owner}`,
            );
            if (h.n === 0) {
              p.takenBackAt = performance.now();
              takeBacks.push((p.takenBackAt - p.at) / 1000);
            }
          }
          const [r] = await retrying(
            () => sql`select count(*)::int as n from taskwarden.tasks where id = any(${p.taskIds}::bigint[]) and status <> 'completed'`,
          );
          if (r.n === 0) {
            recoveries.push((performance.now() - p.at) / 1000);
            log(`chaos: ${p.what}: its ${p.taskIds.length} tasks completed ${((performance.now() - p.at) / 1000).toFixed(2)} s later`);
            pending.splice(pending.indexOf(p), 1);
          }
        }
        if (!tracking && pending.length > 0 && elapsed() > o.durationSeconds + 120) break;
        await sleep(100);
      }
    })();

    // The timeline: kills throughout, freezes every few seconds, one Postgres restart mid-window.
    const at = (s: number) => started + s * 1000;
    const killEvery = Math.max(1.2, o.durationSeconds / 15);
    const freezeEvery = Math.max(5, o.durationSeconds / 4);
    const freezeMs = (leaseSeconds + 1.5) * 1000;
    // Partitions from 1 s (healed before the self-fence) to past the lease (the reaper takes over).
    const partitionEvery = Math.max(2.5, o.durationSeconds / 10);
    const requeueEvery = Math.max(1, o.durationSeconds / 20);
    let nextKill = at(killEvery * (0.5 + random()));
    let nextFreeze = at(o.durationSeconds * 0.1);
    let nextPartition = at(o.durationSeconds * 0.05);
    let nextRequeue = at(o.durationSeconds * 0.15);
    let partitionCount = 0;
    let restartAt: number | null = at(o.durationSeconds * 0.45);
    const thaws: Promise<void>[] = [];
    while (performance.now() < at(o.durationSeconds)) {
      const now = performance.now();
      if (restartAt !== null && now >= restartAt) {
        restartAt = null;
        restarts++;
        const [{ n: before }] = await retrying(() => sql`select count(*)::int as n from taskwarden.tasks where status = 'completed'`);
        const t0 = performance.now();
        log(`chaos: ${elapsed().toFixed(1)} s restarting Postgres`);
        await o.restartPostgres();
        for (;;) {
          const [{ n }] = await retrying(() => sql`select count(*)::int as n from taskwarden.tasks where status = 'completed'`);
          if (n > before || n === o.tasks || performance.now() - t0 > 60_000) break;
          await sleep(50);
        }
        restartRecovery = (performance.now() - t0) / 1000;
        log(`chaos: Postgres back, completions resumed after ${restartRecovery.toFixed(2)} s`);
      } else if (now >= nextKill) {
        // Kills first: the other faults are slower to start, and a short window must still have one.
        nextKill = now + killEvery * (0.5 + random()) * 1000;
        const candidates = live();
        if (candidates.length > 0) {
          const w = candidates[Math.floor(random() * candidates.length)];
          const held = await heldBy(w.workerId!);
          const t = performance.now();
          w.endedByDriver = true;
          await killAndWait(w.child, "SIGKILL");
          kills++;
          pending.push({ what: `kill ${w.workerId}`, at: t, owner: w.workerId!, taskIds: held });
          log(`chaos: ${elapsed().toFixed(1)} s SIGKILL ${w.workerId} holding ${held.length} tasks; starting a replacement`);
          await spawnWorker();
        }
      } else if (now >= nextFreeze) {
        nextFreeze = now + freezeEvery * 1000;
        const candidates = live();
        if (candidates.length > 1) {
          const w = candidates[Math.floor(random() * candidates.length)];
          const held = await heldBy(w.workerId!);
          w.frozen = true;
          w.child.kill("SIGSTOP");
          freezes++;
          pending.push({ what: `freeze ${w.workerId}`, at: performance.now(), owner: w.workerId!, taskIds: held });
          log(`chaos: ${elapsed().toFixed(1)} s SIGSTOP ${w.workerId} holding ${held.length} tasks, for ${freezeMs} ms`);
          const frozenAt = Date.now();
          thaws.push(
            sleep(freezeMs).then(() => {
              if (!w.exited) w.child.kill("SIGCONT");
              w.frozen = false;
              w.frozenWindows.push([frozenAt, Date.now()]);
            }),
          );
        }
      } else if (now >= nextPartition) {
        nextPartition = now + partitionEvery * (0.5 + random()) * 1000;
        const candidates = live();
        if (candidates.length > 1) {
          const w = candidates[Math.floor(random() * candidates.length)];
          const held = await heldBy(w.workerId!);
          // Mostly silent drops (the failure no error announces), every third one refused.
          const mode = partitionCount++ % 3 === 2 ? "refuse" : "drop";
          const seconds = 1 + random() * (leaseSeconds + 3);
          w.cut = true;
          if (mode === "drop") w.proxy.drop();
          else await w.proxy.refuse();
          const p: Partition = { workerId: w.workerId!, mode, at: Date.now(), seconds, taskIds: held };
          partitions.push(p);
          pending.push({ what: `partition ${w.workerId}`, at: performance.now(), owner: w.workerId!, taskIds: held });
          log(`chaos: ${elapsed().toFixed(1)} s ${mode === "drop" ? "dropping the bytes of" : "refusing"} ${w.workerId} holding ${held.length} tasks, for ${seconds.toFixed(1)} s`);
          thaws.push(
            sleep(seconds * 1000).then(async () => {
              await w.proxy.heal().catch(() => {});
              w.cut = false;
            }),
          );
        }
      } else if (now >= nextRequeue) {
        nextRequeue = now + requeueEvery * (0.5 + random()) * 1000;
        // An operator takes a running task back (requeue_task): its holder learns it at its next
        // beat and must stop before anyone runs it again.
        const running = await retrying(() => sql`select id from taskwarden.tasks where status = 'running' order by random() limit 1`);
        if (running.length > 0) {
          await retrying(() => tw.requeueTask({ task_id: Number(running[0].id), reason: "chaos operator" }), 3).then(
            () => operatorRequeues++,
            () => {},
          );
        }
      }
      await sleep(50);
    }
    await Promise.all(thaws);
    log(`chaos: window over after ${elapsed().toFixed(1)} s; draining`);

    // Drain: the survivors finish the queue.
    for (;;) {
      const [{ n }] = await retrying(() => sql`select count(*)::int as n from taskwarden.tasks where status <> 'completed'`);
      if (n === 0) break;
      if (elapsed() > o.durationSeconds + 120) throw new Error(`${n} tasks still not completed 120 s after the chaos window`);
      await sleep(100);
    }
    const totalSeconds = elapsed();
    tracking = false;
    await tracker;

    // Graceful stop: SIGTERM, the Worker hands back nothing (all done) and marks itself stopped.
    stopping = true;
    await reaper.stop();
    await Promise.all(
      workers
        .filter((w) => !w.exited)
        .map(async (w) => {
          const gone = new Promise<void>((resolve) => w.child.once("exit", () => resolve()));
          w.endedByDriver = true;
          w.terminated = true;
          w.child.kill("SIGTERM");
          const timeout = sleep(20_000).then(() => w.child.kill("SIGKILL"));
          await Promise.race([gone, timeout]);
        }),
    );

    // Executions: every pair of one task's executions must be disjoint in time. A killed
    // process's open executions end at its exit; one whose process was frozen while it ran is
    // set apart (no code ran while it was stopped; its write is refused by the fence).
    const overlap = checkOverlaps(executions);
    const deliveredAfter = await retrying(async () => {
      let longest: number | null = null;
      for (const p of partitions) {
        if (p.taskIds.length === 0) continue;
        const [r] = await sql`select count(*)::int as n from taskwarden.task_events
                              where task_id = any(${p.taskIds}::bigint[]) and event = 'completed' and worker_id = ${p.workerId}
                                and created_at >= to_timestamp(${(p.at + p.seconds * 1000) / 1000})`;
        if (r.n > 0 && (longest === null || p.seconds > longest)) longest = p.seconds;
      }
      return longest;
    });
    for (const w of workers) await w.proxy.close().catch(() => {});

    const report = await finalReport(sql, {
      seed, startupSeconds, totalSeconds, kills, freezes, restarts, restartRecovery, refused, uniqueViolations, recoveries, takeBacks, o, crashes,
      abortedOnLostLease, overlap, operatorRequeues, deliveredAfter,
      selfFenceMarginMs: fenceMargin(leaseSeconds * 1000),
      partitions: {
        dropped: partitions.filter((p) => p.mode === "drop").length,
        refused: partitions.filter((p) => p.mode === "refuse").length,
        longestSeconds: partitions.length ? Math.max(...partitions.map((p) => p.seconds)) : 0,
      },
      terminated: workers.filter((w) => w.terminated).map((w) => ({ workerId: w.workerId, exit: String(w.child.signalCode ?? w.child.exitCode) })),
    });
    if (!report.ok) {
      for (const w of workers) {
        if (w.child.signalCode === "SIGKILL" && !w.stderr && !w.terminated) continue;
        log(`chaos: worker ${w.workerId} exit ${w.child.signalCode ?? w.child.exitCode}; stderr: ${w.stderr.slice(-1500) || "(none)"}`);
      }
    }
    return report;
  } finally {
    stopping = true;
    await reaper.stop().catch(() => {});
    for (const w of workers) {
      await w.proxy.close().catch(() => {});
      if (w.exited) continue;
      w.child.kill("SIGCONT");
      await killAndWait(w.child, "SIGKILL");
    }
    await tw.close().catch(() => {});
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}

/** Pairs of executions of one task that overlapped in time, and executions set apart because their process was frozen. */
export function checkOverlaps(
  executions: (Omit<Execution, "worker"> & { worker: Pick<ChaosWorker, "frozenWindows" | "exitedAt"> })[],
): { executions: number; overlapping: number; paused: number; examples: string[] } {
  const byTask = new Map<number, { start: number; end: number; who: string }[]>();
  let paused = 0;
  for (const x of executions) {
    const end = x.end ?? x.worker.exitedAt ?? Date.now();
    if (x.worker.frozenWindows.some(([a, b]) => a < end && b > x.start)) {
      paused++;
      continue;
    }
    const list = byTask.get(x.taskId) ?? [];
    list.push({ start: x.start, end, who: x.workerId });
    byTask.set(x.taskId, list);
  }
  let overlapping = 0;
  const examples: string[] = [];
  for (const [id, list] of byTask) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length && list[j].start < list[i].end; j++) {
        overlapping++;
        if (examples.length < 5) {
          examples.push(`task ${id}: ${list[i].who} ${list[i].start}..${list[i].end} and ${list[j].who} ${list[j].start}..${list[j].end}`);
        }
      }
    }
  }
  return { executions: executions.length, overlapping, paused, examples };
}

export interface Outcome {
  final: ChaosReport["final"];
  requeues: Record<string, number>;
  released: number;
  maxAttempts: number;
  /** What is wrong with the database after the run; empty when every task was completed exactly once. */
  failures: string[];
}

/**
 * The end-of-run checks, read from the database alone: every task completed, exactly one result
 * row per task written by the worker that held the final lease, exactly one completed event per
 * task, nothing running, and the workers that were stopped gracefully marked stopped.
 */
export async function checkOutcome(sql: Sql, o: { tasks: number; stoppedWorkerIds: string[] }): Promise<Outcome> {
  const statuses = Object.fromEntries(
    (await sql`select status, count(*)::int as n from taskwarden.tasks group by status`).map((x) => [x.status, x.n]),
  ) as Record<string, number>;
  const [counts] = await sql`
    select (select count(*)::int from public.chaos_results) as results,
           (select count(distinct task_id)::int from public.chaos_results) as distinct_results,
           (select count(*)::int from taskwarden.tasks t
             where not exists (select from public.chaos_results c where c.task_id = t.id)) as without_result,
           (select count(*)::int from public.chaos_results c
             where not exists (select from taskwarden.tasks t where t.id = c.task_id and t.status = 'completed')) as orphan_results,
           (select count(*)::int from public.chaos_results c join taskwarden.tasks t on t.id = c.task_id
             where t.owner_id is distinct from c.worker_id) as wrong_writer,
           (select count(*)::int from taskwarden.tasks t
             where (select count(*) from taskwarden.task_events e where e.task_id = t.id and e.event = 'completed') <> 1) as not_once,
           (select coalesce(max(attempts), 0)::int from taskwarden.tasks) as max_attempts,
           (select count(*)::int from taskwarden.task_events where event = 'released') as released,
           (select count(*)::int from taskwarden.worker_heartbeats
             where worker_id = any(${o.stoppedWorkerIds}::text[]) and status <> 'stopped') as not_stopped`;
  const requeues = Object.fromEntries(
    (await sql`select coalesce(reason, 'none') as reason, count(*)::int as n from taskwarden.task_events
               where event = 'requeued' group by reason order by reason`).map((x) => [x.reason, x.n]),
  ) as Record<string, number>;

  const final = {
    statuses,
    results: counts.results,
    distinctResults: counts.distinct_results,
    tasksWithoutResult: counts.without_result,
    resultsWithoutCompletedTask: counts.orphan_results,
    resultWriterIsNotFinalOwner: counts.wrong_writer,
    tasksNotCompletedExactlyOnce: counts.not_once,
    workerRowsNotStopped: counts.not_stopped,
  };
  const failures: string[] = [];
  const check = (ok: boolean, what: string) => {
    if (!ok) failures.push(what);
  };
  check(statuses.completed === o.tasks, `completed tasks: ${statuses.completed ?? 0} of ${o.tasks} (${JSON.stringify(statuses)})`);
  check(!statuses.running, `${statuses.running} tasks left running`);
  check(final.results === o.tasks, `result rows: ${final.results}, expected ${o.tasks}`);
  check(final.distinctResults === final.results, `duplicate result rows: ${final.results - final.distinctResults}`);
  check(final.tasksWithoutResult === 0, `${final.tasksWithoutResult} tasks without a result row (lost)`);
  check(final.resultsWithoutCompletedTask === 0, `${final.resultsWithoutCompletedTask} result rows of tasks not completed`);
  check(final.resultWriterIsNotFinalOwner === 0, `${final.resultWriterIsNotFinalOwner} result rows written by a worker that did not hold the final lease`);
  check(final.tasksNotCompletedExactlyOnce === 0, `${final.tasksNotCompletedExactlyOnce} tasks without exactly one completed event`);
  check(final.workerRowsNotStopped === 0, `${final.workerRowsNotStopped} workers not marked stopped after SIGTERM`);
  return { final, requeues, released: counts.released, maxAttempts: counts.max_attempts, failures };
}

async function finalReport(
  sql: Sql,
  r: {
    seed: number;
    startupSeconds: number;
    totalSeconds: number;
    kills: number;
    freezes: number;
    restarts: number;
    restartRecovery: number | null;
    refused: { fence: number; uniqueKey: number };
    uniqueViolations: number;
    recoveries: number[];
    takeBacks: number[];
    o: ChaosOptions;
    crashes: Crash[];
    terminated: { workerId: string | undefined; exit: string }[];
    abortedOnLostLease: number;
    overlap: ReturnType<typeof checkOverlaps>;
    operatorRequeues: number;
    deliveredAfter: number | null;
    selfFenceMarginMs: number;
    partitions: ChaosReport["partitions"];
  },
): Promise<ChaosReport> {
  const outcome = await checkOutcome(sql, {
    tasks: r.o.tasks,
    stoppedWorkerIds: r.terminated.flatMap((t) => (t.workerId ? [t.workerId] : [])),
  });
  const failures = [...outcome.failures];
  for (const t of r.terminated.filter((t) => t.exit !== "0")) failures.push(`worker ${t.workerId} exited ${t.exit} after SIGTERM, not 0`);
  if (r.uniqueViolations !== 0) failures.push(`${r.uniqueViolations} unique violations met by the lease holder: an effect committed twice`);
  for (const c of r.crashes) {
    failures.push(`worker ${c.workerId} crashed (${c.exit}): ${c.error}`);
  }
  if (r.overlap.overlapping !== 0) {
    failures.push(`${r.overlap.overlapping} pairs of executions of one task overlapped in time: ${r.overlap.examples.join("; ")}`);
  }
  if (!(r.kills > 0 && r.freezes > 0 && r.restarts === 1 && r.partitions.dropped > 0 && r.operatorRequeues > 0)) {
    failures.push(
      `chaos did not happen as planned (kills ${r.kills}, freezes ${r.freezes}, restarts ${r.restarts}, ` +
        `partitions ${r.partitions.dropped} dropped + ${r.partitions.refused} refused, operator requeues ${r.operatorRequeues})`,
    );
  }
  return {
    seed: r.seed,
    tasks: r.o.tasks,
    workers: r.o.workers,
    durationSeconds: r.o.durationSeconds,
    startupSeconds: r.startupSeconds,
    totalSeconds: r.totalSeconds,
    kills: r.kills,
    freezes: r.freezes,
    postgresRestarts: r.restarts,
    crashes: r.crashes,
    postgresRestartRecoverySeconds: r.restartRecovery,
    requeues: outcome.requeues,
    released: outcome.released,
    refusedZombieCompletions: r.refused,
    uniqueViolationsByLeaseHolder: r.uniqueViolations,
    abortedOnLostLease: r.abortedOnLostLease,
    selfFenceMarginMs: r.selfFenceMarginMs,
    partitions: r.partitions,
    longestPartitionThenDeliveredSeconds: r.deliveredAfter,
    operatorRequeues: r.operatorRequeues,
    executions: r.overlap.executions,
    overlappingExecutions: r.overlap.overlapping,
    pausedExecutions: r.overlap.paused,
    slowestRecoverySeconds: r.recoveries.length ? Math.max(...r.recoveries) : 0,
    medianRecoverySeconds: r.recoveries.length ? median(r.recoveries) : 0,
    slowestTakeBackSeconds: r.takeBacks.length ? Math.max(...r.takeBacks) : 0,
    medianTakeBackSeconds: r.takeBacks.length ? median(r.takeBacks) : 0,
    maxAttempts: outcome.maxAttempts,
    final: outcome.final,
    failures,
    ok: failures.length === 0,
  };
}
