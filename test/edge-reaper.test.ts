// The reaper edge function under the real Deno, against the real test database through the
// PostgREST stand-in, with a real SMTP server (implicit TLS, self-signed certificate trusted
// through SMTP_TLS_CA) and a webhook receiver on loopback.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { resolve } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgrestStandin, type PostgrestStandin } from "./support/postgrest-standin.ts";
import { alertEnv, startSmtpSink, startWebhookSink, type SmtpSink, type WebhookSink } from "./support/alert-sinks.ts";
import { freshDatabase } from "./support/db.ts";

const ROOT = resolve(import.meta.dirname, "..");
const DENO = resolve(ROOT, "node_modules/.bin/deno");
// The root deno.json maps the bare imports to node_modules, so nothing is downloaded here; the
// function's own deno.json (what a deploy uploads) is exercised by test/function-deploy.test.ts.
const RUN_LOCAL = ["run", "--config", "deno.json", "--allow-net", "--allow-env", "--allow-read", "supabase/functions/reaper/index.ts"];
const CRON_SECRET = "cron-secret-for-the-edge-test-0123456789";

let sql: postgres.Sql;
let standin: PostgrestStandin;
let smtp: SmtpSink;
let webhook: WebhookSink;
let deno: ChildProcess;
let base: string;
let denoOutput = "";
let coldStartMs = 0;

const freePort = () =>
  new Promise<number>((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => ok(p));
    });
  });

function call(path: string, init: RequestInit & { bearer?: string | null } = {}) {
  const headers = new Headers(init.headers);
  const bearer = init.bearer === undefined ? CRON_SECRET : init.bearer;
  if (bearer) headers.set("authorization", `Bearer ${bearer}`);
  // As pg_net and JSON clients send a body; a test that wants another type says so.
  if (init.body !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
  return fetch(`${base}${path}`, { ...init, headers });
}

/** The function's environment: what `supabase secrets set` plus the platform would give it. */
function functionEnv(port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
    REAPER_PORT: String(port),
    SUPABASE_URL: standin.url,
    SUPABASE_SERVICE_ROLE_KEY: standin.serviceRoleKey,
    CRON_SECRET,
    ...alertEnv(smtp, webhook),
    ...extra,
  };
}

const mails = () => smtp.mails;
const hooks = () => webhook.hooks;

