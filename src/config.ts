// Every environment variable taskwarden reads, in one zod schema. A bad value fails at start
// with one error naming every bad variable; secret values are never echoed or serialised.
// Web-standard (zod only): the Deno edge function parses its environment with this too.

import { z } from "zod";

/** Variables whose values are secrets: never logged, never in errors, redacted by toJSON. */
export const SECRET_VARIABLES = [
  "SUPABASE_SERVICE_ROLE_KEY",
  "SUPABASE_SECRET_KEYS",
  "SMTP_PASSWORD",
  "CRON_SECRET",
  "DASHBOARD_TOKEN",
] as const;
/** URL-valued variables that may embed credentials: serialised with those parts masked. */
const URL_VARIABLES = ["DATABASE_URL", "ALERT_WEBHOOK_URL"] as const;

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const REDACTED = "[redacted]";

/** Where the embedded database lives when TASKWARDEN_DATA_DIR is unset. */
export const DEFAULT_DATA_DIR = ".taskwarden/pglite";

function intVar(min: number, max: number) {
  return z.string().transform((raw, ctx) => {
    const s = raw.trim();
    const n = /^[+-]?\d+$/.test(s) ? Number(s) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: "custom", message: `must be a whole number between ${min} and ${max} (got "${raw}")` });
      return z.NEVER;
    }
    return n;
  });
}

/** Seconds; fractions allowed so tests can beat faster than once a second. */
function secondsVar(min: number, max: number) {
  return z.string().transform((raw, ctx) => {
    const s = raw.trim();
    const n = /^\d+(\.\d+)?$/.test(s) ? Number(s) : Number.NaN;
    if (!Number.isFinite(n) || n < min || n > max) {
      ctx.addIssue({ code: "custom", message: `must be a number of seconds between ${min} and ${max} (got "${raw}")` });
      return z.NEVER;
    }
    return n;
  });
}

function urlVar(protocols: string[], secretParts: boolean) {
  return z.string().transform((raw, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(raw.trim());
    } catch {
      // reported below
    }
    if (!url || !protocols.includes(url.protocol)) {
      const shown = secretParts ? "" : ` (got "${raw}")`;
      ctx.addIssue({ code: "custom", message: `must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL${shown}` });
      return z.NEVER;
    }
    return raw.trim();
  });
}

function boolVar() {
  return z.string().transform((raw, ctx) => {
    const s = raw.trim().toLowerCase();
    if (["true", "1", "yes"].includes(s)) return true;
    if (["false", "0", "no"].includes(s)) return false;
    ctx.addIssue({ code: "custom", message: `must be true or false (got "${raw}")` });
    return z.NEVER;
  });
}

const text = (what: string) => z.string().trim().min(1, `must be ${what}`);
const secret = (min = 1) =>
  z.string().refine((s) => s.trim().length >= min, { message: `must be at least ${min} characters (value not shown)` });
// What an `Authorization: Bearer` header can carry (RFC 6750's token68), which Hono's bearer-auth
// checks: any other character would make every request look unauthorized.
const bearerToken = secret(16).refine((s) => /^[A-Za-z0-9._~+/-]+=*$/.test(s), {
  message: "must be letters, digits and - . _ ~ + / only, as a bearer token (value not shown)",
});

