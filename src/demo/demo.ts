// The demo `npm start` runs: a few worker processes on "demo" tasks; one is killed with SIGKILL
// in the middle of a task, and the log shows the reaper taking the task back and another worker
// completing it. Everything is observed through the database (task_events), not staged.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isSqlTransport, type SqlTransport, type Taskwarden } from "../rpc/index.ts";
import { scriptCommand } from "../cli/supervise.ts";

/** Short thresholds so the recovery happens within seconds (written to taskwarden.settings). */
export const DEMO_SETTINGS: Record<string, number> = {
  dead_worker_seconds: 4,
  retry_base_seconds: 1,
  task_stale_seconds: 120,
  worker_retention_minutes: 5,
};

export interface DemoOptions {
  client: Taskwarden;
  /** What the worker processes connect to. */
  databaseUrl: string;
  workers?: number;
  /** Kill a worker this long after the first task was claimed. */
  killAfterMs?: number;
  /** A new task this often (0: none after the first batch). */
  trickleMs?: number;
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
const MAX_TRICKLE = 500;

export async function applyDemoSettings(sql: SqlTransport): Promise<void> {
  for (const [key, value] of Object.entries(DEMO_SETTINGS)) {
    await sql.query("update taskwarden.settings set value = to_jsonb($2::numeric), updated_at = now() where key = $1", [key, value]);
  }
}

export class Demo {
  readonly #opts: Required<Omit<DemoOptions, "client" | "log" | "databaseUrl">> & DemoOptions;
  readonly #sql: SqlTransport;
  readonly #children = new Map<number, { child: ChildProcess; name: string; exited: Promise<void> }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopping = false;
  #lastEventId = 0;
  #victim: { taskId: number; workerId: string; pid: number; at: number; requeuedAt?: number } | undefined;
  #resolveRecovery!: (r: Recovery) => void;
  #enqueued = 0;
  #firstClaimAt: number | undefined;
  /** Resolves when the killed worker's task has been completed by another worker. */
  readonly recovered: Promise<Recovery>;

  constructor(opts: DemoOptions) {
    if (!isSqlTransport(opts.client.transport)) throw new Error("the demo needs a direct database connection (DATABASE_URL)");
    this.#sql = opts.client.transport;
    this.#opts = { workers: 3, killAfterMs: 2500, trickleMs: 2500, ...opts };
    this.recovered = new Promise((resolve) => (this.#resolveRecovery = resolve));
  }

  async start(): Promise<void> {
    const { client, log } = this.#opts;
    [{ last: this.#lastEventId }] = await this.#sql.query<{ last: number }>(
      "select coalesce(max(id), 0)::int as last from taskwarden.task_events",
    );
    const run = await client.createRun({ name: `demo ${new Date().toISOString().slice(0, 19)}`, metadata: { demo: true } });
    await client.startRun({ run_id: run.id });
    // Two rounds per worker, long enough that the victim is surely in the middle of one when it
    // is killed, and short enough that the queue is nearly empty when its task comes back.
    this.#enqueued = this.#opts.workers * 2;
    await client.enqueueTasks({
      task_type: "demo",
      run_id: run.id,
      payloads: Array.from({ length: this.#enqueued }, (_, i) => ({ n: i + 1, ms: 2000 + (i % 3) * 500 })),
    });
    log(`demo: run "${run.name}" with ${this.#enqueued} tasks; starting ${this.#opts.workers} worker processes`);
    for (let i = 1; i <= this.#opts.workers; i++) this.#spawn(`demo-${i}`);
    this.#every(500, () => this.#tail());
    this.#every(200, () => this.#maybeKill());
    if (this.#opts.trickleMs > 0) {
      this.#every(this.#opts.trickleMs, async () => {
        if (this.#enqueued >= MAX_TRICKLE) return;
        this.#enqueued++;
        await client.enqueueTask({ task_type: "demo", run_id: run.id, payload: { n: this.#enqueued, ms: 800 + Math.round(Math.random() * 1500) } });
      });
    }
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
        LOG_LEVEL: process.env.DEMO_LOG_LEVEL ?? "warn",
      },
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.#children.set(child.pid!, { child, name, exited });
    child.once("exit", (code, signal) => {
      if (!this.#stopping && this.#victim?.pid !== child.pid) {
        this.#opts.log(`demo: worker ${name} (pid ${child.pid}) exited unexpectedly (${signal ?? `code ${code}`})`);
      }
    });
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
    if (this.#victim || this.#firstClaimAt === undefined || Date.now() - this.#firstClaimAt < this.#opts.killAfterMs) return;
    // A task that started less than a second ago: its worker is surely in the middle of it.
    const [r] = await this.#sql.query<{ task_id: number; owner_id: string; pid: number }>(
      `select t.id::int as task_id, t.owner_id, w.pid
       from taskwarden.tasks t join taskwarden.worker_heartbeats w on w.worker_id = t.owner_id
       where t.status = 'running' and w.pid = any($1::int[]) and t.started_at > now() - interval '1 second'
       order by t.started_at desc limit 1`,
      [`{${[...this.#children.keys()].join(",")}}`],
    );
    const entry = r && this.#children.get(r.pid);
    if (!entry) return;
    this.#victim = { taskId: r.task_id, workerId: r.owner_id, pid: r.pid, at: Date.now() };
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
      const v = this.#victim;
      if (e.actor === "reaper" || e.event === "dead_lettered" || e.event === "failed") {
        const since = v && e.task_id === v.taskId ? ` ${((Date.now() - v.at) / 1000).toFixed(1)} s after the kill` : "";
        this.#opts.log(`reaper: task ${e.task_id} ${e.event} (${e.reason ?? "no reason"}, was held by ${e.worker_id ?? "?"})${since}`);
        if (v && e.task_id === v.taskId && e.event === "requeued") v.requeuedAt ??= Date.now();
      }
      if (v && e.task_id === v.taskId && v.requeuedAt) {
        if (e.event === "claimed") this.#opts.log(`demo: task ${e.task_id} claimed again by ${e.worker_id} (attempt ${e.attempt})`);
        if (e.event === "completed") {
          const recovery: Recovery = {
            taskId: v.taskId,
            killedWorker: v.workerId,
            killedPid: v.pid,
            requeuedAfterMs: v.requeuedAt - v.at,
            completedAfterMs: Date.now() - v.at,
            completedBy: e.worker_id,
          };
          this.#opts.log(
            `demo: task ${v.taskId} recovered — completed by ${e.worker_id} ${(recovery.completedAfterMs / 1000).toFixed(1)} s after its worker was killed ` +
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
    for (const t of this.#timers) clearInterval(t);
    const live = [...this.#children.values()].filter((c) => c.child.exitCode === null && c.child.signalCode === null);
    for (const c of live) c.child.kill("SIGTERM");
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
    if ((await Promise.race([Promise.all(live.map((c) => c.exited)), timeout])) === "timeout") {
      for (const c of live) c.child.kill("SIGKILL");
      await Promise.all(live.map((c) => c.exited));
    }
  }
}
