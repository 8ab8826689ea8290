// Claim latency on an idle queue: one job enqueued at a time, the way an application does it
// (enqueue_task / send / addJob), and the time until its handler starts, with every system's
// default worker settings. LISTEN/NOTIFY or the polling interval decides this.
import { setTimeout as sleep } from "node:timers/promises";
import { createDatabase, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { percentile } from "./lib/stats.ts";
import type { QueueSystem } from "./systems/types.ts";

export interface LatencyRun {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export async function measureLatency(
  sys: QueueSystem,
  o: {
    admin: Sql;
    baseUrl: string;
    template: string;
    samples: number;
    /**
     * Pause between samples, drawn uniformly. For a polling worker it must span the polling
     * interval: right after a job the poller starts a full sleep, and back-to-back samples
     * would all land at the start of it.
     */
    pauseMs: [number, number];
  },
): Promise<LatencyRun> {
  const db = `bench_latency_${sys.name.replace(/\W/g, "_")}`;
  await createDatabase(o.admin, db, o.template);
  const url = withDatabase(o.baseUrl, db);
  const producer = await sys.producer(url);
  let started: (() => void) | undefined;
  const running = await sys.startWorkers(url, {
    concurrency: 1,
    batchSize: 1,
    profile: "defaults",
    onJob: () => started?.(),
  });
  const latencies: number[] = [];
  try {
    await sleep(1000); // let every worker settle into its idle state (LISTEN set up, first poll done)
    for (let i = 0; i < o.samples; i++) {
      const handled = new Promise<void>((resolve) => (started = resolve));
      const t0 = performance.now();
      await producer.enqueueOne();
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${sys.name}: job ${i} not started within 30 s`)), 30_000).unref(),
      );
      await Promise.race([handled, timeout]);
      latencies.push(performance.now() - t0);
      await sleep(o.pauseMs[0] + Math.random() * (o.pauseMs[1] - o.pauseMs[0]));
    }
  } finally {
    await running.stop();
    await producer.close();
    await dropDatabase(o.admin, db);
  }
  return {
    samples: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: Math.max(...latencies),
  };
}
