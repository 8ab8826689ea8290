// connect(): the one place that decides how this process reaches taskwarden.
// DATABASE_URL → node-postgres; SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY → supabase-js (PostgREST);
// otherwise the embedded PGlite in TASKWARDEN_DATA_DIR, owned by one process and reached by the
// others through the owner's server (./embedded.ts). Transports are imported lazily so a process
// only loads the driver it uses.

import { DEFAULT_DATA_DIR, type Config } from "../config.ts";
import { Taskwarden } from "./client.ts";
import type { RpcTransport } from "./transport.ts";
import type { EmbeddedOptions } from "./embedded.ts";

export { Taskwarden } from "./client.ts";
export type * from "./client.ts";
export { TaskwardenError, SQLSTATE, type RpcTransport, type Row } from "./transport.ts";
export { isSqlTransport, type SqlTransport, type SqlTransaction } from "./sql.ts";

export type ConnectConfig = Partial<
  Pick<Config, "DATABASE_URL" | "SUPABASE_URL" | "SUPABASE_SERVICE_ROLE_KEY" | "TASKWARDEN_DATA_DIR">
> & {
  /**
   * Apply supabase/migrations before returning. Default: true for the embedded PGlite (nothing
   * else will set it up), false for a server, which is migrated once by `taskwarden migrate`.
   */
  migrate?: boolean;
  /** Server NOTICEs (direct connections only). */
  onNotice?: (message: string) => void;
  /** The embedded database: how this process owns it or reaches its owner (see ./embedded.ts). */
  embedded?: Omit<EmbeddedOptions, "migrate" | "onNotice">;
};

export type TransportKind = "postgres" | "supabase" | "pglite";

export function transportKind(config: ConnectConfig): TransportKind {
  if (config.DATABASE_URL) return "postgres";
  if (config.SUPABASE_URL && config.SUPABASE_SERVICE_ROLE_KEY) return "supabase";
  return "pglite";
}

export async function connect(config: ConnectConfig): Promise<Taskwarden> {
  const kind = transportKind(config);
  let transport: RpcTransport;
  if (kind === "postgres") {
    const { PostgresTransport } = await import("./postgres.ts");
    transport = new PostgresTransport({ url: config.DATABASE_URL!, onNotice: config.onNotice });
  } else if (kind === "supabase") {
    transport = await openSupabase(config.SUPABASE_URL!, config.SUPABASE_SERVICE_ROLE_KEY!);
  } else {
    const { openEmbedded } = await import("./embedded.ts");
    // The owner migrates (unless told not to); a client finds it migrated.
    const opened = await openEmbedded(config.TASKWARDEN_DATA_DIR ?? DEFAULT_DATA_DIR, {
      ...config.embedded,
      migrate: config.migrate ?? true,
      onNotice: config.onNotice,
    });
    return new Taskwarden(opened.transport);
  }
  if (config.migrate) {
    if (kind === "supabase") {
      await transport.close();
      throw new Error("migrations cannot run through supabase-js: set DATABASE_URL, or use `supabase db push`");
    }
    const { migrate } = await import("./migrate.ts");
    try {
      await migrate(transport as Parameters<typeof migrate>[0]);
    } catch (err) {
      await transport.close();
      throw err;
    }
  }
  return new Taskwarden(transport);
}

async function openSupabase(url: string, serviceRoleKey: string): Promise<RpcTransport> {
  const { SupabaseTransport } = await import("./supabase.ts");
  // Node 20 has no global WebSocket, which supabase-js requires even when realtime is unused.
  const webSocket = (globalThis as { WebSocket?: unknown }).WebSocket ?? (await import("ws")).default;
  return new SupabaseTransport({ url, serviceRoleKey, webSocket });
}
