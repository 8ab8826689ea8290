// Structured JSON logs (pino) to stdout, one line each, for log collectors; on a terminal (stdout
// a TTY) the same records as short readable lines instead. LOG_LEVEL picks the level; under vitest
// the default is silent so test output stays readable. Secret fields are redacted wherever they
// appear (before either format sees them).

import { pino, type Logger } from "pino";
import { LOG_LEVELS, SECRET_VARIABLES } from "./config.ts";

export type { Logger } from "pino";
export type LogLevel = (typeof LOG_LEVELS)[number];

const SECRET_KEYS = [
  ...SECRET_VARIABLES,
  "password",
  "serviceRoleKey",
  "service_role_key",
  "apikey",
  "authorization",
  "cronSecret",
];

// pino's redaction matches paths, so cover the key at the top level and one or two levels down.
const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

function envLevel(): LogLevel {
  const raw = process.env.LOG_LEVEL?.trim().toLowerCase();
  if (raw && (LOG_LEVELS as readonly string[]).includes(raw)) return raw as LogLevel;
  return process.env.VITEST ? "silent" : "info";
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Fields on every line, e.g. { worker_id }. */
  bindings?: Record<string, unknown>;
  /** Where lines go (default stdout). */
  destination?: pino.DestinationStream;
}

const LEVEL_COLOURS: Record<string, string> = { fatal: "35", error: "31", warn: "33", info: "32", debug: "36", trace: "90" };
/** Fields every line carries that a person at a terminal does not need repeated. */
const QUIET_KEYS = new Set(["level", "time", "msg", "pid", "hostname", "worker_id", "worker_type"]);

function plain(value: unknown): string {
  if (typeof value === "string") return /[\s="]/.test(value) || value === "" ? JSON.stringify(value) : value;
  if (value !== null && typeof value === "object" && "message" in value && typeof value.message === "string") {
    // A serialised error: its type and message (the stack only matters in the JSON logs).
    const type = "type" in value && typeof value.type === "string" ? value.type : "Error";
    return JSON.stringify(`${type}: ${value.message}`);
  }
  return JSON.stringify(value) ?? String(value);
}

/**
 * One pino JSON record as a terminal line: `12:04:05 WARN  [greet-1#a1b2] task failed attempt=1 err="Error: …"`.
 * A line that is not JSON passes through unchanged.
 */
export function prettyLine(json: string, colour = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith("\n") ? json : `${json}\n`;
  }
  const level = String(rec.level ?? "info");
  const time = typeof rec.time === "string" ? rec.time.slice(11, 19) : new Date().toISOString().slice(11, 19);
  const label = level.toUpperCase().padEnd(5);
  const who = rec.worker_id ? `[${String(rec.worker_id)}] ` : "";
  const fields = Object.entries(rec)
    .filter(([k]) => !QUIET_KEYS.has(k))
    .map(([k, v]) => `${k}=${plain(v)}`)
    .join(" ");
  const head = colour ? `\x1b[${LEVEL_COLOURS[level] ?? "0"}m${label}\x1b[0m` : label;
  return `${time} ${head} ${who}${String(rec.msg ?? "")}${fields ? `  ${colour ? `\x1b[2m${fields}\x1b[0m` : fields}` : ""}\n`;
}

/** A pino destination that writes readable lines (see prettyLine) to a stream. */
export function prettyDestination(out: { write(s: string): unknown; isTTY?: boolean } = process.stdout): pino.DestinationStream {
  const colour = out.isTTY === true && !process.env.NO_COLOR;
  return { write: (line: string) => void out.write(prettyLine(line, colour)) };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const logger = pino(
    {
      level: options.level ?? envLevel(),
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? (process.stdout.isTTY ? prettyDestination(process.stdout) : undefined),
  );
  return options.bindings ? logger.child(options.bindings) : logger;
}

/** The process-wide logger. */
export const log: Logger = createLogger();

const LEVEL_METHODS = new Set(["trace", "debug", "info", "warn", "error", "fatal"]);

/**
 * `parent.child(bindings)`, made only when a line is logged at an enabled level (or the logger
 * is used otherwise). A pino child with redaction costs more than a no-op task's whole run, so a
 * worker that logs nothing per task at its level must not make one per task.
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  const real = () => (child ??= parent.child(bindings));
  const skip = () => {};
  return new Proxy({} as Logger, {
    get(_, prop) {
      if (child === undefined && typeof prop === "string" && LEVEL_METHODS.has(prop) && !parent.isLevelEnabled(prop)) return skip;
      const value = Reflect.get(real(), prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(child) : value;
    },
  });
}
