// The `taskwarden` command line. Every command is one or two calls of the SQL API; this file
// only parses arguments and prints the answers (tables for people, --json for scripts).
// Errors and exit codes live in ./errors.ts.
import { existsSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { Command, CommanderError, Option } from "commander";
import type { Taskwarden } from "../rpc/index.ts";
import { describeError, EXIT, UsageError } from "./errors.ts";
import type { HealthSummary, ReapSummary, StaleRunAction, TaskAction } from "../rpc/client.ts";
import { UUID } from "../rpc/client.ts";
import { reapTotals } from "../reaper/loop.ts";
import { ago, duration, pairs, table } from "../format.ts";
import { openClient, resolveConnection, shareEmbedded, type OpenOptions, type ResolvedConnection } from "./connection.ts";
import type { OwnerInfo } from "../rpc/embedded-lock.ts";
import { stopSignals } from "../signals.ts";
import { describeEvent, Supervisor, type RestartPolicy } from "../supervise.ts";

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  env?: Record<string, string | undefined>;
}

interface GlobalOptions {
  json?: boolean;
  databaseUrl?: string;
  dataDir?: string;
}

/**
 * Flag values are checked here, against the same ranges the SQL enforces, so an operator reads
 * the flag's name ("--stale-minutes must be …") rather than a SQL argument's.
 */
function number(flag: string, min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number (got "${raw}")`);
    if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max} (got ${raw})`);
    return n;
  };
}

function integer(flag: string, min: number, max: number) {
  return (raw: string): number => {
    if (!/^[+-]?\d+$/.test(raw.trim())) throw new UsageError(`${flag} must be a whole number (got "${raw}")`);
    const n = Number(raw);
    if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max} (got ${raw.trim()})`);
    return n;
  };
}

/** Minutes of silence or staleness: one range for every command that takes them. */
const MINUTES = [1, 525_600] as const;

function taskId(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`task id must be a positive whole number (got "${raw}")`);
  const n = Number(raw);
  if (n < 1 || !Number.isSafeInteger(n)) throw new UsageError(`task id must be between 1 and ${Number.MAX_SAFE_INTEGER} (got ${raw.trim()})`);
  return n;
}

function runId(raw: string): string {
  if (!UUID.test(raw)) throw new UsageError(`run id must be a uuid (got "${raw}")`);
  return raw;
}

function reapLine(s: ReapSummary): string {
  if (s.skipped) return `reap #${s.reaper_run_id} skipped: ${s.reason ?? "another reap is in progress"}`;
  const step = (label: string, c: { requeued: number; failed: number } | undefined) =>
    `${label} ${c?.requeued ?? 0}/${c?.failed ?? 0}`;
  const verb = s.dry_run ? "dry run, would have" : "done";
  const { requeued, failed } = reapTotals(s);
  return [
    `reap #${s.reaper_run_id} (${s.source}, ${s.duration_ms ?? "?"} ms) ${verb}: requeued ${requeued}, failed ${failed} task(s)`,
    `  requeued/failed by cause: ${step("lease expired", s.lease_expired)}, ${step("worker dead", s.worker_dead)}, ${step("timed out", s.timed_out)}, ${step("stale", s.stale)}`,
    `  stale runs failed ${s.stale_runs_failed ?? 0}, worker rows deleted ${s.workers_deleted ?? 0}`,
  ].join("\n");
}

/** The reaper runs every interval_seconds; after three intervals without a reap, say so loudly. */
function reaperLine(r: { running: boolean; interval_seconds: number } | undefined): string[] {
  if (!r) return [];
  return [r.running
    ? `reaper     running (every ${r.interval_seconds} s)`
    : `reaper     NOT RUNNING: no reap for over ${3 * r.interval_seconds} s (3 intervals); dead workers' tasks stay stuck until something runs reap() (pg_cron: select taskwarden.schedule_reaper())`];
}

