// RpcTransport over a direct Postgres connection (node-postgres). The only transport that can
// commit a handler's own writes together with complete_task (exactly-once effects), and the
// only one with LISTEN/NOTIFY wake-ups besides PGlite.
//
// Why node-postgres: a worker has to outlive a database restart. postgres.js 3.4.9 (the latest)
// left queries pending forever after `pg_ctl restart` under concurrent use, and crashed the
// process from a timer (`nextWrite` on a nulled socket); pg's pool drops the broken clients and
// the next query opens a new one.

import { createHash, randomUUID } from "node:crypto";
import pg from "pg";
import { TaskwardenError, withTimeout, type CallOptions, type Row } from "./transport.ts";
import { SqlRpc, toTaskwardenError, type SqlExecutor, type SqlTransaction, type SqlTransport } from "./sql.ts";

export interface PostgresTransportOptions {
  /** A postgres:// URL; the transport opens (and closes) its own pool. */
  url?: string;
  /** Or an existing pg.Pool, which the caller keeps ownership of. */
  pool?: pg.Pool;
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
  /**
   * Milliseconds a new connection may take to open (and a call may wait for a free one) before
   * it fails (default 10 s): through a link that drops bytes a connect would hang for minutes.
   */
  connectTimeoutMs?: number;
}

/** Seconds between attempts to re-open a LISTEN connection the server dropped. */
const LISTEN_RETRY_MS = 1000;
/** How long a new LISTEN connection waits for its own probe notification before giving up. */
const LISTEN_PROBE_MS = 3000;

export class PostgresTransport implements SqlTransport {
  readonly pool: pg.Pool;
  readonly pooled: boolean;
  readonly #owned: boolean;
  readonly #rpc: SqlRpc;
  readonly #connection: pg.ClientConfig;
  readonly #listeners = new Set<() => Promise<void>>();
  #closed = false;
  /** No named statements: configured `pooled`, or a pooler the URL did not reveal lost one. */
  #unnamed: boolean;

