// `taskwarden status`: the health summary (workers, tasks, the reaper, stale runs) on one screen.
import type { Command } from "commander";
import type { HealthSummary } from "../../rpc/client.ts";
import { ago, duration, pairs, table } from "../../format.ts";
import type { Cli } from "../context.ts";

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

export function statusCommand(program: Command, cli: Cli): void {
  program
    .command("status")
    .description("workers (active / idle / processing / dead), tasks by status, stale runs, last reap")
    .action(cli.action(async (tw, g) => cli.print(g, await tw.getWorkerHealthSummary(), statusText)));
}
