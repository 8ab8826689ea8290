// What a newcomer sees when running the example in a terminal: readable log lines, not JSON, and a
// summary that counts a retried attempt as retried, not as a failure. The terminal is a real
// pseudo-terminal (util-linux `script`), so the logger sees stdout as a TTY exactly as it would in
// a shell; a Ctrl-C typed into it stops the example.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createLogger, prettyDestination, prettyLine } from "../src/log.ts";
import { freshDatabase } from "./support/db.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

describe("log lines on a terminal", () => {
  it("a JSON record becomes one readable line: time, level, worker, message, fields; errors as type and message", () => {
    const line = prettyLine(
      JSON.stringify({
        level: "warn", time: "2026-11-30T09:01:02.345Z", pid: 42, worker_id: "greet-1#a1b2", worker_type: "greet",
        msg: "task failed", task_id: 3, attempt: 1, err: { type: "Error", message: "flaky upstream", stack: "Error: flaky upstream\n    at x" },
        note: "two words",
      }),
    );
    expect(line).toBe(`09:01:02 WARN  [greet-1#a1b2] task failed  task_id=3 attempt=1 err="Error: flaky upstream" note="two words"\n`);
    expect(prettyLine("not json")).toBe("not json\n");
  });

  it("secrets are redacted before the readable format sees them; colour only on a TTY", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", destination: prettyDestination({ write: (s: string) => lines.push(s), isTTY: false }) });
    log.info({ password: "hunter2", nested: { SMTP_PASSWORD: "also-secret" } }, "connecting");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ INFO  connecting {2}password=\[redacted\] nested=\{"SMTP_PASSWORD":"\[redacted\]"\}\n$/);
    expect(lines[0]).not.toMatch(/hunter2|also-secret/);
    expect(lines[0]).not.toMatch(ANSI);
    const tty: string[] = [];
    createLogger({ level: "info", destination: prettyDestination({ write: (s: string) => tty.push(s), isTTY: true }) }).warn("careful");
    expect(tty[0]).toMatch(ANSI);
  });
});

describe("examples/worker.ts in a terminal", () => {
  it("prints readable lines, and its summary counts the retried attempt as retried, not failed", async () => {
    const url = await freshDatabase();
    // `script` gives the child a pseudo-terminal; its output (the terminal's) comes back on our pipe.
    const proc = spawn("script", ["-qefc", "exec node --import tsx examples/worker.ts", "/dev/null"], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: "info", EXAMPLE_TASKS: "3", DATABASE_URL: url, NO_COLOR: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    const plain = () => out.replace(ANSI, "").replace(/\r/g, "");
    // Ada, Grace and "flaky Linus", who fails his first attempt and is retried after a backoff.
    await expect
      .poll(() => plain().match(/ task completed /g)?.length ?? 0, { timeout: 60_000, interval: 250 })
      .toBe(3);
    proc.stdin.write("\x03"); // Ctrl-C, through the terminal's line discipline: a SIGINT
    expect(await exited).toBe(0);

    const lines = plain().split("\n").filter((l) => l.trim() !== "");
    expect(lines.filter((l) => l.trimStart().startsWith("{"))).toEqual([]);
    expect(plain()).toMatch(/^\d\d:\d\d:\d\d WARN  \[greet-[^\]]+\] task failed {2}.*attempt=1 .*"Error: flaky upstream: try again"/m);
    expect(plain()).toMatch(/^\d\d:\d\d:\d\d INFO  \[greet-[^\]]+\] greeted {2}.*greeting="Hello, flaky Linus!"/m);
    // Colour, since this is a terminal.
    expect(out).toMatch(ANSI);
    expect(plain()).toContain("stopped (signal:SIGINT): 3 completed, 0 failed, 0 released, 1 retried");
  }, 90_000);
});
