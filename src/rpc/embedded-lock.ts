// One owner per embedded (PGlite) data directory, enforced by the operating system.
//
// PGlite is a whole Postgres inside one process, working on the directory's files. Two processes
// that open one directory run two Postgres over the same files: each sees its own data, their
// writes overwrite each other, and under `taskwarden supervise --workers 2` both workers ran the
// same task. So a process opens a data directory only while it holds an exclusive lock on
// `<dir>/taskwarden.lock`; every other process connects to the owner's server instead
// (./embedded.ts).
//
// Why this lock: an open-file-description lock (fcntl F_OFD_SETLK on Linux, flock on macOS,
// LockFileEx on Windows) taken through fs-native-extensions, which ships prebuilt binaries (no
// compiler at install). The kernel drops it when the owner's file is closed, and so when the
// owner dies in any way: a SIGKILLed or OOM-killed owner leaves no stale lock behind, and nobody
// has to guess from a timeout whether it is dead. The alternatives guess: a pid file cannot tell a
// dead owner from a reused pid, and a lock directory refreshed by mtime (proper-lockfile) is taken
// from an owner that is alive but paused (SIGSTOP, a laptop asleep) and is stale for seconds after
// a crash. Node opens files close-on-exec, so worker processes the owner spawns do not inherit the
// lock and cannot keep it after the owner's death. The lock sits on one byte far past the file's
// content, so the content stays readable where locks are mandatory (Windows).
//
// The file also says who owns the directory and where it serves: one JSON object, rewritten in
// place (never replaced or deleted: a new file would be a second, separate lock), trusted only
// while its lock is held: after a crash the last owner's words stay behind, unlocked.

import { closeSync, constants, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

interface NativeLocks {
  tryLock(fd: number, offset: number, length: number, opts?: { shared?: boolean }): boolean;
}
const native = createRequire(import.meta.url)("fs-native-extensions") as NativeLocks;

export const LOCK_FILE = "taskwarden.lock";
/** Where on the file the lock sits: past any content the owner writes. */
const LOCK_OFFSET = 2 ** 30;

export interface OwnerInfo {
  pid: number;
  /** What the owner is, for messages: "npm start", "taskwarden status", "examples/worker.ts". */
  role: string;
  started_at: string;
  /** The owner will serve the database once it is open and migrated (other processes wait for it). */
  serve?: boolean;
  /** Set once the owner serves the database to other processes (with its local password). */
  database_url?: string;
}

/** Another process holds the data directory (or it could not be had in time). */
export class EmbeddedDatabaseBusyError extends Error {
  constructor(
    message: string,
    readonly dataDir: string,
    readonly owner: OwnerInfo | undefined,
  ) {
    super(message);
    this.name = "EmbeddedDatabaseBusyError";
  }
}

/** PGlite's in-memory and browser stores have no directory to share. */
export function isDirectoryDataDir(dataDir: string): boolean {
  return !/^[a-z]+:\/\//i.test(dataDir);
}

export function lockPath(dataDir: string): string {
  return join(dataDir, LOCK_FILE);
}

/** What the lock file says; undefined when empty, half-written or missing. Not proof of life. */
export function readOwnerInfo(dataDir: string): OwnerInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(lockPath(dataDir), "utf8")) as OwnerInfo;
    return typeof info?.pid === "number" ? info : undefined;
  } catch {
    return undefined;
  }
}

export function describeOwner(info: OwnerInfo | undefined): string {
  return info ? `pid ${info.pid} (${info.role})` : "another process";
}

export class DataDirLock {
  readonly dataDir: string;
  #fd: number | undefined;
  #info: OwnerInfo;

  private constructor(dataDir: string, fd: number, role: string, serve: boolean) {
    this.dataDir = dataDir;
    this.#fd = fd;
    this.#info = { pid: process.pid, role, started_at: new Date().toISOString(), serve };
    this.#write();
  }

  /**
   * The lock, or undefined when another owner holds it. Creates the directory (and its parents).
   * `serve`: this owner means to serve the database, so others should wait for it rather than give up.
   */
  static tryAcquire(dataDir: string, role: string, serve = false): DataDirLock | undefined {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Owner-only: it will hold the server's password.
    const fd = openSync(lockPath(dataDir), constants.O_RDWR | constants.O_CREAT, 0o600);
    let locked = false;
    try {
      locked = native.tryLock(fd, LOCK_OFFSET, 1);
    } finally {
      if (!locked) closeSync(fd);
    }
    return locked ? new DataDirLock(dataDir, fd, role, serve) : undefined;
  }

  /** The lock, or EmbeddedDatabaseBusyError naming the owner. */
  static acquire(dataDir: string, role: string): DataDirLock {
    const lock = DataDirLock.tryAcquire(dataDir, role);
    if (lock) return lock;
    const owner = readOwnerInfo(dataDir);
    throw new EmbeddedDatabaseBusyError(`the embedded database in ${dataDir} is in use by ${describeOwner(owner)}`, dataDir, owner);
  }

  /** Is the directory owned right now? Takes and drops the lock when nobody holds it. */
  static isHeld(dataDir: string): boolean {
    if (!existsSync(lockPath(dataDir))) return false;
    const probe = DataDirLock.tryAcquire(dataDir, "probe");
    probe?.release();
    return probe === undefined;
  }

  get info(): OwnerInfo {
    return this.#info;
  }

  /** Tells other processes where this owner serves the database. */
  announce(databaseUrl: string): void {
    this.#info = { ...this.#info, database_url: databaseUrl };
    this.#write();
  }

  #write(): void {
    if (this.#fd === undefined) return;
    const text = `${JSON.stringify(this.#info)}\n`;
    ftruncateSync(this.#fd, 0);
    writeSync(this.#fd, text, 0);
  }

  get held(): boolean {
    return this.#fd !== undefined;
  }

  /** Clears the owner's words (a clean exit leaves none behind) and drops the lock. */
  release(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      ftruncateSync(fd, 0);
    } finally {
      closeSync(fd);
    }
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, someone else's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The owner serving this directory right now; undefined when nobody holds it or it does not serve. */
export function servingOwner(dataDir: string): OwnerInfo | undefined {
  if (!isDirectoryDataDir(dataDir) || !DataDirLock.isHeld(dataDir)) return undefined;
  const info = readOwnerInfo(dataDir);
  return info?.database_url && alive(info.pid) ? info : undefined;
}
