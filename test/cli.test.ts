// The `taskwarden` CLI against a real, migrated Postgres: every command's table and --json
// output, what it changed in the database, and the exit code and one-line error of bad input.
// Most commands run in-process through run() (the same code the bin runs); the bin itself is
// exercised as a real process for exit codes, --help and an unreachable database.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../src/cli/errors.ts";
import { run } from "../src/cli/program.ts";
import { freshDatabase } from "./support/db.ts";

const BIN = new URL("../bin/taskwarden.mjs", import.meta.url).pathname;
let url: string;
let sql: postgres.Sql;

beforeAll(async () => {
  url = await freshDatabase();
  sql = postgres(url, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end({ timeout: 5 });
});

/** Runs a command line in-process against the test database. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { DATABASE_URL: url } });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

async function json<T = unknown>(...argv: string[]): Promise<T> {
  const r = await cli("--json", ...argv);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as T;
}

/** Runs the real bin as a process. */
function bin(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    for (const k of ["DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"]) delete clean[k];
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.once("exit", (code) => resolve({ code, out, err }));
  });
}

/** A task claimed by `worker`, optionally with its heartbeat and claim pushed into the past. */
async function runningTask(worker: string, type: string, opts: { silentMinutes?: number; attempts?: number; payload?: Record<string, string | number> } = {}): Promise<number> {
  const [t] = await sql`select id from taskwarden.enqueue_task(${type}, ${sql.json(opts.payload ?? { n: 1 })}, max_attempts => 5)`;
  await sql`select from taskwarden.claim_tasks(${worker}, array[${type}], 1)`;
  await sql`select from taskwarden.upsert_worker_heartbeat(${worker}, ${type}, 'processing',
    current_task => ${`${type} #${t!.id}`}, held_task_ids => array[${t!.id}]::bigint[])`;
  if (opts.silentMinutes) {
    await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now() - make_interval(mins => ${opts.silentMinutes})
      where worker_id = ${worker}`;
    await sql`update taskwarden.tasks set last_heartbeat = now() - make_interval(mins => ${opts.silentMinutes}),
      updated_at = now() - make_interval(mins => ${opts.silentMinutes}) where id = ${t!.id}`;
  }
  if (opts.attempts) await sql`update taskwarden.tasks set attempts = ${opts.attempts} where id = ${t!.id}`;
  return Number(t!.id);
}

async function runningRun(name: string, hoursAgo = 0): Promise<string> {
  const [r] = await sql`select id from taskwarden.create_run(${name})`;
  await sql`select from taskwarden.start_run(${r!.id}::uuid)`;
  if (hoursAgo) {
    await sql`update taskwarden.runs set started_at = now() - make_interval(hours => ${hoursAgo}),
      updated_at = now() - make_interval(hours => ${hoursAgo}), created_at = now() - make_interval(hours => ${hoursAgo})
      where id = ${r!.id}`;
  }
  return String(r!.id);
}

describe("status and workers", () => {
  let deadTask: number;
  beforeAll(async () => {
    await runningTask("mailer-live#a1", "email");
    deadTask = await runningTask("mailer-dead#b2", "email", { silentMinutes: 10 });
  });

  it("status: counts, the dead worker, and --json is the health summary", async () => {
    const r = await cli("status");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^taskwarden UNHEALTHY/);
    expect(r.out).toMatch(/^workers +active 1 +idle 0 +processing 1 +stopping 0 +dead 1 +stopped 0 +total 2$/m);
    expect(r.out).toMatch(/^tasks +queued 0 +running 2 /m);
    expect(r.out).toMatch(/^mailer-dead#b2 +email +processing +10m \d\ds +1 +email #\d+$/m);
    const h = await json<{ healthy: boolean; workers: { dead: number }; dead_workers: { worker_id: string; held_tasks: number }[] }>("status");
    expect(h.healthy).toBe(false);
    expect(h.workers.dead).toBe(1);
    expect(h.dead_workers).toMatchObject([{ worker_id: "mailer-dead#b2", held_tasks: 1 }]);
  });

  it("workers list: dead first, with heartbeat age and current task", async () => {
    const r = await cli("workers", "list");
    const lines = r.out.split("\n");
    expect(lines[0]).toMatch(/^WORKER +TYPE +STATUS +HEARTBEAT +CURRENT TASK +HELD +HOST +PID$/);
    expect(lines[1]).toMatch(/^mailer-dead#b2 +email +DEAD \(was processing\) +10m \d\ds ago +email #\d+ +1/);
    expect(lines[2]).toMatch(/^mailer-live#a1 +email +processing +\ds ago +email #\d+ +1/);
    const rows = await json<{ worker_id: string; dead: boolean; seconds_since_heartbeat: number; held_tasks: number }[]>("workers", "list");
    expect(rows.map((w) => [w.worker_id, w.dead, w.held_tasks])).toEqual([
      ["mailer-dead#b2", true, 1],
      ["mailer-live#a1", false, 1],
    ]);
    expect(rows[0]!.seconds_since_heartbeat).toBeGreaterThanOrEqual(600);
  });

  it("workers stop: requests a drain the worker sees on its next heartbeat", async () => {
    const r = await cli("workers", "stop", "mailer-live#a1");
    expect(r).toMatchObject({ code: 0, out: "drain requested for mailer-live#a1: it exits after its next heartbeat" });
    const [beat] = await sql`select stop_requested, stop_reason from taskwarden.upsert_worker_heartbeat('mailer-live#a1', 'email', 'processing')`;
    expect(beat).toEqual({ stop_requested: true, stop_reason: "drain_requested" });
    const row = await json<{ worker_id: string; stop_requested_at: string | null }>("workers", "stop", "mailer-live#a1");
    expect(row.worker_id).toBe("mailer-live#a1");
    expect(row.stop_requested_at).not.toBeNull();
    expect((await cli("workers", "list")).out).toMatch(/^mailer-live#a1 +email +processing, draining/m);
  });

  it("reap: --dry-run counts without touching; then the dead worker's task is requeued", async () => {
    const dry = await cli("reap", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^reap #\d+ \(cli, [\d.]+ ms\) dry run, would have: requeued 1, failed 0 task\(s\)/);
    expect(dry.out).toContain("worker dead 1/0");
    expect((await sql`select status from taskwarden.tasks where id = ${deadTask}`)[0]!.status).toBe("running");

    const s = await json<{ dry_run: boolean; worker_dead: { requeued: number }; source: string; reaper_run_id: number }>("reap", "--source", "ops-test");
    expect(s).toMatchObject({ dry_run: false, source: "ops-test", worker_dead: { requeued: 1, failed: 0 } });
    const [task] = await sql`select status, crash_count from taskwarden.tasks where id = ${deadTask}`;
    expect(task).toEqual({ status: "queued", crash_count: 1 });
    const [logged] = await sql`select source, requeued from taskwarden.reaper_runs where id = ${s.reaper_run_id}`;
    expect(logged).toEqual({ source: "ops-test", requeued: 1 });
  });

  it("workers cleanup: deletes long-silent rows that hold no task; --stale-minutes is validated", async () => {
    await sql`insert into taskwarden.worker_heartbeats (worker_id, worker_type, status, last_heartbeat_at, stopped_at)
      values ('old#1', 'email', 'stopped', now() - interval '2 hours', now() - interval '2 hours')`;
    const r = await cli("workers", "cleanup", "--stale-minutes", "30");
    expect(r).toMatchObject({ code: 0, out: "deleted 1 worker row(s) stopped or silent for more than 30 minutes" });
    expect(await sql`select 1 from taskwarden.worker_heartbeats where worker_id = 'old#1'`).toHaveLength(0);
    expect(await json("workers", "cleanup", "--stale-minutes", "30")).toEqual({ deleted: 0, stale_minutes: 30 });

    const neg = await cli("workers", "cleanup", "--stale-minutes", "-5");
    expect(neg.code).toBe(EXIT.badInput);
    expect(neg.err).toBe("taskwarden: --stale-minutes must be between 1 and 525600 (got -5)");
    const frac = await cli("workers", "cleanup", "--stale-minutes", "1.5");
    expect(frac.code).toBe(EXIT.badInput);
    expect(frac.err).toBe('taskwarden: --stale-minutes must be a whole number (got "1.5")');
    // The same kind of value has the same range in every command.
    expect((await cli("tasks", "stale", "--stale-minutes", "-5")).err).toBe("taskwarden: --stale-minutes must be between 1 and 525600 (got -5)");
  });

  it("unknown worker: exit 3 and one line", async () => {
    const r = await cli("workers", "stop", "nobody#0");
    expect(r).toEqual({ code: EXIT.notFound, out: "", err: "taskwarden: worker nobody#0 not found (run `taskwarden workers list` for worker ids)" });
  });
});

describe("runs", () => {
  it("runs stale: a dry run by default (a table), --no-dry-run fails them", async () => {
    const stale = await runningRun("nightly import", 30);
    const fresh = await runningRun("fresh import");
    const dry = await cli("runs", "stale", "--stale-hours", "24");
    expect(dry.code).toBe(0);
    const lines = dry.out.split("\n");
    expect(lines[0]).toMatch(/^RUN ID +NAME +STARTED +LAST PROGRESS +STALE FOR +PROGRESS +ACTION$/);
    expect(lines.filter((l) => l.startsWith(stale))).toHaveLength(1);
    expect(dry.out).toMatch(new RegExp(`^${stale} +nightly import +\\S+ +- +1d 6h +0/0 done, 0 running, 0 queued, 0 failed +would_fail$`, "m"));
    expect(dry.out).not.toContain(fresh);
    expect(lines.at(-1)).toBe("dry run: 1 run(s) would be failed; add --no-dry-run to fail them");
    expect((await sql`select status from taskwarden.runs where id = ${stale}`)[0]!.status).toBe("running");

    const done = await json<{ run_id: string; action: string }[]>("runs", "stale", "--stale-hours", "24", "--no-dry-run");
    expect(done.map((r) => [r.run_id, r.action])).toEqual([[stale, "failed"]]);
    const [run] = await sql`select status, error, completed_at is not null as has_completed_at from taskwarden.runs where id = ${stale}`;
    expect(run).toEqual({ status: "failed", error: expect.stringMatching(/stale after 24h/), has_completed_at: true });
    expect((await sql`select status from taskwarden.runs where id = ${fresh}`)[0]!.status).toBe("running");
    expect((await cli("runs", "stale")).out).toBe("no run has been running for more than the setting run_stale_hours without progress");
  });

  it("runs finish / cancel / archive", async () => {
    const a = await runningRun("a");
    const b = await runningRun("b");
    const c = await runningRun("c");
    expect(await cli("runs", "finish", a)).toMatchObject({ code: 0, out: `run ${a} (a): completed` });
    expect(await cli("runs", "finish", b, "--error", "upstream down")).toMatchObject({ code: 0, out: `run ${b} (b): failed — upstream down` });
    const cancelled = await json<{ id: string; status: string; completed_at: string }>("runs", "cancel", c, "--reason", "not needed");
    expect(cancelled).toMatchObject({ id: c, status: "cancelled" });
    expect(cancelled.completed_at).toBeTruthy();
    expect(await json("runs", "archive", a, "--note", "kept for audit")).toMatchObject({ id: a, status: "archived" });
  });

  it("runs: an unknown run is exit 3, a malformed id exit 2, a negative threshold exit 2", async () => {
    const unknown = await cli("runs", "cancel", "00000000-0000-4000-8000-000000000000");
    expect(unknown.code).toBe(EXIT.notFound);
    expect(unknown.err).toMatch(/^taskwarden: run 00000000-0000-4000-8000-000000000000 not found/);
    expect(await cli("runs", "finish", "12")).toEqual({ code: EXIT.badInput, out: "", err: 'taskwarden: run id must be a uuid (got "12")' });
    const neg = await cli("runs", "stale", "--stale-hours", "-1");
    expect(neg).toEqual({ code: EXIT.badInput, out: "", err: "taskwarden: --stale-hours must be between 0.01 and 87600 (got -1)" });
  });
});

describe("tasks", () => {
  it("tasks stale: --dry-run shows requeue / fail by the retry budget; without it they happen", async () => {
    const young = await runningTask("crawler-1#c", "crawl", { silentMinutes: 20 });
    const spent = await runningTask("crawler-2#d", "crawl", { silentMinutes: 20, attempts: 3 });
    const recent = await runningTask("crawler-3#e", "crawl", { silentMinutes: 1 });
    // Staleness is for rows without a lease (legacy rows): a valid lease is never stale.
    await sql`update taskwarden.tasks set lease_expires_at = null where id in (${young}, ${spent}, ${recent})`;
    const dry = await cli("tasks", "stale", "--stale-minutes", "15", "--max-attempts", "3", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(new RegExp(`^ *${young} +crawl +crawler-1#c +1 +would_requeue +stale$`, "m"));
    expect(dry.out).toMatch(new RegExp(`^ *${spent} +crawl +crawler-2#d +3 +would_fail +stale$`, "m"));
    expect(dry.out).not.toMatch(new RegExp(`^ *${recent} `, "m"));
    expect(dry.out.split("\n").at(-1)).toBe("dry run: would requeue 1, would fail 1");

    const done = await json<{ task_id: number; action: string }[]>("tasks", "stale", "--stale-minutes", "15", "--max-attempts", "3");
    expect(done.map((a) => [a.task_id, a.action]).sort()).toEqual([[young, "requeued"], [spent, "failed"]].sort());
    const states = await sql`select id::int, status from taskwarden.tasks where id in (${young}, ${spent}, ${recent}) order by id`;
    expect(states.map((s) => s.status)).toEqual(["queued", "failed", "running"]);
    expect((await cli("tasks", "stale", "--stale-minutes", "15")).out).toBe("no task has been running for more than 15 min without a heartbeat");
  });

  it("tasks stale without flags takes the thresholds from taskwarden.settings, not from copies in the CLI", async () => {
    const silent = await runningTask("crawler-4#f", "crawl-settings", { silentMinutes: 3 });
    await sql`update taskwarden.tasks set lease_expires_at = null where id = ${silent}`;
    expect((await cli("tasks", "stale", "--dry-run")).out).not.toMatch(new RegExp(`^ *${silent} `, "m"));
    try {
      await sql`update taskwarden.settings set value = '120' where key = 'task_stale_seconds'`;
      await sql`update taskwarden.settings set value = '1' where key = 'max_requeue'`;
      const dry = await cli("tasks", "stale", "--dry-run");
      expect(dry.out).toMatch(new RegExp(`^ *${silent} +crawl-settings +crawler-4#f +1 +would_fail +stale$`, "m"));
    } finally {
      await sql`update taskwarden.settings set value = '900' where key = 'task_stale_seconds'`;
      await sql`update taskwarden.settings set value = '3' where key = 'max_requeue'`;
      await sql`select from taskwarden.cancel_task(${silent}::bigint)`;
    }
    expect((await cli("tasks", "stale")).out).toBe("no task has been running for more than the setting task_stale_seconds without a heartbeat");
  });

  it("tasks requeue: a failed task runs again; a completed one cannot (exit 4)", async () => {
    const [t] = await sql`select id::int from taskwarden.enqueue_task('report', max_attempts => 1)`;
    const [claimed] = await sql`select lease_token from taskwarden.claim_tasks('rep#1', array['report'])`;
    await sql`select from taskwarden.fail_task(${t!.id}::bigint, ${claimed!.lease_token}::uuid, 'boom', false)`;
    const r = await cli("tasks", "requeue", String(t!.id), "--reason", "fixed upstream");
    expect(r).toMatchObject({ code: 0, out: `task ${t!.id} (report) requeued: queued, attempts 0/1` });
    const [ev] = await sql`select event, reason, details->>'note' as note from taskwarden.task_events where task_id = ${t!.id} order by id desc limit 1`;
    expect(ev).toEqual({ event: "requeued", reason: "admin", note: "fixed upstream" });

    const [again] = await sql`select lease_token from taskwarden.claim_tasks('rep#1', array['report'])`;
    await sql`select from taskwarden.complete_task(${t!.id}::bigint, ${again!.lease_token}::uuid)`;
    const refused = await cli("tasks", "requeue", String(t!.id));
    expect(refused.code).toBe(EXIT.invalidState);
    expect(refused.err).toMatch(new RegExp(`^taskwarden: task ${t!.id} is completed: enqueue a new task instead`));
    expect(await json<{ status: string }>("tasks", "requeue", String(await runningTask("x#1", "misc")))).toMatchObject({ status: "queued" });
  });

  it("tasks show: the task and its event history, as a table and as JSON", async () => {
    const id = await runningTask("shower#1", "show", { payload: { hello: "world" } });
    await sql`select from taskwarden.cancel_task(${id}::bigint, 'operator said so')`;
    const r = await cli("tasks", "show", String(id));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^task +${id}$`, "m"));
    expect(r.out).toMatch(/^status +cancelled$/m);
    expect(r.out).toMatch(/^payload +\{"hello":"world"\}$/m);
    const events = r.out.split("Events\n")[1]!.split("\n");
    expect(events[0]).toMatch(/^AT +EVENT +REASON +WORKER +ACTOR +ATTEMPT +ERROR$/);
    // The claim writes no event by default (log_success_events); the cancellation always does.
    expect(events.slice(1).map((l) => l.split(/ +/)[1])).toEqual(["cancelled"]);
    const d = await json<{ task: { id: number; status: string }; events: { event: string; reason: string | null }[] }>("tasks", "show", String(id));
    expect(d.task).toMatchObject({ id, status: "cancelled" });
    expect(d.events.map((e) => e.event)).toEqual(["cancelled"]);
  });

  it("tasks show --json keeps the lease token (a capability) out unless --show-lease-token", async () => {
    const id = await runningTask("holder#1", "secret");
    const [{ lease_token: token }] = await sql`select lease_token::text from taskwarden.tasks where id = ${id}`;
    const plain = await cli("--json", "tasks", "show", String(id));
    expect(plain.code).toBe(0);
    expect(plain.out).not.toContain(token);
    expect(JSON.parse(plain.out).task).not.toHaveProperty("lease_token");
    const shown = await json<{ task: { lease_token: string } }>("tasks", "show", String(id), "--show-lease-token");
    expect(shown.task.lease_token).toBe(token);
  });

  it("tasks: unknown id exit 3; not a number exit 2", async () => {
    expect(await cli("tasks", "show", "999999")).toEqual({ code: EXIT.notFound, out: "", err: "taskwarden: task 999999 not found (check the task id)" });
    expect(await cli("tasks", "show", "99999999999999999999")).toEqual({
      code: EXIT.badInput, out: "", err: "taskwarden: task id must be between 1 and 9007199254740991 (got 99999999999999999999)" });
    expect(await cli("tasks", "requeue", "abc")).toEqual({ code: EXIT.badInput, out: "", err: 'taskwarden: task id must be a positive whole number (got "abc")' });
    expect((await cli("tasks", "show", "0")).code).toBe(EXIT.badInput);
    const bad = await cli("tasks", "stale", "--max-attempts", "0");
    expect(bad).toEqual({ code: EXIT.badInput, out: "", err: "taskwarden: --max-attempts must be between 1 and 1000 (got 0)" });
  });
});

describe("migrate, --help, and the bin as a process", () => {
  it("dashboard: serves the page until SIGTERM", async () => {
    const clean = { ...process.env, DATABASE_URL: url, DASHBOARD_TOKEN: "" };
    const p = spawn(process.execPath, [BIN, "dashboard", "--port", "0", "--refresh", "1"], { env: clean, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
    try {
      await expect.poll(() => /dashboard on (http:\/\/\S+)/.exec(err)?.[1], { timeout: 20_000 }).toBeTruthy();
      const base = /dashboard on (http:\/\/\S+)/.exec(err)![1]!;
      expect(err).toMatch(/\(read-only; the database at [\w.-]+:\d+\)/);
      const page = await fetch(base);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('data-refresh-ms="1000"');
    } finally {
      p.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });

  it("migrate: nothing left to apply on a migrated database", async () => {
    const r = await cli("migrate");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^0 migration\(s\) applied to the database at [\w.-]+:\d+, \d+ already there$/);
    const j = await json<{ applied: string[]; already_applied: string[] }>("migrate");
    expect(j.applied).toEqual([]);
    expect(j.already_applied.length).toBeGreaterThanOrEqual(12);
  });

  it("every command has --help", async () => {
    const commands = [[], ["status"], ["workers"], ["workers", "list"], ["workers", "stop"], ["workers", "cleanup"], ["runs"], ["runs", "stale"],
      ["runs", "finish"], ["runs", "cancel"], ["runs", "archive"], ["tasks"], ["tasks", "stale"], ["tasks", "requeue"], ["tasks", "show"],
      ["reap"], ["migrate"], ["dashboard"], ["supervise"]];
    for (const c of commands) {
      const r = await cli(...c, "--help");
      expect(r.code, c.join(" ")).toBe(0);
      expect(r.out, c.join(" ")).toMatch(new RegExp(`^Usage: taskwarden ${c.join(" ")}`.trimEnd()));
    }
    expect((await cli("runs", "stale", "--help")).out).toContain("--no-dry-run");
  });

  it("without DATABASE_URL: the embedded database, its folders created and migrated on first use", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-cli-"));
    try {
      const dataDir = join(dir, "nested", "pglite");
      const r = await bin(["--json", "--data-dir", dataDir, "reap"], {});
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ reaper_run_id: 1, source: "cli", skipped: false });
      expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the bin: JSON on stdout for scripts, one-line errors with distinct exit codes, never a stack trace", async () => {
    const ok = await bin(["--json", "status"], { DATABASE_URL: url });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toHaveProperty("workers");

    const down = await bin(["status"], { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing" });
    expect(down.code).toBe(EXIT.unreachable);
    expect(down.err).toMatch(/^taskwarden: cannot reach the database at 127\.0\.0\.1:1: .*ECONNREFUSED.*\n$/);

    const badUrl = await bin(["status"], { DATABASE_URL: "mysql://x" });
    expect(badUrl.code).toBe(EXIT.badInput);
    expect(badUrl.err).toMatch(/^taskwarden: bad configuration: DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL\n$/);

    const unknown = await bin(["frobnicate"], { DATABASE_URL: url });
    expect(unknown.code).toBe(EXIT.badInput);
    expect(unknown.err).toBe("error: unknown command 'frobnicate'\n");

    const shortToken = await bin(["dashboard"], { DATABASE_URL: url, DASHBOARD_TOKEN: "short" });
    expect(shortToken).toEqual({ code: EXIT.badInput, out: "", err: "taskwarden: bad configuration: DASHBOARD_TOKEN must be at least 16 characters (value not shown)\n" });

    for (const r of [down, badUrl, unknown, shortToken]) {
      expect(r.out).toBe("");
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });
});

describe("prune", () => {
  it("prune: --dry-run counts; then old finished tasks and their events go, queued and running work stays", async () => {
    const [{ id: live }] = await sql`insert into taskwarden.tasks (task_type, status, attempts, completed_at)
      values ('prune_cli', 'queued', 1, now() - interval '90 days') returning id`;
    const old = await sql`insert into taskwarden.tasks (task_type, status, attempts, completed_at)
      select 'prune_cli', 'completed', 1, now() - interval '2 days' from generate_series(1, 3) returning id`;
    await sql`insert into taskwarden.task_events (task_id, event, created_at)
      select id, 'completed', now() - interval '90 days' from taskwarden.tasks where task_type = 'prune_cli'`;

    const dry = await json<{ dry_run: boolean; tasks: Record<string, number>; task_events: number }>("prune", "--dry-run");
    expect(dry.dry_run).toBe(true);
    expect(dry.tasks.completed).toBeGreaterThanOrEqual(3);
    const [{ n: kept }] = await sql`select count(*)::int as n from taskwarden.tasks where task_type = 'prune_cli'`;
    expect(kept).toBe(4);

    const r = await cli("prune");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^deleted: \d+ completed, \d+ cancelled, \d+ failed task\(s\), \d+ event\(s\), \d+ reaper run\(s\), \d+ worker row\(s\) in \d+ call\(s\)$/);
    const left = await sql`select id, status from taskwarden.tasks where task_type = 'prune_cli'`;
    expect(left.map((t) => Number(t.id))).toEqual([Number(live)]);
    expect(old.map((t) => Number(t.id))).not.toContain(Number(live));
    const [{ n: events }] = await sql`select count(*)::int as n from taskwarden.task_events where task_id = ${live}`;
    expect(events).toBe(1);

    const status = await cli("status");
    expect(status.out).toMatch(/^last prune .*: deleted \d+ task\(s\), \d+ event\(s\)$/m);
  });
});
