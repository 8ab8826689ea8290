// The scheduled path end to end, as hosted Supabase runs it: the real `taskwarden-reaper-edge`
// pg_cron job (from the migration) fires in the cron database, reads the project URL and the
// bearer from Vault, and pg_net POSTs to the reaper function served by real Deno; the function
// reaps through supabase-js (the PostgREST stand-in) and alerts a real SMTP server and a webhook
// receiver once per problem, however often it fires.
//
// Two stand-ins, for what cannot run here: PostgREST (test/support/postgrest-standin.ts) and
// the API gateway that routes `<project>/functions/v1/<name>` to the function (a few lines
// below, forwarding method, headers and body unchanged).
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import { resolve } from "node:path";
import postgres from "postgres";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipWithoutSupabaseExtensions } from "./support/cluster.ts";
import { cronDatabaseUrl, freshDatabase } from "./support/db.ts";
import { startPostgrestStandin, type PostgrestStandin } from "./support/postgrest-standin.ts";

const ROOT = resolve(import.meta.dirname, "..");
const DENO = resolve(ROOT, "node_modules/.bin/deno");
const CRON_SECRET = "scheduled-path-cron-secret-0123456789";
const FIRE_EVERY = "2 seconds";

const skip = skipWithoutSupabaseExtensions();
if (skip) console.warn(`scheduled path (pg_cron + pg_net + Vault) ${skip}`);

let cron: postgres.Sql; // the cron database: the job, Vault, pg_net's tables
let db: postgres.Sql; // the project's taskwarden data, which the function reaps
let standin: PostgrestStandin;
let smtp: SMTPServer;
let hook: Server;
let gateway: Server;
let deno: ChildProcess;
let denoOutput = "";
let projectUrl: string;
const mails: string[] = [];
const hooks: string[] = [];
const bearers: string[] = [];

const listen = (server: { listen: (port: number, host: string, cb: () => void) => unknown }) =>
  new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
const portOf = (server: Server) => (server.address() as { port: number }).port;

async function freePort(): Promise<number> {
  const s = createServer();
  await listen(s);
  const port = portOf(s);
  await new Promise((ok) => s.close(ok));
  return port;
}

async function setSecret(name: string, value: string): Promise<void> {
  const [found] = await cron`select id from vault.secrets where name = ${name}`;
  if (found) await cron`select vault.update_secret(${found.id}, ${value})`;
  else await cron`select vault.create_secret(${value}, ${name})`;
}

/** GET /reaper/health through the gateway, as an uptime monitor calls it. */
async function health(): Promise<{ reaper: Record<string, unknown> }> {
  const res = await fetch(`${projectUrl}/functions/v1/reaper/health`, { headers: { authorization: `Bearer ${CRON_SECRET}` } });
  return res.json() as Promise<{ reaper: Record<string, unknown> }>;
}

/** pg_net's responses since `since`, oldest first. */
async function responses(since: Date) {
  return cron`select status_code, error_msg, timed_out, content from net._http_response where created >= ${since} order by id`;
}

