// How a `taskwarden` command reaches the database: DATABASE_URL, else SUPABASE_URL + key, else
// the embedded PGlite. PGlite is one process's: while `npm start` holds the data directory it
// serves it on localhost and leaves its address next to it, and commands connect there instead.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadConfig, type Config } from "../config.ts";
import { connect, transportKind, type Taskwarden, type TransportKind } from "../rpc/index.ts";

export interface ConnectionOptions {
  databaseUrl?: string;
  dataDir?: string;
  env?: Record<string, string | undefined>;
}

export interface ServerInfo {
  pid: number;
  database_url: string;
}

/** Where `npm start` announces the embedded database it serves. */
export function serverInfoPath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}.server.json`;
}

export function writeServerInfo(dataDir: string, info: ServerInfo): void {
  const path = serverInfoPath(dataDir);
  mkdirSync(dirname(path), { recursive: true });
  // It holds the local password: owner-only.
  writeFileSync(path, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
}

export function removeServerInfo(dataDir: string): void {
  rmSync(serverInfoPath(dataDir), { force: true });
}

/** The running `npm start` serving this data directory, if there is one. */
export function readServerInfo(dataDir: string): ServerInfo | undefined {
  let info: ServerInfo;
  try {
    info = JSON.parse(readFileSync(serverInfoPath(dataDir), "utf8")) as ServerInfo;
  } catch {
    return undefined;
  }
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    // ESRCH: it is gone and left the file behind; EPERM: alive, owned by someone else.
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return undefined;
  }
  return info;
}

export interface ResolvedConnection {
  config: Config;
  kind: TransportKind;
  /** What a person would call it in a message (no secrets). */
  describe: string;
  /** Set when the embedded database is held, and served, by a running `npm start`. */
  served?: ServerInfo;
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
    const served = readServerInfo(config.TASKWARDEN_DATA_DIR);
    if (served) {
      config = { ...config, DATABASE_URL: served.database_url };
      describe = `the embedded database served by npm start (pid ${served.pid})`;
      return { config, kind: "postgres", describe, served };
    }
    describe = `the embedded database in ${config.TASKWARDEN_DATA_DIR}`;
  }
  return { config, kind, describe };
}

/** PGlite creates its data directory, but not the folders above it (`.taskwarden/`). */
export function prepareDataDir(dataDir: string): void {
  mkdirSync(dirname(dataDir), { recursive: true });
}

export async function openClient(resolved: ResolvedConnection, options: { migrate?: boolean } = {}): Promise<Taskwarden> {
  if (resolved.kind === "pglite") prepareDataDir(resolved.config.TASKWARDEN_DATA_DIR);
  return connect({ ...resolved.config, migrate: options.migrate });
}
