// `taskwarden supervise`: the development answer to "no workers were running". It keeps N
// worker processes alive (restart with exponential backoff), and on SIGTERM / SIGINT hands the
// signal to every child, waits for their graceful shutdown (the SDK releases its tasks), then
// kills what is left. In production, systemd or PM2 do this job (see deploy/).
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

export interface BackoffOptions {
  /** Delay before the first restart. */
  initialMs: number;
  /** Upper bound of the delay. */
  maxMs: number;
  factor: number;
  /** A child that stayed up this long counts as healthy again: its next restart is immediate-ish. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 60_000, factor: 2, resetAfterMs: 30_000 };

/** `on-failure` restarts a child that crashed or was killed; a clean exit (code 0: drained, done) is left alone. */
export type RestartPolicy = "on-failure" | "always";

export interface SuperviseOptions {
  script: string;
  workers: number;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  backoff?: Partial<BackoffOptions>;
  restart?: RestartPolicy;
  /** How long children get to exit after the forwarded signal before SIGKILL. */
  stopTimeoutMs?: number;
  onEvent?: (event: SuperviseEvent) => void;
}

export type SuperviseEvent =
  | { event: "started"; slot: number; pid: number; restarts: number }
  | { event: "exited"; slot: number; pid: number; code: number | null; signal: string | null; uptimeMs: number }
  | { event: "restarting"; slot: number; delayMs: number; restarts: number }
  | { event: "finished"; slot: number; code: number | null }
  | { event: "stopping"; signal: string; children: number }
  | { event: "killed"; slot: number; pid: number }
  | { event: "stopped"; killed: number };

interface Slot {
  index: number;
  child: ChildProcess | undefined;
  startedAt: number;
  /** Consecutive quick failures: the exponent of the next delay. */
  failures: number;
  restarts: number;
  timer: NodeJS.Timeout | undefined;
  exited: Promise<void> | undefined;
}

/** The delay before restart number `failures + 1` of a child that keeps crashing. */
export function backoffDelay(failures: number, b: BackoffOptions): number {
  return Math.min(b.maxMs, Math.round(b.initialMs * b.factor ** failures));
}

/** The command that runs `script` with this Node: TypeScript files go through tsx. */
export function scriptCommand(script: string): { command: string; args: string[] } {
  if (/\.(c|m)?tsx?$/.test(script)) {
    // Resolved from here, so a worker script anywhere on disk can be TypeScript.
    const tsx = fileURLToPath(import.meta.resolve("tsx"));
    return { command: process.execPath, args: ["--import", tsx, script] };
  }
  return { command: process.execPath, args: [script] };
}

export class Supervisor {
  readonly #opts: Required<Omit<SuperviseOptions, "backoff" | "onEvent" | "env" | "args">> & {
    args: string[];
    env: NodeJS.ProcessEnv;
  };
  readonly #backoff: BackoffOptions;
  readonly #emit: (event: SuperviseEvent) => void;
  readonly #slots: Slot[] = [];
  #stopping: Promise<void> | undefined;
  #settle!: () => void;
  /** Resolves when every child is gone: all stopped by a signal, or all finished cleanly. */
  readonly done: Promise<void>;