function statusText(h: HealthSummary): string {
  const w = h.workers;
  const t = h.tasks;
  const lastReap = h.last_reap as Record<string, unknown> | null;
  const lastPrune = h.last_prune as { at: string; tasks: Record<string, number>; task_events: number } | null | undefined;
  const lines = [
    `taskwarden ${h.healthy ? "healthy" : "UNHEALTHY"} (a worker is dead after ${h.dead_after_seconds} s without a heartbeat)`,
    `workers    ${pairs({ active: w.active, idle: w.idle, processing: w.processing, stopping: w.stopping, dead: w.dead, stopped: w.stopped, total: w.total })}`,
    `tasks      ${pairs({ queued: t.queued, running: t.running, completed: t.completed, failed: t.failed, cancelled: t.cancelled, "stale running": t.stale_running })}`,
    `last reap  ${lastReap ? `${ago(lastReap.finished_at)} (${String(lastReap.source)}): requeued ${String(lastReap.requeued)}, failed ${String(lastReap.failed)}` : "never"}`,
    ...reaperLine(h.reaper as { running: boolean; interval_seconds: number } | undefined),
    `last prune ${lastPrune ? `${ago(lastPrune.at)}: deleted ${Object.values(lastPrune.tasks).reduce((a, b) => a + b, 0)} task(s), ${lastPrune.task_events} event(s)` : "never"}`,
    "",
    "Dead workers",
    table(h.dead_workers, [
      { header: "worker", value: (d) => d.worker_id },
      { header: "type", value: (d) => d.worker_type },
      { header: "was", value: (d) => d.status },
      { header: "silent for", value: (d) => duration(d.seconds_since_heartbeat), right: true },
      { header: "held tasks", value: (d) => d.held_tasks, right: true },
      { header: "current task", value: (d) => d.current_task, max: 40 },
    ]),
    "",
    "Stale runs",
    table(h.stale_runs, [
      { header: "run id", value: (r) => r.run_id },
      { header: "name", value: (r) => r.name, max: 40 },
      { header: "started", value: (r) => ago(r.started_at) },
      { header: "stale for", value: (r) => duration(Number(r.stale_for_hours) * 3600), right: true },
    ]),
  ];
  return lines.join("\n");
}

const TASK_ACTION_COLUMNS = [
  { header: "task", value: (a: TaskAction) => a.task_id, right: true },
  { header: "type", value: (a: TaskAction) => a.task_type },
  { header: "owner", value: (a: TaskAction) => a.owner_id },
  { header: "attempts", value: (a: TaskAction) => a.attempts, right: true },
  { header: "action", value: (a: TaskAction) => a.action },
  { header: "reason", value: (a: TaskAction) => a.reason },
];

const STALE_RUN_COLUMNS = [
  { header: "run id", value: (r: StaleRunAction) => r.run_id },
  { header: "name", value: (r: StaleRunAction) => r.name, max: 40 },
  { header: "started", value: (r: StaleRunAction) => r.started_at },
  { header: "last progress", value: (r: StaleRunAction) => r.last_progress_at },
  { header: "stale for", value: (r: StaleRunAction) => duration(r.stale_for_hours * 3600), right: true },
  {
    header: "progress",
    value: (r: StaleRunAction) =>
      `${r.tasks_completed}/${r.tasks_total} done, ${r.tasks_running} running, ${r.tasks_queued} queued, ${r.tasks_failed} failed`,
  },
  { header: "action", value: (r: StaleRunAction) => r.action },
];

/** What the command connected to, for error messages. */
interface RunState {
  connection?: ResolvedConnection;
}

