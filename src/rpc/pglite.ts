// RpcTransport over PGlite: the embedded default (no server to run), with the same SQL as the
// node-postgres transport. PGlite is one in-process session, so only one process may open a
// data directory at a time: open() takes the directory's lock (./embedded-lock.ts), and serve()
// shares the database with other processes (./embedded.ts decides who owns and who connects).

import { PGlite } from "@electric-sql/pglite";
import { withTimeout, type CallOptions, type Row } from "./transport.ts";
import { DataDirLock, isDirectoryDataDir } from "./embedded-lock.ts";
import { servePGlite, type PGliteServer, type PGliteServerOptions } from "./pglite-server.ts";
import { SqlRpc, toTaskwardenError, type SqlExecutor, type SqlTransaction, type SqlTransport } from "./sql.ts";

export class PGliteTransport implements SqlTransport {
  readonly db: PGlite;
  readonly #owned: boolean;
  readonly #rpc: SqlRpc;
  /** The data directory's lock, held until close(). */
  readonly lock: DataDirLock | undefined;
  #server: PGliteServer | undefined;

  /** Wraps an open PGlite; `owned` transports close it on close(). */
  constructor(db: PGlite, options: { owned?: boolean; lock?: DataDirLock } = {}) {
    this.db = db;
    this.#owned = options.owned ?? false;
    this.lock = options.lock;
    this.#rpc = new SqlRpc(executor(db));
  }

  /**
   * Opens PGlite on `dataDir` (a directory, created with its parents when missing), or in memory
   * when omitted. Throws EmbeddedDatabaseBusyError while another process (or transport) owns it;
   * `role` names this one in that error elsewhere. A `lock` already taken for `dataDir` is used
   * (and released on close) instead.
   */
  static async open(dataDir?: string, options: { role?: string; lock?: DataDirLock } = {}): Promise<PGliteTransport> {
    const lock = options.lock ?? (dataDir && isDirectoryDataDir(dataDir) ? DataDirLock.acquire(dataDir, options.role ?? "taskwarden") : undefined);
    try {
      const db = await PGlite.create(dataDir ? { dataDir } : {});
      // Timestamps inside the JSON rows are rendered in the session time zone.
      await db.exec("set time zone 'UTC'");
      return new PGliteTransport(db, { owned: true, lock });
    } catch (err) {
      lock?.release();
      throw err;
    }
  }

  /** Serves this database on localhost and, for a data directory, tells other processes where. */
  async serve(options: Omit<PGliteServerOptions, "db"> = {}): Promise<PGliteServer> {
    if (this.#server) return this.#server;
    this.#server = await servePGlite({ ...options, db: this.db });
    this.lock?.announce(this.#server.url);
    return this.#server;
  }

  get server(): PGliteServer | undefined {
    return this.#server;
  }

  call(fn: string, args?: Record<string, unknown>, options: CallOptions = {}): Promise<Row[]> {
    // In-process: nothing to cut, but a call queued behind a long transaction still answers in time.
    return withTimeout(this.#rpc.call(fn, args), fn, options.timeoutMs);
  }

  query<T extends Row = Row>(text: string, params: unknown[] = []): Promise<T[]> {
    return this.#rpc.query<T>(text, params);
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const rpc = this.#rpc;
    try {
      return await this.db.transaction(async (t) => {
        const exec = executor(t);
        return fn({
          call: (name, args) => rpc.call(name, args, exec),
          query: <R extends Row = Row>(text: string, params: unknown[] = []) => rpc.query<R>(text, params, exec),
          close: async () => {},
        });
      });
    } catch (err) {
      throw isDatabaseError(err) ? toTaskwardenError(err) : err;
    }
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    const unlisten = await this.db.listen(channel, onNotify);
    return async () => {
      if (!this.db.closed) await unlisten();
    };
  }

  async close(): Promise<void> {
    try {
      await this.#server?.close();
      if (this.#owned && !this.db.closed) await this.db.close();
    } finally {
      // Only once PGlite has written its last page may another process open the directory.
      this.lock?.release();
    }
  }
}

function executor(q: { query: PGlite["query"] }): SqlExecutor {
  return async (text, params) => (await q.query<Row>(text, params)).rows;
}

function isDatabaseError(err: unknown): boolean {
  return typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string";
}
