// RpcTransport over supabase-js (PostgREST): `rpc(fn, namedArgs)` against the `taskwarden`
// schema with the service-role key. Web-standard: the Deno edge function uses it too.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { Database, Json } from "./database.types.ts";
import { callTimedOut, TaskwardenError, type CallOptions, type Row, type RpcTransport } from "./transport.ts";

type Functions = Database["taskwarden"]["Functions"];

/** One value: a number, text, a boolean, nothing (void), or jsonb; not a row (an object) or a set of rows (an array). */
type IsScalar<R> = [R] extends [string | number | boolean | null | undefined] ? true : [Json] extends [R] ? ([R] extends [Json] ? true : false) : false;

/** The public functions (internal ones start with `_`) that return one value, read from the generated types. */
type ScalarFunction = {
  [F in keyof Functions]: F extends `_${string}` ? never : IsScalar<Functions[F]["Returns"]> extends true ? F : never;
}[keyof Functions];

/**
 * Functions that return one value rather than rows. PostgREST answers a bare value for these and
 * an object for a function returning one composite row, so the two cannot be told apart from the
 * response. The list is what the generated types say (`satisfies` fails the type check when a
 * function is missing or one too many); test/supabase-transport.test.ts checks it against pg_proc.
 */
const SCALAR = {
  cleanup_stale_workers: true,
  get_task: true,
  get_task_counts: true,
  get_worker_health_summary: true,
  is_run_stale: true,
  mark_alerts_sent: true,
  prune: true,
  reap: true,
  recover_worker_tasks: true,
  schedule_reaper: true,
  stop_worker: true,
} as const satisfies Record<ScalarFunction, true>;
export const SCALAR_FUNCTIONS: ReadonlySet<string> = new Set(Object.keys(SCALAR));

export interface SupabaseTransportOptions {
  url: string;
  /**
   * The service_role JWT or a secret key (`sb_secret_…`): supabase-js sends either as `apikey`
   * and bearer, and Supabase's gateway runs both as service_role.
   */
  serviceRoleKey: string;
  /** Extra fetch (tests, custom agents). */
  fetch?: typeof fetch;
  /**
   * A WebSocket class where there is no global one (Node 20): supabase-js builds its realtime
   * client eagerly and refuses to start without one, although taskwarden never subscribes.
   */
  webSocket?: unknown;
}

export class SupabaseTransport implements RpcTransport {
  readonly client: SupabaseClient;

  constructor(options: SupabaseTransportOptions) {
    this.client = createClient(options.url, options.serviceRoleKey, {
      db: { schema: "taskwarden" },
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      global: options.fetch ? { fetch: options.fetch } : undefined,
      realtime: options.webSocket ? { transport: options.webSocket as never } : undefined,
    }) as unknown as SupabaseClient;
  }

  async call(fn: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<Row[]> {
    // PostgREST fills defaults for omitted arguments; undefined must not be sent as null.
    const named = Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined));
    const request = this.client.rpc(fn, named);
    const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
    const { data, error } = await (timeout ? request.abortSignal(timeout) : request);
    if (timeout?.aborted) throw callTimedOut(fn, options.timeoutMs!);
    if (error) {
      throw new TaskwardenError(error.message || `taskwarden.${fn} failed`, {
        sqlstate: typeof error.code === "string" && /^[0-9A-Z]{5}$/.test(error.code) ? error.code : undefined,
        hint: error.hint || undefined,
        detail: error.details || undefined,
        fn,
        cause: error,
      });
    }
    if (SCALAR_FUNCTIONS.has(fn)) return [{ [fn]: data }];
    if (Array.isArray(data)) return data as Row[];
    return data === null ? [] : [data as Row];
  }

  async close(): Promise<void> {
    // supabase-js holds no connection of its own: HTTP requests are independent.
  }
}
