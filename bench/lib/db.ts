// Databases for the benchmarks: one private Postgres cluster (the one the tests use), one
// template database per system with its schema installed, and a fresh copy of the template
// for every measured run, so every run starts from the same state.
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";

export type Sql = postgres.Sql;

export function connect(url: string, max = 1): Sql {
  return postgres(url, { max, onnotice: () => {}, connection: { application_name: "taskwarden-bench" } });
}

export { withDatabase } from "../../test/support/cluster.ts";

export async function createDatabase(admin: Sql, name: string, template?: string): Promise<void> {
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.unsafe(`create database "${name}"${template ? ` template "${template}"` : ""}`);
}

/**
 * Drops a database once its sessions are gone. A queue library's pool may still be closing its
 * last connections when its stop() resolves; terminating them under it (FORCE) makes the pool
 * emit an unhandled error, so FORCE is only the last resort after a few seconds.
 */
export async function dropDatabase(admin: Sql, name: string, waitMs = 5000): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const [{ n }] = await admin`select count(*)::int as n from pg_stat_activity where datname = ${name}`;
    if (n === 0 || Date.now() > deadline) break;
    await sleep(50);
  }
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
}
