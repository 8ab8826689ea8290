// `taskwarden workers list | stop | cleanup`: who is alive, a remote drain, and old rows removed.
import { Option, type Command } from "commander";
import { duration, table } from "../../format.ts";
import type { Cli } from "../context.ts";
import { integer, MINUTES } from "../parse.ts";

export function workersCommand(program: Command, cli: Cli): void {
  const workers = program.command("workers").description("list, drain and clean up workers");
  workers
    .command("list")
    .description("live and dead workers with heartbeat age and current task")
    .action(
      cli.action(async (tw, g) => {
        const rows = await tw.listWorkers();
        cli.print(g, rows, () =>
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
    .action(
      cli.action(async (tw, g, workerId: string) => {
        const row = await tw.requestWorkerStop({ worker_id: workerId });
        cli.print(g, row, () => `drain requested for ${row.worker_id}: it exits after its next heartbeat`);
      }),
    );
  workers
    .command("cleanup")
    .description("delete rows of workers stopped or silent for a while (never ones still holding tasks)")
    .addOption(new Option("--stale-minutes <minutes>", "silent or stopped for at least this long (default: the setting worker_retention_minutes)").argParser(integer("--stale-minutes", ...MINUTES)))
    .action(
      cli.action(async (tw, g, o: { staleMinutes?: number }) => {
        const deleted = await tw.cleanupStaleWorkers({ stale_minutes: o.staleMinutes });
        const over = o.staleMinutes === undefined ? "the setting worker_retention_minutes" : `${o.staleMinutes} minutes`;
        cli.print(g, { deleted, stale_minutes: o.staleMinutes ?? null }, () => `deleted ${deleted} worker row(s) stopped or silent for more than ${over}`);
      }),
    );
}
