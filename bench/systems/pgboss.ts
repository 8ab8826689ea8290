// pg-boss 10, from npm. Throughput uses its batch API (fetch with batchSize, complete by ids) in a
// tight loop per worker: work() would sleep out its polling interval (0.5 s at least) after every
// batch, which caps a worker at batchSize / 0.5 s and would measure the sleep, not the database.
// Latency uses work() with its defaults (a 2 s polling interval): that is what users get.
import { setTimeout as sleep } from "node:timers/promises";
import PgBoss from "pg-boss";
import { connect, createDatabase, withDatabase } from "../lib/db.ts";
import type { Producer, QueueSystem, Running, WorkerOptions } from "./types.ts";

export const QUEUE = "bench";

function boss(url: string, options: Partial<PgBoss.ConstructorOptions> = {}): PgBoss {
  const b = new PgBoss({ connectionString: url, ...options });
  // pg-boss reports failed polls as events; a benchmark must notice them.
  b.on("error", (err) => console.error(`pg-boss error: ${err.message}`));
  return b;
}

export const pgBoss: QueueSystem = {
  name: "pg-boss",

  async install(adminUrl, database) {
    const admin = connect(adminUrl);
    await createDatabase(admin, database).finally(() => admin.end({ timeout: 5 }));
    const b = boss(withDatabase(adminUrl, database), { supervise: false, schedule: false, max: 2 });
    await b.start();
    await b.createQueue(QUEUE, { name: QUEUE, retryLimit: 3 });
    await b.stop({ graceful: false, wait: true });
  },

  async producer(url): Promise<Producer> {
    const b = boss(url, { supervise: false, schedule: false, max: 2 });
    await b.start();
    return {
      async enqueueMany(n, batch) {
        for (let done = 0; done < n; done += batch) {
          const size = Math.min(batch, n - done);
          await b.insert(Array.from({ length: size }, () => ({ name: QUEUE, data: {} })));
        }
      },
      async enqueueOne() {
        await b.send(QUEUE, {});
      },
      close: () => b.stop({ graceful: false, wait: true }),
    };
  },

  async startWorkers(url, o: WorkerOptions): Promise<Running> {
    if (o.profile === "defaults") {
      const b = boss(url);
      await b.start();
      await b.work(QUEUE, async ([job]) => o.onJob(job.id));
      return { stop: () => b.stop({ graceful: false, wait: true }) };
    }
    // One pool connection per worker loop plus room for completions.
    const b = boss(url, { max: o.concurrency + 2 });
    await b.start();
    let stopping = false;
    const loops = Array.from({ length: o.concurrency }, async () => {
      while (!stopping) {
        const jobs = await b.fetch(QUEUE, { batchSize: o.batchSize });
        if (jobs.length === 0) {
          await sleep(20);
          continue;
        }
        for (const job of jobs) o.onJob(job.id);
        await b.complete(QUEUE, jobs.map((j) => j.id));
      }
    });
    return {
      async stop() {
        stopping = true;
        await Promise.all(loops);
        await b.stop({ graceful: false, wait: true });
      },
    };
  },

  async unfinished(sql) {
    const [r] = await sql`select count(*)::int as n from pgboss.job where name = ${QUEUE} and state <> 'completed'`;
    return r.n as number;
  },
};
