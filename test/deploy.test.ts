// The production process-manager configs under deploy/: systemd's own verifier checks the
// units, and the PM2 ecosystem file is loaded as PM2 loads it and checked against PM2's options.
// The README's "Deploy to Supabase" commands are checked against the real Supabase CLI's help.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const DEPLOY = new URL("../deploy/", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;

/** Parses a unit file into section -> key -> values (keys may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`line ${i + 1} is not "Key=value" inside a section: ${raw}`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  }
  return sections;
}

const hasSystemdAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;

describe("systemd units", () => {
  const units = readdirSync(DEPLOY).filter((f) => /\.(service|timer)$/.test(f));

  it("exist: a worker template, a reap service and its timer", () => {
    expect(units.sort()).toEqual(["taskwarden-reap.service", "taskwarden-reap.timer", "taskwarden-worker@.service"]);
  });

  it.skipIf(!hasSystemdAnalyze)("pass `systemd-analyze verify` with no warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-units-"));
    try {
      for (const u of units) copyFileSync(join(DEPLOY, u), join(dir, u));
      // A template is verified through an instance of it.
      const names = units.map((u) => join(dir, u.replace("@.service", "@1.service")));
      const r = spawnSync("systemd-analyze", ["verify", "--man=no", ...names], { encoding: "utf8" });
      expect({ status: r.status, stderr: r.stderr.trim() }).toEqual({ status: 0, stderr: "" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the worker unit restarts crashes only, stops with SIGTERM and gives the worker time to release its tasks", () => {
    const unit = parseUnit(readFileSync(join(DEPLOY, "taskwarden-worker@.service"), "utf8"));
    const svc = unit.get("Service")!;
    expect(svc.get("ExecStart")![0]).toMatch(/^\/\S+/);
    expect(svc.get("Restart")).toEqual(["on-failure"]);
    expect(Number(svc.get("RestartSec")![0])).toBeGreaterThan(0);
    expect(svc.get("KillSignal")).toEqual(["SIGTERM"]);
    expect(svc.get("KillMode")).toEqual(["mixed"]);
    // Longer than the SDK's default shutdown grace (WORKER_SHUTDOWN_GRACE_S = 30 s).
    expect(Number(svc.get("TimeoutStopSec")![0])).toBeGreaterThan(30);
    expect(unit.get("Unit")!.get("StartLimitBurst")).toBeDefined();
    expect(unit.get("Install")!.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  it("the reap service runs this project's bin, which has a reap command", () => {
    const svc = parseUnit(readFileSync(join(DEPLOY, "taskwarden-reap.service"), "utf8")).get("Service")!;
    expect(svc.get("Type")).toEqual(["oneshot"]);
    // The node binary is found on PATH (/usr/bin/env), not hard-coded: nvm, NodeSource and distro installs differ.
    const exec = svc.get("ExecStart")![0]!.split(/\s+/).slice(1);
    expect(svc.get("ExecStart")![0]).toMatch(/^\/usr\/bin\/env node /);
    expect(exec[1]).toBe("/opt/taskwarden/bin/taskwarden.mjs");
    expect(existsSync(join(ROOT, "bin/taskwarden.mjs"))).toBe(true);
    expect(exec.slice(2, 3)).toEqual(["reap"]);
    const help = execFileSync(process.execPath, [join(ROOT, "bin/taskwarden.mjs"), ...exec.slice(2), "--help"], { encoding: "utf8" });
    expect(help).toMatch(/--source <name>/);
    const timer = parseUnit(readFileSync(join(DEPLOY, "taskwarden-reap.timer"), "utf8")).get("Timer")!;
    expect(timer.get("OnUnitActiveSec")).toEqual(["1min"]);
  });
});

// Every option PM2 (5.x) reads from an app declaration that this file may use.
const PM2_APP_OPTIONS = new Set([
  "name", "script", "args", "interpreter", "interpreter_args", "node_args", "cwd", "instances", "exec_mode",
  "autorestart", "stop_exit_codes", "exp_backoff_restart_delay", "restart_delay", "min_uptime", "max_restarts",
  "kill_timeout", "kill_signal", "shutdown_with_message", "listen_timeout", "wait_ready", "cron_restart",
  "time", "env", "merge_logs", "out_file", "error_file", "log_date_format", "max_memory_restart", "watch",
]);

describe("PM2 ecosystem file", () => {
  const require = createRequire(import.meta.url);
  const { apps } = require(join(DEPLOY, "ecosystem.config.cjs")) as { apps: Record<string, unknown>[] };
  const byName = new Map(apps.map((a) => [a.name, a]));

  it("declares only options PM2 knows", () => {
    for (const app of apps) {
      expect(Object.keys(app).filter((k) => !PM2_APP_OPTIONS.has(k) && !k.startsWith("env_")), String(app.name)).toEqual([]);
    }
    expect([...byName.keys()]).toEqual(["taskwarden-worker", "taskwarden-reap"]);
  });

  it("workers: restarted with exponential backoff unless they exit cleanly, SIGTERM with time to release tasks", () => {
    const w = byName.get("taskwarden-worker")!;
    expect(w).toMatchObject({ exec_mode: "fork", autorestart: true, kill_signal: "SIGTERM", interpreter: "node" });
    expect(w.instances).toBeGreaterThanOrEqual(1);
    expect(w.exp_backoff_restart_delay).toBeGreaterThan(0);
    expect(w.stop_exit_codes).toEqual([0]);
    expect(w.kill_timeout).toBeGreaterThan(30_000);
    expect(String(w.interpreter_args)).toContain("tsx");
  });

  it("reaper: this project's bin once a minute, never restarted in a loop", () => {
    const r = byName.get("taskwarden-reap")!;
    expect(r).toMatchObject({ autorestart: false, cron_restart: "* * * * *", instances: 1 });
    expect(existsSync(join(ROOT, String(r.script)))).toBe(true);
    expect(String(r.args).split(" ")[0]).toBe("reap");
  });
});

/** The fenced code of the README section with this heading. */
function readmeSection(heading: string): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf(`\n## ${heading}\n`);
  expect(start, `README section "${heading}"`).toBeGreaterThan(0);
  const end = readme.indexOf("\n## ", start + 4);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('README "Deploy to Supabase"', () => {
  const section = readmeSection("Deploy to Supabase");
  const commands = section
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("npx supabase "))
    .map((l) => l.replace(/\s+#.*$/, ""));

  it("has the six steps in order: link, db push, Vault secrets, functions deploy, the schedule, a curl of /reaper/health", () => {
    const steps = [...section.matchAll(/^(?:#|--) (\d)\. /gm)].map((m) => Number(m[1]));
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(commands.map((c) => c.split(" ").slice(2, 4).join(" "))).toEqual([
      "link --project-ref",
      "db push",
      "functions deploy",
      "secrets set",
    ]);
    expect(section).toMatch(/^curl .*\/functions\/v1\/reaper\/health$/m);
  });

  it("uses only flags the installed CLI documents, and no deprecated one", () => {
    const cli = join(ROOT, "node_modules/.bin/supabase");
    for (const command of commands) {
      const words = command.split(" ").slice(2);
      const sub = words[0] === "link" ? ["link"] : words.slice(0, 2); // `db push`, `functions deploy`, `secrets set`
      const flags = words.filter((w) => w.startsWith("--")).map((w) => w.split("=")[0]!);
      const help = execFileSync(cli, [...sub, "--help"], {
        encoding: "utf8",
        env: { PATH: process.env.PATH, HOME: tmpdir(), SUPABASE_TELEMETRY_DISABLED: "1" },
      });
      for (const flag of flags) expect(help, `${command}: ${flag}`).toMatch(new RegExp(`\\s${flag}[\\s=\\[]`));
      expect(help).not.toMatch(new RegExp(`${flags.join("|") || "^$"}[^\\n]*deprecated`, "i"));
      expect(command).not.toMatch(/--db-url/);
    }
  }, 300_000); // four starts of a 140 MB binary: slow on a loaded machine

  it("names the Vault secrets the schedule migration reads", () => {
    const migration = readFileSync(join(ROOT, "supabase/migrations/20261123100100_reaper_schedule.sql"), "utf8");
    const named = [...section.matchAll(/vault\.create_secret\('[^']*', '([a-z_]+)'\)/g)].map((m) => m[1]);
    expect(named).toEqual(["taskwarden_project_url", "taskwarden_reaper_secret"]);
    for (const name of named) expect(migration).toContain(`name = '${name}'`);
  });
});