export function buildProgram(io: CliIO, state: RunState = {}): Command {
  const program = new Command("taskwarden");
  const print = (g: GlobalOptions, data: unknown, text: () => string) =>
    io.out(g.json ? JSON.stringify(data, null, 2) : text());
  const connectFor = (g: GlobalOptions): ResolvedConnection =>
    (state.connection = resolveConnection({ databaseUrl: g.databaseUrl, dataDir: g.dataDir, env: io.env }));

  /** "taskwarden workers list": how other processes see this one while it holds the embedded database. */
  const roleOf = (cmd: Command): string => {
    const names: string[] = [];
    for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
    return names.join(" ");
  };

  const waiting = (owner: OwnerInfo | undefined) =>
    io.err(`taskwarden: waiting for ${owner ? `pid ${owner.pid} (${owner.role})` : "another process"}, which holds the embedded database`);

  /** Runs `fn` with a client; closes it afterwards. */
  const withClient = async <T>(cmd: Command, fn: (tw: Taskwarden, g: GlobalOptions) => Promise<T>, open: OpenOptions = {}): Promise<T> => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const tw = await openClient(connectFor(g), { role: roleOf(cmd), onWait: waiting, ...open });
    try {
      return await fn(tw, g);
    } finally {
      await tw.close().catch(() => {});
    }
  };

  program
    .description("Operate taskwarden: workers, tasks, runs and the reaper.")
    .option("--json", "print JSON for scripts instead of tables")
    .option("--database-url <url>", "Postgres URL (default: DATABASE_URL, else SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY, else the embedded database)")
    .option("--data-dir <dir>", "embedded PGlite data directory (default: TASKWARDEN_DATA_DIR or .taskwarden/pglite)")
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, "")), writeErr: (s) => io.err(s.replace(/\n$/, "")) })
    .addHelpText(
      "after",
      `
Exit codes: 0 ok, 1 failed, 2 bad input, 3 not found, 4 not allowed in the current state, 5 database unreachable.`,
    )
    .exitOverride();

  program
    .command("status")
    .description("workers (active / idle / processing / dead), tasks by status, stale runs, last reap")
    .action(async (_o, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        const h = await tw.getWorkerHealthSummary();
        print(g, h, () => statusText(h));
      }),
    );

  const workers = program.command("workers").description("list, drain and clean up workers");
  workers
    .command("list")
    .description("live and dead workers with heartbeat age and current task")
    .action(async (_o, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        const rows = await tw.listWorkers();
        print(g, rows, () =>
          table(
            rows,
            [
              { header: "worker", value: (w) => w.worker_id },
              { header: "type", value: (w) => w.worker_type },
              { header: "status", value: (w) => (w.dead ? `DEAD (was ${w.status})` : w.stop_requested_at ? `${w.status}, draining` : w.status) },
              { header: "heartbeat", value: (w) => `${duration(w.seconds_since_heartbeat)} ago`, right: true },
              { header: "current task", value: (w) => w.current_task, max: 40 },
              { header: "held", value: (w) => w.held_tasks, right: true },
              { header: "host", value: (w) => w.host },
              { header: "pid", value: (w) => w.pid, right: true },
            ],
            "(no workers)",
          ),
        );
      }),
    );
  workers
    .command("stop")
    .description("remote drain: the worker stops claiming and exits after its next heartbeat")
    .argument("<worker-id>", "the worker's id (see workers list)")
    .action(async (workerId: string, _o, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        const row = await tw.requestWorkerStop({ worker_id: workerId });
        print(g, row, () => `drain requested for ${row.worker_id}: it exits after its next heartbeat`);
      }),
    );
  workers
    .command("cleanup")
    .description("delete rows of workers stopped or silent for a while (never ones still holding tasks)")
    .addOption(new Option("--stale-minutes <minutes>", "silent or stopped for at least this long").argParser(integer("--stale-minutes", ...MINUTES)).default(60))
    .action(async (o: { staleMinutes: number }, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        const deleted = await tw.cleanupStaleWorkers({ stale_minutes: o.staleMinutes });
        print(g, { deleted, stale_minutes: o.staleMinutes }, () => `deleted ${deleted} worker row(s) stopped or silent for more than ${o.staleMinutes} minutes`);
      }),
    );

  const runs = program.command("runs").description("stale runs; finish, cancel or archive a run");
  runs
    .command("stale")
    .description("runs stuck in running with no progress (a dry run unless --no-dry-run)")
    .addOption(new Option("--stale-hours <hours>", "no progress for this long").argParser(number("--stale-hours", 0.01, 87_600)).default(24))
    .option("--no-dry-run", "fail them, with the error \"Run marked as stale after Nh with no completion\"")
    .action(async (o: { staleHours: number; dryRun: boolean }, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        const rows = await tw.cleanupStaleRuns({ stale_hours: o.staleHours, dry_run: o.dryRun });
        print(g, rows, () => {
          const summary = o.dryRun
            ? rows.length
              ? `dry run: ${rows.length} run(s) would be failed; add --no-dry-run to fail them`
              : `no run has been running for more than ${o.staleHours} h without progress`
            : `failed ${rows.length} stale run(s)`;
          return rows.length ? `${table(rows, STALE_RUN_COLUMNS)}\n${summary}` : summary;
        });
      }),
    );
  const runAction = (
    name: "finish" | "cancel" | "archive",
    description: string,
    flag: string,
    call: (tw: Taskwarden, id: string, text: string | undefined) => ReturnType<Taskwarden["finishRun"]>,
  ) =>
    runs
      .command(name)
      .description(description)
      .argument("<run-id>", "the run's uuid")
      .option(flag)
      .action(async (raw: string, o: Record<string, string | undefined>, cmd: Command) => {
        const id = runId(raw);
        await withClient(cmd, async (tw, g) => {
          const run = await call(tw, id, Object.values(o)[0]);
          print(g, run, () => `run ${run.id} (${run.name}): ${run.status}${run.error ? ` — ${run.error}` : ""}`);
        });
      });
  runAction("finish", "finish a run: completed, or failed with --error", "--error <message>", (tw, id, error) => tw.finishRun({ run_id: id, error: error ?? null }));
  runAction("cancel", "cancel a run and its queued tasks", "--reason <text>", (tw, id, reason) => tw.cancelRun({ run_id: id, reason: reason ?? null }));
  runAction("archive", "archive a run", "--note <text>", (tw, id, note) => tw.archiveRun({ run_id: id, note: note ?? null }));

  const tasks = program.command("tasks").description("stale tasks; requeue or inspect a task");
  tasks
    .command("stale")
    .description("requeue (or fail, past --max-attempts) running tasks with no heartbeat for a while")
    .addOption(new Option("--stale-minutes <minutes>", "no heartbeat for this long").argParser(integer("--stale-minutes", ...MINUTES)).default(15))
    .addOption(new Option("--max-attempts <n>", "fail instead of requeueing from this many attempts").argParser(integer("--max-attempts", 1, 1000)).default(3))
    .addOption(new Option("--batch-size <n>", "at most this many tasks").argParser(integer("--batch-size", 1, 10_000)).default(200))
    .option("--dry-run", "only show what would happen")
    .action(async (o: { staleMinutes: number; maxAttempts: number; batchSize: number; dryRun?: boolean }, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        const rows = await tw.cleanupStaleRunningTasks({
          stale_minutes: o.staleMinutes,
          max_attempts: o.maxAttempts,
          batch_size: o.batchSize,
          dry_run: o.dryRun ?? false,
        });
        print(g, rows, () => {
          const n = (a: string) => rows.filter((r) => r.action === a).length;
          const summary = o.dryRun
            ? `dry run: would requeue ${n("would_requeue")}, would fail ${n("would_fail")}`
            : `requeued ${n("requeued")}, failed ${n("failed")}`;
          return rows.length ? `${table(rows, TASK_ACTION_COLUMNS)}\n${summary}` : `no task has been running for more than ${o.staleMinutes} min without a heartbeat`;
        });
      }),
    );
  tasks
    .command("requeue")
    .description("put a task back in the queue to run now (running, failed or cancelled)")
    .argument("<task-id>")
    .option("--reason <text>", "recorded in the task's events")
    .action(async (raw: string, o: { reason?: string }, cmd: Command) => {
      const id = taskId(raw);
      await withClient(cmd, async (tw, g) => {
        const t = await tw.requeueTask({ task_id: id, reason: o.reason ?? null });
        print(g, t, () => `task ${t.id} (${t.task_type}) requeued: ${t.status}, attempts ${t.attempts}/${t.max_attempts}`);
      });
    });
  tasks
    .command("show")
    .description("a task and its event history")
    .argument("<task-id>")
    .option("--show-lease-token", "include the current lease token (a capability: whoever has it can complete the task)")
    .action(async (raw: string, o: { showLeaseToken?: boolean }, cmd: Command) => {
      const id = taskId(raw);
      await withClient(cmd, async (tw, g) => {
        const detail = await tw.getTask({ task_id: id });
        if (!o.showLeaseToken) {
          const { lease_token: _, ...task } = detail.task;
          detail.task = task as typeof detail.task;
        }
        print(g, detail, () => {
          const t = detail.task;
          const fields: [string, unknown][] = [
            ["task", t.id], ["type", t.task_type], ["status", t.status], ["run", t.run_id],
            ["attempts", `${t.attempts}/${t.max_attempts} (reaped ${t.crash_count} time(s))`],
            ["owner", t.owner_id], ["lease expires", t.lease_expires_at], ["run at", t.run_at],
            ["created", t.created_at], ["started", t.started_at], ["completed", t.completed_at],
            ["last error", t.last_error], ["payload", JSON.stringify(t.payload)], ["result", t.result === null ? null : JSON.stringify(t.result)],
          ];
          const head = table(fields, [
            { header: "field", value: (f) => f[0] },
            { header: "value", value: (f) => f[1], max: 100 },
          ]);
          const events = table(
            detail.events as Record<string, unknown>[],
            [
              { header: "at", value: (e) => e.created_at },
              { header: "event", value: (e) => e.event },
              { header: "reason", value: (e) => e.reason },
              { header: "worker", value: (e) => e.worker_id },
              { header: "actor", value: (e) => e.actor },
              { header: "attempt", value: (e) => e.attempt, right: true },
              { header: "error", value: (e) => e.error, max: 50 },
            ],
            "(no events)",
          );
          return `${head}\n\nEvents\n${events}`;
        });
      });
    });

  program
    .command("reap")
    .description("run the reaper once: expired leases, dead workers, timeouts, stale tasks and runs")
    .option("--dry-run", "only count what it would do")
    .option("--source <name>", "recorded in reaper_runs", "cli")
    .action(async (o: { dryRun?: boolean; source: string }, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        const s = await tw.reap({ source: o.source, dry_run: o.dryRun ?? false });
        print(g, s, () => reapLine(s));
      }),
    );

  program
    .command("prune")
    .description("retention: delete finished tasks (and their events), old reaper runs and stopped worker rows past their periods")
    .option("--dry-run", "only count what one call would delete")
    .action(async (o: { dryRun?: boolean }, cmd: Command) =>
      withClient(cmd, async (tw, g) => {
        // One call is one bounded transaction; a backlog is cleared by calling again until a
        // call comes back short (`more` false), never by one long transaction.
        const total = { calls: 0, tasks: { completed: 0, cancelled: 0, failed: 0 } as Record<string, number>, task_events: 0, reaper_runs: 0, workers: 0, more: false };
        for (;;) {
          const [row] = await tw.transport.call("prune", { dry_run: o.dryRun ?? false });
          const p = row.prune as { tasks: Record<string, number>; task_events: number; reaper_runs: number; workers: number; more: boolean };
          total.calls++;
          for (const [k, n] of Object.entries(p.tasks)) total.tasks[k] = (total.tasks[k] ?? 0) + n;
          total.task_events += p.task_events;
          total.reaper_runs += p.reaper_runs;
          total.workers += p.workers;
          total.more = p.more;
          if (o.dryRun || !p.more) break;
        }
        print(g, { dry_run: o.dryRun ?? false, ...total }, () =>
          `${o.dryRun ? "would delete" : "deleted"}: ${total.tasks.completed} completed, ${total.tasks.cancelled} cancelled, ${total.tasks.failed} failed task(s), ` +
          `${total.task_events} event(s), ${total.reaper_runs} reaper run(s), ${total.workers} worker row(s)` +
          `${o.dryRun ? (total.more ? " (at least: one call's worth)" : "") : ` in ${total.calls} call(s)`}`,
        );
      }),
    );

  program
    .command("migrate")
    .description("apply supabase/migrations to DATABASE_URL (or the embedded database)")
    .action(async (_o, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const connection = connectFor(g);
      if (connection.kind === "supabase") {
        throw new UsageError("migrate needs DATABASE_URL (supabase-js cannot run migrations; or use `supabase db push`)");
      }
      const { migrate } = await import("../rpc/migrate.ts");
      const tw = await openClient(connection, { migrate: false, role: roleOf(cmd) });
      try {
        const result = await migrate(tw.transport as Parameters<typeof migrate>[0]);
        const applied = result.applied.map((m) => `${m.version}_${m.name}`);
        // A migration's NOTICE says what it skipped (no pg_cron, no Vault): a person must see it.
        print(g, { applied, already_applied: result.alreadyApplied, notices: result.notices }, () =>
          [
            ...result.applied.flatMap((m) => [
              `applied ${m.version}_${m.name}`,
              ...result.notices.filter((n) => n.version === m.version).map((n) => `  NOTICE: ${n.message}`),
            ]),
            `${applied.length} migration(s) applied to ${connection.describe}, ${result.alreadyApplied.length} already there`,
          ].join("\n"),
        );
      } finally {
        await tw.close();
      }
    });

  program
    .command("dashboard")
    .description("serve the live dashboard (read-only unless DASHBOARD_TOKEN is set)")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .addOption(new Option("--port <port>", "port (0 = any free one)").argParser(integer("--port", 0, 65_535)).env("DASHBOARD_PORT").default(8787))
    .addOption(new Option("--refresh <seconds>", "how often the page refreshes").argParser(number("--refresh", 0.2, 3600)).default(2))
    .action(async (o: { host: string; port: number; refresh: number }, cmd: Command) => {
      const { serveDashboard } = await import("../dashboard/server.ts");
      await withClient(cmd, async (tw) => {
        const token = state.connection!.config.DASHBOARD_TOKEN;
        // Fail now, not on the first page view, when the database is unreachable.
        await tw.getWorkerHealthSummary();
        const server = await serveDashboard({ client: tw, token, host: o.host, port: o.port, refreshMs: o.refresh * 1000 });
        io.err(`dashboard on ${server.url} (${token ? "actions need DASHBOARD_TOKEN" : "read-only"}; ${state.connection!.describe})`);
        const signals = stopSignals(() => process.exit(1));
        await signals.first;
        await server.close();
        signals.dispose();
      }, { serve: true });
    });

  program
    .command("supervise")
    .description("run N worker processes, restart crashed ones with exponential backoff, stop them all on SIGTERM")
    .argument("<script>", "the worker script (.js, .mjs or .ts)")
    .argument("[args...]", "arguments for the script (after --)")
    .addOption(new Option("-w, --workers <n>", "how many processes").argParser(integer("--workers", 1, 256)).default(1))
    .addOption(new Option("--restart <policy>", "restart crashed workers only, or also clean exits").choices(["on-failure", "always"]).default("on-failure"))
    .addOption(new Option("--backoff-initial <ms>", "first restart delay").argParser(integer("--backoff-initial", 0, 86_400_000)).default(1000))
    .addOption(new Option("--backoff-max <ms>", "largest restart delay").argParser(integer("--backoff-max", 0, 86_400_000)).default(60_000))
    .addOption(new Option("--reset-after <ms>", "a worker up this long starts over at the first delay").argParser(integer("--reset-after", 0, 86_400_000)).default(30_000))
    .addOption(new Option("--stop-timeout <ms>", "after SIGTERM, wait this long before SIGKILL").argParser(integer("--stop-timeout", 0, 86_400_000)).default(10_000))
    .action(async (script: string, args: string[], o: {
      workers: number; restart: RestartPolicy; backoffInitial: number; backoffMax: number; resetAfter: number; stopTimeout: number;
    }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const path = resolvePath(script);
      if (!existsSync(path)) throw new UsageError(`worker script not found: ${script}`);
      // On the embedded database the supervisor owns it, serves it to its workers and reaps it.
      const shared = await shareEmbedded(connectFor(g), {
        role: roleOf(cmd),
        onWait: waiting,
        onReapError: (err) => io.err(`supervise: reaper: ${describeError(err).message}`),
      });
      let sup: Supervisor;
      try {
        sup = new Supervisor({
          script: path,
          args,
          workers: o.workers,
          env: { ...process.env, ...io.env, ...shared?.env },
          restart: o.restart,
          backoff: { initialMs: o.backoffInitial, maxMs: o.backoffMax, resetAfterMs: o.resetAfter },
          stopTimeoutMs: o.stopTimeout,
          onEvent: (e) => (g.json ? io.out(JSON.stringify({ at: new Date().toISOString(), ...e })) : io.err(`supervise: ${describeEvent(e)}`)),
        });
      } catch (err) {
        await shared?.close();
        throw new UsageError((err as Error).message);
      }
      const onExit = () => sup.killAllNow();
      process.on("exit", onExit);
      // Insisting (a second Ctrl-C after a moment) kills the workers now instead of waiting.
      const signals = stopSignals(() => sup.killAllNow());
      sup.start();
      const signal = await Promise.race([signals.first, sup.done.then(() => undefined)]);
      if (signal) await sup.stop(signal);
      await shared?.close();
      signals.dispose();
      process.off("exit", onExit);
    });

  return program;
}

/** Runs one command line; resolves with the exit code (never throws, never prints a stack). */
export async function run(argv: string[], io: CliIO): Promise<number> {
  const state: RunState = {};
  const program = buildProgram(io, state);
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end "successfully"; everything else is a usage error commander already printed.
      return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    const { message, code } = describeError(err, state.connection?.describe);
    io.err(`taskwarden: ${message}`);
    return code;
  }
}
