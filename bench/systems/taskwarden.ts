// taskwarden through its own SDK over a direct connection: leases, fencing tokens and
// heartbeats all on. Two ways to drive it:
// - "taskwarden": the Worker (what users run) with `concurrency` slots and `prefetch` = batch
//   size (its local queue); it claims in batches and reports finished tasks through coalesced
//   complete_tasks calls.
// - "taskwarden-batch": the engine's batch RPCs: claim_tasks(batch_size) then one fenced
//   complete_tasks for the batch, with a WorkerHeartbeat renewing the held leases.
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "../../src/log.ts";
import { Taskwarden } from "../../src/rpc/client.ts";
import { PostgresTransport } from "../../src/rpc/postgres.ts";
import { WorkerHeartbeat } from "../../src/worker/heartbeat.ts";
import { Worker, type WorkerOptions as WorkerOptions_ } from "../../src/worker/worker.ts";
import { taskwardenDatabase } from "../lib/cluster.ts";
import type { Sql } from "../lib/db.ts";
import type { Producer, QueueSystem, Running, WorkerOptions } from "./types.ts";

export const TASK_TYPE = "bench_noop";

// Per-task info lines would cost the Worker more than the no-op handler does.
export const quietLogger = createLogger({ level: "warn" });

export function poolSize(concurrency: number): number {
  return Math.max(10, concurrency + 2);
}

// The cluster's template carries the migrations as the Supabase CLI pushed them.
const install = async (adminUrl: string, database: string): Promise<void> => {
  await taskwardenDatabase(adminUrl, database);
};

async function producer(url: string): Promise<Producer> {
  const tw = new Taskwarden(new PostgresTransport({ url, max: 1 }));
  return {
    async enqueueMany(n, batch) {
      for (let done = 0; done < n; done += batch) {
        const size = Math.min(batch, n - done);
        await tw.enqueueTasks({ task_type: TASK_TYPE, payloads: Array.from({ length: size }, () => ({})) });
      }
    },
    async enqueueOne() {
      await tw.enqueueTask({ task_type: TASK_TYPE });
    },
    close: () => tw.close(),
  };
}

async function unfinished(sql: Sql): Promise<number> {
  const [r] = await sql`select count(*)::int as n from taskwarden.tasks where status <> 'completed'`;
  return r.n as number;
}

/**
 * The Worker as users run it, with `extra` options on top of the bench's (for measuring one
 * lever at a time, e.g. claimsInFlight: 1).
 */
export function workerSystem(extra: Partial<Omit<WorkerOptions_, "rpc" | "handler" | "type">> = {}): QueueSystem {
  return {
    name: "taskwarden",
    install,
    producer,
    unfinished,
    async startWorkers(url, o: WorkerOptions): Promise<Running> {
      const transport = new PostgresTransport(o.profile === "defaults" ? { url } : { url, max: poolSize(o.concurrency) });
      const worker = new Worker({
        type: TASK_TYPE,
        rpc: transport,
        concurrency: o.profile === "defaults" ? undefined : o.concurrency,
        // The local queue, as graphile-worker's localQueue.size: claims in batches when busy.
        prefetch: o.profile === "defaults" ? undefined : o.batchSize,
        handler: (task) => {
          o.onJob(String(task.id));
        },
        handleSignals: false,
        logger: quietLogger,
        ...extra,
      });
      const done = worker.start();
      // start() registers, recovers and starts claiming; wait until the worker row exists.
      await waitRegistered(worker);
      return {
        async stop() {
          await worker.stop();
          await done;
          await transport.close();
        },
      };
    },
  };
}

export const taskwarden: QueueSystem = workerSystem();

async function waitRegistered(worker: Worker): Promise<void> {
  while (worker.heartbeat.lastResult === undefined) await sleep(5);
}

export const taskwardenBatch: QueueSystem = {
  name: "taskwarden-batch",
  install,
  producer,
  unfinished,
  async startWorkers(url, o: WorkerOptions): Promise<Running> {
    const tw = new Taskwarden(new PostgresTransport({ url, max: poolSize(o.concurrency) }));
    let stopping = false;
    const loops = Array.from({ length: o.concurrency }, async (_, i) => {
      const held = new Set<number>();
      const hb = new WorkerHeartbeat({
        rpc: tw,
        workerType: TASK_TYPE,
        heldTaskIds: () => [...held],
        logger: quietLogger,
        metadata: { loop: i },
      });
      await hb.start("processing");
      try {
        while (!stopping) {
          const tasks = await tw.claimTasks({ worker_id: hb.workerId, task_types: [TASK_TYPE], batch_size: o.batchSize });
          if (tasks.length === 0) {
            await sleep(20);
            continue;
          }
          for (const t of tasks) {
            held.add(t.id);
            o.onJob(String(t.id));
          }
          // One fenced statement for the batch; a lost lease would come back as completed = false.
          const done = await tw.completeTasks({ task_ids: tasks.map((t) => t.id), lease_tokens: tasks.map((t) => t.lease_token) });
          const refused = done.filter((d) => !d.completed);
          if (refused.length > 0) throw new Error(`${refused.length} completions refused in a run without failures`);
          for (const t of tasks) held.delete(t.id);
        }
      } finally {
        await hb.stop();
      }
    });
    return {
      async stop() {
        stopping = true;
        await Promise.all(loops);
        await tw.close();
      },
    };
  },
};
