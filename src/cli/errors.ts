// How the command line fails: one line, never a stack trace, and an exit code that says what
// kind of failure it was. The CLI and `npm start` both report errors through describeError.
import { ConfigError } from "../config.ts";
import { TaskwardenError } from "../rpc/transport.ts";

/** Exit codes, documented in `taskwarden --help`. */
export const EXIT = { ok: 0, failed: 1, badInput: 2, notFound: 3, invalidState: 4, unreachable: 5 } as const;

/** A bad command line: exit 2. */
export class UsageError extends Error {}

/** SQL hints name views and arguments; on the command line the same advice names a command. */
const CLI_HINTS: [RegExp, string][] = [
  [/taskwarden\.v_active_workers|worker ids/i, "run `taskwarden workers list` for worker ids"],
  [/^Check task_id\.?$/, "check the task id"],
  [/^Check run_id\.?$/, "check the run id; `taskwarden runs stale` lists running ones"],
];

function operatorHint(hint: string): string {
  return CLI_HINTS.find(([pattern]) => pattern.test(hint))?.[1] ?? hint;
}

/** One line, never a stack trace; the exit code says what kind of failure it was. */
export function describeError(err: unknown, where?: string): { message: string; code: number } {
  if (err instanceof UsageError) return { message: err.message, code: EXIT.badInput };
  if (err instanceof ConfigError) {
    return { message: `bad configuration: ${err.issues.map((i) => `${i.variable} ${i.message}`).join("; ")}`, code: EXIT.badInput };
  }
  if (err instanceof TaskwardenError) {
    const hint = err.hint ? ` (${operatorHint(err.hint)})` : "";
    if (err.notFound) return { message: `${err.message}${hint}`, code: EXIT.notFound };
    // A TW002 message already names the argument and its range.
    if (err.invalidArgument || err.sqlstate?.startsWith("22")) return { message: err.message, code: EXIT.badInput };
    if (err.invalidState) return { message: `${err.message}${hint}`, code: EXIT.invalidState };
    if (!err.sqlstate || err.sqlstate.startsWith("08") || err.sqlstate === "28P01" || err.sqlstate === "3D000") {
      return { message: `cannot reach ${where ?? "the database"}: ${err.message}`, code: EXIT.unreachable };
    }
    return { message: `${err.message}${hint}`, code: EXIT.failed };
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|CONNECT_TIMEOUT)$/.test(e.code)) {
    return { message: `cannot reach ${where ?? "the database"}: ${e.message}`, code: EXIT.unreachable };
  }
  return { message: err instanceof Error ? err.message.split("\n")[0]! : String(err), code: EXIT.failed };
}
