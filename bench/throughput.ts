// Throughput: N no-op jobs enqueued in batches into a fresh copy of the system's template
// database, then processed end to end by `concurrency` workers. The clock starts when the first
// handler starts (worker start-up is not counted for anyone) and stops when the system's own
// tables say every job is completed.
import { connect, createDatabase, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { ownCpuSeconds, postmasterPid, serverCpuSeconds } from "./lib/cpu.ts";
import { waitFor } from "./lib/stats.ts";
import type { QueueSystem } from "./systems/types.ts";

export interface ThroughputRun {
  jobsPerSecond: number;
  seconds: number;
  /** Handler starts beyond one per job (a job run twice). */
  duplicates: number;
  /**
   * CPU milliseconds per job from the workers' start to the last completion: the server's
   * processes and this process (the workers run in it). NaN for a server on another machine.
   */
  cpuMsPerJob: { server: number; client: number };
}

export async function measureThroughput(
  sys: QueueSystem,
  o: { admin: Sql; baseUrl: string; template: string; tasks: number; concurrency: number; batchSize: number },
): Promise<ThroughputRun> {
  const db = `bench_run_${sys.name.replace(/\W/g, "_")}`;
  await createDatabase(o.admin, db, o.template);
  const url = withDatabase(o.baseUrl, db);
  const sql = connect(url);
  try {
    const producer = await sys.producer(url);
    await producer.enqueueMany(o.tasks, 1000);
    await producer.close();
    // Same starting point for everyone: fresh statistics, no dead tuples from the enqueue.
    await sql`vacuum analyze`;

    const postmaster = await postmasterPid(sql);
    const serverCpu = () => (postmaster === undefined ? NaN : serverCpuSeconds(postmaster));
    const cpuAtStart = { server: serverCpu(), client: ownCpuSeconds() };
    const seen = new Set<string>();
    let duplicates = 0;
    let first = 0;
    let allSeen!: () => void;
    const everyJobStarted = new Promise<void>((resolve) => (allSeen = resolve));
    const running = await sys.startWorkers(url, {
      concurrency: o.concurrency,
      batchSize: o.batchSize,
      profile: "throughput",
      onJob(id) {
        if (first === 0) first = performance.now();
        if (seen.has(id)) duplicates++;
        else seen.add(id);
        if (seen.size === o.tasks) allSeen();
      },
    });
    try {
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${sys.name}: ${seen.size}/${o.tasks} jobs started after 300 s`)), 300_000).unref(),
      );
      await Promise.race([everyJobStarted, timeout]);
      await waitFor(async () => (await sys.unfinished(sql)) === 0, {
        timeoutMs: 60_000,
        everyMs: 10,
        what: `${sys.name} to record every completion`,
      });
      const seconds = (performance.now() - first) / 1000;
      const cpuMsPerJob = {
        server: ((serverCpu() - cpuAtStart.server) * 1000) / o.tasks,
        client: ((ownCpuSeconds() - cpuAtStart.client) * 1000) / o.tasks,
      };
      return { jobsPerSecond: o.tasks / seconds, seconds, duplicates, cpuMsPerJob };
    } finally {
      await running.stop();
    }
  } finally {
    await sql.end({ timeout: 5 });
    await dropDatabase(o.admin, db);
  }
}