// "Alerts <ops@example.com>" or a bare address.
const EMAIL = /^[^\s@<>,]+@[^\s@<>,]+\.[^\s@<>,]+$/;
const emailList = z.string().transform((raw, ctx) => {
  const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((e) => !EMAIL.test(e));
  if (list.length === 0 || bad.length > 0) {
    ctx.addIssue({ code: "custom", message: `must be one or more comma-separated e-mail addresses (bad: "${bad.join(", ") || raw}")` });
    return z.NEVER;
  }
  return list;
});
const sender = z.string().refine((s) => EMAIL.test(s.trim()) || /^[^<>]*<[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+>$/.test(s.trim()), {
  message: 'must be an e-mail address or "Name <address>"',
});

/** The role claim of a JWT-shaped key, without verifying it (only to catch the wrong key early). */
function jwtRole(key: string): string | undefined {
  const parts = key.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const role = (JSON.parse(json) as { role?: unknown }).role;
    return typeof role === "string" ? role : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A key that may call taskwarden's functions: the legacy service_role JWT or a new secret key
 * (`sb_secret_…`). The low-privilege keys are refused here, since the database would refuse every
 * call they make (execute is granted to service_role only).
 */
const serviceKey = secret(20).superRefine((raw, ctx) => {
  const key = raw.trim();
  if (key.startsWith("sb_publishable_")) {
    ctx.addIssue({ code: "custom", message: "is a publishable key; use a secret key (sb_secret_…) or the service_role key" });
  } else if (jwtRole(key) !== undefined && jwtRole(key) !== "service_role") {
    ctx.addIssue({ code: "custom", message: `is a JWT for role "${jwtRole(key)}"; use the service_role key or a secret key (sb_secret_…)` });
  }
});

/** SUPABASE_SECRET_KEYS as the platform sets it in Edge Functions: a JSON object of named sb_secret_ keys. */
const secretKeys = z.string().transform((raw, ctx) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const entries = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? Object.entries(parsed) : [];
  if (entries.length === 0 || entries.some(([, v]) => typeof v !== "string" || !v.startsWith("sb_secret_"))) {
    ctx.addIssue({ code: "custom", message: 'must be a JSON object of secret keys, {"default": "sb_secret_…"} (value not shown)' });
    return z.NEVER;
  }
  return Object.fromEntries(entries) as Record<string, string>;
});

/** PEM certificates to trust for SMTP over TLS, besides the system's (a private CA, a self-signed server). */
const pemCertificates = z.string().transform((raw, ctx) => {
  // A secret store may keep the PEM on one line with literal \n.
  const pem = raw.includes("\\n") && !raw.includes("\n") ? raw.replace(/\\n/g, "\n") : raw;
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem)) {
    ctx.addIssue({ code: "custom", message: "must be one or more PEM certificates (-----BEGIN CERTIFICATE-----)" });
    return z.NEVER;
  }
  return pem;
});

/** A worker id base: '#' separates the boot suffix, so it cannot appear in the base. */
const workerIdBase = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(150, "must be at most 150 characters")
  .refine((s) => !s.includes("#"), { message: 'must not contain "#" (it separates the boot id)' });

const logLevel = z.string().transform((raw, ctx) => {
  const s = raw.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(s)) {
    ctx.addIssue({ code: "custom", message: `must be one of ${LOG_LEVELS.join(", ")} (got "${raw}")` });
    return z.NEVER;
  }
  return s as (typeof LOG_LEVELS)[number];
});

const uuid = z
  .string()
  .trim()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a run id (a uuid)");

