// The dashboard: a Hono app, server-rendered, refreshing itself by polling /partial. Read-only
// unless a token is configured; then the drain / fail buttons (POST) need it, presented once as
// `?token=` (kept in an HttpOnly, SameSite=Strict cookie) or as `Authorization: Bearer`.
// Headers, auth, the same-origin check and form parsing are Hono's own middleware.
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { getCookie, setCookie } from "hono/cookie";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { timingSafeEqual } from "hono/utils/buffer";
import { z } from "zod";
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
const NEEDS_TOKEN = "this action needs the dashboard token";

function errorText(err: unknown): string {
  if (err instanceof TaskwardenError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/** An action's answer: JSON for scripts; for a browser's form, back to the page with a message. */
function reply(c: Context, status: 200 | 400 | 403 | 404 | 409 | 503, text: string): Response {
  if ((c.req.header("accept") ?? "").includes("application/json")) {
    return c.json(status === 200 ? { ok: true, message: text } : { error: text }, status);
  }
  return status === 403 ? c.text(`${text}\n`, 403) : c.redirect(`/?${status === 200 ? "ok" : "error"}=${encodeURIComponent(text)}`, 303);
}

export function createDashboard(opts: DashboardOptions): Hono {
  const { client, token } = opts;
  const refreshMs = opts.refreshMs ?? 2000;
  const app = new Hono();

  /** Constant-time, the comparison bearer-auth makes. */
  const isToken = async (given: string | undefined): Promise<boolean> =>
    token !== undefined && given !== undefined && (await timingSafeEqual(token, given));
  const view = async (c: Context, flash?: ViewOptions["flash"]): Promise<ViewOptions> => ({
    canAct: await isToken(getCookie(c, COOKIE)),
    tokenConfigured: token !== undefined,
    refreshMs,
    flash,
  });

  app.use(secureHeaders({ xFrameOptions: "DENY" }), async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
  });

  const refuse = { message: (c: Context) => reply(c, 403, NEEDS_TOKEN) };
  const byBearer = bearerAuth({ verifyToken: isToken, noAuthenticationHeader: refuse, invalidAuthenticationHeader: refuse, invalidToken: refuse });
  const sameOrigin = csrf();
  app.use("/actions/*", async (c, next) => {
    if (token === undefined) return reply(c, 403, "the dashboard is read-only: set DASHBOARD_TOKEN to enable actions");
    if (c.req.header("authorization") !== undefined) return byBearer(c, next);
    if (!(await isToken(getCookie(c, COOKIE)))) return reply(c, 403, NEEDS_TOKEN);
    // A browser sends the cookie with any request, one forged by another site too; another site
    // cannot set an Authorization header without CORS, so only the cookie needs this check.
    return sameOrigin(c, next).catch((err: unknown) => {
      if (err instanceof HTTPException && err.status === 403) return reply(c, 403, "cross-origin request refused");
      throw err;
    });
  });

  app.get("/", async (c) => {
    const given = c.req.query("token");
    if (given !== undefined) {
      if (!(await isToken(given))) return c.text("wrong or unconfigured dashboard token\n", 403);
      setCookie(c, COOKIE, given, { httpOnly: true, sameSite: "Strict", path: "/" });
      return c.redirect("/", 303);
    }
    const ok = c.req.query("ok");
    const error = c.req.query("error");
    const flash = error ? { kind: "error" as const, text: error } : ok ? { kind: "ok" as const, text: ok } : undefined;
    try {
      const snapshot = await loadSnapshot(client, opts.chart);
      return c.html(renderPage(snapshot, await view(c, flash)));
    } catch (err) {
      return c.html(renderError(errorText(err), refreshMs), 503);
    }
  });

  app.get("/partial", async (c) => {
    try {
      return c.html(renderLive(await loadSnapshot(client, opts.chart), await view(c)));
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
    app.post(
      path,
      zValidator("form", z.object({ [field]: z.string().trim().regex(valid) }), (result, c) => {
        if (!result.success) return reply(c, 400, `${field} is missing or malformed`);
      }),
      async (c) => {
        const value = c.req.valid("form")[field]!;
        try {
          const message = await run(value);
          opts.onAction?.(path, value);
          return reply(c, 200, message);
        } catch (err) {
          const status = err instanceof TaskwardenError ? (err.notFound ? 404 : err.invalidArgument ? 400 : err.invalidState ? 409 : 503) : 503;
          return reply(c, status, errorText(err));
        }
      },
    );

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