beforeAll(async () => {
  if (skip) return;
  cron = postgres(cronDatabaseUrl(), { max: 1, onnotice: () => {} });
  const url = await freshDatabase();
  db = postgres(url, { max: 1, onnotice: () => {} });
  standin = await startPostgrestStandin({ databaseUrl: url });

  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, _session, cb) {
      let data = "";
      stream.on("data", (c: Buffer) => (data += c.toString()));
      stream.on("end", () => {
        mails.push(data);
        cb();
      });
    },
  });
  await listen(smtp.server as unknown as Server);
  hook = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    hooks.push(body);
    res.writeHead(200).end("ok");
  });
  await listen(hook);

  const port = await freePort();
  deno = spawn(DENO, ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", "supabase/functions/reaper/index.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DENO_NO_UPDATE_CHECK: "1",
      // The function's import map names npm packages; Deno fetches them through this machine's CA.
      ...(process.env.NODE_EXTRA_CA_CERTS ? { DENO_CERT: process.env.NODE_EXTRA_CA_CERTS } : {}),
      REAPER_PORT: String(port),
      SUPABASE_URL: standin.url,
      SUPABASE_SERVICE_ROLE_KEY: standin.serviceRoleKey,
      CRON_SECRET,
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${portOf(hook)}/hook`,
      HEARTBEAT_MONITOR_ALERT_EMAIL: "oncall@example.com",
      EMAIL_FROM: "taskwarden <alerts@example.com>",
      SMTP_HOST: "127.0.0.1",
      SMTP_PORT: String(portOf(smtp.server as unknown as Server)),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  deno.stdout!.on("data", (c) => (denoOutput += c));
  deno.stderr!.on("data", (c) => (denoOutput += c));

  // The gateway stand-in: Supabase routes <project>/functions/v1/reaper/... to the function.
  gateway = createServer((req, res) => {
    bearers.push(req.headers.authorization ?? "");
    const path = (req.url ?? "").replace(/^\/functions\/v1/, "");
    const upstream = request({ host: "127.0.0.1", port, path, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.writeHead(502).end("function unreachable"));
    req.pipe(upstream);
  });
  await listen(gateway);
  projectUrl = `http://127.0.0.1:${portOf(gateway)}`;

  for (const started = Date.now(); ; ) {
    if (deno.exitCode !== null) throw new Error(`deno exited: ${denoOutput}`);
    const res = await fetch(`http://127.0.0.1:${port}/reaper/health`, { headers: { authorization: `Bearer ${CRON_SECRET}` } })
      .catch(() => null);
    await res?.body?.cancel();
    if (res) break;
    if (Date.now() - started > 90_000) throw new Error(`the function did not answer within 90 s: ${denoOutput}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  bearers.length = 0;
}, 120_000);

afterAll(async () => {
  if (skip) return;
  // Leave the cron database as the migration left it: the job idle (no secrets), once a minute.
  if (cron) {
    await cron`delete from vault.secrets where name in ('taskwarden_project_url', 'taskwarden_reaper_secret')`.catch(() => {});
    await cron`select cron.alter_job(jobid, schedule => '* * * * *') from cron.job where jobname = 'taskwarden-reaper-edge'`
      .catch(() => {});
  }
  deno?.kill("SIGTERM");
  await Promise.allSettled([
    standin?.close(),
    cron?.end({ timeout: 5 }),
    db?.end({ timeout: 5 }),
    new Promise((ok) => smtp?.close(() => ok(null))),
    new Promise((ok) => hook?.close(() => ok(null))),
    new Promise((ok) => gateway?.close(() => ok(null))),
  ]);
});

describe.skipIf(skip)("pg_cron -> pg_net -> the reaper function, with the URL and bearer from Vault", () => {
  it("a wrong bearer in Vault gets 401 from the function (the job really sends what Vault holds)", { timeout: 60_000 }, async () => {
    const since = (await cron`select now() as t`)[0].t as Date;
    await setSecret("taskwarden_project_url", projectUrl);
    await setSecret("taskwarden_reaper_secret", "not-the-secret-the-function-knows");
    await cron`select cron.alter_job(jobid, schedule => ${FIRE_EVERY}) from cron.job where jobname = 'taskwarden-reaper-edge'`;
    await expect.poll(async () => (await responses(since)).length, { timeout: 45_000, interval: 500 }).toBeGreaterThan(0);
    const [first] = await responses(since);
    expect(first, `${JSON.stringify(first)}\n${denoOutput}`).toMatchObject({ status_code: 401, timed_out: false });
    expect(bearers[0]).toBe("Bearer not-the-secret-the-function-knows");
    expect(await db`select from taskwarden.reaper_runs`).toHaveLength(0);
    // Nothing has reaped this project yet: its health says the reaper is not running.
    expect((await health()).reaper).toEqual({ last_reap_at: null, interval_seconds: 5, running: false });
  });

  it("fires, reaps (source edge), answers 200, and sends one alert for a dead worker across several firings", { timeout: 120_000 }, async () => {
    await db`select 1 from taskwarden.upsert_worker_heartbeat('scheduled-1#b1', 'company_research', 'processing', current_task => 'acme.com')`;
    await db`select taskwarden.enqueue_task('company_research', '{"domain": "acme.com"}')`;
    const [task] = await db`select id from taskwarden.claim_tasks('scheduled-1#b1', array['company_research'])`;
    await db`update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '7 minutes'`;

    const since = (await cron`select now() as t`)[0].t as Date;
    await setSecret("taskwarden_reaper_secret", CRON_SECRET);
    // Several firings answered 200: the alert must not repeat on any of them.
    await expect
      .poll(async () => (await responses(since)).filter((r) => r.status_code === 200).length, { timeout: 90_000, interval: 500 })
      .toBeGreaterThanOrEqual(4);
    const seen = await responses(since);
    // Every firing got an answer; none timed out at pg_net's (explicit) limit.
    expect(seen.filter((r) => r.timed_out)).toEqual([]);
    expect(seen.every((r) => r.status_code === 200 || r.status_code === 401)).toBe(true);
    expect(bearers.at(-1)).toBe(`Bearer ${CRON_SECRET}`);

    const runs = await db`select source, requeued from taskwarden.reaper_runs where not skipped order by id`;
    expect(runs.length).toBeGreaterThanOrEqual(4);
    expect(runs.every((r) => r.source === "edge")).toBe(true);
    expect(runs[0].requeued).toBe(1);
    expect((await db`select status, crash_count from taskwarden.tasks where id = ${task.id}`)[0]).toEqual({ status: "queued", crash_count: 1 });

    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatch(/^Subject: \[taskwarden\] Dead workers detected \(1\)$/m);
    expect(mails[0]).toContain("scheduled-1#b1");
    expect(hooks).toHaveLength(1);
    expect(JSON.parse(hooks[0]!).text).toMatch(/^Dead workers detected \(1\)/);
    // The job ran as pg_cron recorded it.
    const [details] = await cron`select count(*)::int as n from cron.job_run_details d join cron.job j using (jobid)
      where j.jobname = 'taskwarden-reaper-edge' and d.status = 'succeeded' and d.start_time >= ${since}`;
    expect(details.n).toBeGreaterThanOrEqual(4);
    expect(denoOutput).not.toContain(CRON_SECRET);
    // The edge job reaps every 2 s here, well inside three intervals: the health says running.
    expect((await health()).reaper).toMatchObject({ interval_seconds: 5, running: true });
  });
});