export const configSchema = z
  .object({
    // Worker
    WORKER_HEARTBEAT_INTERVAL: secondsVar(0.05, 3600).default(10),
    WORKER_MAX_LOOPS: intVar(1, Number.MAX_SAFE_INTEGER).optional(),
    WORKER_CONCURRENCY: intVar(1, 1000).default(1),
    WORKER_SHUTDOWN_GRACE_S: secondsVar(0, 86400).default(30),
    RUN_FILTER_ID: uuid.optional(),
    // This worker's lease per claim; unset, claims take the database's lease_seconds setting (its
    // one default). The reaper's thresholds have no variables: see RETIRED_VARIABLES.
    TASK_LEASE_S: intVar(1, 86400).optional(),
    // Connection: DATABASE_URL, else SUPABASE_URL + key, else embedded PGlite in TASKWARDEN_DATA_DIR
    DATABASE_URL: urlVar(["postgres:", "postgresql:"], true).optional(),
    SUPABASE_URL: urlVar(["http:", "https:"], false).optional(),
    // The service_role JWT or a new secret key (sb_secret_…): either works wherever the other does.
    SUPABASE_SERVICE_ROLE_KEY: serviceKey.optional(),
    // Set by Supabase in deployed Edge Functions: {"default": "sb_secret_…"}.
    SUPABASE_SECRET_KEYS: secretKeys.optional(),
    TASKWARDEN_DATA_DIR: text("a directory path").default(DEFAULT_DATA_DIR),
    // Alerts
    ALERT_WEBHOOK_URL: urlVar(["http:", "https:"], true).optional(),
    HEARTBEAT_MONITOR_ALERT_EMAIL: emailList.optional(),
    SMTP_HOST: text("a host name").optional(),
    // 465 (implicit TLS): Supabase Edge Functions block outbound 25 and 587.
    SMTP_PORT: intVar(1, 65535).default(465),
    // Implicit TLS from the first byte; unset means "on port 465". Without it STARTTLS is used when offered.
    SMTP_SECURE: boolVar().optional(),
    SMTP_TLS_CA: pemCertificates.optional(),
    SMTP_USER: text("a user name").optional(),
    SMTP_PASSWORD: secret().optional(),
    EMAIL_FROM: sender.optional(),
    // Scheduled calls (the edge function's cron trigger) authenticate with this
    CRON_SECRET: bearerToken.optional(),
    // The dashboard asks for this token when set
    DASHBOARD_TOKEN: bearerToken.optional(),
    LOG_LEVEL: logLevel.default("info"),
  })
  .superRefine((c, ctx) => {
    const need = (variable: string, message: string) => ctx.addIssue({ code: "custom", path: [variable], message });
    if (c.SUPABASE_URL && !c.SUPABASE_SERVICE_ROLE_KEY && !c.SUPABASE_SECRET_KEYS) {
      need("SUPABASE_SERVICE_ROLE_KEY", "is required when SUPABASE_URL is set");
    }
    if ((c.SUPABASE_SERVICE_ROLE_KEY || c.SUPABASE_SECRET_KEYS) && !c.SUPABASE_URL) {
      need("SUPABASE_URL", `is required when ${c.SUPABASE_SERVICE_ROLE_KEY ? "SUPABASE_SERVICE_ROLE_KEY" : "SUPABASE_SECRET_KEYS"} is set`);
    }
    if (c.HEARTBEAT_MONITOR_ALERT_EMAIL && !c.SMTP_HOST) need("SMTP_HOST", "is required when HEARTBEAT_MONITOR_ALERT_EMAIL is set");
    if (c.HEARTBEAT_MONITOR_ALERT_EMAIL && !c.EMAIL_FROM) need("EMAIL_FROM", "is required when HEARTBEAT_MONITOR_ALERT_EMAIL is set");
    if (c.SMTP_USER && !c.SMTP_PASSWORD) need("SMTP_PASSWORD", "is required when SMTP_USER is set");
    if (c.SMTP_PASSWORD && !c.SMTP_USER) need("SMTP_USER", "is required when SMTP_PASSWORD is set");
    if (c.TASK_LEASE_S !== undefined && c.TASK_LEASE_S <= c.WORKER_HEARTBEAT_INTERVAL * 2) {
      need(
        "TASK_LEASE_S",
        `must be more than twice WORKER_HEARTBEAT_INTERVAL (${c.TASK_LEASE_S} <= 2 x ${c.WORKER_HEARTBEAT_INTERVAL}): ` +
          "a lease must survive a missed heartbeat",
      );
    }
  });

/**
 * Variables that set the reaper's thresholds once, by name. Those thresholds live in
 * taskwarden.settings, where every reaper reads them (pg_cron's inside the database, which no
 * environment reaches): a variable in one process could only make that process's reaps disagree
 * with the scheduled ones. Setting one is a startup error that names the setting instead.
 */
export const RETIRED_VARIABLES: Record<string, string> = {
  TASK_STALE_S: "task_stale_seconds",
  TASK_MAX_REQUEUE: "max_requeue",
  TASK_REAP_BATCH: "reap_batch",
};

