// The `taskwarden` command line. Every command is one or two calls of the SQL API, in its own
// file under ./commands (argument parsers in ./parse.ts, errors and exit codes in ./errors.ts);
// this file wires them into one program and turns whatever a command throws into an exit code.
import { Command, CommanderError } from "commander";
import { cliContext, type CliIO, type RunState } from "./context.ts";
import { describeError, EXIT } from "./errors.ts";
import { dashboardCommand } from "./commands/dashboard.ts";
import { migrateCommand } from "./commands/migrate.ts";
import { pruneCommand } from "./commands/prune.ts";
import { reapCommand } from "./commands/reap.ts";
import { runsCommand } from "./commands/runs.ts";
import { statusCommand } from "./commands/status.ts";
import { superviseCommand } from "./commands/supervise.ts";
import { tasksCommand } from "./commands/tasks.ts";
import { workersCommand } from "./commands/workers.ts";

export type { CliIO } from "./context.ts";

/** In the order `--help` lists them. */
const COMMANDS = [
  statusCommand,
  workersCommand,
  runsCommand,
  tasksCommand,
  reapCommand,
  pruneCommand,
  migrateCommand,
  dashboardCommand,
  superviseCommand,
];

export function buildProgram(io: CliIO, state: RunState = {}): Command {
  const program = new Command("taskwarden");
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
  const cli = cliContext(io, state);
  for (const add of COMMANDS) add(program, cli);
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
