// `npm start` smoke test: the real command with no database configured (embedded PGlite in a
// temp dir), real worker processes, a real SIGKILL, a real drain; stopped with SIGINT like a
// terminal's Ctrl-C.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import type { Snapshot } from "../src/dashboard/data.ts";
import { PGliteTransport } from "../src/rpc/pglite.ts";
import { readOwnerInfo } from "../src/rpc/embedded-lock.ts";
import { freshDatabase } from "./support/db.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "tw-start-"));
let npm: ReturnType<typeof spawn> | undefined;

afterAll(() => {
  if (npm && npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid!, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** `npm start` with this environment; collects its output. */
function npmStart(extraEnv: Record<string, string>) {
  const env: Record<string, string | undefined> = { ...process.env, DASHBOARD_PORT: "0", ...extraEnv };
  for (const k of ["DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "DASHBOARD_TOKEN"]) if (!(k in extraEnv)) delete env[k];
  // Its own process group, like a terminal session: a Ctrl-C is a SIGINT to the whole group.
  const child = spawn("npm", ["start", "--silent"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const waitFor = async (re: RegExp, ms: number): Promise<RegExpExecArray> => {
    const until = Date.now() + ms;
    for (;;) {
      const m = re.exec(out);
      if (m) return m;
      if (Date.now() > until || child.exitCode !== null) throw new Error(`no ${re} after ${ms} ms; output:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { child, exited, waitFor, output: () => out, env };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function snapshot(base: string): Promise<Snapshot> {
  return (await (await fetch(new URL("api/snapshot", base))).json()) as Snapshot;
}

const completedOnChart = (s: Snapshot) => s.activity.reduce((n, b) => n + b.completed, 0);

it("npm start: dashboard answers, the demo's killed worker's task is recovered and completed, the work goes on, a drain is a clean stop, Ctrl-C stops everything", async () => {
  const dataDir = join(dir, "pglite");
  const t0 = Date.now();
  const started = npmStart({ TASKWARDEN_DATA_DIR: dataDir });
  npm = started.child;
  const { exited, waitFor, env } = started;

  const [, url, token] = await waitFor(/dashboard: (http:\/\/\S+\/)\?token=(\S+) /, 60_000);
  const page = await fetch(url!);
  const dashboardMs = Date.now() - t0;
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("<h1>taskwarden</h1>");
  // What a newcomer waits for: the chart's first completed task.
  await expect.poll(async () => completedOnChart(await snapshot(url!)), { timeout: 60_000, interval: 250 }).toBeGreaterThan(0);
  const firstCompletedMs = Date.now() - t0;

  // The demo kills a worker mid-task; once its heartbeat is 4 s old the task is taken back and another
  // worker completes it. Two duties race for it, and either is right: the reaper's dead-worker step
  // (every 2 s) or the startup recovery of the killed worker's replacement (same configured id).
  const [, killedWorker, killedPid, taskId] = await waitFor(/SIGKILL -> worker (\S+) \(pid (\d+)\) in the middle of task (\d+)/, 60_000);
  const killedAt = Date.now();
  const [, takenBackAs] = await waitFor(
    new RegExp(`reaper: task ${taskId} requeued \\((worker_dead|recovered), was held by ${killedWorker!.replace(/[#]/g, "\\$&")}\\)`),
    30_000,
  );
  const [, completedBy, seconds] = await waitFor(new RegExp(`task ${taskId} recovered — completed by (\\S+) ([\\d.]+) s after its worker was killed`), 30_000);
  const recoveryMs = Date.now() - killedAt;
  expect(completedBy).not.toBe(killedWorker);
  expect(alive(Number(killedPid))).toBe(false);
  expect(Number(seconds)).toBeLessThan(20);

  // The dashboard shows it too: the killed worker dead, the task completed on its second attempt.
  const snap = await snapshot(url!);
  const dead = snap.workers!.find((w) => w.worker_id === killedWorker);
  expect(dead?.dead).toBe(true);
  expect(snap.reaperActions!.some((a) => a.task_id === Number(taskId) && a.reason === takenBackAs)).toBe(true);
  // The killed worker is replaced: three live workers again, and the work goes on.
  expect(started.output()).toContain(`demo: worker ${killedWorker!.split("#")[0]} (pid ${killedPid}) is gone (killed by the demo); a new`);
  const live = (s: Snapshot) => s.workers.filter((w) => !w.dead && w.status !== "stopped");
  await expect.poll(async () => live(await snapshot(url!)).length, { timeout: 60_000, interval: 500 }).toBe(3);
  const before = completedOnChart(await snapshot(url!));
  await expect.poll(async () => completedOnChart(await snapshot(url!)), { timeout: 30_000, interval: 500 }).toBeGreaterThanOrEqual(before + 3);
  // Now and then a task fails and is retried: the demo says so, and the chart counts it.
  await waitFor(/demo: task \d+ failed on attempt 1 \(error, by \S+\)/, 60_000);
  expect((await snapshot(url!)).activity.reduce((n, b) => n + b.failed, 0)).toBeGreaterThan(0);

  // A drain from the dashboard, with the token this run printed: the worker stops cleanly, the
  // demo says so (not "exited unexpectedly"), it stays listed as stopped, and a new one replaces it.
  const [drained] = live(await snapshot(url!));
  const drain = await fetch(new URL("actions/drain-worker", url), {
    method: "POST",
    body: new URLSearchParams({ worker_id: drained!.worker_id }),
    headers: { accept: "application/json", authorization: `Bearer ${token}` },
  });
  expect(drain.status).toBe(200);
  await waitFor(new RegExp(`demo: worker ${drained!.worker_id.split("#")[0]} \\(pid ${drained!.pid}\\) was drained and stopped cleanly; a new`), 30_000);
  expect(started.output()).not.toMatch(/exited unexpectedly/);
  const afterDrain = await snapshot(url!);
  expect(afterDrain.workers.find((w) => w.worker_id === drained!.worker_id)).toMatchObject({ status: "stopped", dead: false });
  expect(afterDrain.health.workers.stopped).toBe(1);
  await expect.poll(async () => live(await snapshot(url!)).length, { timeout: 60_000, interval: 500 }).toBe(3);
  const livePids = live(await snapshot(url!)).map((w) => w.pid!);

  // The embedded database is reachable by the CLI while npm start holds it.
  const cli = spawn(process.execPath, [join(ROOT, "bin/taskwarden.mjs"), "--json", "tasks", "show", taskId!], { env, stdio: ["ignore", "pipe", "pipe"] });
  let cliOut = "";
  cli.stdout!.on("data", (d: Buffer) => (cliOut += d.toString()));
  expect(await new Promise((r) => cli.once("exit", r))).toBe(0);
  const detail = JSON.parse(cliOut) as { task: { status: string; attempts: number }; events: { event: string; reason: string | null }[] };
  expect(detail.task).toMatchObject({ status: "completed", attempts: 2 });
  expect(detail.events.map((e) => `${e.event}:${e.reason ?? ""}`)).toEqual(["claimed:", `requeued:${takenBackAs}`, "claimed:", "completed:"]);

  // A POST action works with the token this run printed, and is refused without it.
  const refused = await fetch(new URL("actions/drain-worker", url), { method: "POST", body: new URLSearchParams({ worker_id: dead!.worker_id }), headers: { accept: "application/json" } });
  expect(refused.status).toBe(403);
  expect(token!.length).toBeGreaterThanOrEqual(16);

  // A second npm start on the same data directory refuses, instead of opening it twice.
  const second = npmStart({ TASKWARDEN_DATA_DIR: dataDir });
  expect(await second.exited).toBe(1);
  expect(second.output()).toMatch(new RegExp(`^npm start: npm start is already running for ${dataDir} \\(pid \\d+\\); stop it first$`, "m"));

  // Ctrl-C: SIGINT to npm and to npm start at once (npm forwards it too); one clean stop.
  process.kill(-npm.pid!, "SIGINT");
  const t1 = Date.now();
  expect(await exited).toBe(0);
  expect(Date.now() - t1).toBeLessThan(15_000);
  expect(started.output()).toMatch(/stopping \(SIGINT\)\n.*stopped\n/);
  expect(started.output()).not.toMatch(/again: exiting/);
  expect(livePids.filter(alive)).toEqual([]);
  // It let go of the directory and left no address behind.
  expect(readOwnerInfo(dataDir)).toBeUndefined();

  // The workers stopped gracefully before the database closed: nothing left running, rows stopped.
  const db = await PGliteTransport.open(dataDir);
  try {
    const [left] = await db.query<{ n: number }>("select count(*)::int as n from taskwarden.tasks where status = 'running'");
    expect(left!.n).toBe(0);
    const rows = await db.query<{ pid: number; status: string }>("select pid, status from taskwarden.worker_heartbeats");
    // Every live worker stopped, except one the demo may have killed since (every few minutes).
    const killedSince = [...started.output().matchAll(/SIGKILL -> worker \S+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    const expected = livePids.filter((p) => !killedSince.includes(p));
    expect(expected.length).toBeGreaterThanOrEqual(2);
    expect(rows.filter((r) => expected.includes(r.pid)).map((r) => r.status)).toEqual(expected.map(() => "stopped"));
  } finally {
    await db.close();
  }
  console.log(
    `npm start: dashboard answered after ${dashboardMs} ms; the chart showed its first completed task ${firstCompletedMs} ms after npm start; ` +
      `killed worker's task completed ${recoveryMs} ms after the kill (demo log: ${seconds} s)`,
  );
}, 300_000);

it("npm start with DATABASE_URL: that database, no demo, the reaper every 30 s; an unreachable one is a one-line error", async () => {
  const s = npmStart({ DATABASE_URL: await freshDatabase() });
  npm = s.child;
  const [, url] = await s.waitFor(/dashboard: (http:\/\/\S+\/) \(answering/, 30_000);
  const snap = (await (await fetch(new URL("api/snapshot", url))).json()) as Snapshot;
  expect(snap.health.workers.total).toBe(0);
  expect(s.output()).toMatch(/connected to the database at [\w.-]+:\d+/);
  expect(s.output()).toMatch(/reap\('local'\) every 30\.0 s/);
  expect(s.output()).not.toMatch(/demo/);
  s.child.kill("SIGTERM");
  expect(await s.exited).toBe(0);

  const down = npmStart({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing" });
  expect(await down.exited).toBe(1);
  expect(down.output()).toMatch(/^npm start: cannot reach the database at 127\.0\.0\.1:1: .*ECONNREFUSED/m);
  expect(down.output()).not.toMatch(/\n\s+at /);
}, 60_000);
