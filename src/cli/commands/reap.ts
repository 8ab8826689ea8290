// `taskwarden reap`: one reaper pass, as pg_cron and the edge function run it.
import type { Command } from "commander";
import type { ReapSummary } from "../../rpc/client.ts";
import { reapTotals } from "../../reaper/loop.ts";
import type { Cli } from "../context.ts";

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

export function reapCommand(program: Command, cli: Cli): void {
  program
    .command("reap")
    .description("run the reaper once: expired leases, dead workers, timeouts, stale tasks and runs")
    .option("--dry-run", "only count what it would do")
    .option("--source <name>", "recorded in reaper_runs", "cli")
    .action(
      cli.action(async (tw, g, o: { dryRun?: boolean; source: string }) => {
        const s = await tw.reap({ source: o.source, dry_run: o.dryRun ?? false });
        cli.print(g, s, () => reapLine(s));
      }),
    );
}
