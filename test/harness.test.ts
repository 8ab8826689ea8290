// The harness itself: databases are isolated clones of a template migrated by the real CLI.
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import postgres from "postgres";
import { afterAll, expect, it } from "vitest";
import { cronDatabaseUrl, freshDatabase } from "./support/db.ts";

const open: postgres.Sql[] = [];
const connect = (url: string) => {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  open.push(sql);
  return sql;
};
afterAll(() => Promise.all(open.map((s) => s.end({ timeout: 5 }))));

it("every migration file is recorded by supabase db push", async () => {
  const files = readdirSync(resolve(import.meta.dirname, "../supabase/migrations"))
    .filter((f) => f.endsWith(".sql"))
    .map((f) => f.split("_")[0])
    .sort();
  const rows = await connect(cronDatabaseUrl())`select version from supabase_migrations.schema_migrations order by version`;
  expect(rows.map((r) => r.version)).toEqual(files);
});

it("fresh databases are isolated from each other", async () => {
  const [a, b] = [connect(await freshDatabase()), connect(await freshDatabase())];
  await a`select taskwarden.enqueue_task('isolation')`;
  const [inA] = await a`select count(*)::int as n from taskwarden.tasks`;
  const [inB] = await b`select count(*)::int as n from taskwarden.tasks`;
  expect([inA.n, inB.n]).toEqual([1, 0]);
});

it("Supabase's roles exist with the attributes the grants rely on", async () => {
  const roles = await connect(cronDatabaseUrl())`select rolname, rolbypassrls, rolcanlogin from pg_roles
    where rolname in ('anon', 'authenticated', 'service_role') order by rolname`;
  expect(roles).toEqual([
    { rolname: "anon", rolbypassrls: false, rolcanlogin: false },
    { rolname: "authenticated", rolbypassrls: false, rolcanlogin: false },
    { rolname: "service_role", rolbypassrls: true, rolcanlogin: false },
  ]);
});
