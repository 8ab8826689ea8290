// `taskwarden runs stale | finish | cancel | archive`.
import { Option, type Command } from "commander";
import type { Taskwarden } from "../../rpc/index.ts";
import type { StaleRunAction } from "../../rpc/client.ts";
import { duration, table } from "../../format.ts";
import type { Cli } from "../context.ts";
import { number, runId } from "../parse.ts";

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

export function runsCommand(program: Command, cli: Cli): void {
  const runs = program.command("runs").description("stale runs; finish, cancel or archive a run");
  runs
    .command("stale")
    .description("runs stuck in running with no progress (a dry run unless --no-dry-run)")
    .addOption(new Option("--stale-hours <hours>", "no progress for this long (default: the setting run_stale_hours)").argParser(number("--stale-hours", 0.01, 87_600)))
    .option("--no-dry-run", "fail them, with the error \"Run marked as stale after Nh with no completion\"")
    .action(
      cli.action(async (tw, g, o: { staleHours?: number; dryRun: boolean }) => {
        const rows = await tw.cleanupStaleRuns({ stale_hours: o.staleHours, dry_run: o.dryRun });
        cli.print(g, rows, () => {
          const summary = o.dryRun
            ? rows.length
              ? `dry run: ${rows.length} run(s) would be failed; add --no-dry-run to fail them`
              : `no run has been running for more than ${o.staleHours === undefined ? "the setting run_stale_hours" : `${o.staleHours} h`} without progress`
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
      .argument("<run-id>", "the run's uuid", runId)
      .option(flag)
      .action(
        cli.action(async (tw, g, id: string, o: Record<string, string | undefined>) => {
          const run = await call(tw, id, Object.values(o)[0]);
          cli.print(g, run, () => `run ${run.id} (${run.name}): ${run.status}${run.error ? ` — ${run.error}` : ""}`);
        }),
      );
  runAction("finish", "finish a run: completed, or failed with --error", "--error <message>", (tw, id, error) => tw.finishRun({ run_id: id, error: error ?? null }));
  runAction("cancel", "cancel a run and its queued tasks", "--reason <text>", (tw, id, reason) => tw.cancelRun({ run_id: id, reason: reason ?? null }));
  runAction("archive", "archive a run", "--note <text>", (tw, id, note) => tw.archiveRun({ run_id: id, note: note ?? null }));
}
