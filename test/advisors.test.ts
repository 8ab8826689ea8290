// Supabase's own security / performance lints (the real CLI's `db advisors`) against the
// database pg_cron serves, migrated by `supabase db push`: nothing at WARN or ERROR.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { cronDatabaseUrl } from "./support/db.ts";

const run = promisify(execFile);

interface Lint {
  name: string;
  level: "INFO" | "WARN" | "ERROR";
  detail: string;
  metadata?: { schema?: string };
}

it("supabase db advisors reports nothing at WARN or ERROR", async () => {
  const { stdout } = await run(
    "npx",
    ["--no-install", "supabase", "db", "advisors", `--remote=${cronDatabaseUrl()}`, "--type", "all", "--level", "info",
     "--output-format", "json"],
    { cwd: resolve(import.meta.dirname, ".."), maxBuffer: 16 * 1024 * 1024, env: { ...process.env, DO_NOT_TRACK: "1" } },
  );
  const json = stdout.slice(stdout.indexOf("["), stdout.lastIndexOf("]") + 1);
  const lints = JSON.parse(json) as Lint[];
  // It did run and look at our schema: RLS-without-policy is the expected INFO for service-role-only tables.
  expect(lints.some((l) => l.name === "rls_enabled_no_policy" && l.metadata?.schema === "taskwarden")).toBe(true);
  const serious = lints.filter((l) => l.level !== "INFO").map((l) => `${l.level} ${l.name}: ${l.detail}`);
  expect(serious).toEqual([]);
});
