// RpcTransport over a direct Postgres connection (postgres.js). The only transport that can
// commit a handler's own writes together with complete_task (exactly-once effects), and the
// only one with LISTEN/NOTIFY wake-ups besides PGlite.

import postgres from "postgres";
import { TaskwardenError, type Row } from "./transport.ts";
import { SqlRpc, toTaskwardenError, type SqlExecutor, type SqlTransaction, type SqlTransport } from "./sql.ts";

export interface PostgresTransportOptions {
  /** A postgres:// URL; the transport opens (and closes) its own pool. */
  url?: string;
  /** Or an existing postgres.js instance, which the caller keeps ownership of. */
  sql?: postgres.Sql;
  /** Pool size of an owned pool (default 4: claims, completions and heartbeats overlap). */
  max?: number;
  /**
   * Behind a transaction-mode pooler (Supabase's port 6543, or `?pgbouncer=true`): no prepared
   * statements, and no LISTEN (the pooler cannot keep either across transactions), so workers
   * poll. Detected from the URL unless given.
   */
  pooled?: boolean;
  /** Server NOTICEs (e.g. from migrations); dropped by default. */
  onNotice?: (message: string) => void;
}

export class PostgresTransport implements SqlTransport {
  readonly sql: postgres.Sql;
  readonly #owned: boolean;
  readonly pooled: boolean;
  readonly #rpc: SqlRpc;
  #closed = false;

  constructor(options: string | PostgresTransportOptions) {
    const opts = typeof options === "string" ? { url: options } : options;
    this.pooled = opts.pooled ?? (opts.url ? isTransactionPooler(opts.url) : false);
    if (opts.sql) {
      this.sql = opts.sql;
      this.#owned = false;
    } else if (opts.url) {
      this.sql = postgres(withoutPoolerFlag(opts.url), {
        max: opts.max ?? 4,
        prepare: !this.pooled,
        onnotice: (n) => opts.onNotice?.(String(n.message)),
        // postgres.js 3.4 runs its array-type query on every new connection without a handler:
        // when the server cuts that connection (a restart), the rejection is unhandled and takes
        // the whole worker process down. Every RPC argument travels as text cast in SQL and every
        // row as jsonb, so nothing here needs those types; a query() selecting a bare array gets
        // it as Postgres text (select to_jsonb(...) for a parsed one).
        fetch_types: false,
        // Timestamps inside the JSON rows are rendered in the session time zone.
        connection: { TimeZone: "UTC", application_name: "taskwarden" },
      });
      this.#owned = true;
    } else {
      throw new TypeError("PostgresTransport needs a url or a postgres.js sql instance");
    }
    this.#rpc = new SqlRpc(this.#executor(this.sql));
  }

  #executor(sql: postgres.Sql | postgres.TransactionSql): SqlExecutor {
    return async (text, params) =>
      (await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: !this.pooled })) as unknown as Row[];
  }

  call(fn: string, args?: Record<string, unknown>): Promise<Row[]> {
    return this.#rpc.call(fn, args);
  }

  query<T extends Row = Row>(text: string, params: unknown[] = []): Promise<T[]> {
    return this.#rpc.query<T>(text, params);
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    try {
      return (await this.sql.begin(async (txSql) => {
        const exec = this.#executor(txSql as unknown as postgres.Sql);
        const rpc = this.#rpc;
        const tx: SqlTransaction = {
          call: (name, args) => rpc.call(name, args, exec),
          query: <R extends Row = Row>(text: string, params: unknown[] = []) => rpc.query<R>(text, params, exec),
          close: async () => {},
        };
        return fn(tx);
      })) as T;
    } catch (err) {
      // The caller's own errors pass through untouched; driver errors (a failed COMMIT) are mapped.
      throw err instanceof postgres.PostgresError ? toTaskwardenError(err) : err;
    }
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    if (this.pooled) {
      throw new TaskwardenError("LISTEN is not available through a transaction-mode pooler", {
        hint: "Use the direct connection (port 5432) for NOTIFY wake-ups; workers poll meanwhile.",
      });
    }
    try {
      const { unlisten } = await this.sql.listen(channel, (payload) => onNotify(payload));
      return async () => {
        if (!this.#closed) await unlisten();
      };
    } catch (err) {
      throw toTaskwardenError(err);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) await this.sql.end({ timeout: 5 });
  }
}

function isTransactionPooler(url: string): boolean {
  try {
    const u = new URL(url);
    return u.port === "6543" || u.searchParams.get("pgbouncer") === "true";
  } catch {
    return false;
  }
}

/** `pgbouncer=true` is a flag for clients; sent on, the server would reject it as a setting. */
function withoutPoolerFlag(url: string): string {
  try {
    const u = new URL(url);
    if (!u.searchParams.has("pgbouncer")) return url;
    u.searchParams.delete("pgbouncer");
    return u.toString();
  } catch {
    return url;
  }
}
