// The SQL both direct transports (node-postgres, PGlite) send, built in one place so they cannot
// drift apart. Web-standard code only.
//
// Every call is `select to_jsonb(r) as row from taskwarden.<fn>(a => $1::text::<type>, …) as r`:
// - parameters go over the wire as text and are cast by the argument's declared type (read
//   once from pg_catalog), so arrays, jsonb, uuid and bigint need no driver-specific typing;
// - rows come back as JSON built by the server, so bigint ids are JS numbers and timestamps
//   ISO strings — the same shapes PostgREST (supabase-js) returns, whatever the driver.

import { TaskwardenError, type Row, type RpcTransport } from "./transport.ts";

/** Runs one parameterised statement and resolves with its rows. */
export type SqlExecutor = (text: string, params: unknown[]) => Promise<Row[]>;

/** An open transaction on a direct connection: RPCs and the caller's own SQL commit together. */
export interface SqlTransaction extends RpcTransport {
  /** Runs the caller's own parameterised SQL inside the transaction. */
  query<T extends Row = Row>(text: string, params?: unknown[]): Promise<T[]>;
}

/** A transport over a direct database connection (node-postgres, PGlite). */
export interface SqlTransport extends RpcTransport {
  /**
   * Commits `fn`'s SQL and RPCs together, or rolls all of them back when it throws. With
   * `statementTimeoutMs` each statement that gets no answer in time fails (transient), so a
   * transaction over a cut link ends instead of hanging.
   */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>, options?: { statementTimeoutMs?: number }): Promise<T>;
  /** Runs the caller's own parameterised SQL outside any RPC. */
  query<T extends Row = Row>(text: string, params?: unknown[]): Promise<T[]>;
  /** Subscribes to NOTIFY on `channel`; resolves with the unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
}

export function isSqlTransport(rpc: RpcTransport): rpc is SqlTransport {
  const t = rpc as Partial<SqlTransport>;
  return typeof t.transaction === "function" && typeof t.query === "function" && typeof t.listen === "function";
}

export interface FunctionSignature {
  name: string;
  /** Input arguments in declaration order, with their SQL types (`bigint[]`, `jsonb`, …). */
  args: { name: string; type: string }[];
  /** Returns a base type (jsonb, integer, boolean): rows become `{ [fn]: value }`. */
  scalar: boolean;
}

// IN / INOUT / VARIADIC arguments only (proargtypes lacks names; proallargtypes includes OUT).
export const SIGNATURES_SQL = `
select p.proname as name,
       (rt.typtype <> 'c' and p.prorettype <> 'pg_catalog.record'::pg_catalog.regtype) as scalar,
       coalesce((
         select json_agg(json_build_object('name', a.name, 'type', pg_catalog.format_type(a.type, null)) order by a.ord)
         from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                     p.proargnames,
                     coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs::int])))
              with ordinality as a (type, name, mode, ord)
         where a.mode in ('i', 'b', 'v')
       ), '[]'::json) as args
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
join pg_catalog.pg_type rt on rt.oid = p.prorettype
where n.nspname = 'taskwarden' and p.proname !~ '^_' and p.prokind = 'f'
order by p.proname, p.pronargs`;

