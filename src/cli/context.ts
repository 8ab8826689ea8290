// What every command gets from the program: where to print, the global flags, and a client for
// the database those flags (or the environment) name.
import type { Command } from "commander";
import type { Taskwarden } from "../rpc/index.ts";
import type { OwnerInfo } from "../rpc/embedded-lock.ts";
import { openClient, resolveConnection, type OpenOptions, type ResolvedConnection } from "./connection.ts";

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  env?: Record<string, string | undefined>;
}

export interface GlobalOptions {
  json?: boolean;
  databaseUrl?: string;
  dataDir?: string;
}

/** What the command connected to, for error messages. */
export interface RunState {
  connection?: ResolvedConnection;
}

export interface Cli {
  io: CliIO;
  state: RunState;
  /** JSON for --json, else the text `text` builds from it (only built when printed). */
  print<T>(g: GlobalOptions, data: T, text: (data: T) => string): void;
  connectFor(g: GlobalOptions): ResolvedConnection;
  /** "taskwarden workers list": how other processes see this one while it holds the embedded database. */
  roleOf(cmd: Command): string;
  waiting(owner: OwnerInfo | undefined): void;
  /**
   * A command's action, run with a client that is closed afterwards. Commander calls an action
   * with the command's arguments, its options, then the command itself; `fn` gets the first two.
   */
  action<A extends unknown[]>(fn: (tw: Taskwarden, g: GlobalOptions, ...args: A) => Promise<void>, open?: OpenOptions): (...args: [...A, Command]) => Promise<void>;
}

export function cliContext(io: CliIO, state: RunState): Cli {
  const cli: Cli = {
    io,
    state,
    print: (g, data, text) => io.out(g.json ? JSON.stringify(data, null, 2) : text(data)),
    connectFor: (g) => (state.connection = resolveConnection({ databaseUrl: g.databaseUrl, dataDir: g.dataDir, env: io.env })),
    roleOf(cmd) {
      const names: string[] = [];
      for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
      return names.join(" ");
    },
    waiting: (owner) =>
      io.err(`taskwarden: waiting for ${owner ? `pid ${owner.pid} (${owner.role})` : "another process"}, which holds the embedded database`),
    action: (fn, open = {}) => async (...args) => {
      const cmd = args.at(-1) as Command;
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const tw = await openClient(cli.connectFor(g), { role: cli.roleOf(cmd), onWait: cli.waiting, ...open });
      try {
        await fn(tw, g, ...(args.slice(0, -1) as never));
      } finally {
        await tw.close().catch(() => {});
      }
    },
  };
  return cli;
}
