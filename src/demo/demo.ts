// The demo `npm start` runs: a few worker processes on a steady trickle of "demo" tasks, some of
// which fail once and are retried (a few fail for good). Now and then a worker is killed with
// SIGKILL in the middle of a task and restarted; the log shows the reaper taking the task back and
// another worker completing it. Everything is observed through the database (task_events), not
// staged, so the dashboard's chart and tables keep moving for as long as it runs.
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { isSqlTransport, type SqlTransport, type Taskwarden } from "../rpc/index.ts";
import { scriptCommand } from "../supervise.ts";

/** Short thresholds so the recovery happens within seconds (written to taskwarden.settings). */
export const DEMO_SETTINGS: Record<string, number | boolean> = {
  dead_worker_seconds: 4,
  retry_base_seconds: 1,
  task_stale_seconds: 120,
  // A killed worker's row (dead) and a drained one's (stopped) stay on the dashboard this long.
  worker_retention_minutes: 1,
  // The demo tails claims and completions from task_events (off by default for throughput).
  log_success_events: true,
};

export interface DemoOptions {
  client: Taskwarden;
  /** What the worker processes connect to. */
  databaseUrl: string;
  workers?: number;
  /** Kill a worker this long after the first task was claimed. */
  killAfterMs?: number;
  /** Then kill one again about this often (±25 %; 0: only once). */
  killEveryMs?: number;
  /** A worker that exited (killed, drained, crashed) is started again after this. */
  restartAfterMs?: number;
  /** A new task this often while the queue is short (0: none after the first batch). */
  trickleMs?: number;
  /** Every so many trickled tasks, one fails on its first attempt (and is retried), or on every attempt (0: never). */
  failFirstEvery?: number;
  failAlwaysEvery?: number;
  log: (line: string) => void;
}

export interface Recovery {
  taskId: number;
  killedWorker: string;
  killedPid: number;
  /** From the SIGKILL to the reaper's requeue, and to the task's completion by another worker. */
  requeuedAfterMs: number;
  completedAfterMs: number;
  completedBy: string | null;
}

interface EventRow {
  id: number;
  task_id: number;
  event: string;
  reason: string | null;
  worker_id: string | null;
  actor: string | null;
  attempt: number | null;
}

const WORKER_SCRIPT = fileURLToPath(new URL("./worker.ts", import.meta.url));
/** The trickle pauses while this many tasks per worker wait, so a stalled demo does not pile up work. */
const MAX_QUEUED_PER_WORKER = 3;

/** What a demo task does: works for `ms`, and fails on its first attempt or on every one. */
export interface DemoPayload {
  n: number;
  ms: number;
  fail?: "first" | "always";
}

export async function applyDemoSettings(sql: SqlTransport): Promise<void> {
  for (const [key, value] of Object.entries(DEMO_SETTINGS)) {
    await sql.query("update taskwarden.settings set value = $2::jsonb, updated_at = now() where key = $1", [key, JSON.stringify(value)]);
  }
}

export class Demo {
  readonly #opts: Required<Omit<DemoOptions, "client" | "log" | "databaseUrl">> & DemoOptions;
  readonly #sql: SqlTransport;
  readonly #children = new Map<number, { child: ChildProcess; name: string; exited: Promise<void> }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopping = false;
  #lastEventId = 0;
  /** Tasks whose worker was killed, by task id, until another worker completes them. */
  readonly #victims = new Map<number, { workerId: string; pid: number; at: number; requeuedAt?: number }>();
  readonly #killedPids = new Set<number>();
  #nextKillAt: number | undefined;
  #resolveRecovery!: (r: Recovery) => void;
  #enqueued = 0;
  #runId = "";
  #firstClaimAt: number | undefined;
  /** Resolves when the first killed worker's task has been completed by another worker. */
  readonly recovered: Promise<Recovery>;

