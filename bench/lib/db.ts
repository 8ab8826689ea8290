// Databases for the benchmarks: one private Postgres cluster (the one the tests use), one
// template database per system with its schema installed, and a fresh copy of the template
// for every measured run, so every run starts from the same state.
import postgres from "postgres";

export type Sql = postgres.Sql;

export function connect(url: string, max = 1): Sql {
  return postgres(url, { max, onnotice: () => {}, connection: { application_name: "taskwarden-bench" } });
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createDatabase(admin: Sql, name: string, template?: string): Promise<void> {
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.unsafe(`create database "${name}"${template ? ` template "${template}"` : ""}`);
}

export async function dropDatabase(admin: Sql, name: string): Promise<void> {
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
}
