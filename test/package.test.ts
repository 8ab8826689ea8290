// taskwarden as a library: a user's own project imports "taskwarden" (package.json exports),
// not ./src/..., and runs a worker with it against a real database.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { afterAll, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

it("a user's worker imports taskwarden by name and completes a task", async () => {
  const url = await freshDatabase();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [task] = await sql`select id::int from taskwarden.enqueue_task('greet', '{"name": "Ada"}')`;
    // What `npm install taskwarden` (or a folder / git dependency) leaves in a user's project.
    const app = mkdtempSync(join(tmpdir(), "taskwarden-user-"));
    dirs.push(app);
    mkdirSync(join(app, "node_modules"));
    symlinkSync(ROOT, join(app, "node_modules", "taskwarden"), "dir");
    // tsx, a dependency of taskwarden, is hoisted next to it by npm; the user runs TypeScript with it.
    symlinkSync(join(ROOT, "node_modules", "tsx"), join(app, "node_modules", "tsx"), "dir");
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "my-app", type: "module", private: true }));
    writeFileSync(
      join(app, "worker.ts"),
      `import { connect, loadConfig, Worker } from "taskwarden";
import type { TaskHandler } from "taskwarden/worker";
const config = loadConfig();
const tw = await connect(config);
const handler: TaskHandler = async (task) => ({ hello: (task.payload as { name: string }).name });
const worker = new Worker({ type: "greet", rpc: tw, config, maxLoops: 1, handleSignals: false, handler });
const summary = await worker.start();
await tw.close();
console.log(JSON.stringify(summary));
`,
    );
    const { stdout } = await run(process.execPath, ["--import", "tsx", "worker.ts"], {
      cwd: app,
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: "silent" },
      timeout: 60_000,
    });
    expect(JSON.parse(stdout.trim().split("\n").pop()!)).toMatchObject({ completed: 1, failed: 0 });
    const [row] = await sql`select status, result from taskwarden.tasks where id = ${task!.id}`;
    expect(row).toEqual({ status: "completed", result: { hello: "Ada" } });
  } finally {
    await sql.end({ timeout: 5 });
  }
});
