// The scheduled reaper and heartbeat monitor (Supabase Edge Function, Deno). pg_cron + pg_net
// POST /reaper on a schedule; uptime monitors GET /reaper/health. The logic is in
// src/reaper/monitor.ts, shared with Node; this file is routing, and Hono's own middleware for
// auth (bearer-auth), headers (secure-headers) and bodies (@hono/zod-validator).
// Bare imports resolve through this folder's deno.json, which `supabase functions deploy` uploads
// as the import map (see README.md here for the layout).
import { Hono, type Context } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { zValidator } from "@hono/zod-validator";
import { z } from "zod";
import { loadConfig, supabaseServiceKey } from "../../../src/config.ts";
import { SupabaseTransport } from "../../../src/rpc/supabase.ts";
import { runMonitor, type MonitorLogger } from "../../../src/reaper/monitor.ts";
import { alertChannels } from "../../../src/reaper/alerts/index.ts";
import { EDGE_BLOCKED_SMTP_PORTS } from "../../../src/reaper/alerts/smtp.ts";

const config = loadConfig(Deno.env.toObject());
const serviceKey = supabaseServiceKey(config);
if (!config.SUPABASE_URL || !serviceKey) {
  throw new Error(
    "SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEYS) must be set (Supabase sets them for deployed functions)",
  );
}
// Refused at startup rather than failing every alert later: the platform drops these connections.
if (EDGE_BLOCKED_SMTP_PORTS.includes(config.SMTP_PORT)) {
  throw new Error(
    `SMTP_PORT ${config.SMTP_PORT} is blocked for outbound traffic from Supabase Edge Functions (25 and 587 are); ` +
      "use your provider's port 465 (implicit TLS, the default) or another port it offers, or alert by webhook only",
  );
}
const rpc = new SupabaseTransport({ url: config.SUPABASE_URL, serviceRoleKey: serviceKey });
const channels = alertChannels(config);

// Structured logs on stdout/stderr (the platform collects them); never a secret.
const log: MonitorLogger = {
  info: (obj, msg) => console.log(JSON.stringify({ level: "info", msg, ...obj })),
  warn: (obj, msg) => console.warn(JSON.stringify({ level: "warn", msg, ...obj })),
  error: (obj, msg) => console.error(JSON.stringify({ level: "error", msg, ...obj })),
};

// What pg_net may send as the bearer: the service_role JWT, any of the project's secret keys
// (sb_secret_…), or a CRON_SECRET of one's own.
const secrets = [config.SUPABASE_SERVICE_ROLE_KEY, ...Object.values(config.SUPABASE_SECRET_KEYS ?? {}), config.CRON_SECRET]
  .filter((s): s is string => Boolean(s))
  .map((s) => s.trim());

/** Missing, malformed or wrong: one answer, so a caller learns nothing about which. */
const unauthorized = { message: (c: Context) => c.json({ error: "unauthorized" }, 401) };

const reapBody = z.object({ dry_run: z.boolean().default(false) }).strict();
// Thresholds left out are the database's settings (run_stale_hours, task_stale_seconds, max_requeue, reap_batch).
const cleanupBody = z
  .object({
    stale_hours: z.number().positive().max(87600).optional(),
    stale_minutes: z.number().positive().max(525600).optional(),
    max_attempts: z.number().int().min(1).max(1000).optional(),
    batch_size: z.number().int().min(1).max(10000).optional(),
    dry_run: z.boolean().default(true),
  })
  .strict();

/**
 * zod-validator reads a body only when it is declared JSON and takes any other for `{}`: a
 * `{"dry_run": true}` sent as text would run a real reap. Such a body is refused instead; no body
 * at all still means `{}` (every field has a default).
 */
const jsonOnly = createMiddleware(async (c, next) => {
  // The media type as the validator reads it (parameters dropped): a prefix test would let
  // application/json-seq through, which the validator then takes for {}.
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (!/^application\/([\w.-]+\+)?json$/.test(type) && (await c.req.text()).trim() !== "") {
    return c.json({ error: "send the body as JSON, with content-type: application/json" }, 415);
  }
  await next();
});

/** The body, checked by `schema`; a 400 with the zod issues otherwise. */
const body = <S extends z.ZodType>(schema: S) =>
  zValidator("json", schema, (result, c) => {
    if (!result.success) return c.json({ error: "invalid request body", issues: result.error.issues }, 400);
  });

// Not strict: `/reaper` and `/reaper/` are the same route for cron callers and people alike.
export const app = new Hono({ strict: false }).basePath("/reaper");

app.use(
  "*",
  secureHeaders(),
  bearerAuth({ token: secrets, noAuthenticationHeader: unauthorized, invalidAuthenticationHeader: unauthorized, invalidToken: unauthorized }),
);

app.onError((err, c) => {
  // The middleware's answers (401, a body that is not JSON) are the caller's fault, not ours.
  if (err instanceof HTTPException) return err.res ?? c.json({ error: err.message }, err.status);
  log.error({ err: err.message }, "request failed");
  return c.json({ error: err.message }, 502);
});

app.post("/", jsonOnly, body(reapBody), async (c) => {
  if (c.req.valid("json").dry_run) {
    const [row] = await rpc.call("reap", { source: "edge", dry_run: true });
    return c.json({ reap: row?.reap, alerts: [] });
  }
  const result = await runMonitor(rpc, { source: "edge", channels, log });
  log.info({ reap: result.reap, alerts: result.alerts }, "reaped");
  return c.json(result);
});

app.get("/health", async (c) => {
  const [row] = await rpc.call("get_worker_health_summary", {});
  const summary = row?.get_worker_health_summary as { healthy?: boolean } | undefined;
  return c.json(summary ?? {}, summary?.healthy ? 200 : 503);
});

app.post("/cleanup", jsonOnly, body(cleanupBody), async (c) => {
  const { stale_hours, stale_minutes, max_attempts, batch_size, dry_run } = c.req.valid("json");
  const [runs, tasks] = await Promise.all([
    rpc.call("cleanup_stale_runs", { stale_hours, dry_run }),
    rpc.call("cleanup_stale_running_tasks", { stale_minutes, max_attempts, batch_size, dry_run }),
  ]);
  return c.json({ dry_run, runs, tasks });
});

const port = Deno.env.get("REAPER_PORT");
if (port) Deno.serve({ port: Number(port), hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
else Deno.serve(app.fetch);
