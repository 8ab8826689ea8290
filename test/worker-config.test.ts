// The environment schema and the logger: defaults, one error naming every bad variable,
// secrets never echoed, serialised or logged.
import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, redactConfig, workerIdVariable } from "../src/config.ts";
import { createLogger } from "../src/log.ts";

const KEY = "service-role-key-that-must-never-be-printed";

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("loadConfig accepted a bad environment");
}

describe("loadConfig", () => {
  it("applies the design's defaults to an empty environment (empty strings count as unset)", () => {
    const c = loadConfig({ WORKER_MAX_LOOPS: "", PATH: "/usr/bin" });
    expect(c).toMatchObject({
      WORKER_HEARTBEAT_INTERVAL: 10,
      WORKER_CONCURRENCY: 1,
      WORKER_SHUTDOWN_GRACE_S: 30,
      SMTP_PORT: 465,
      LOG_LEVEL: "info",
      TASKWARDEN_DATA_DIR: ".taskwarden/pglite",
      WORKER_IDS: {},
    });
    expect(c.WORKER_MAX_LOOPS).toBeUndefined();
    expect(c.DATABASE_URL).toBeUndefined();
    // The lease has one default, the database's lease_seconds setting: unset here, null in the call.
    expect(c.TASK_LEASE_S).toBeUndefined();
  });

  it("refuses the retired reaper variables, naming the setting that replaced each", () => {
    const err = configError({ TASK_STALE_S: "60", TASK_MAX_REQUEUE: "5", TASK_REAP_BATCH: "50" });
    expect(err.issues.map((i) => i.variable).sort()).toEqual(["TASK_MAX_REQUEUE", "TASK_REAP_BATCH", "TASK_STALE_S"]);
    expect(err.message).toContain(
      "TASK_STALE_S is no longer read: the reaper reads the setting task_stale_seconds from taskwarden.settings " +
        "(update taskwarden.settings set value = '60' where key = 'task_stale_seconds'), then unset TASK_STALE_S",
    );
    expect(err.message).toContain("setting max_requeue");
    expect(err.message).toContain("setting reap_batch");
  });

  it("parses every variable of the design", () => {
    const c = loadConfig({
      WORKER_HEARTBEAT_INTERVAL: "0.5",
      TASK_LEASE_S: "20",
      RUN_FILTER_ID: "8F14E45F-CEEA-4E7A-9C1B-2D3C4B5A6978",
      WORKER_MAX_LOOPS: "10",
      COMPANY_RESEARCH_WORKER_ID: "research-1",
      DATABASE_URL: "postgresql://app:pw@db.example.com:5432/postgres",
      SUPABASE_URL: "https://abc.supabase.co",
      SUPABASE_SERVICE_ROLE_KEY: KEY,
      ALERT_WEBHOOK_URL: "https://hooks.example.com/services/T0/B0/XYZ",
      HEARTBEAT_MONITOR_ALERT_EMAIL: "ops@example.com, oncall@example.com",
      SMTP_HOST: "smtp.example.com",
      SMTP_PORT: "2525",
      SMTP_USER: "mailer",
      SMTP_PASSWORD: "smtp-secret",
      EMAIL_FROM: "taskwarden <alerts@example.com>",
      CRON_SECRET: "cron-secret-0123456789",
      LOG_LEVEL: "DEBUG",
    });
    expect(c).toMatchObject({
      WORKER_HEARTBEAT_INTERVAL: 0.5,
      TASK_LEASE_S: 20,
      WORKER_MAX_LOOPS: 10,
      SMTP_PORT: 2525,
      LOG_LEVEL: "debug",
      HEARTBEAT_MONITOR_ALERT_EMAIL: ["ops@example.com", "oncall@example.com"],
      WORKER_IDS: { COMPANY_RESEARCH_WORKER_ID: "research-1" },
    });
    expect(c.WORKER_IDS[workerIdVariable("company-research")]).toBe("research-1");
  });

  it("names every bad variable in one error, with what is wrong", () => {
    const err = configError({
      WORKER_HEARTBEAT_INTERVAL: "fast",
      TASK_LEASE_S: "1.5",
      RUN_FILTER_ID: "run-7",
      DATABASE_URL: "mysql://root:pw@db/x",
      SMTP_PORT: "70000",
      LOG_LEVEL: "loud",
      EMAIL_WORKER_ID: "mail#1",
    });
    expect(err.issues.map((i) => i.variable).sort()).toEqual(
      ["DATABASE_URL", "EMAIL_WORKER_ID", "LOG_LEVEL", "RUN_FILTER_ID", "SMTP_PORT", "TASK_LEASE_S", "WORKER_HEARTBEAT_INTERVAL"].sort(),
    );
    expect(err.message).toContain('WORKER_HEARTBEAT_INTERVAL must be a number of seconds between 0.05 and 3600 (got "fast")');
    expect(err.message).toContain('TASK_LEASE_S must be a whole number between 1 and 86400 (got "1.5")');
    expect(err.message).toContain("RUN_FILTER_ID must be a run id (a uuid)");
    expect(err.message).toContain('EMAIL_WORKER_ID must not contain "#"');
    expect(err.message).toMatch(/7 problems/);
    // The URL carries a password: its value is not repeated.
    expect(err.message).toContain("DATABASE_URL must be a postgres:// or postgresql:// URL");
    expect(err.message).not.toContain("root:pw");
  });

  it("refuses a bearer token that an Authorization header cannot carry, without showing it", () => {
    const err = configError({ CRON_SECRET: "correct horse battery staple", DASHBOARD_TOKEN: "pässwörd-pässwörd-1" });
    expect(err.issues.map((i) => i.variable).sort()).toEqual(["CRON_SECRET", "DASHBOARD_TOKEN"]);
    expect(err.message).toContain("CRON_SECRET must be letters, digits and - . _ ~ + / only");
    expect(err.message).not.toContain("horse");
    expect(err.message).not.toContain("pässwörd");
    expect(loadConfig({ CRON_SECRET: "a1-b2.c3_d4~e5+f6/g7==" }).CRON_SECRET).toBe("a1-b2.c3_d4~e5+f6/g7==");
  });

  it("checks variables that only make sense together", () => {
    const err = configError({
      SUPABASE_URL: "https://abc.supabase.co",
      HEARTBEAT_MONITOR_ALERT_EMAIL: "ops@example.com",
      SMTP_USER: "mailer",
      WORKER_HEARTBEAT_INTERVAL: "60",
      TASK_LEASE_S: "100",
    });
    expect(err.issues).toEqual(
      expect.arrayContaining([
        { variable: "SUPABASE_SERVICE_ROLE_KEY", message: "is required when SUPABASE_URL is set" },
        { variable: "SMTP_HOST", message: "is required when HEARTBEAT_MONITOR_ALERT_EMAIL is set" },
        { variable: "EMAIL_FROM", message: "is required when HEARTBEAT_MONITOR_ALERT_EMAIL is set" },
        { variable: "SMTP_PASSWORD", message: "is required when SMTP_USER is set" },
      ]),
    );
    expect(err.message).toMatch(/TASK_LEASE_S must be more than twice WORKER_HEARTBEAT_INTERVAL/);
  });

  it("never shows a secret: not in errors, JSON, inspect or the redacted copy", () => {
    const err = configError({ SUPABASE_SERVICE_ROLE_KEY: "short", SMTP_PASSWORD: " ", CRON_SECRET: "tiny", DASHBOARD_TOKEN: "tok" });
    expect(err.issues.map((i) => i.variable).sort()).toEqual(["CRON_SECRET", "DASHBOARD_TOKEN", "SMTP_PASSWORD", "SMTP_USER", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_URL"]);
    expect(err.message).toContain("SUPABASE_SERVICE_ROLE_KEY must be at least 20 characters (value not shown)");
    for (const secret of ["short", "tiny", "tok"]) expect(err.message).not.toContain(`"${secret}"`);

    const c = loadConfig({
      DATABASE_URL: "postgres://app:db-password@db.example.com/postgres",
      SUPABASE_URL: "https://abc.supabase.co",
      SUPABASE_SERVICE_ROLE_KEY: KEY,
      ALERT_WEBHOOK_URL: "https://hooks.example.com/services/T0/B0/webhook-token",
      SMTP_USER: "mailer",
      SMTP_PASSWORD: "smtp-password",
      CRON_SECRET: "cron-secret-0123456789",
      DASHBOARD_TOKEN: "dashboard-token-0123456789",
    });
    expect(c.SUPABASE_SERVICE_ROLE_KEY).toBe(KEY); // usable in code
    for (const shown of [JSON.stringify(c), inspect(c), JSON.stringify(redactConfig(c))]) {
      for (const secret of [KEY, "db-password", "webhook-token", "smtp-password", "cron-secret-0123456789", "dashboard-token-0123456789"]) {
        expect(shown).not.toContain(secret);
      }
      expect(shown).toContain("db.example.com");
      expect(shown).toContain("[redacted]");
    }
  });
});

describe("the logger", () => {
  function capture(level: "info" | "silent" = "info") {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    return { lines, logger: createLogger({ level, destination, bindings: { worker_id: "w#1" } }) };
  }

  it("writes JSON lines with level, time and bindings, and redacts secret fields at any depth", () => {
    const { lines, logger } = capture();
    logger.info({ SUPABASE_SERVICE_ROLE_KEY: KEY, config: { SMTP_PASSWORD: "pw", keep: 1 }, req: { headers: { authorization: "Bearer x" } } }, "hello");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "info", msg: "hello", worker_id: "w#1", config: { SMTP_PASSWORD: "[redacted]", keep: 1 } });
    expect(lines[0].SUPABASE_SERVICE_ROLE_KEY).toBe("[redacted]");
    expect(JSON.stringify(lines[0])).not.toContain("Bearer x");
    expect(typeof lines[0].time).toBe("string");
  });

  it("is silent under vitest unless LOG_LEVEL says otherwise", () => {
    expect(process.env.VITEST).toBeTruthy();
    const before = process.env.LOG_LEVEL;
    delete process.env.LOG_LEVEL;
    try {
      expect(createLogger().level).toBe("silent");
      process.env.LOG_LEVEL = "warn";
      expect(createLogger().level).toBe("warn");
    } finally {
      if (before === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = before;
    }
  });
});

describe("under Deno (the edge function's runtime)", () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const deno = (env: Record<string, string>) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        `${root}node_modules/.bin/deno`,
        ["run", "--allow-env", "--no-prompt", "test/fixtures/deno-config.ts"],
        { cwd: root, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );

  it("loads the schema and the typed client with web-standard APIs, secrets redacted", async () => {
    const r = await deno({ WORKER_HEARTBEAT_INTERVAL: "5", SUPABASE_URL: "https://abc.supabase.co", SUPABASE_SERVICE_ROLE_KEY: KEY });
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout);
    expect(out.client).toBe("function");
    expect(out.config).toMatchObject({ WORKER_HEARTBEAT_INTERVAL: 5, SUPABASE_SERVICE_ROLE_KEY: "[redacted]" });
    expect(r.stdout).not.toContain(KEY);
  });

  it("names the bad variable there too", async () => {
    const r = await deno({ TASK_LEASE_S: "lots" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('TASK_LEASE_S must be a whole number between 1 and 86400 (got "lots")');
  });
});
