// The demo's worker processes live only as long as the `npm start` that spawned them: they are
// told by their IPC channel. A parent that dies while a worker is still loading (a slow start on
// a loaded host, a Ctrl-C right after `npm start`) must not leave it running on its own.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { scriptCommand } from "../src/supervise.ts";
import { freshDatabase } from "./support/db.ts";

const SCRIPT = fileURLToPath(new URL("../src/demo/worker.ts", import.meta.url));
const children: ReturnType<typeof spawn>[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

it("a demo worker whose parent is gone before it has loaded stops instead of running on its own", async () => {
  const url = await freshDatabase();
  const { command, args } = scriptCommand(SCRIPT);
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    env: { ...process.env, DATABASE_URL: url, DEMO_WORKER_ID: "demo-orphan", LOG_LEVEL: "info", WORKER_HEARTBEAT_INTERVAL: "1", TASK_LEASE_S: "30" },
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // The channel closes as it would when the parent dies, long before the script has loaded.
  child.disconnect();
  // The database is reachable: only the lost parent can make it stop. A worker that ran on would
  // beat every second; give it a few beats' worth of chances to show it stopped.
  const code = await Promise.race([exited, new Promise<"running">((r) => setTimeout(() => r("running"), 30_000))]);
  expect(code, out).toBe(0);
  expect(out).not.toMatch(/"msg":"worker started"/);
}, 60_000);