  constructor(opts: SuperviseOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 256) {
      throw new RangeError(`--workers must be an integer between 1 and 256 (got ${opts.workers})`);
    }
    this.#opts = {
      script: opts.script,
      workers: opts.workers,
      args: opts.args ?? [],
      env: opts.env ?? process.env,
      restart: opts.restart ?? "on-failure",
      stopTimeoutMs: opts.stopTimeoutMs ?? 10_000,
    };
    this.#backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.#emit = opts.onEvent ?? (() => {});
    this.done = new Promise((resolve) => (this.#settle = resolve));
  }

  start(): void {
    for (let i = 0; i < this.#opts.workers; i++) {
      const slot: Slot = { index: i + 1, child: undefined, startedAt: 0, failures: 0, restarts: 0, timer: undefined, exited: undefined };
      this.#slots.push(slot);
      this.#spawn(slot);
    }
  }

  /** Pids of the children alive right now. */
  pids(): number[] {
    return this.#slots.flatMap((s) => (s.child?.pid !== undefined && s.child.exitCode === null && s.child.signalCode === null ? [s.child.pid] : []));
  }

  #spawn(slot: Slot): void {
    const { command, args } = scriptCommand(this.#opts.script);
    const child = spawn(command, [...args, ...this.#opts.args], {
      stdio: "inherit",
      env: { ...this.#opts.env, TASKWARDEN_SUPERVISOR_SLOT: String(slot.index) },
      // Own process group: a terminal's Ctrl-C reaches the supervisor only, and each child
      // receives exactly one forwarded signal (a second SIGINT means "force" to many workers).
      detached: true,
    });
    slot.child = child;
    slot.startedAt = Date.now();
    slot.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#onExit(slot, child, code, signal);
        resolve();
      });
      child.once("error", (err) => {
        // spawn failures (ENOENT, EACCES) never produce "exit" on some platforms.
        if (child.pid === undefined) {
          this.#onExit(slot, child, 127, null);
          resolve();
        } else {
          process.stderr.write(`supervise: worker ${slot.index}: ${err.message}\n`);
        }
      });
    });
    if (child.pid !== undefined) this.#emit({ event: "started", slot: slot.index, pid: child.pid, restarts: slot.restarts });
  }

  #onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    const uptimeMs = Date.now() - slot.startedAt;
    this.#emit({ event: "exited", slot: slot.index, pid: child.pid ?? -1, code, signal, uptimeMs });
    if (this.#stopping) return this.#checkDone();
    if (code === 0 && this.#opts.restart === "on-failure") {
      this.#emit({ event: "finished", slot: slot.index, code });
      return this.#checkDone();
    }
    if (uptimeMs >= this.#backoff.resetAfterMs) slot.failures = 0;
    const delayMs = backoffDelay(slot.failures, this.#backoff);
    slot.failures++;
    slot.restarts++;
    this.#emit({ event: "restarting", slot: slot.index, delayMs, restarts: slot.restarts });
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (!this.#stopping) this.#spawn(slot);
    }, delayMs);
  }

  #checkDone(): void {
    if (this.#slots.every((s) => s.child === undefined && s.timer === undefined)) this.#settle();
  }

  /** Forwards `signal` to every child, waits up to stopTimeoutMs, then SIGKILLs the rest. Idempotent. */
  stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    this.#stopping ??= this.#stop(signal);
    return this.#stopping;
  }

  async #stop(signal: NodeJS.Signals): Promise<void> {
    for (const slot of this.#slots) {
      if (slot.timer) clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    const live = this.#slots.filter((s) => s.child);
    this.#emit({ event: "stopping", signal, children: live.length });
    for (const slot of live) slot.child?.kill(signal);
    let killed = 0;
    const deadline = sleep(this.#opts.stopTimeoutMs, undefined, { ref: false });
    await Promise.race([Promise.all(live.map((s) => s.exited)), deadline]);
    for (const slot of live) {
      const child = slot.child;
      if (child?.pid !== undefined) {
        killed++;
        this.#emit({ event: "killed", slot: slot.index, pid: child.pid });
        child.kill("SIGKILL");
      }
    }
    await Promise.all(live.map((s) => s.exited));
    this.#emit({ event: "stopped", killed });
    this.#checkDone();
  }

  /** Last resort when the supervisor itself exits unexpectedly: no orphaned workers. */
  killAllNow(): void {
    for (const slot of this.#slots) slot.child?.kill("SIGKILL");
  }
}

/** One line per event, for people watching a terminal. */
export function describeEvent(e: SuperviseEvent): string {
  switch (e.event) {
    case "started":
      return `worker ${e.slot} started (pid ${e.pid}${e.restarts ? `, restart ${e.restarts}` : ""})`;
    case "exited": {
      const how = e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
      return `worker ${e.slot} (pid ${e.pid}) ${how} after ${(e.uptimeMs / 1000).toFixed(1)}s`;
    }
    case "restarting":
      return `worker ${e.slot}: restart ${e.restarts} in ${(e.delayMs / 1000).toFixed(1)}s`;
    case "finished":
      return `worker ${e.slot} finished cleanly; not restarted (use --restart always to keep it running)`;
    case "stopping":
      return `${e.signal}: stopping ${e.children} worker(s)`;
    case "killed":
      return `worker ${e.slot} (pid ${e.pid}) did not exit in time: SIGKILL`;
    case "stopped":
      return `all workers stopped${e.killed ? ` (${e.killed} killed)` : ""}`;
  }
}
