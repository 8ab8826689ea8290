// Argument parsers shared by the commands. Flag values are checked here, against the same ranges
// the SQL enforces, so an operator reads the flag's name ("--stale-minutes must be …") rather
// than a SQL argument's.
import { UUID } from "../rpc/client.ts";
import { UsageError } from "./errors.ts";

export function number(flag: string, min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number (got "${raw}")`);
    if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max} (got ${raw})`);
    return n;
  };
}

export function integer(flag: string, min: number, max: number) {
  return (raw: string): number => {
    if (!/^[+-]?\d+$/.test(raw.trim())) throw new UsageError(`${flag} must be a whole number (got "${raw}")`);
    const n = Number(raw);
    if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max} (got ${raw.trim()})`);
    return n;
  };
}

/** Minutes of silence or staleness: one range for every command that takes them. */
export const MINUTES = [1, 525_600] as const;

export function taskId(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`task id must be a positive whole number (got "${raw}")`);
  const n = Number(raw);
  if (n < 1 || !Number.isSafeInteger(n)) throw new UsageError(`task id must be between 1 and ${Number.MAX_SAFE_INTEGER} (got ${raw.trim()})`);
  return n;
}

export function runId(raw: string): string {
  if (!UUID.test(raw)) throw new UsageError(`run id must be a uuid (got "${raw}")`);
  return raw;
}
