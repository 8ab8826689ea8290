// `taskwarden supervise` as people run it: the real bin, real worker processes, real signals.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { SuperviseEvent } from "../src/supervise.ts";

const BIN = new URL("../bin/taskwarden.mjs", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "tw-supervise-"));
const spawned: ChildProcess[] = [];

afterAll(() => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

type Event = SuperviseEvent & { at: string };

function supervise(args: string[]) {
  // These scripts use no database. With a DATABASE_URL the supervisor leaves the embedded one
  // alone (it would otherwise own .taskwarden/ and open PGlite first: seconds, under load tens).
  const env = { ...process.env, DATABASE_URL: "postgres://unused@127.0.0.1:9/unused" };
  const child = spawn(process.execPath, [BIN, "--json", "supervise", ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  spawned.push(child);
  const events: Event[] = [];
  let stderr = "";
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split("\n");
    buf = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as Event);
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  // A timeout shows the events so far and stderr rather than `false`.
  const waitFor = (pred: (e: Event[]) => boolean, ms = 15_000) =>
    expect.poll(() => pred(events) || { events: [...events], stderr }, { timeout: ms, interval: 25 }).toBe(true);
  return { child, events, exited, waitFor, stderr: () => stderr };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("supervise", () => {
  it("restarts a crashing worker with growing delays, and starts over after it stayed up", async () => {
    const log = join(dir, "starts.log");
    const counter = join(dir, "count");
    writeFileSync(counter, "0");
    // Crashes at once three times, then stays up 5.5 s (longer than --reset-after) before crashing
    // again. "At once" includes starting node, which takes over a second on a loaded machine:
    // --reset-after leaves it room, or a quick crash would count as a healthy run.
    const script = join(dir, "crashy.mjs");
    writeFileSync(
      script,
      `import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
const n = Number(readFileSync(${JSON.stringify(counter)}, "utf8")) + 1;
writeFileSync(${JSON.stringify(counter)}, String(n));
appendFileSync(${JSON.stringify(log)}, Date.now() + "\\n");
setTimeout(() => process.exit(1), n === 4 ? 5500 : 20);
`,
    );
    const s = supervise([script, "--workers", "1", "--backoff-initial", "150", "--backoff-max", "5000", "--reset-after", "5000"]);
    await s.waitFor((e) => e.filter((x) => x.event === "restarting").length >= 5, 60_000);
    const delays = s.events.flatMap((e) => (e.event === "restarting" ? [e.delayMs] : []));
    // 150, 300, 600 while it keeps crashing at once; back to 150 after its 5.5 s of uptime, then 300.
    expect(delays.slice(0, 5)).toEqual([150, 300, 600, 150, 300]);
    const exits = s.events.filter((e) => e.event === "exited");
    expect(exits.slice(0, 4).map((e) => (e as { code: number }).code)).toEqual([1, 1, 1, 1]);

    // The real gaps between starts honour the delays: each is at least its delay. (They also
    // include a process start, which on a loaded machine can outweigh the delay itself, so
    // their order is not compared.)
    const starts = readFileSync(log, "utf8").trim().split("\n").map(Number);
    const gaps = starts.slice(1, 4).map((t, i) => t - starts[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(150);
    expect(gaps[1]).toBeGreaterThanOrEqual(300);
    expect(gaps[2]).toBeGreaterThanOrEqual(600);

    s.child.kill("SIGTERM");
    const { code } = await s.exited;
    expect(code).toBe(0);
    expect(s.events.at(-1)?.event).toBe("stopped");
  });

  it("SIGTERM (even delivered twice) is forwarded to every worker once; one that ignores it is killed after --stop-timeout", async () => {
    const log = join(dir, "signals.log");
    const ready = join(dir, "ready.log");
    writeFileSync(log, "");
    writeFileSync(ready, "");
    const script = join(dir, "graceful.mjs");
    // Slot 3 ignores SIGTERM (a stuck worker); the others shut down gracefully.
    writeFileSync(
      script,
      `import { appendFileSync } from "node:fs";
const slot = process.env.TASKWARDEN_SUPERVISOR_SLOT;
process.on("SIGTERM", () => {
  appendFileSync(${JSON.stringify(log)}, "SIGTERM " + slot + "\\n");
  if (slot !== "3") setTimeout(() => process.exit(0), 100);
});
appendFileSync(${JSON.stringify(ready)}, slot + "\\n");
setInterval(() => {}, 1000);
`,
    );
    const s = supervise([script, "--workers", "3", "--stop-timeout", "1000"]);
    await s.waitFor((e) => e.filter((x) => x.event === "started").length === 3);
    const pids = s.events.flatMap((e) => (e.event === "started" ? [e.pid] : []));
    expect(pids.every(alive)).toBe(true);
    // Each script says when its handler is installed (a process start can take a while under load).
    await s.waitFor(() => readFileSync(ready, "utf8").trim().split("\n").filter(Boolean).length === 3);

    const t0 = Date.now();
    s.child.kill("SIGTERM");
    // The same stop arriving twice (terminal and npx both deliver a Ctrl-C) is still one stop.
    setTimeout(() => s.child.kill("SIGTERM"), 50);
    const { code } = await s.exited;
    const took = Date.now() - t0;
    expect(code).toBe(0);
    expect(readFileSync(log, "utf8").trim().split("\n").sort()).toEqual(["SIGTERM 1", "SIGTERM 2", "SIGTERM 3"]);
    const killed = s.events.filter((e) => e.event === "killed");
    expect(killed.map((e) => (e as { slot: number }).slot)).toEqual([3]);
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(5000);
    // No restart during shutdown, and nothing left running.
    expect(s.events.filter((e) => e.event === "restarting")).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
  });

  it("a worker that exits cleanly (drained) is not restarted; the supervisor ends when all have", async () => {
    const script = join(dir, "done.mjs");
    writeFileSync(script, "setTimeout(() => process.exit(0), 50);\n");
    const s = supervise([script, "--workers", "2"]);
    const { code } = await s.exited;
    expect(code).toBe(0);
    expect(s.events.filter((e) => e.event === "finished")).toHaveLength(2);
    expect(s.events.filter((e) => e.event === "restarting")).toHaveLength(0);
    expect(s.events.map((e) => e.event)).not.toContain("stopping");
  });

  it("bad input: a missing script or a bad --workers is one line on stderr and exit code 2", async () => {
    for (const args of [[join(dir, "missing.mjs")], [join(dir, "done.mjs"), "--workers", "0"], [join(dir, "done.mjs"), "--workers", "two"]]) {
      const s = supervise(args);
      const { code } = await s.exited;
      expect(code).toBe(2);
      const lines = s.stderr().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/worker script not found|--workers must be/);
      expect(s.stderr()).not.toMatch(/\n\s+at /);
    }
  });
});
