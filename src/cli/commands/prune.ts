// `taskwarden prune`: the retention duty, called until the backlog is gone.
import type { Command } from "commander";
import type { Cli } from "../context.ts";

export function pruneCommand(program: Command, cli: Cli): void {
  program
    .command("prune")
    .description("retention: delete finished tasks (and their events), old reaper runs and stopped worker rows past their periods")
    .option("--dry-run", "only count what one call would delete")
    .action(
      cli.action(async (tw, g, o: { dryRun?: boolean }) => {
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
        cli.print(g, { dry_run: o.dryRun ?? false, ...total }, () =>
          `${o.dryRun ? "would delete" : "deleted"}: ${total.tasks.completed} completed, ${total.tasks.cancelled} cancelled, ${total.tasks.failed} failed task(s), ` +
          `${total.task_events} event(s), ${total.reaper_runs} reaper run(s), ${total.workers} worker row(s)` +
          `${o.dryRun ? (total.more ? " (at least: one call's worth)" : "") : ` in ${total.calls} call(s)`}`,
        );
      }),
    );
}
