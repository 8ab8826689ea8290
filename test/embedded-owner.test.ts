// One owner per embedded (PGlite) data directory, with real processes: the first process owns
// the directory and serves it, every other one connects to it; a SIGKILLed owner leaves no stale
// lock; a process that holds the directory without serving it makes the next one wait, or give
// up with one line; `npm start` refuses a directory another process serves; the CLI uses the
// owner's server. One data directory for the whole file (a first PGlite start is slow).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirLock, EmbeddedDatabaseBusyError, readOwnerInfo } from "../src/rpc/embedded-lock.ts";
import { openEmbedded } from "../src/rpc/embedded.ts";
import { PGliteTransport } from "../src/rpc/pglite.ts";
import { migrate } from "../src/rpc/migrate.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSX = fileURLToPath(import.meta.resolve("tsx"));
const FIXTURE = join(ROOT, "test/fixtures/embedded-process.ts");
const dir = mkdtempSync(join(tmpdir(), "tw-owner-"));
const dataDir = join(dir, ".taskwarden/pglite");
const started: ChildProcess[] = [];

interface Report {
  pid: number;
  owner: boolean;
  serving: boolean;
  tasks: number;
  child?: number;
}

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, TASKWARDEN_DATA_DIR: dataDir, DASHBOARD_PORT: "0" };
  for (const k of ["DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "DASHBOARD_TOKEN"]) delete e[k];
  return e;
}

/** A process of the fixture; resolves its first JSON line, its exit and what it wrote on stderr. */
function fixture(...args: string[]) {
  const child = spawn(process.execPath, ["--import", TSX, FIXTURE, ...args], { cwd: ROOT, env: env(), stdio: ["ignore", "pipe", "pipe"] });
  started.push(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const report = new Promise<Report>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line && out.includes("\n")) resolve(JSON.parse(line) as Report);
    });
    void exited.then((code) => reject(new Error(`fixture exited ${code} before reporting:\n${stderr}`)));
  });
  report.catch(() => {});
  return { child, exited, report, stderr: () => stderr };
}

function command(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(cmd, args, { cwd: ROOT, env: env(), stdio: ["ignore", "pipe", "pipe"], detached: true });
  started.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, out })));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function taskCount(): Promise<number> {
  const t = await PGliteTransport.open(dataDir, { role: "the test" });
  try {
    const [row] = await t.query<{ n: number }>("select count(*)::int as n from taskwarden.tasks where task_type = 'embedded-owner'");
    return row!.n;
  } finally {
    await t.close();
  }
}

beforeAll(async () => {
  // The first start of a data directory is its slowest part: done once, here.
  const t = await PGliteTransport.open(dataDir);
  await migrate(t);
  await t.close();
}, 300_000);

afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("one owner per embedded data directory", () => {
  it("in one process too: a second open of a held directory is refused, naming the holder", async () => {
    const first = await PGliteTransport.open(dataDir, { role: "first transport" });
    try {
      const err = await PGliteTransport.open(dataDir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmbeddedDatabaseBusyError);
      expect((err as Error).message).toBe(`the embedded database in ${dataDir} is in use by pid ${process.pid} (first transport)`);
    } finally {
      await first.close();
    }
    // Released on close: the next open succeeds.
    await (await PGliteTransport.open(dataDir)).close();
  }, 120_000);

  it("two processes: the first owns and serves the directory, the second connects to it, and both see one database", async () => {
    const before = await taskCount();
    const a = fixture("hold");
    const ra = await a.report;
    expect(ra).toMatchObject({ owner: true, serving: true, tasks: before + 1 });
    expect(readOwnerInfo(dataDir)).toMatchObject({ pid: ra.pid, role: "test fixture", database_url: expect.stringMatching(/^postgres:\/\/postgres:.+@127\.0\.0\.1:\d+\/postgres$/) });

    const b = fixture("once");
    const rb = await b.report;
    // The second one is a client of the first: it sees A's task and adds its own to the same database.
    expect(rb).toMatchObject({ owner: false, tasks: before + 2 });
    expect(await b.exited).toBe(0);

    a.child.kill("SIGTERM");
    expect(await a.exited).toBe(0);
    // A clean exit leaves nothing behind: the lock is free and says nothing.
    expect(DataDirLock.isHeld(dataDir)).toBe(false);
    expect(readOwnerInfo(dataDir)).toBeUndefined();
    expect(await taskCount()).toBe(before + 2);
  }, 240_000);

  it("a SIGKILLed owner frees the directory at once, even while a process it started lives on", async () => {
    const before = await taskCount();
    const a = fixture("hold-child");
    const ra = await a.report;
    expect(ra.owner).toBe(true);
    expect(alive(ra.child!)).toBe(true);
    a.child.kill("SIGKILL");
    await a.exited;
    // Its words stay behind, but the kernel dropped its lock: nobody waits for a timeout.
    expect(readOwnerInfo(dataDir)?.pid).toBe(ra.pid);
    expect(alive(ra.child!)).toBe(true);
    expect(DataDirLock.isHeld(dataDir)).toBe(false);
    const t0 = performance.now();
    const opened = await openEmbedded(dataDir, { role: "the test", serve: false, waitMs: { starting: 1000, busy: 1000 } });
    const tookMs = performance.now() - t0;
    try {
      expect(opened.role).toBe("owner");
      // What the killed owner committed survived it.
      const [row] = await opened.transport.query<{ n: number }>("select count(*)::int as n from taskwarden.tasks where task_type = 'embedded-owner'");
      expect(row!.n).toBe(before + 1);
      expect(readOwnerInfo(dataDir)).toMatchObject({ pid: process.pid, role: "the test" });
    } finally {
      await opened.transport.close();
      process.kill(ra.child!, "SIGKILL");
    }
    console.log(`a SIGKILLed owner's directory reopened by another process in ${Math.round(tookMs)} ms`);
  }, 240_000);

  it("a process that holds the directory without serving it makes the next one wait and then own it, or give up with one line", async () => {
    const holder = await PGliteTransport.open(dataDir, { role: "taskwarden status" });
    const patient = fixture("once");
    const impatient = fixture("once", "1500");
    try {
      expect(await impatient.exited).toBe(1);
      expect(impatient.stderr()).toMatch(/^waiting for pid \d+\n/);
      expect(impatient.stderr().trim().split("\n").at(-1)).toBe(
        `fixture: the embedded database in ${dataDir} is held by pid ${process.pid} (taskwarden status), which does not share it; ` +
          "stop it, or run `npm start` first (it keeps the database and shares it with every worker and command)",
      );
      await expect.poll(() => patient.stderr(), { timeout: 60_000 }).toContain(`waiting for pid ${process.pid}`);
    } finally {
      await holder.close();
    }
    // The holder is gone: the patient one owns the directory now.
    expect(await patient.report).toMatchObject({ owner: true });
    expect(await patient.exited).toBe(0);
  }, 240_000);

  it("npm start refuses a directory another process serves, naming it; the CLI uses that process's server", async () => {
    const a = fixture("hold");
    const ra = await a.report;
    try {
      const npm = await command("npm", ["start", "--silent"]);
      expect(npm.code).toBe(1);
      expect(npm.out).toMatch(new RegExp(`^npm start: the embedded database in ${dataDir} is held by pid ${ra.pid} \\(test fixture\\); stop it first`, "m"));
      expect(npm.out).not.toMatch(/\n\s+at /);

      const cli = await command(process.execPath, [join(ROOT, "bin/taskwarden.mjs"), "--json", "status"]);
      expect(cli.code).toBe(0);
      expect((JSON.parse(cli.out) as { tasks: { queued: number } }).tasks.queued).toBeGreaterThanOrEqual(ra.tasks);
      // The owner is still the fixture: the command was its client.
      expect(readOwnerInfo(dataDir)?.pid).toBe(ra.pid);
    } finally {
      a.child.kill("SIGTERM");
      await a.exited;
    }
    // With no owner, a command owns the directory for its own run and lets go of it.
    const cli = await command(process.execPath, [join(ROOT, "bin/taskwarden.mjs"), "--json", "status"]);
    expect(cli.code).toBe(0);
    expect(DataDirLock.isHeld(dataDir)).toBe(false);
  }, 240_000);
});
