// Reaching an embedded (PGlite) database: own it, or connect to its owner.
//
// Exactly one process owns a data directory (the lock in ./embedded-lock.ts); a long-lived owner
// serves it on localhost (./pglite-server.ts) and every other process connects there over the
// wire protocol, like to any Postgres. What each entry point does when nobody owns it yet:
//
// - `npm start`, `taskwarden supervise`, `taskwarden dashboard` and workers (connect(), so
//   examples/worker.ts): become the owner and serve everybody else. A worker started first (the
//   example on a fresh clone) is the owner until it exits, and then its clients lose the
//   database: `npm start` is the owner meant to outlive them.
// - one-shot `taskwarden` commands (status, tasks, reap, migrate…): own the directory for their
//   second without serving; a process that arrives meanwhile waits for them to finish.
// - `npm start` while another process serves the directory: refuses, naming it (two dashboards
//   and reapers on one database is a mistake, not a wish).
//
// A process that cannot get the database in time exits with one line that says to run
// `npm start`. The owner migrates the database; clients trust it to have done so.

import { setTimeout as sleep } from "node:timers/promises";
import type { SqlTransport } from "./sql.ts";
import { PGliteTransport } from "./pglite.ts";
import { alive, DataDirLock, describeOwner, EmbeddedDatabaseBusyError, readOwnerInfo, type OwnerInfo } from "./embedded-lock.ts";

export interface EmbeddedOptions {
  /** Names this process to others ("npm start", "taskwarden status", "examples/worker.ts"). */
  role?: string;
  /** An owner serves the database to other processes (default true). */
  serve?: boolean;
  /** An owner applies the migrations (default true). */
  migrate?: boolean;
  /** When another process already serves the directory: connect to it (default) or refuse. */
  ifServed?: "connect" | "refuse";
  /**
   * How long to wait for an owner that will serve but is still opening the database (default
   * 5 min: a first start under load takes a minute), and for one that does not serve (default 60 s:
   * a `taskwarden` command).
   */
  waitMs?: { starting?: number; busy?: number };
  /** Called once when this process has to wait for the owner. */
  onWait?: (owner: OwnerInfo | undefined) => void;
  onNotice?: (message: string) => void;
  /** The owner's server: a client refused or broke the protocol. */
  onClientError?: (message: string) => void;
}

export type EmbeddedConnection =
  | { role: "owner"; transport: PGliteTransport; /** Migrations this open applied. */ applied: number }
  | { role: "client"; transport: SqlTransport; owner: OwnerInfo };

const POLL_MS = 100;

/** The role a process has by default: the script it runs, as a person would type it. */
export function defaultRole(): string {
  const script = process.argv[1];
  if (!script) return "node";
  const cwd = `${process.cwd()}/`;
  return script.startsWith(cwd) ? script.slice(cwd.length) : script;
}

export async function openEmbedded(dataDir: string, options: EmbeddedOptions = {}): Promise<EmbeddedConnection> {
  const role = options.role ?? defaultRole();
  const startingMs = options.waitMs?.starting ?? 300_000;
  const busyMs = options.waitMs?.busy ?? 60_000;
  const started = performance.now();
  let seen: OwnerInfo | undefined;
  let waiting = false;
  for (;;) {
    const lock = DataDirLock.tryAcquire(dataDir, role, options.serve ?? true);
    if (lock) return { role: "owner", ...(await openAsOwner(dataDir, lock, options)) };
    const info = readOwnerInfo(dataDir);
    if (info) seen = info;
    if (info?.database_url && alive(info.pid)) {
      if (options.ifServed === "refuse") {
        throw new EmbeddedDatabaseBusyError(`the embedded database in ${dataDir} is already served by ${describeOwner(info)}`, dataDir, info);
      }
      const client = await connectTo(info.database_url, options);
      if (client) return { role: "client", transport: client, owner: info };
      // Its server did not answer: the owner is stopping. Look again.
    }
    const starting = seen?.serve === true && alive(seen.pid);
    if (performance.now() - started > (starting ? startingMs : busyMs)) {
      const what = starting
        ? `is still being opened by ${describeOwner(seen)} after ${Math.round(startingMs / 1000)} s; stop it`
        : `is held by ${describeOwner(seen)}, which does not share it; stop it`;
      throw new EmbeddedDatabaseBusyError(
        `the embedded database in ${dataDir} ${what}, or run \`npm start\` first (it keeps the database and shares it with every worker and command)`,
        dataDir,
        seen,
      );
    }
    if (!waiting) {
      waiting = true;
      options.onWait?.(seen);
    }
    await sleep(POLL_MS);
  }
}

/** Opens the directory under the lock this process holds; the transport releases it on close. */
async function openAsOwner(dataDir: string, lock: DataDirLock, options: EmbeddedOptions): Promise<{ transport: PGliteTransport; applied: number }> {
  const transport = await PGliteTransport.open(dataDir, { lock });
  try {
    let applied = 0;
    if (options.migrate ?? true) {
      const { migrate } = await import("./migrate.ts");
      applied = (await migrate(transport)).applied.length;
    }
    // Announced only once migrated: a client may use what it finds at once.
    if (options.serve ?? true) await transport.serve({ onClientError: options.onClientError });
    return { transport, applied };
  } catch (err) {
    await transport.close();
    throw err;
  }
}

async function connectTo(url: string, options: EmbeddedOptions): Promise<SqlTransport | undefined> {
  const { PostgresTransport } = await import("./postgres.ts");
  const transport = new PostgresTransport({ url, onNotice: options.onNotice, connectTimeoutMs: 5000 });
  try {
    await transport.query("select 1");
    return transport;
  } catch {
    await transport.close().catch(() => {});
    return undefined;
  }
}
