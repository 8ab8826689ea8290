// graphile-worker, from npm, with the settings its performance guide recommends for volume: a
// local queue (batch fetch and lock), batched completions, and a pool of concurrency + 2
// (at least 10). Latency uses run() with its defaults (LISTEN/NOTIFY plus a 2 s poll).
import { Logger, makeWorkerUtils, run, runMigrations, type RunnerOptions } from "graphile-worker";
import { connect, createDatabase, withDatabase } from "../lib/db.ts";
import type { Producer, QueueSystem, Running, WorkerOptions } from "./types.ts";

export const TASK = "bench_noop";

// graphile-worker logs every job at info level; the bench prints only errors.
const quiet = new Logger(() => (level, message) => {
  if (level === "error") console.error(`graphile-worker: ${message}`);
});

export function graphileOptions(url: string, o: Pick<WorkerOptions, "concurrency" | "batchSize" | "profile">): RunnerOptions {
  const base: RunnerOptions = { connectionString: url, logger: quiet, noHandleSignals: true };
  if (o.profile === "defaults") return base;
  return {
    ...base,
    concurrency: o.concurrency,
    maxPoolSize: Math.max(10, o.concurrency + 2),
    preset: {
      worker: {
        localQueue: { size: o.batchSize },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      },
    },
  };
}

export const graphileWorker: QueueSystem = {
  name: "graphile-worker",

  async install(adminUrl, database) {
    const admin = connect(adminUrl);
    await createDatabase(admin, database).finally(() => admin.end({ timeout: 5 }));
    await runMigrations({ connectionString: withDatabase(adminUrl, database), logger: quiet });
  },

  async producer(url): Promise<Producer> {
    const utils = await makeWorkerUtils({ connectionString: url, logger: quiet, maxPoolSize: 2 });
    return {
      async enqueueMany(n, batch) {
        for (let done = 0; done < n; done += batch) {
          const size = Math.min(batch, n - done);
          await utils.addJobs(Array.from({ length: size }, () => ({ identifier: TASK, payload: {} })));
        }
      },
      async enqueueOne() {
        await utils.addJob(TASK, {});
      },
      close: async () => {
        await utils.release();
      },
    };
  },

  async startWorkers(url, o: WorkerOptions): Promise<Running> {
    const runner = await run({
      ...graphileOptions(url, o),
      taskList: { [TASK]: async (_payload, helpers) => o.onJob(helpers.job.id) },
    });
    return { stop: () => runner.stop() };
  },

  async unfinished(sql) {
    // Completed jobs are deleted; what is left is queued, locked or failed.
    const [r] = await sql`select count(*)::int as n from graphile_worker._private_jobs`;
    return r.n as number;
  },
};