export function parseSignatures(rows: Row[]): Map<string, FunctionSignature> {
  const map = new Map<string, FunctionSignature>();
  for (const r of rows) {
    const args = (typeof r.args === "string" ? JSON.parse(r.args) : r.args) as { name: string; type: string }[];
    const name = String(r.name);
    const prev = map.get(name);
    // Overloads: the union of their argument names (none in the contract today).
    const merged = prev ? [...prev.args, ...args.filter((a) => !prev.args.some((p) => p.name === a.name))] : args;
    map.set(name, { name, args: merged, scalar: Boolean(r.scalar) });
  }
  return map;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function arrayElement(value: unknown, elementType: string): string {
  if (value === null || value === undefined) return "NULL";
  const text = scalarText(value, elementType);
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

function scalarText(value: unknown, type: string): string {
  if (type === "jsonb" || type === "json") return JSON.stringify(value);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Encodes a JS value as the text form of the SQL type it is cast to. */
export function encodeParam(value: unknown, type: string): string | null {
  if (value === null || value === undefined) return null;
  if (type.endsWith("[]")) {
    if (!Array.isArray(value)) return scalarText(value, type); // let the server name the bad literal
    const elementType = type.slice(0, -2);
    return `{${value.map((v) => arrayElement(v, elementType)).join(",")}}`;
  }
  return scalarText(value, type);
}

/** The statement and parameters for `taskwarden.<fn>(name => value, …)`; undefined args keep their defaults. */
export function buildCall(
  sig: FunctionSignature,
  args: Record<string, unknown> = {},
): { text: string; params: (string | null)[] } {
  const known = new Map(sig.args.map((a) => [a.name, a.type]));
  const unknown = Object.keys(args).filter((k) => args[k] !== undefined && !known.has(k));
  if (unknown.length > 0) {
    throw new TaskwardenError(
      `taskwarden.${sig.name} has no argument ${unknown.map((k) => `"${k}"`).join(", ")}` +
        ` (its arguments: ${sig.args.map((a) => a.name).join(", ") || "none"})`,
      { sqlstate: "42883", fn: sig.name, hint: "Use the argument names of the SQL API (docs/sql-api.md)." },
    );
  }
  const parts: string[] = [];
  const params: (string | null)[] = [];
  for (const { name, type } of sig.args) {
    const value = args[name];
    if (value === undefined) continue;
    params.push(encodeParam(value, type));
    parts.push(`${quoteIdent(name)} => $${params.length}::text::${type}`);
  }
  return {
    text: `select to_jsonb(r) as row from taskwarden.${quoteIdent(sig.name)}(${parts.join(", ")}) as r`,
    params,
  };
}

interface DriverError {
  message?: string;
  code?: string;
  hint?: string;
  detail?: string;
}

/** Maps a driver error (pg or PGlite DatabaseError, socket errors) to a TaskwardenError. */
export function toTaskwardenError(err: unknown, fn?: string): TaskwardenError {
  if (err instanceof TaskwardenError) return err;
  const e = (err ?? {}) as DriverError;
  // A SQLSTATE has a digit; a socket error's code (EPIPE, ECONNRESET) has none.
  const sqlstate = typeof e.code === "string" && /^(?=.*\d)[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const message = typeof e.message === "string" && e.message ? e.message : String(err);
  return new TaskwardenError(message, {
    sqlstate,
    hint: e.hint || undefined,
    detail: e.detail || undefined,
    fn,
    cause: err,
  });
}

/**
 * The RPC half shared by the direct transports: signature lookup (cached per connection
 * target, reloaded once when a function is missing, e.g. right after migrating), call
 * building, row unwrapping and error mapping.
 */
export class SqlRpc {
  #signatures: Promise<Map<string, FunctionSignature>> | undefined;

  constructor(private readonly exec: SqlExecutor) {}

  /** `exec` is the connection to read pg_catalog through: inside a transaction it must be the
   * transaction itself (PGlite serialises everything else behind it). */
  async signature(fn: string, exec: SqlExecutor = this.exec): Promise<FunctionSignature> {
    let map = await this.#load(false, exec);
    let sig = map.get(fn);
    if (!sig) {
      map = await this.#load(true, exec);
      sig = map.get(fn);
    }
    if (!sig) {
      throw new TaskwardenError(`function taskwarden.${fn} does not exist`, {
        sqlstate: "42883",
        fn,
        hint: "Check the function name, and that the migrations are applied (taskwarden migrate).",
      });
    }
    return sig;
  }

  #load(reload: boolean, exec: SqlExecutor): Promise<Map<string, FunctionSignature>> {
    if (!this.#signatures || reload) {
      const loading = exec(SIGNATURES_SQL, []).then(parseSignatures, (err) => {
        throw toTaskwardenError(err);
      });
      // A failed lookup (database down) must not be cached.
      loading.catch(() => {
        if (this.#signatures === loading) this.#signatures = undefined;
      });
      this.#signatures = loading;
    }
    return this.#signatures;
  }

  /** Calls `fn` through `exec` (the connection itself, or an open transaction). */
  async call(fn: string, args: Record<string, unknown> | undefined, exec: SqlExecutor = this.exec): Promise<Row[]> {
    const sig = await this.signature(fn, exec);
    const { text, params } = buildCall(sig, args);
    let rows: Row[];
    try {
      rows = await exec(text, params);
    } catch (err) {
      throw toTaskwardenError(err, fn);
    }
    return rows.map((r) => {
      const row = typeof r.row === "string" ? JSON.parse(r.row) : r.row;
      return sig.scalar ? { [fn]: row } : (row as Row);
    });
  }

  /** The caller's own SQL, with errors mapped like RPC errors. */
  async query<T extends Row>(text: string, params: unknown[] = [], exec: SqlExecutor = this.exec): Promise<T[]> {
    try {
      return (await exec(text, params)) as T[];
    } catch (err) {
      throw toTaskwardenError(err);
    }
  }
}
