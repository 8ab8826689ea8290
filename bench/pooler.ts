// Throughput through a transaction-mode pooler (PgBouncer, standing in for Supavisor on port
// 6543) beside the direct connection: the same Worker, the same run, only the workers' URL
// differs. Through the pooler the transport names no statements (each query is parsed again)
// and LISTEN is off, so the figure shows what a Supabase user on the pooled URL gets.
import { startPooler, type Pooler } from "../test/support/pgbouncer.ts";
import { taskwarden } from "./systems/taskwarden.ts";
import type { QueueSystem } from "./systems/types.ts";

/** taskwarden's Worker with its workers connected through `pooler` (?pgbouncer=true). */
export function viaPooler(pooler: Pooler): QueueSystem {
  return {
    ...taskwarden,
    startWorkers: (url, o) => taskwarden.startWorkers(pooler.urlFor(url, { pgbouncer: "true" }), o),
  };
}

/** A pooler in front of the cluster at `adminUrl`, with room for a concurrency-16 Worker's pool. */
export function benchPooler(adminUrl: string): Promise<Pooler> {
  return startPooler(adminUrl, { poolSize: 20 });
}
