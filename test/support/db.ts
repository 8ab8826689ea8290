// Per-file databases inside vitest: each call clones the migrated template of the run's cluster
// (started once by test/global-setup.ts), so a reaper in one test never touches another's tasks.
import { inject } from "vitest";
import { CRON_DB, cloneTemplate, withDatabase } from "./cluster.ts";

let counter = 0;

/** A new, migrated, empty database of the run's cluster; returns its URL. */
export async function freshDatabase(): Promise<string> {
  const name = `tw_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  return cloneTemplate(inject("adminUrl"), name);
}

/** Superuser URL of the cluster's maintenance database. */
export function adminUrl(): string {
  return inject("adminUrl");
}

/** The database pg_cron serves, migrated with the real CLI: where the taskwarden-reap job lives. */
export function cronDatabaseUrl(): string {
  return withDatabase(inject("adminUrl"), CRON_DB);
}
