// A production install: the project's tracked files, `npm install --omit=dev` (no tsx from
// devDependencies, no vitest), then what production runs: the CLI, `npm start` against a
// server, the systemd units' and the PM2 file's command lines, each as a real process.
import { execFile, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
let app: string;
let url: string;
let sql: postgres.Sql;

/** The environment a service manager gives: no dev tools on PATH beyond node itself. */
function serviceEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: app,
    DATABASE_URL: url,
    LOG_LEVEL: "silent",
    ...extra,
  };
}

beforeAll(async () => {
  url = await freshDatabase();
  sql = postgres(url, { max: 1, onnotice: () => {} });
  app = mkdtempSync(join(tmpdir(), "taskwarden-prod-"));
  // What a fresh clone holds: the tracked files (as they are in this working tree).
  const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" })
    .stdout.split("\n").filter((f) => f && existsSync(join(ROOT, f)));
  for (const f of files) {
    mkdirSync(dirname(join(app, f)), { recursive: true });
    copyFileSync(join(ROOT, f), join(app, f));
  }
  await run("npm", ["install", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"], {
    cwd: app,
    env: { ...process.env, npm_config_loglevel: "error" },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  });
}, 300_000);

afterAll(async () => {
  await sql?.end({ timeout: 5 });
  if (app) rmSync(app, { recursive: true, force: true });
});

describe("after npm install --omit=dev", () => {
  it("has the runtime and none of the dev tools", () => {
    expect(existsSync(join(app, "node_modules/tsx"))).toBe(true);
    expect(existsSync(join(app, "node_modules/vitest"))).toBe(false);
    expect(existsSync(join(app, "node_modules/supabase"))).toBe(false);
  });

  it("npx taskwarden --help and status work", async () => {
    const help = await run("npx", ["--no-install", "taskwarden", "--help"], { cwd: app, env: serviceEnv() });
    expect(help.stdout).toMatch(/Operate taskwarden/);
    const status = await run("npx", ["--no-install", "taskwarden", "--json", "status"], { cwd: app, env: serviceEnv() });
    expect(JSON.parse(status.stdout)).toHaveProperty("workers");
  });

  it("npm start against a server serves the dashboard and stops on SIGINT", async () => {
    const p = spawn("npm", ["start", "--", "--port", "0"], { cwd: app, env: serviceEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
    await expect.poll(() => /https?:\/\/\S+/.exec(out)?.[0], { timeout: 60_000, interval: 200 }).toBeTruthy();
    const dashboard = /https?:\/\/[^\s)]+/.exec(out)![0];
    expect((await fetch(dashboard)).status).toBe(200);
    process.kill(-p.pid!, "SIGINT");
    expect(await exited).toBe(0);
  });

  it("the systemd reap unit's ExecStart reaps", async () => {
    const unit = readFileSync(join(app, "deploy/taskwarden-reap.service"), "utf8");
    const exec = /^ExecStart=(.+)$/m.exec(unit)![1]!.replaceAll("/opt/taskwarden", app).split(/\s+/);
    await run(exec[0]!, exec.slice(1), { cwd: app, env: serviceEnv() });
    const [row] = await sql`select count(*)::int as n from taskwarden.reaper_runs where source = 'systemd'`;
    expect(row!.n).toBe(1);
  });

  it("the systemd worker unit and the PM2 file run a worker that imports taskwarden", async () => {
    const [task] = await sql`select id::int from taskwarden.enqueue_task('greet', '{"name": "Ada"}')`;
    writeFileSync(
      join(app, "worker.ts"),
      `import { connect, loadConfig, Worker } from "taskwarden";
const config = loadConfig();
const tw = await connect(config);
await new Worker({ type: "greet", rpc: tw, config, maxLoops: 1, handler: async (t) => ({ hi: (t.payload as { name: string }).name }) }).start();
await tw.close();
`,
    );
    const unit = readFileSync(join(app, "deploy/taskwarden-worker@.service"), "utf8");
    const exec = /^ExecStart=(.+)$/m.exec(unit)![1]!.replaceAll("/opt/taskwarden", app).split(/\s+/);
    await run(exec[0]!, exec.slice(1), { cwd: app, env: serviceEnv(), timeout: 60_000 });
    expect((await sql`select status from taskwarden.tasks where id = ${task!.id}`)[0]!.status).toBe("completed");

    // PM2 starts `interpreter interpreter_args script args` from the project root.
    const { apps } = createRequire(import.meta.url)(join(app, "deploy/ecosystem.config.cjs")) as {
      apps: { name: string; script: string; args?: string; interpreter?: string; interpreter_args?: string }[];
    };
    const [again] = await sql`select id::int from taskwarden.enqueue_task('greet', '{"name": "Grace"}')`;
    for (const a of apps) {
      const argv = [...(a.interpreter_args?.split(" ") ?? []), a.script, ...(a.args?.split(" ") ?? [])];
      await run(a.interpreter ?? "node", argv, { cwd: app, env: serviceEnv(), timeout: 60_000 });
    }
    expect((await sql`select status from taskwarden.tasks where id = ${again!.id}`)[0]!.status).toBe("completed");
    expect((await sql`select count(*)::int as n from taskwarden.reaper_runs where source = 'pm2'`)[0]!.n).toBe(1);
  });
});
