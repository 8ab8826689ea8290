// RpcTransport over PGlite: the embedded default (no server to run), with the same SQL as the
// node-postgres transport. PGlite is one in-process session, so only one process may open a
// data directory at a time.

import { PGlite } from "@electric-sql/pglite";
import type { Row } from "./transport.ts";
import { SqlRpc, toTaskwardenError, type SqlExecutor, type SqlTransaction, type SqlTransport } from "./sql.ts";

export class PGliteTransport implements SqlTransport {
  readonly db: PGlite;
  readonly #owned: boolean;
  readonly #rpc: SqlRpc;

  /** Wraps an open PGlite; `owned` transports close it on close(). */
  constructor(db: PGlite, options: { owned?: boolean } = {}) {
    this.db = db;
    this.#owned = options.owned ?? false;
    this.#rpc = new SqlRpc(executor(db));
  }

  /** Opens PGlite on `dataDir` (a directory, created when missing), or in memory when omitted. */
  static async open(dataDir?: string): Promise<PGliteTransport> {
    const db = await PGlite.create(dataDir ? { dataDir } : {});
    // Timestamps inside the JSON rows are rendered in the session time zone.
    await db.exec("set time zone 'UTC'");
    return new PGliteTransport(db, { owned: true });
  }

  call(fn: string, args?: Record<string, unknown>): Promise<Row[]> {
    return this.#rpc.call(fn, args);
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
    if (this.#owned && !this.db.closed) await this.db.close();
  }
}

function executor(q: { query: PGlite["query"] }): SqlExecutor {
  return async (text, params) => (await q.query<Row>(text, params)).rows;
}

function isDatabaseError(err: unknown): boolean {
  return typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string";
}
