// `taskwarden tasks stale | requeue | show`.
import { Option, type Command } from "commander";
import type { TaskAction } from "../../rpc/client.ts";
import { table, type Column } from "../../format.ts";
import type { Cli } from "../context.ts";
import { integer, MINUTES, taskId } from "../parse.ts";

export function tasksCommand(program: Command, cli: Cli): void {
  const tasks = program.command("tasks").description("stale tasks; requeue or inspect a task");
  tasks
    .command("stale")
    .description("requeue (or fail, past --max-attempts) running tasks with no heartbeat for a while")
    // Unset, each is its setting (task_stale_seconds, max_requeue, reap_batch), read by the database.
    .addOption(new Option("--stale-minutes <minutes>", "no heartbeat for this long (default: the setting task_stale_seconds)").argParser(integer("--stale-minutes", ...MINUTES)))
    .addOption(new Option("--max-attempts <n>", "fail instead of requeueing from this many attempts (default: the setting max_requeue)").argParser(integer("--max-attempts", 1, 1000)))
    .addOption(new Option("--batch-size <n>", "at most this many tasks (default: the setting reap_batch)").argParser(integer("--batch-size", 1, 10_000)))
    .option("--dry-run", "only show what would happen")
    .action(
      cli.action(async (tw, g, o: { staleMinutes?: number; maxAttempts?: number; batchSize?: number; dryRun?: boolean }) => {
        const rows = await tw.cleanupStaleRunningTasks({
          stale_minutes: o.staleMinutes,
          max_attempts: o.maxAttempts,
          batch_size: o.batchSize,
          dry_run: o.dryRun ?? false,
        });
        cli.print(g, rows, () => {
          if (rows.length === 0) {
            const over = o.staleMinutes === undefined ? "the setting task_stale_seconds" : `${o.staleMinutes} min`;
            return `no task has been running for more than ${over} without a heartbeat`;
          }
          const n = (a: string) => rows.filter((r) => r.action === a).length;
          const summary = o.dryRun
            ? `dry run: would requeue ${n("would_requeue")}, would fail ${n("would_fail")}`
            : `requeued ${n("requeued")}, failed ${n("failed")}`;
          const columns: Column<TaskAction>[] = [
            { header: "task", value: (a) => a.task_id, right: true },
            { header: "type", value: (a) => a.task_type },
            { header: "owner", value: (a) => a.owner_id },
            { header: "attempts", value: (a) => a.attempts, right: true },
            { header: "action", value: (a) => a.action },
            { header: "reason", value: (a) => a.reason },
          ];
          return `${table(rows, columns)}\n${summary}`;
        });
      }),
    );
  const forTask = (name: string, description: string) => tasks.command(name).description(description).argument("<task-id>", undefined, taskId);
  forTask("requeue", "put a task back in the queue to run now (running, failed or cancelled)")
    .option("--reason <text>", "recorded in the task's events")
    .action(
      cli.action(async (tw, g, id: number, o: { reason?: string }) => {
        const t = await tw.requeueTask({ task_id: id, reason: o.reason ?? null });
        cli.print(g, t, () => `task ${t.id} (${t.task_type}) requeued: ${t.status}, attempts ${t.attempts}/${t.max_attempts}`);
      }),
    );
  forTask("show", "a task and its event history")
    .option("--show-lease-token", "include the current lease token (a capability: whoever has it can complete the task)")
    .action(
      cli.action(async (tw, g, id: number, o: { showLeaseToken?: boolean }) => {
        const detail = await tw.getTask({ task_id: id });
        if (!o.showLeaseToken) {
          const { lease_token: _, ...task } = detail.task;
          detail.task = task as typeof detail.task;
        }
        cli.print(g, detail, () => {
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
      }),
    );
}
