// The dashboard: a Hono app, server-rendered, refreshing itself by polling /partial. Read-only
// unless a token is configured; then the drain / fail buttons (POST) need it, presented once as
// `?token=` (kept in an HttpOnly, SameSite=Strict cookie) or as `Authorization: Bearer`.
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono, type Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { TaskwardenError, type Taskwarden } from "../rpc/index.ts";
import { UUID } from "../rpc/client.ts";
import { loadSnapshot, type SnapshotOptions } from "./data.ts";
import { renderError, renderLive, renderPage, type ViewOptions } from "./render.ts";

export interface DashboardOptions {
  client: Taskwarden;
  /** DASHBOARD_TOKEN: without it the dashboard is read-only. */
  token?: string;
  refreshMs?: number;
  chart?: SnapshotOptions;
  /** Called for every action taken, for the server's log. */
  onAction?: (action: string, target: string) => void;
}

const COOKIE = "taskwarden_token";

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

function errorText(err: unknown): string {
  if (err instanceof TaskwardenError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

export function createDashboard(opts: DashboardOptions): Hono {
  const { client } = opts;
  const refreshMs = opts.refreshMs ?? 2000;
  const expected = opts.token ? digest(opts.token) : undefined;
  const app = new Hono();

  const presented = (c: Context): string | undefined => {
    const auth = c.req.header("authorization");
    if (auth?.startsWith("Bearer ")) return auth.slice(7);
    return getCookie(c, COOKIE);
  };
  const authorized = (c: Context): boolean => {
    const given = presented(c);
    return expected !== undefined && given !== undefined && timingSafeEqual(digest(given), expected);
  };
  const view = (c: Context, flash?: ViewOptions["flash"]): ViewOptions => ({
    canAct: authorized(c),
    tokenConfigured: expected !== undefined,
    refreshMs,
    flash,
  });

  app.use(async (c, next) => {
    await next();
    c.header("X-Content-Type-Options", "nosniff");
    c.header("X-Frame-Options", "DENY");
    c.header("Cache-Control", "no-store");
  });

  app.get("/", async (c) => {
    const token = c.req.query("token");
    if (token !== undefined) {
      if (!expected || !timingSafeEqual(digest(token), expected)) return c.text("wrong or unconfigured dashboard token\n", 403);
      setCookie(c, COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/" });
      return c.redirect("/", 303);
    }
    const ok = c.req.query("ok");
    const error = c.req.query("error");
    const flash = error ? { kind: "error" as const, text: error } : ok ? { kind: "ok" as const, text: ok } : undefined;
    try {
      const snapshot = await loadSnapshot(client, opts.chart);
      return c.html(renderPage(snapshot, view(c, flash)));
    } catch (err) {
      return c.html(renderError(errorText(err), refreshMs), 503);
    }
  });

  app.get("/partial", async (c) => {
    try {
      return c.html(renderLive(await loadSnapshot(client, opts.chart), view(c)));
    } catch (err) {
      return c.text(errorText(err), 503);
    }
  });

  app.get("/api/snapshot", async (c) => {
    try {
      return c.json(await loadSnapshot(client, opts.chart));
    } catch (err) {
      return c.json({ error: errorText(err) }, 503);
    }
  });

  app.get("/healthz", (c) => c.json({ ok: true }));

  const act = (path: string, field: string, valid: RegExp, run: (value: string) => Promise<string>) =>
    app.post(path, async (c) => {
      const wantsJson = (c.req.header("accept") ?? "").includes("application/json");
      const reply = (status: 200 | 400 | 403 | 404 | 409 | 503, text: string) =>
        wantsJson
          ? c.json(status === 200 ? { ok: true, message: text } : { error: text }, status)
          : status === 403
            ? c.text(`${text}\n`, 403)
            : c.redirect(`/?${status === 200 ? "ok" : "error"}=${encodeURIComponent(text)}`, 303);
      if (!expected) return reply(403, "the dashboard is read-only: set DASHBOARD_TOKEN to enable actions");
      if (!authorized(c)) return reply(403, "this action needs the dashboard token");
      const origin = c.req.header("origin");
      if (origin && origin !== new URL(c.req.url).origin) return reply(403, "cross-origin request refused");
      const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const value = typeof body[field] === "string" ? (body[field] as string).trim() : "";
      if (!valid.test(value)) return reply(400, `${field} is missing or malformed`);
      try {
        const message = await run(value);
        opts.onAction?.(path, value);
        return reply(200, message);
      } catch (err) {
        const status = err instanceof TaskwardenError ? (err.notFound ? 404 : err.invalidArgument ? 400 : err.invalidState ? 409 : 503) : 503;
        return reply(status, errorText(err));
      }
    });

  act("/actions/drain-worker", "worker_id", /^.{1,200}$/s, async (workerId) => {
    await client.requestWorkerStop({ worker_id: workerId });
    return `drain requested: worker ${workerId} exits after its next heartbeat`;
  });

  act("/actions/fail-run", "run_id", UUID, async (runId) => {
    const run = await client.finishRun({ run_id: runId, error: "Run marked as stale from the dashboard" });
    return `run ${run.name} is now ${run.status}`;
  });

  return app;
}
