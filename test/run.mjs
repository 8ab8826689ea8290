#!/usr/bin/env node
// `npm test`: the whole suite (vitest, which also runs pgTAP under pg_prove), then one closing
// line `N passed, N failed, N skipped` counting vitest tests and pgTAP assertions together.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const artifacts = resolve(root, "test-artifacts");
mkdirSync(artifacts, { recursive: true });
const report = resolve(artifacts, "vitest.json");
const pgtap = resolve(artifacts, "pgtap.json");
rmSync(report, { force: true });
rmSync(pgtap, { force: true });

const started = Date.now();
const vitest = spawnSync(
  process.execPath,
  [resolve(root, "node_modules/vitest/vitest.mjs"), "run", "--reporter=default", "--reporter=json",
   `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { cwd: root, stdio: "inherit", env: process.env },
);

let passed = 0, failed = 0, skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed = r.numPassedTests;
  // A file that failed before running any test (an import error) counts as one failure.
  failed = r.numFailedTests +
    r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
  skipped = r.numPendingTests + (r.numTodoTests ?? 0);
} else {
  failed = 1; // vitest did not even report: count the run itself as a failure
}
if (existsSync(pgtap)) {
  const p = JSON.parse(readFileSync(pgtap, "utf8"));
  passed += p.assertions - p.failed;
  failed += p.failed;
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\nvitest tests and pgTAP assertions together, in ${seconds} s:`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(vitest.status === 0 && failed === 0 ? 0 : 1);
