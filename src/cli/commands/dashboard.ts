// `taskwarden dashboard`: serve the live dashboard until a signal.
import { Option, type Command } from "commander";
import { stopSignals } from "../../signals.ts";
import type { Cli } from "../context.ts";
import { integer, number } from "../parse.ts";

export function dashboardCommand(program: Command, cli: Cli): void {
  program
    .command("dashboard")
    .description("serve the live dashboard (read-only unless DASHBOARD_TOKEN is set)")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .addOption(new Option("--port <port>", "port (0 = any free one)").argParser(integer("--port", 0, 65_535)).env("DASHBOARD_PORT").default(8787))
    .addOption(new Option("--refresh <seconds>", "how often the page refreshes").argParser(number("--refresh", 0.2, 3600)).default(2))
    .action(
      cli.action(async (tw, _g, o: { host: string; port: number; refresh: number }) => {
        const { serveDashboard } = await import("../../dashboard/server.ts");
        const token = cli.state.connection!.config.DASHBOARD_TOKEN;
        // Fail now, not on the first page view, when the database is unreachable.
        await tw.getWorkerHealthSummary();
        const server = await serveDashboard({ client: tw, token, host: o.host, port: o.port, refreshMs: o.refresh * 1000 });
        cli.io.err(`dashboard on ${server.url} (${token ? "actions need DASHBOARD_TOKEN" : "read-only"}; ${cli.state.connection!.describe})`);
        const signals = stopSignals(() => process.exit(1));
        await signals.first;
        await server.close();
        signals.dispose();
      }, { serve: true }),
    );
}
