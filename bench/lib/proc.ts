// Child processes for the benchmarks and the chaos run: real processes, real signals.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Starts `node --import tsx <script> ...args` (so .ts runs directly) with the given env additions.
 * stdin is a pipe the child watches: when this process dies, the child's stdin closes and it exits.
 */
export function spawnTs(script: string | URL, args: string[], env: Record<string, string> = {}): ChildProcess {
  const path = script instanceof URL ? fileURLToPath(script) : script;
  return spawn(process.execPath, ["--import", "tsx", path, ...args], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Resolves when the child prints `line` on stdout; rejects if it exits or `timeoutMs` pass first. */
export function waitForLine(child: ChildProcess, line: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    let stderr = "";
    const timer = setTimeout(() => finish(new Error(`no "${line}" from pid ${child.pid} within ${timeoutMs} ms: ${stderr.slice(-2000)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      if (buffer.split("\n").some((l) => l.trim() === line)) finish();
    };
    const onErr = (chunk: Buffer) => (stderr += chunk.toString());
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`pid ${child.pid} exited (${signal ?? code}) before "${line}": ${stderr.slice(-2000)}`));
    function finish(err?: Error) {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onErr);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve();
    }
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onErr);
    child.on("exit", onExit);
  });
}

/** Sends `signal` and waits until the process is gone. */
export async function killAndWait(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  await gone;
}

/** For child scripts: exit when the parent that spawned us (and holds our stdin) is gone. */
export function exitWithParent(code = 3): void {
  process.stdin.on("end", () => process.exit(code));
  process.stdin.resume();
}