  constructor(options: string | PostgresTransportOptions) {
    const opts = typeof options === "string" ? { url: options } : options;
    this.pooled = opts.pooled ?? (opts.url ? isTransactionPooler(opts.url) : false);
    this.#unnamed = this.pooled;
    // Timestamps inside the JSON rows are rendered in the session time zone. A pooler refuses the
    // `options` startup parameter (PgBouncer: "unsupported startup parameter"), so pooled
    // sessions keep the server's zone: the timestamps carry their offset either way.
    this.#connection = opts.url
      ? {
          connectionString: withoutPoolerFlag(opts.url),
          application_name: "taskwarden",
          ...(this.pooled ? {} : { options: "-c TimeZone=UTC" }),
        }
      : {};
    if (opts.pool) {
      this.pool = opts.pool;
      this.#owned = false;
    } else if (opts.url) {
      this.pool = new pg.Pool({ ...this.#connection, max: opts.max ?? 4, connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000 });
      this.#owned = true;
      // A restart kills idle clients too: the pool drops them, and the next query opens another.
      this.pool.on("error", () => {});
      if (opts.onNotice) this.pool.on("connect", (c) => c.on("notice", (n) => opts.onNotice!(n.message ?? "")));
    } else {
      throw new TypeError("PostgresTransport needs a url or a pg.Pool");
    }
    // A checked-out client whose server goes away emits "error" besides failing its query; with
    // no listener that event would be thrown and take the process down.
    this.pool.on("connect", (c) => c.on("error", () => {}));
    this.#rpc = new SqlRpc(this.#executor(this.pool));
  }

  #executor(on: pg.Pool | pg.PoolClient, timeoutMs?: number): SqlExecutor {
    const run = async (client: pg.PoolClient, text: string, params: unknown[]) => {
      // Named statements are prepared once per connection; a transaction pooler cannot keep
      // them. The name is unique per connection too: behind `npm start`'s embedded server many
      // connections share one session.
      const name = this.#unnamed || params.length === 0 ? undefined : `${connectionTag(client)}_${statementHash(text)}`;
      // query_timeout fails the query with a plain Error, so the pool destroys the connection
      // below: after a read timeout the connection's state is unknown.
      try {
        return (await client.query({ name, text, values: params, query_timeout: timeoutMs } as pg.QueryConfig)).rows as Row[];
      } catch (err) {
        // 26000 / 42P05: the statement this connection prepared is not (or already) on the server
        // connection that ran it: a transaction-mode pooler the URL did not reveal. Stop naming
        // statements; outside a transaction nothing ran, so run it again unnamed.
        if (!name || !(err instanceof pg.DatabaseError) || (err.code !== "26000" && err.code !== "42P05")) throw err;
        this.#unnamed = true;
        if (!(on instanceof pg.Pool)) throw err;
        return (await client.query({ text, values: params, query_timeout: timeoutMs } as pg.QueryConfig)).rows as Row[];
      }
    };
    if (!(on instanceof pg.Pool)) return (text, params) => run(on, text, params);
    return async (text, params) => {
      const client = await on.connect();
      let broken: Error | undefined;
      try {
        return await run(client, text, params);
      } catch (err) {
        // A database error leaves the connection usable; anything else (a socket) does not.
        if (!(err instanceof pg.DatabaseError)) broken = err as Error;
        throw err;
      } finally {
        client.release(broken);
      }
    };
  }

  call(fn: string, args?: Record<string, unknown>, options: CallOptions = {}): Promise<Row[]> {
    const { timeoutMs } = options;
    if (timeoutMs === undefined) return this.#rpc.call(fn, args);
    // The query's own read timeout frees its connection; the race also bounds the wait for a
    // connection from the pool, which a link dropping bytes can hold for connectTimeoutMs.
    return withTimeout(this.#rpc.call(fn, args, this.#executor(this.pool, timeoutMs)), fn, timeoutMs);
  }

  query<T extends Row = Row>(text: string, params: unknown[] = []): Promise<T[]> {
    return this.#rpc.query<T>(text, params);
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>, options: { statementTimeoutMs?: number } = {}): Promise<T> {
    // The driver's own statements (connect, BEGIN, COMMIT) map their errors; the caller's errors
    // pass through untouched (its RPCs and queries inside map theirs already).
    const driver = <R>(p: Promise<R>) => p.catch((err: unknown) => Promise.reject(toTaskwardenError(err)));
    const timeout = options.statementTimeoutMs;
    const own = (text: string) => client.query({ text, query_timeout: timeout } as pg.QueryConfig);
    const client = await driver(this.pool.connect());
    let broken: Error | undefined;
    try {
      await driver(own("begin"));
      const exec = this.#executor(client, timeout);
      const rpc = this.#rpc;
      const tx: SqlTransaction = {
        call: (name, args) => rpc.call(name, args, exec),
        query: <R extends Row = Row>(text: string, params: unknown[] = []) => rpc.query<R>(text, params, exec),
        close: async () => {},
      };
      const value = await fn(tx);
      await driver(own("commit"));
      return value;
    } catch (err) {
      // A statement that timed out left the connection in an unknown state: never reuse it.
      if (err instanceof TaskwardenError && err.transient) broken ??= err;
      await own("rollback").catch((e: Error) => (broken = e));
      throw err;
    } finally {
      // A client whose rollback failed is in an unknown state: destroy it, never reuse it.
      client.release(broken);
    }
  }

  /**
   * LISTEN on a connection of its own, re-opened (and re-LISTENed) when the server drops it;
   * notifications sent while it was down are missed, which the worker's poll covers.
   */
  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    if (this.pooled) {
      throw new TaskwardenError("LISTEN is not available through a transaction-mode pooler", {
        hint: "Use the direct connection (port 5432) for NOTIFY wake-ups; workers poll meanwhile.",
      });
    }
    let client: pg.Client | undefined;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const open = async (probe = false): Promise<void> => {
      const c = new pg.Client(this.#connection.connectionString ? this.#connection : (this.pool.options as pg.ClientConfig));
      c.on("notification", (m) => m.channel === channel && onNotify(m.payload ?? ""));
      c.on("error", () => {}); // followed by "end"
      c.on("end", () => {
        if (stopped || client !== c) return;
        client = undefined;
        retry = setTimeout(reopen, LISTEN_RETRY_MS);
        retry.unref?.();
      });
      await c.connect();
      await c.query(`listen ${pg.escapeIdentifier(channel)}`);
      if (probe && !(await this.#hearsItself(c))) {
        // Best effort: a pooler's server connection would otherwise keep the LISTEN for its next client.
        await c.query("unlisten *").catch(() => {});
        await c.end().catch(() => {});
        throw new TaskwardenError("LISTEN got no notification back: a transaction-mode pooler between here and the database?", {
          hint: "Workers poll instead. Add ?pgbouncer=true to a pooler's URL, or use the direct connection (port 5432) for wake-ups.",
        });
      }
      client = c;
    };
    const reopen = () => {
      if (stopped) return;
      open().catch(() => {
        retry = setTimeout(reopen, LISTEN_RETRY_MS);
        retry.unref?.();
      });
    };
    try {
      await open(true);
    } catch (err) {
      throw err instanceof TaskwardenError ? err : toTaskwardenError(err);
    }
    const unlisten = async () => {
      stopped = true;
      clearTimeout(retry);
      this.#listeners.delete(unlisten);
      await client?.end().catch(() => {});
    };
    this.#listeners.add(unlisten);
    return unlisten;
  }

  /**
   * Whether a NOTIFY sent from another connection reaches `c`. A transaction-mode pooler accepts
   * LISTEN but hands the server connection on after it, so nothing ever arrives.
   */
  async #hearsItself(c: pg.Client): Promise<boolean> {
    const probe = `taskwarden_probe_${randomUUID().replaceAll("-", "")}`;
    let heard!: () => void;
    const arrived = new Promise<void>((resolve) => (heard = resolve));
    const onProbe = (m: pg.Notification) => m.channel === probe && heard();
    c.on("notification", onProbe);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await c.query(`listen ${pg.escapeIdentifier(probe)}`);
      await this.pool.query("select pg_notify($1, '')", [probe]);
      return await Promise.race([
        arrived.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), LISTEN_PROBE_MS))),
      ]);
    } finally {
      clearTimeout(timer);
      c.off("notification", onProbe);
      await c.query(`unlisten ${pg.escapeIdentifier(probe)}`).catch(() => {});
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#listeners].map((u) => u()));
    if (this.#owned) await this.pool.end();
  }
}

const tags = new WeakMap<pg.PoolClient, string>();

function connectionTag(client: pg.PoolClient): string {
  let tag = tags.get(client);
  if (!tag) tags.set(client, (tag = `tw${randomUUID().slice(0, 8)}`));
  return tag;
}

function statementHash(text: string): string {
  return createHash("sha1").update(text).digest("hex").slice(0, 16);
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
