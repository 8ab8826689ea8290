// The migrations' own conventions (docs/design.md, "Migrations"): each function and view is
// created in one file, the file of its concern; and the settings table of docs/sql-api.md is the
// settings a fresh database holds, with the defaults their migrations insert.
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import postgres from "postgres";
import { expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";

const ROOT = resolve(import.meta.dirname, "..");
const MIGRATIONS = resolve(ROOT, "supabase/migrations");

it("no function or view is created in two migration files (a later file never redefines an earlier one's)", () => {
  const files = readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort();
  const homes = new Map<string, Set<string>>();
  for (const file of files) {
    // Bodies are dollar-quoted; a `create function` never appears inside one in these files.
    const text = readFileSync(resolve(MIGRATIONS, file), "utf8").replace(/--.*$/gm, "");
    for (const m of text.matchAll(/\bcreate\s+(?:or\s+replace\s+)?(function|view)\s+taskwarden\.(\w+)/gi)) {
      const name = `${m[1].toLowerCase()} ${m[2]}`;
      homes.set(name, (homes.get(name) ?? new Set()).add(file));
    }
  }
  expect(homes.size).toBeGreaterThan(50);
  const twice = [...homes].filter(([, where]) => where.size > 1).map(([name, where]) => `${name}: ${[...where].join(", ")}`);
  expect(twice).toEqual([]);
});

/** The rows of docs/sql-api.md's settings table: key -> default, as written there. */
function documentedSettings(): Map<string, string> {
  const doc = readFileSync(resolve(ROOT, "docs/sql-api.md"), "utf8");
  const section = doc.slice(doc.indexOf("## Settings (`taskwarden.settings`"));
  const rows = new Map<string, string>();
  for (const line of section.split("\n")) {
    const m = /^\| (`[a-z_]+`(?: \/ `[a-z_]+`)*) \| ([^|]+) \|/.exec(line);
    if (!m) continue;
    const keys = [...m[1].matchAll(/`([a-z_]+)`/g)].map((k) => k[1]);
    const values = m[2].trim().split(" / ");
    expect(values.length, `the row of ${keys.join(", ")} gives one default per key`).toBe(keys.length);
    keys.forEach((k, i) => rows.set(k, values[i].trim()));
  }
  return rows;
}

it("docs/sql-api.md lists every setting with the default its migration inserts, and nothing else", async () => {
  const sql = postgres(await freshDatabase(), { max: 1, onnotice: () => {} });
  try {
    const actual = await sql<{ key: string; value: string }[]>`select key, value #>> '{}' as value from taskwarden.settings order by key`;
    const documented = documentedSettings();
    expect(Object.fromEntries([...documented].sort())).toEqual(Object.fromEntries(actual.map((r) => [r.key, r.value])));
  } finally {
    await sql.end();
  }
});
