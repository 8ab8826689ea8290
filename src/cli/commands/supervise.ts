// `taskwarden supervise`: N worker processes kept alive, stopped together on a signal.
import { existsSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { Option, type Command } from "commander";
import { stopSignals } from "../../signals.ts";
import { describeEvent, Supervisor, type RestartPolicy } from "../../supervise.ts";
import { shareEmbedded } from "../connection.ts";
import type { Cli, GlobalOptions } from "../context.ts";
import { describeError, UsageError } from "../errors.ts";
import { integer } from "../parse.ts";

export function superviseCommand(program: Command, cli: Cli): void {
  const { io } = cli;
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
      const shared = await shareEmbedded(cli.connectFor(g), {
        role: cli.roleOf(cmd),
        onWait: cli.waiting,
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
}