  constructor(opts: DemoOptions) {
    if (!isSqlTransport(opts.client.transport)) throw new Error("the demo needs a direct database connection (DATABASE_URL)");
    this.#sql = opts.client.transport;
    this.#opts = {
      workers: 3,
      killAfterMs: 2500,
      killEveryMs: 150_000,
      restartAfterMs: 3000,
      trickleMs: 700,
      failFirstEvery: 10,
      failAlwaysEvery: 50,
      ...opts,
    };
    this.recovered = new Promise((resolve) => (this.#resolveRecovery = resolve));
  }

  async start(): Promise<void> {
    const { client, log } = this.#opts;
    [{ last: this.#lastEventId }] = await this.#sql.query<{ last: number }>(
      "select coalesce(max(id), 0)::int as last from taskwarden.task_events",
    );
    const run = await client.createRun({ name: `demo ${new Date().toISOString().slice(0, 19)}`, metadata: { demo: true } });
    await client.startRun({ run_id: run.id });
    this.#runId = run.id;
    // Two rounds per worker to begin with, long enough that the first victim is surely in the
    // middle of one when it is killed; the trickle follows.
    const first = this.#opts.workers * 2;
    this.#enqueued = first;
    await client.enqueueTasks({
      task_type: "demo",
      run_id: run.id,
      payloads: Array.from({ length: first }, (_, i): DemoPayload => ({ n: i + 1, ms: 2000 + (i % 3) * 500 })),
    });
    log(
      `demo: run "${run.name}" with ${first} tasks, then a new one about every ${(this.#opts.trickleMs / 1000).toFixed(1)} s ` +
        `(some fail once and are retried); starting ${this.#opts.workers} worker processes`,
    );
    for (let i = 1; i <= this.#opts.workers; i++) this.#spawn(`demo-${i}`);
    this.#every(500, () => this.#tail());
    this.#every(200, () => this.#maybeKill());
    if (this.#opts.trickleMs > 0) this.#every(this.#opts.trickleMs, () => this.#trickle());
  }

  async #trickle(): Promise<void> {
    const [{ queued }] = await this.#sql.query<{ queued: number }>(
      "select count(*)::int as queued from taskwarden.tasks where status = 'queued' and run_id = $1::uuid",
      [this.#runId],
    );
    if (queued >= this.#opts.workers * MAX_QUEUED_PER_WORKER) return;
    const n = ++this.#enqueued;
    const { failAlwaysEvery, failFirstEvery } = this.#opts;
    const fail = failAlwaysEvery > 0 && n % failAlwaysEvery === 0 ? "always" : failFirstEvery > 0 && n % failFirstEvery === 0 ? "first" : undefined;
    const payload: DemoPayload = { n, ms: 600 + Math.round(Math.random() * 1800), ...(fail ? { fail } : {}) };
    // A task that always fails gives up after two attempts rather than three: it reaches the
    // "failed" count sooner, and wastes less of the demo's time.
    await this.#opts.client.enqueueTask({ task_type: "demo", run_id: this.#runId, payload, ...(fail === "always" ? { max_attempts: 2 } : {}) });
  }

  #spawn(name: string): void {
    const { command, args } = scriptCommand(WORKER_SCRIPT);
    const child = spawn(command, [...args], {
      // An IPC channel: the workers stop when this process is gone. Own process group: a
      // terminal's Ctrl-C reaches `npm start` only, which stops them once, cleanly.
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      detached: true,
      env: {
        ...process.env,
        DATABASE_URL: this.#opts.databaseUrl,
        SUPABASE_URL: "",
        SUPABASE_SERVICE_ROLE_KEY: "",
        DEMO_WORKER_ID: name,
        WORKER_HEARTBEAT_INTERVAL: "1",
        TASK_LEASE_S: "30",
        WORKER_SHUTDOWN_GRACE_S: "3",
        // Failures are the demo's own doing and it logs them from the task events; the workers say only what goes wrong.
        LOG_LEVEL: process.env.DEMO_LOG_LEVEL ?? "error",
      },
    });
    const pid = child.pid!;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.#children.set(pid, { child, name, exited });
    child.once("exit", (code, signal) => {
      this.#children.delete(pid);
      if (this.#stopping) return;
      void this.#exitedWhy(pid, code, signal).then((why) => {
        if (this.#stopping) return;
        this.#opts.log(`demo: worker ${name} (pid ${pid}) ${why}; a new ${name} starts in ${(this.#opts.restartAfterMs / 1000).toFixed(0)} s`);
        this.#after(this.#opts.restartAfterMs, () => this.#spawn(name));
      });
    });
  }

  /** How a worker process ended, in words: killed by the demo, drained, or unexpectedly. */
  async #exitedWhy(pid: number, code: number | null, signal: NodeJS.Signals | null): Promise<string> {
    if (this.#killedPids.delete(pid)) return "is gone (killed by the demo)";
    if (code !== 0) return `exited unexpectedly (${signal ?? `code ${code}`})`;
    // Exit code 0 is a clean stop; a drain (from the dashboard or `taskwarden workers stop`) is
    // the usual reason, and the worker's row says whether one was asked for.
    const [row] = await this.#sql
      .query<{ drained: boolean }>(
        `select stop_requested_at is not null as drained from taskwarden.worker_heartbeats
         where pid = $1::int order by started_at desc limit 1`,
        [pid],
      )
      .catch(() => []);
    return row?.drained ? "was drained and stopped cleanly" : "stopped cleanly";
  }

  #after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#stopping) fn();
    }, ms);
    this.#timers.add(timer);
  }