beforeAll(async () => {
  const url = await freshDatabase();
  sql = postgres(url, { max: 1, onnotice: () => {} });
  standin = await startPostgrestStandin({ databaseUrl: url });
  smtp = await startSmtpSink();
  webhook = await startWebhookSink();

  const port = await freePort();
  base = `http://127.0.0.1:${port}/reaper`;
  const started = Date.now();
  deno = spawn(DENO, RUN_LOCAL, {
    cwd: ROOT,
    env: functionEnv(port),
    stdio: ["ignore", "pipe", "pipe"],
  });
  deno.stdout!.on("data", (c) => (denoOutput += c));
  deno.stderr!.on("data", (c) => (denoOutput += c));
  for (;;) {
    const res = await call("/health").catch(() => null);
    if (res) {
      await res.body?.cancel();
      break;
    }
    if (deno.exitCode !== null) throw new Error(`deno exited: ${denoOutput}`);
    if (Date.now() - started > 60_000) throw new Error(`the function did not answer within 60 s: ${denoOutput}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  coldStartMs = Date.now() - started;
}, 120_000);

afterAll(async () => {
  deno?.kill("SIGTERM");
  await Promise.allSettled([standin?.close(), sql?.end({ timeout: 5 }), smtp?.close(), webhook?.close()]);
});

describe("POST /reaper: reap, then alert once per problem and channel", () => {
  it("requeues a dead worker's task and alerts each channel exactly once, retrying a failed channel", async () => {
    await sql`select 1 from taskwarden.upsert_worker_heartbeat('research-1#b1', 'company_research', 'processing', current_task => 'acme.com')`;
    await sql`select taskwarden.enqueue_task('company_research', '{"domain": "acme.com"}')`;
    const [task] = await sql`select id from taskwarden.claim_tasks('research-1#b1', array['company_research'])`;
    await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '7 minutes'`;

    webhook.failNext(1); // the webhook is down for the first call
    const first = await call("/", { method: "POST" });
    expect(first.status, await first.clone().text()).toBe(200);
    const r1 = await first.json();
    expect(r1.reap.worker_dead).toEqual({ requeued: 1, failed: 0 });
    expect(r1.alerts).toEqual([
      { channel: "webhook", sent: 0, failed: 1, error: "webhook answered 500" },
      { channel: "email", sent: 1, failed: 0 },
    ]);
    const [after] = await sql`select status, crash_count from taskwarden.tasks where id = ${task.id}`;
    expect(after).toEqual({ status: "queued", crash_count: 1 });

    expect(mails()).toHaveLength(1);
    expect(mails()[0].to).toEqual(["oncall@example.com"]);
    expect(mails()[0].data).toMatch(/^Subject: \[taskwarden\] Dead workers detected \(1\)$/m);
    expect(mails()[0].text).toMatch(/research-1#b1 \(company_research\): last seen 7 min ago, working on acme\.com/);

    const second = await (await call("/", { method: "POST" })).json();
    expect(second.alerts).toEqual([
      { channel: "webhook", sent: 1, failed: 0 },
      { channel: "email", sent: 0, failed: 0 },
    ]);
    expect(hooks().map((h) => h.status)).toEqual([500, 200]);
    expect(hooks()[1].body.text).toMatch(/^Dead workers detected \(1\)/);
    expect(hooks()[1].body.blocks).toHaveLength(2);

    const third = await (await call("/", { method: "POST" })).json();
    expect(third.alerts.every((a: { sent: number }) => a.sent === 0)).toBe(true);
    expect(mails()).toHaveLength(1);
    expect(hooks()).toHaveLength(2);

    // Health says so while the worker is dead.
    const sick = await call("/health");
    expect(sick.status).toBe(503);
    expect((await sick.json()).dead_workers[0].worker_id).toBe("research-1#b1");

    // It comes back: one recovery message per channel, then silence, and health is 200.
    await sql`select 1 from taskwarden.upsert_worker_heartbeat('research-1#b1', 'company_research', 'idle')`;
    const back = await (await call("/", { method: "POST" })).json();
    expect(back.alerts).toEqual([
      { channel: "webhook", sent: 1, failed: 0 },
      { channel: "email", sent: 1, failed: 0 },
    ]);
    expect(mails()[1].data).toMatch(/^Subject: \[taskwarden\] Workers recovered \(1\)$/m);
    expect(hooks()[2].body.text).toMatch(/^Workers recovered \(1\)/);
    expect((await call("/health")).status).toBe(200);
    const quiet = await (await call("/", { method: "POST" })).json();
    expect(quiet.alerts.every((a: { sent: number }) => a.sent === 0)).toBe(true);

    expect(standin.calls.get("reap")).toBeGreaterThanOrEqual(5);
    expect(denoOutput).not.toContain(smtp.password);
    expect(denoOutput).not.toContain(standin.serviceRoleKey);
  });
});

describe("cleanup and validation", () => {
  it("POST /reaper/cleanup is a dry run unless asked otherwise", async () => {
    await sql`insert into taskwarden.tasks (task_type, status, updated_at) values ('legacy', 'running', now() - interval '1 hour')`;
    const dry = await (await call("/cleanup", { method: "POST", body: JSON.stringify({ stale_minutes: 15 }) })).json();
    expect(dry.dry_run).toBe(true);
    expect(dry.tasks.map((t: { action: string }) => t.action)).toEqual(["would_requeue"]);
    const real = await (await call("/cleanup", { method: "POST", body: JSON.stringify({ stale_minutes: 15, dry_run: false }) })).json();
    expect(real.tasks.map((t: { action: string }) => t.action)).toEqual(["requeued"]);
  });

  it("malformed input gets 400 with the zod issues", async () => {
    const bad = await call("/cleanup", { method: "POST", body: JSON.stringify({ stale_hours: -1, extra: 1 }) });
    expect(bad.status).toBe(400);
    const body = await bad.json();
    expect(body.issues.map((i: { path: string[]; code: string }) => i.path.join(".") || i.code)).toEqual(
      expect.arrayContaining(["stale_hours"]),
    );
    const notJson = await call("/", { method: "POST", body: "{nope" });
    expect([notJson.status, await notJson.json()]).toEqual([400, { error: "Malformed JSON in request body" }]);
    expect((await call("/", { method: "POST", body: JSON.stringify({ dry_run: "yes" }) })).status).toBe(400);
  });

  it("a body not sent as JSON is refused, never read as {} (a dry run would become a real reap)", async () => {
    const [{ n: before }] = await sql`select count(*)::int as n from taskwarden.reaper_runs`;
    // Also the types that merely start like JSON: the validator would not parse them either.
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/json-seq", "application/json foo"]) {
      const res = await call("/", { method: "POST", body: JSON.stringify({ dry_run: true }), headers: { "content-type": type } });
      expect([res.status, await res.json()]).toEqual([415, { error: "send the body as JSON, with content-type: application/json" }]);
    }
    const [{ n: after }] = await sql`select count(*)::int as n from taskwarden.reaper_runs`;
    expect(after).toBe(before);
    // JSON with parameters, or a +json type, is read.
    for (const type of ["application/json; charset=utf-8", "application/vnd.api+json"]) {
      const res = await call("/cleanup", { method: "POST", body: JSON.stringify({ dry_run: true, extra: 1 }), headers: { "content-type": type } });
      expect(res.status).toBe(400); // read, and refused by the strict schema: the body was parsed
    }
    // No body at all is {}: every field has its default.
    const dry = await call("/cleanup", { method: "POST" });
    expect([dry.status, (await dry.json()).dry_run]).toEqual([200, true]);
  });

  it("answers with Hono's secure headers, refusals included", async () => {
    for (const res of [await call("/health"), await call("/health", { bearer: "wrong-secret" })]) {
      await res.body?.cancel();
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    }
  });

  it("refuses a request without the right bearer: none, wrong, or the anon key", async () => {
    for (const bearer of [null, "wrong-secret", standin.anonKey]) {
      for (const [path, method] of [["/", "POST"], ["/health", "GET"], ["/cleanup", "POST"]] as const) {
        const res = await call(path, { method, bearer });
        expect(res.status).toBe(401);
        expect(await res.json()).toEqual({ error: "unauthorized" });
      }
    }
    // Accepted (the summary answers, 200 or 503 by the workers' health), not refused.
    const health = await call("/health", { bearer: standin.serviceRoleKey });
    expect(health.status).not.toBe(401);
    expect(typeof (await health.json()).healthy).toBe("boolean");
  });

  it("the database itself refuses the anon key (the stand-in only relays)", async () => {
    const res = await fetch(`${standin.url}/rest/v1/rpc/reap`, {
      method: "POST",
      headers: { apikey: standin.anonKey, authorization: `Bearer ${standin.anonKey}`, "content-profile": "taskwarden",
                 "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(401);
    expect((await res.json()).code).toBe("42501");
  });
});

describe("SMTP ports Supabase blocks", () => {
  it("the function refuses SMTP_PORT 25 and 587 at startup, naming the port and the way out", async () => {
    const runs = await Promise.all(
      ["25", "587"].map(async (smtpPort) => {
        const child = spawn(DENO, RUN_LOCAL, {
          cwd: ROOT,
          env: functionEnv(await freePort(), { SMTP_PORT: smtpPort, SMTP_SECURE: "" }),
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout!.on("data", (c) => (out += c));
        child.stderr!.on("data", (c) => (out += c));
        const killer = setTimeout(() => child.kill("SIGKILL"), 60_000); // a function that served would never exit
        const code = await new Promise<number | null>((ok) => child.on("exit", (c) => ok(c)));
        clearTimeout(killer);
        return { smtpPort, code, out };
      }),
    );
    for (const r of runs) {
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain(`SMTP_PORT ${r.smtpPort} is blocked for outbound traffic from Supabase Edge Functions`);
      expect(r.out).toMatch(/port 465/);
      expect(r.out).not.toContain(smtp.password);
    }
  }, 90_000);
});

describe("Deno", () => {
  it("deno check passes for every edge function", () => {
    const fns = readdirSync(resolve(ROOT, "supabase/functions"), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `supabase/functions/${d.name}/index.ts`);
    expect(fns.length).toBeGreaterThan(0);
    const r = spawnSync(DENO, ["check", "--config", "deno.json", ...fns], { cwd: ROOT, encoding: "utf8", env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" } });
    expect(r.status, r.stderr).toBe(0);
  });

  it("latency is recorded (cold start and per request)", async () => {
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      await (await call("/health")).arrayBuffer();
      times.push(performance.now() - t);
    }
    const reaps: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await (await call("/", { method: "POST" })).arrayBuffer();
      reaps.push(performance.now() - t);
    }
    const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
    const figures = {
      cold_start_ms: coldStartMs,
      health_p50_ms: +pct(times, 50).toFixed(1),
      health_p99_ms: +pct(times, 99).toFixed(1),
      reap_p50_ms: +pct(reaps, 50).toFixed(1),
      reap_p99_ms: +pct(reaps, 99).toFixed(1),
    };
    mkdirSync(resolve(ROOT, "test-artifacts"), { recursive: true });
    writeFileSync(resolve(ROOT, "test-artifacts/edge-latency.json"), JSON.stringify(figures, null, 2));
    expect(figures.health_p50_ms).toBeGreaterThan(0);
    expect(coldStartMs).toBeGreaterThan(0);
  });
});
