// The Postgres the benchmarks run on: the same private Postgres 15 + pg_cron cluster the tests
// start (test/support/cluster.ts), with the migrations applied by the real Supabase CLI. With
// DATABASE_URL set, that server is used instead (a superuser URL: the benchmarks create and drop
// their own databases there; the chaos run needs the private cluster, which it can restart).
import { cloneTemplate, startCluster, type Cluster } from "../../test/support/cluster.ts";

export interface BenchCluster {
  /** Superuser URL of the maintenance database; benchmark databases are created beside it. */
  url: string;
  /** Restarts the server; undefined for an external server. */
  restart?: () => Promise<void>;
  stop(): Promise<void>;
  description: string;
}

export async function openCluster(): Promise<BenchCluster> {
  const external = Boolean(process.env.DATABASE_URL);
  const cluster = await startCluster();
  return {
    url: cluster.url,
    restart: external ? undefined : () => cluster.restart(),
    stop: () => cluster.stop(),
    description: external ? "server at DATABASE_URL" : "private Postgres 15 + pg_cron cluster of the test suite",
  };
}

/** A new database with taskwarden's migrations, cloned from the cluster's template (pushed by the Supabase CLI). */
export async function taskwardenDatabase(adminUrl: string, name: string): Promise<string> {
  return cloneTemplate(adminUrl, name);
}

/**
 * A private cluster even when DATABASE_URL names a server: the chaos run restarts Postgres,
 * which must never hit a server other work is using.
 */
export async function privateCluster(): Promise<Cluster> {
  const saved = process.env.DATABASE_URL;
  delete process.env.DATABASE_URL;
  try {
    return await startCluster();
  } finally {
    if (saved !== undefined) process.env.DATABASE_URL = saved;
  }
}
