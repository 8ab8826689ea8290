// `taskwarden migrate`: apply supabase/migrations over a direct connection or to the embedded database.
import type { Command } from "commander";
import { openClient } from "../connection.ts";
import type { Cli, GlobalOptions } from "../context.ts";
import { UsageError } from "../errors.ts";

export function migrateCommand(program: Command, cli: Cli): void {
  program
    .command("migrate")
    .description("apply supabase/migrations to DATABASE_URL (or the embedded database)")
    .action(async (_o, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const connection = cli.connectFor(g);
      if (connection.kind === "supabase") {
        throw new UsageError("migrate needs DATABASE_URL (supabase-js cannot run migrations; or use `supabase db push`)");
      }
      const { migrate } = await import("../../rpc/migrate.ts");
      const tw = await openClient(connection, { migrate: false, role: cli.roleOf(cmd) });
      try {
        const result = await migrate(tw.transport as Parameters<typeof migrate>[0]);
        const applied = result.applied.map((m) => `${m.version}_${m.name}`);
        // A migration's NOTICE says what it skipped (no pg_cron, no Vault): a person must see it.
        cli.print(g, { applied, already_applied: result.alreadyApplied, notices: result.notices }, () =>
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
}
