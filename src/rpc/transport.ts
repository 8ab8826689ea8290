// The one seam between TypeScript and the SQL engine. Every implementation (node-postgres,
// PGlite, supabase-js) calls taskwarden.<fn> with named arguments and hands back plain rows,
// so the worker SDK, CLI, dashboard and edge function never care how they are connected.
// Web-standard code only: the Deno edge function imports this file too.

/** A row as the database returned it (after JSON-compatible normalisation). */
export type Row = Record<string, unknown>;

export interface RpcTransport {
  /**
   * Calls `taskwarden.<fn>(name => value, …)` and resolves with its rows. A function that
   * returns one row resolves with one row; a scalar-returning function resolves with
   * `[{ [fn]: value }]`. Failures reject with a TaskwardenError.
   */
  call(fn: string, args?: Record<string, unknown>, options?: CallOptions): Promise<Row[]>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

export interface CallOptions {
  /**
   * Give up after this many milliseconds with a transient TaskwardenError (no SQLSTATE): a call
   * over a link that silently drops bytes would otherwise wait forever.
   */
  timeoutMs?: number;
}

/** The error of a call that got no answer within its timeout: transient (no SQLSTATE). */
export function callTimedOut(fn: string, ms: number): TaskwardenError {
  return new TaskwardenError(`taskwarden.${fn} got no answer within ${ms} ms`, {
    fn,
    hint: "The database or the network to it is unreachable or slow; the call is retried.",
  });
}

/**
 * Races `promise` against `ms`; past it rejects with callTimedOut. The call itself goes on (its
 * transport cleans up after itself); a fenced write that lands late is idempotent.
 */
export function withTimeout<T>(promise: Promise<T>, fn: string, ms: number | undefined): Promise<T> {
  if (ms === undefined || !Number.isFinite(ms)) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(callTimedOut(fn, ms)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/** SQLSTATEs raised by the engine (see docs/sql-api.md). */
export const SQLSTATE = {
  leaseLost: "TW001",
  invalidArgument: "TW002",
  notFound: "TW003",
  invalidState: "TW004",
} as const;

/** One error type for every transport, so callers can tell "lease lost" from "bad argument". */
export class TaskwardenError extends Error {
  readonly sqlstate: string | undefined;
  readonly hint: string | undefined;
  readonly detail: string | undefined;
  readonly fn: string | undefined;

  constructor(
    message: string,
    opts: { sqlstate?: string; hint?: string; detail?: string; fn?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "TaskwardenError";
    this.sqlstate = opts.sqlstate;
    this.hint = opts.hint;
    this.detail = opts.detail;
    this.fn = opts.fn;
  }

  get leaseLost(): boolean {
    return this.sqlstate === SQLSTATE.leaseLost;
  }
  get invalidArgument(): boolean {
    return this.sqlstate === SQLSTATE.invalidArgument;
  }
  get notFound(): boolean {
    return this.sqlstate === SQLSTATE.notFound;
  }
  /** Not allowed in the row's current state (a completed task requeued, a run finished twice). */
  get invalidState(): boolean {
    return this.sqlstate === SQLSTATE.invalidState;
  }
  /**
   * Worth retrying: connection trouble (no SQLSTATE, class 08, 57P shutdown, 53 resources), a
   * deadlock or a serialization failure.
   */
  get transient(): boolean {
    return !this.sqlstate || /^(08|57P|53|40P01|40001)/.test(this.sqlstate);
  }
}
