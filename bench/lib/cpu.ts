// CPU time spent by the server and by this process: the machine the bench runs on is shared
// (other work, Postgres and the workers on the same cores), so beside jobs/s, which depends on
// what else runs, each throughput run records the CPU milliseconds per job it cost, which does
// not. Read from /proc (Linux), for a server on this machine only.
import { readFileSync } from "node:fs";
import type { Sql } from "./db.ts";

/** Linux's USER_HZ: /proc reports CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

function statFields(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; the rest follows its closing parenthesis.
    return raw.slice(raw.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The postmaster's pid (the parent of any backend), or undefined when the server is elsewhere. */
export async function postmasterPid(sql: Sql): Promise<number | undefined> {
  const [{ pid }] = await sql`select pg_backend_pid() as pid`;
  const ppid = Number(statFields(Number(pid))?.[1]);
  return Number.isFinite(ppid) && ppid > 1 ? ppid : undefined;
}

/**
 * CPU seconds of the server so far: the postmaster, its live children (backends, WAL writer,
 * autovacuum) and the children that already exited (the postmaster's cutime / cstime).
 */
export function serverCpuSeconds(postmaster: number): number {
  const own = statFields(postmaster);
  if (!own) return NaN;
  // Fields after the name, 0-based: 11 utime, 12 stime, 13 cutime, 14 cstime.
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return NaN;
  }
  for (const child of children) {
    const f = statFields(Number(child));
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

/** CPU seconds of this process (the workers under test run in it, and so does the measuring). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
