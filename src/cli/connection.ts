// How a `taskwarden` command reaches the database: DATABASE_URL, else SUPABASE_URL + key, else
// the embedded PGlite. One process owns an embedded data directory (src/rpc/embedded.ts): while
// one serves it (`npm start`, a worker, supervise, a dashboard) commands connect to its server;
// otherwise a command owns the directory for its own short run.
import { loadConfig, type Config } from "../config.ts";
import { connect, transportKind, type Taskwarden, type TransportKind } from "../rpc/index.ts";
import { servingOwner, type OwnerInfo } from "../rpc/embedded-lock.ts";

export interface ConnectionOptions {
  databaseUrl?: string;
  dataDir?: string;
  env?: Record<string, string | undefined>;
}

export interface ResolvedConnection {
  config: Config;
  kind: TransportKind;
  /** What a person would call it in a message (no secrets). */
  describe: string;
  /** Set when another process owns the embedded database and serves it. */
  served?: OwnerInfo;
}

export function resolveConnection(opts: ConnectionOptions = {}): ResolvedConnection {
  const env = { ...(opts.env ?? process.env) };
  if (opts.databaseUrl) env.DATABASE_URL = opts.databaseUrl;
  if (opts.dataDir) env.TASKWARDEN_DATA_DIR = opts.dataDir;
  let config = loadConfig(env);
  let describe: string;
  const kind = transportKind(config);
  if (kind === "postgres") {
    const u = new URL(config.DATABASE_URL!);
    describe = `the database at ${u.hostname}:${u.port || 5432}`;
  } else if (kind === "supabase") {
    describe = `Supabase at ${new URL(config.SUPABASE_URL!).host}`;
  } else {
    const served = servingOwner(config.TASKWARDEN_DATA_DIR);
    if (served) {
      config = { ...config, DATABASE_URL: served.database_url };
      describe = `the embedded database served by ${served.role} (pid ${served.pid})`;
      return { config, kind: "postgres", describe, served };
    }
    describe = `the embedded database in ${config.TASKWARDEN_DATA_DIR}`;
  }
  return { config, kind, describe };
}

export interface OpenOptions {
  migrate?: boolean;
  /** Owning the embedded database: serve it to other processes while this one runs (long-lived commands). */
  serve?: boolean;
  /** Names this process to the others: "taskwarden status". */
  role?: string;
  /** Called once when the embedded database's owner keeps this process waiting. */
  onWait?: (owner: OwnerInfo | undefined) => void;
}

export async function openClient(resolved: ResolvedConnection, options: OpenOptions = {}): Promise<Taskwarden> {
  return connect({
    ...resolved.config,
    migrate: options.migrate,
    embedded: { serve: options.serve ?? false, role: options.role ?? "taskwarden", onWait: options.onWait },
  });
}

export interface SharedEmbedded {
  /** What child processes need to reach it: DATABASE_URL of the owner's server. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * For commands that start other taskwarden processes (supervise): on the embedded database this
 * process becomes its owner, serves it to its children and reaps it (PGlite has no pg_cron), so the
 * workers share one database that outlives any one of them. Undefined for a server database, or
 * when another process already serves the directory (the children find it themselves).
 */
export async function shareEmbedded(
  resolved: ResolvedConnection,
  options: { role: string; reapIntervalMs?: number; onReapError?: (err: unknown) => void; onWait?: OpenOptions["onWait"] },
): Promise<SharedEmbedded | undefined> {
  if (resolved.kind !== "pglite") return undefined;
  const tw = await openClient(resolved, { serve: true, role: options.role, onWait: options.onWait });
  const { PGliteTransport } = await import("../rpc/pglite.ts");
  const url = tw.transport instanceof PGliteTransport ? tw.transport.server?.url : undefined;
  if (!url) {
    await tw.close();
    return undefined;
  }
  const { ReaperLoop } = await import("../reaper/loop.ts");
  const reaper = new ReaperLoop({ client: tw, intervalMs: options.reapIntervalMs ?? 5000, source: "local", onError: options.onReapError });
  reaper.start();
  return {
    env: { DATABASE_URL: url },
    async close() {
      await reaper.stop();
      await tw.close();
    },
  };
}
