// What the benchmarks need from each queue, so every system runs through the same measurement code.
import type postgres from "postgres";
import type { SystemName } from "../lib/report.ts";

export interface WorkerOptions {
  concurrency: number;
  /** Jobs fetched per round trip (taskwarden batch_size, pg-boss batchSize, graphile-worker localQueue.size). */
  batchSize: number;
  /** "throughput": tuned as the docs recommend for volume; "defaults": out-of-the-box settings (latency). */
  profile: "throughput" | "defaults";
  /** Called when a handler starts, with the job's own id. */
  onJob: (id: string) => void;
}

export interface Running {
  stop(): Promise<void>;
}

export interface Producer {
  /** Enqueues `n` no-op jobs, `batch` per call. */
  enqueueMany(n: number, batch: number): Promise<void>;
  /** Enqueues one job the way an application would (one call, one job). */
  enqueueOne(): Promise<void>;
  close(): Promise<void>;
}

export interface QueueSystem {
  name: SystemName;
  /** Creates `database` next to `adminUrl` with the system's schema installed (a template for the runs). */
  install(adminUrl: string, database: string): Promise<void>;
  producer(url: string): Promise<Producer>;
  startWorkers(url: string, options: WorkerOptions): Promise<Running>;
  /** Jobs that are not completed yet, read from the system's own tables. */
  unfinished(sql: postgres.Sql): Promise<number>;
}
