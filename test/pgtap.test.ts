// The pgTAP suite (supabase/tests) under pg_prove, against a fresh clone of the migrated template.
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";

const run = promisify(execFile);
const TESTS = resolve(import.meta.dirname, "../supabase/tests");
const ARTIFACTS = resolve(import.meta.dirname, "../test-artifacts");

it("every pgTAP file passes under pg_prove", async () => {
  const files = readdirSync(TESTS).filter((f) => f.endsWith(".sql")).sort();
  expect(files.length).toBeGreaterThanOrEqual(5);
  const url = new URL(await freshDatabase());
  const result = await run(
    "pg_prove",
    ["--host", url.hostname, "--port", url.port, "--username", url.username, "--dbname", url.pathname.slice(1),
     "--verbose", "--failures", ...files],
    { cwd: TESTS, maxBuffer: 32 * 1024 * 1024 },
  ).catch((err: { stdout?: string; stderr?: string }) => err);
  const out = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  const failed = out.split("\n").filter((l) => /^not ok|^#\s+(Failed|have|want)|Failed test|Parse errors/.test(l));
  const counted = out.match(/Files=(\d+), Tests=(\d+)/);
  const failedAssertions = out.split("\n").filter((l) => /^\s*not ok/.test(l)).length;
  // test/run.mjs adds the pgTAP assertions to the closing count.
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(resolve(ARTIFACTS, "pgtap.json"),
    JSON.stringify({ files: Number(counted?.[1] ?? 0), assertions: Number(counted?.[2] ?? 0), failed: failedAssertions }));
  expect(failed, out.slice(-4000)).toEqual([]);
  expect(out).toMatch(/Result: PASS/);
  expect(Number(counted?.[1])).toBe(files.length);
});
