// The example a newcomer runs, as the README says: `npx tsx examples/worker.ts` on a fresh clone
// (no .taskwarden/ yet), then under `taskwarden supervise --workers 2` (one database, every task
// run once), then while `npm start` runs (its tasks must land in the database npm start serves,
// and stay there; last, as its demo leaves short reaper thresholds in the database); and against
// DATABASE_URL. Stopped with Ctrl-C (SIGINT) each time.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { PGliteTransport } from "../src/rpc/pglite.ts";
import { freshDatabase } from "./support/db.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSX = fileURLToPath(import.meta.resolve("tsx"));
const EXAMPLE = join(ROOT, "examples/worker.ts");
// A fresh clone's working directory: the example's default data directory is .taskwarden/pglite in it.
const home = mkdtempSync(join(tmpdir(), "tw-example-"));
const dataDir = join(home, ".taskwarden/pglite");
const started: ChildProcess[] = [];

afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, "SIGKILL");
  rmSync(home, { recursive: true, force: true });
});

interface LogLine {
  msg: string;
  greeting?: string;
  task_id?: number;
  attempt?: number;
}

function environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: "info", DASHBOARD_PORT: "0", ...extra };
  for (const k of ["DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "TASKWARDEN_DATA_DIR", "DASHBOARD_TOKEN"]) if (!(k in extra)) delete env[k];
  return env;
}

/** A process in its own group (a terminal's Ctrl-C reaches the whole group); collects JSON log lines and the rest. */
function launch(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = home) {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  started.push(child);
  const lines: LogLine[] = [];
  let text = "";
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    for (const p of parts) {
      // JSON log lines; anything else (a command's pretty-printed --json output too) as text.
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        text += `${p}\n`;
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const interrupt = () => process.kill(-child.pid!, "SIGINT");
  return { child, lines, exited, interrupt, output: () => text };
}

async function runExample(env: NodeJS.ProcessEnv, tasks = 2) {
  const p = launch(process.execPath, ["--import", TSX, EXAMPLE], { ...env, EXAMPLE_TASKS: String(tasks) });
  await expect
    .poll(() => (p.child.exitCode === null ? p.lines.filter((l) => l.msg === "task completed").length : `exited: ${p.output()}`), { timeout: 240_000, interval: 200 })
    .toBe(tasks);
  p.interrupt();
  return { code: await p.exited, lines: p.lines, stderr: p.output() };
}

const greetings = (lines: LogLine[]) => lines.filter((l) => l.msg === "greeted").map((l) => l.greeting).sort();

describe("examples/worker.ts", () => {
  it("runs as is on a fresh clone (no .taskwarden/ yet)", async () => {
    expect(existsSync(join(home, ".taskwarden"))).toBe(false);
    const r = await runExample(environment());
    expect(r.code).toBe(0);
    expect(greetings(r.lines)).toEqual(["Hello, Ada!", "Hello, Grace!"]);
    expect(r.stderr).toContain("stopped (signal:SIGINT): 2 completed, 0 failed, 0 released");
    expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true);
  }, 300_000);

  it("under `taskwarden supervise --workers 2` on the embedded database: one database, every task run exactly once", async () => {
    const before = await (async () => {
      const db = await PGliteTransport.open(dataDir);
      try {
        // The claimed / completed events are what this test counts (off by default).
        await db.query("update taskwarden.settings set value = 'true' where key = 'log_success_events'");
        return (await db.query<{ n: number }>("select coalesce(max(id), 0)::int as n from taskwarden.tasks"))[0]!.n;
      } finally {
        await db.close();
      }
    })();
    const sup = launch(process.execPath, [join(ROOT, "bin/taskwarden.mjs"), "supervise", EXAMPLE, "--workers", "2"], environment({ EXAMPLE_TASKS: "3" }));
    // Each worker enqueues 3 (one of them "flaky Linus", who fails his first attempt).
    await expect
      .poll(() => (sup.child.exitCode === null ? sup.lines.filter((l) => l.msg === "task completed").length : `exited: ${sup.output()}`), { timeout: 300_000, interval: 250 })
      .toBe(6);
    sup.interrupt();
    expect(await sup.exited).toBe(0);

    const db = await PGliteTransport.open(dataDir);
    try {
      const tasks = await db.query<{ id: number; status: string; attempts: number }>(
        "select id, status, attempts from taskwarden.tasks where id > $1 order by id", [before]);
      expect(tasks).toHaveLength(6);
      expect(tasks.every((t) => t.status === "completed")).toBe(true);
      const events = await db.query<{ task_id: number; event: string; reason: string | null; worker_id: string | null }>(
        "select task_id, event, reason, worker_id from taskwarden.task_events where task_id > $1 order by id", [before]);
      for (const t of tasks) {
        // Each handler run is one claim, each attempt one claim, one completion per task.
        const started = sup.lines.filter((l) => l.msg === "task started" && l.task_id === t.id).length;
        const greeted = sup.lines.filter((l) => l.msg === "greeted" && l.task_id === t.id).length;
        const history = events.filter((e) => e.task_id === t.id);
        const claimed = history.filter((e) => e.event === "claimed").length;
        const completed = history.filter((e) => e.event === "completed").length;
        expect({ id: t.id, started, greeted, claimed, completed }, JSON.stringify(history)).toEqual({ id: t.id, started: t.attempts, greeted: 1, claimed: t.attempts, completed: 1 });
      }
      // The flaky ones took two attempts; nobody else did.
      expect(tasks.map((t) => t.attempts).sort()).toEqual([1, 1, 1, 1, 2, 2]);
    } finally {
      await db.close();
    }
  }, 500_000);

  it("runs while npm start runs: its tasks are in the database npm start serves, and stay there", async () => {
    const npm = launch("npm", ["start", "--silent"], environment({ TASKWARDEN_DATA_DIR: dataDir }), ROOT);
    await expect.poll(() => (npm.child.exitCode === null ? /running; Ctrl-C to stop/.test(npm.output()) : npm.output()), { timeout: 240_000, interval: 200 }).toBe(true);

    const r = await runExample(environment());
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("stopped (signal:SIGINT): 2 completed, 0 failed, 0 released");
    const ids = [...new Set(r.lines.filter((l) => l.msg === "greeted").map((l) => l.task_id!))];
    expect(ids).toHaveLength(2);

    // npm start's database has them (what its dashboard shows): asked through the CLI, which connects to it.
    for (const id of ids) {
      const cli = launch(process.execPath, [join(ROOT, "bin/taskwarden.mjs"), "--json", "tasks", "show", String(id)], environment({ TASKWARDEN_DATA_DIR: dataDir }), ROOT);
      expect(await cli.exited).toBe(0);
      const detail = JSON.parse(cli.output()) as { task: { task_type: string; status: string } };
      expect(detail.task).toMatchObject({ task_type: "greet", status: "completed" });
    }

    npm.interrupt();
    expect(await npm.exited).toBe(0);
    // …and keeps them once npm start has stopped.
    const db = await PGliteTransport.open(dataDir);
    try {
      const rows = await db.query<{ id: number; status: string }>("select id, status from taskwarden.tasks where id = any($1::bigint[]) and task_type = 'greet'", [ids]);
      expect(rows.map((x) => x.status)).toEqual(["completed", "completed"]);
    } finally {
      await db.close();
    }
  }, 400_000);

  it("runs against DATABASE_URL", async () => {
    const r = await runExample(environment({ DATABASE_URL: await freshDatabase() }));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("stopped (signal:SIGINT): 2 completed, 0 failed, 0 released");
  }, 120_000);
});
