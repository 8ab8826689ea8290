// The example a newcomer runs: on the embedded PGlite (no setup) and against DATABASE_URL it
// enqueues its tasks, completes them, and stops cleanly on Ctrl-C (SIGINT).
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

async function runExample(env: Record<string, string>): Promise<{ code: number | null; lines: { msg: string; greeting?: string }[]; stderr: string }> {
  const proc = spawn(process.execPath, ["--import", "tsx", "examples/worker.ts"], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "info", EXAMPLE_TASKS: "2", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: { msg: string; greeting?: string }[] = [];
  let stderr = "";
  let buf = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not complete its tasks:\n${stderr}`)), 30_000);
    proc.stdout.on("data", (d) => {
      buf += d;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const p of parts) lines.push(JSON.parse(p));
      if (lines.filter((l) => l.msg === "task completed").length === 2) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on("exit", () => reject(new Error(`example exited early:\n${stderr}`)));
  });
  proc.kill("SIGINT");
  return { code: await exited, lines, stderr };
}

describe("examples/worker.ts", () => {
  it("runs on the embedded PGlite with no setup", async () => {
    const dir = await mkdtemp(`${tmpdir()}/tw-example-`);
    const r = await runExample({ TASKWARDEN_DATA_DIR: `${dir}/data`, DATABASE_URL: "", SUPABASE_URL: "" });
    expect(r.code).toBe(0);
    expect(r.lines.filter((l) => l.msg === "greeted").map((l) => l.greeting).sort()).toEqual(["Hello, Ada!", "Hello, Grace!"]);
    expect(r.stderr).toContain("stopped (signal:SIGINT): 2 completed, 0 failed, 0 released");
  }, 40_000);

  it("runs against DATABASE_URL", async () => {
    const r = await runExample({ DATABASE_URL: await freshDatabase() });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("stopped (signal:SIGINT): 2 completed, 0 failed, 0 released");
  }, 40_000);
});
