// Structured JSON logs (pino) to stdout. LOG_LEVEL picks the level; under vitest the default is
// silent so test output stays readable. Secret fields are redacted wherever they appear.

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

export function createLogger(options: LoggerOptions = {}): Logger {
  const logger = pino(
    {
      level: options.level ?? envLevel(),
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
  return options.bindings ? logger.child(options.bindings) : logger;
}

/** The process-wide logger. */
export const log: Logger = createLogger();