export type Config = z.output<typeof configSchema> & {
  /** Every `<TYPE>_WORKER_ID` variable that was set, by variable name. */
  WORKER_IDS: Record<string, string>;
};

export interface ConfigIssue {
  variable: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(
      `Invalid environment configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  ${i.variable} ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** `COMPANY_RESEARCH_WORKER_ID` for worker type "company-research". */
export function workerIdVariable(workerType: string): string {
  return `${workerType.toUpperCase().replace(/[^A-Z0-9]+/g, "_").replace(/^_+|_+$/g, "")}_WORKER_ID`;
}

type Env = Record<string, string | undefined>;

function defaultEnv(): Env {
  const g = globalThis as { process?: { env?: Env }; Deno?: { env?: { toObject(): Env } } };
  return g.process?.env ?? g.Deno?.env?.toObject() ?? {};
}

/** Parses the environment (process.env by default). Throws a ConfigError naming every bad variable. */
export function loadConfig(env: Env = defaultEnv()): Config {
  // An empty value (`FOO=` in a .env file) means unset.
  const present: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") present[k] = v;

  const issues: ConfigIssue[] = [];
  for (const [variable, setting] of Object.entries(RETIRED_VARIABLES)) {
    if (variable in present) {
      issues.push({
        variable,
        message: `is no longer read: the reaper reads the setting ${setting} from taskwarden.settings ` +
          `(update taskwarden.settings set value = '${present[variable].trim()}' where key = '${setting}'), then unset ${variable}`,
      });
    }
  }
  const workerIds: Record<string, string> = {};
  for (const [k, v] of Object.entries(present)) {
    if (!/^[A-Z0-9_]+_WORKER_ID$/.test(k)) continue;
    const r = workerIdBase.safeParse(v);
    if (r.success) workerIds[k] = r.data;
    else issues.push({ variable: k, message: r.error.issues[0].message });
  }

  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      issues.push({ variable: String(i.path[0] ?? "environment"), message: i.message });
    }
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);

  const config = { ...parsed.data, WORKER_IDS: workerIds } as Config;
  Object.defineProperty(config, "toJSON", { value: () => redactConfig(config), enumerable: false });
  // Node's console.log / util.inspect use this symbol; harmless elsewhere.
  Object.defineProperty(config, Symbol.for("nodejs.util.inspect.custom"), {
    value: () => redactConfig(config),
    enumerable: false,
  });
  return config;
}

/**
 * The key supabase-js calls taskwarden with: a secret key from SUPABASE_SECRET_KEYS ("default"
 * first) where the platform sets it, else SUPABASE_SERVICE_ROLE_KEY (the service_role JWT or an
 * sb_secret_ key). In a deployed function both are set, and the new key keeps working on a project
 * that has turned its legacy JWT keys off.
 */
export function supabaseServiceKey(config: Pick<Config, "SUPABASE_SERVICE_ROLE_KEY" | "SUPABASE_SECRET_KEYS">): string | undefined {
  const keys = config.SUPABASE_SECRET_KEYS;
  if (keys) return keys.default ?? Object.values(keys)[0];
  return config.SUPABASE_SERVICE_ROLE_KEY?.trim();
}

/** Masks the password (and, for webhooks, the path and query that carry the token) of a URL. */
export function redactUrl(raw: string, keepPath = true): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = "redacted";
    if (!keepPath) return `${url.protocol}//${url.host}/${REDACTED}`;
    return url.toString();
  } catch {
    return REDACTED;
  }
}

/** A copy safe to print or log. */
export function redactConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const k of SECRET_VARIABLES) if (out[k] !== undefined) out[k] = REDACTED;
  for (const k of URL_VARIABLES) {
    if (typeof out[k] === "string") out[k] = redactUrl(out[k] as string, k === "DATABASE_URL");
  }
  return out;
}