  #every(ms: number, fn: () => Promise<void>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.#stopping) return;
      busy = true;
      fn()
        .catch((err: unknown) => {
          if (!this.#stopping) this.#opts.log(`demo: ${err instanceof Error ? err.message : String(err)}`);
        })
        .finally(() => (busy = false));
    }, ms);
    this.#timers.add(timer);
  }

  async #maybeKill(): Promise<void> {
    if (this.#firstClaimAt === undefined) return;
    this.#nextKillAt ??= this.#firstClaimAt + this.#opts.killAfterMs;
    if (Date.now() < this.#nextKillAt) return;
    // Only with every worker up (the last one killed has been restarted), so one is dead at a time.
    if (this.#children.size < this.#opts.workers) return;
    // A task that started less than a second ago: its worker is surely in the middle of it. Not
    // one that is meant to fail, so that the story ends with the task completed by another worker.
    const [r] = await this.#sql.query<{ task_id: number; owner_id: string; pid: number }>(
      `select t.id::int as task_id, t.owner_id, w.pid
       from taskwarden.tasks t join taskwarden.worker_heartbeats w on w.worker_id = t.owner_id
       where t.status = 'running' and w.pid = any($1::int[]) and t.started_at > now() - interval '1 second'
         and t.payload ->> 'fail' is null
       order by t.started_at desc limit 1`,
      [`{${[...this.#children.keys()].join(",")}}`],
    );
    const entry = r && this.#children.get(r.pid);
    if (!entry) return;
    this.#victims.set(r.task_id, { workerId: r.owner_id, pid: r.pid, at: Date.now() });
    this.#killedPids.add(r.pid);
    const every = this.#opts.killEveryMs;
    this.#nextKillAt = every > 0 ? Date.now() + every * (0.75 + Math.random() / 2) : Infinity;
    entry.child.kill("SIGKILL");
    this.#opts.log(
      `demo: SIGKILL -> worker ${r.owner_id} (pid ${r.pid}) in the middle of task ${r.task_id}. ` +
        `The task stays "running" until the reaper sees the worker's heartbeat stop (dead after ${DEMO_SETTINGS.dead_worker_seconds} s).`,
    );
  }

  async #tail(): Promise<void> {
    const rows = await this.#sql.query<{ row: EventRow | string }>(
      `select to_jsonb(e) as row from (select e.id, e.task_id, e.event, e.reason, e.worker_id, e.actor, e.attempt
         from taskwarden.task_events e where e.id > $1::bigint order by e.id limit 500) e`,
      [this.#lastEventId],
    );
    for (const { row } of rows) {
      const e = (typeof row === "string" ? JSON.parse(row) : row) as EventRow;
      this.#lastEventId = Math.max(this.#lastEventId, e.id);
      if (e.event === "claimed") this.#firstClaimAt ??= Date.now();
      const v = this.#victims.get(e.task_id);
      if (e.actor === "reaper") {
        const since = v ? ` ${((Date.now() - v.at) / 1000).toFixed(1)} s after the kill` : "";
        this.#opts.log(`reaper: task ${e.task_id} ${e.event} (${e.reason ?? "no reason"}, was held by ${e.worker_id ?? "?"})${since}`);
        if (v && e.event === "requeued") v.requeuedAt ??= Date.now();
      } else if (e.event === "failed") {
        this.#opts.log(`demo: task ${e.task_id} failed on attempt ${e.attempt ?? "?"} (${e.reason ?? "error"}, by ${e.worker_id ?? "?"})`);
      } else if (e.event === "dead_lettered") {
        this.#opts.log(`demo: task ${e.task_id} failed for good: no attempt left`);
      }
      if (v?.requeuedAt) {
        if (e.event === "claimed") this.#opts.log(`demo: task ${e.task_id} claimed again by ${e.worker_id} (attempt ${e.attempt})`);
        if (e.event === "completed") {
          this.#victims.delete(e.task_id);
          const recovery: Recovery = {
            taskId: e.task_id,
            killedWorker: v.workerId,
            killedPid: v.pid,
            requeuedAfterMs: v.requeuedAt - v.at,
            completedAfterMs: Date.now() - v.at,
            completedBy: e.worker_id,
          };
          this.#opts.log(
            `demo: task ${e.task_id} recovered — completed by ${e.worker_id} ${(recovery.completedAfterMs / 1000).toFixed(1)} s after its worker was killed ` +
              `(requeued by the reaper after ${(recovery.requeuedAfterMs / 1000).toFixed(1)} s)`,
          );
          this.#resolveRecovery(recovery);
        }
      }
    }
  }

  /** SIGTERM to the workers (they release their tasks), SIGKILL after `graceMs`. */
  async stop(graceMs = 6000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const t of this.#timers) {
      clearInterval(t);
      clearTimeout(t);
    }
    const live = [...this.#children.values()].filter((c) => c.child.exitCode === null && c.child.signalCode === null);
    for (const c of live) c.child.kill("SIGTERM");
    const timeout = sleep(graceMs, "timeout" as const, { ref: false });
    if ((await Promise.race([Promise.all(live.map((c) => c.exited)), timeout])) === "timeout") {
      for (const c of live) c.child.kill("SIGKILL");
      await Promise.all(live.map((c) => c.exited));
    }
  }
}
