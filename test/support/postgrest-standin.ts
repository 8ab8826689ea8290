// A STAND-IN for PostgREST, which cannot run here. It speaks the part of PostgREST's contract
// that supabase-js `rpc()` uses: POST /rest/v1/rpc/<fn> with named JSON arguments, the
// Content-Profile / Accept-Profile schema headers, `apikey` + `Authorization: Bearer <JWT>`, and
// PostgREST-shaped errors. Like PostgREST it verifies the JWT (HS256) and runs each call in a
// transaction with `set local role <role claim>`, so the database's own grants decide: the anon
// key gets permission denied from Postgres itself, not from this file.
//
// It also plays the API gateway's part for Supabase's new API keys, which are not JWTs: an `apikey`
// header holding the project's secret key (`sb_secret_…`) runs as service_role and its publishable
// key (`sb_publishable_…`) as anon, as the gateway does by swapping in a short-lived JWT for that
// role; a user's JWT in Authorization still decides the role; any other `sb_` key gets 401.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import postgres from "postgres";
import { SqlRpc } from "../../src/rpc/sql.ts";

export interface PostgrestStandin {
  url: string;
  anonKey: string;
  serviceRoleKey: string;
  /** The new-style keys the gateway accepts (not JWTs). */
  secretKey: string;
  publishableKey: string;
  jwtSecret: string;
  /** Requests served, by function name (tests assert the traffic went through HTTP). */
  calls: Map<string, number>;
  close(): Promise<void>;
}

const b64url = (buf: Buffer | string) => Buffer.from(buf).toString("base64url");

export function signJwt(payload: Record<string, unknown>, secret: string): string {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(payload));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

function verifyJwt(token: string, secret: string): Record<string, unknown> | null {
  const [head, body, sig] = token.split(".");
  if (!head || !body || !sig) return null;
  const expected = Buffer.from(createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url"));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
  try {
    const claims = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, unknown>;
    if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) return null;
    return claims;
  } catch {
    return null;
  }
}

// PostgREST's status for a SQLSTATE (the subset that matters for rpc calls).
function statusFor(code: string | undefined, role: string): number {
  if (!code) return 500;
  if (code === "42501") return role === "anon" ? 401 : 403;
  if (code === "42883" || code === "PGRST202") return 404;
  if (code.startsWith("23")) return 409;
  if (code.startsWith("08") || code.startsWith("53") || code.startsWith("57")) return 503;
  return 400; // raised errors (P0001 and custom SQLSTATEs such as TW001) and bad input
}

const ROLES = new Set(["anon", "authenticated", "service_role"]);

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startPostgrestStandin(opts: { databaseUrl: string; jwtSecret?: string }): Promise<PostgrestStandin> {
  const jwtSecret = opts.jwtSecret ?? "stand-in-jwt-secret-at-least-32-characters-long";
  const anonKey = signJwt({ iss: "supabase", role: "anon" }, jwtSecret);
  const serviceRoleKey = signJwt({ iss: "supabase", role: "service_role" }, jwtSecret);
  const secretKey = `sb_secret_${randomBytes(24).toString("base64url")}`;
  const publishableKey = `sb_publishable_${randomBytes(16).toString("base64url")}`;
  const sql = postgres(opts.databaseUrl, { max: 8, onnotice: () => {}, connection: { TimeZone: "UTC" } });
  const calls = new Map<string, number>();
  const setOf = new Map<string, boolean>();
  const rpc = new SqlRpc(async (text, params) => (await sql.unsafe(text, params as string[])) as unknown as Record<string, unknown>[]);

  async function returnsSet(fn: string): Promise<boolean> {
    if (!setOf.has(fn)) {
      const rows = await sql`select bool_or(p.proretset) as retset from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'taskwarden' and p.proname = ${fn}`;
      setOf.set(fn, Boolean(rows[0]?.retset));
    }
    return setOf.get(fn)!;
  }

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = /^\/rest\/v1\/rpc\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
    if (!match || req.method !== "POST") {
      return send(res, 404, { code: "PGRST202", message: "not found", details: null, hint: null });
    }
    const fn = match[1];
    const profile = (req.headers["content-profile"] ?? req.headers["accept-profile"] ?? "public") as string;
    if (profile !== "taskwarden") {
      return send(res, 406, { code: "PGRST106", message: `The schema must be one of the following: taskwarden`, details: null, hint: null });
    }
    const apikey = String(req.headers.apikey ?? "");
    const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""))?.[1] ?? "";
    let role: string | null = null;
    if (apikey.startsWith("sb_")) {
      // The gateway's check of a new API key; a different bearer (a user's session JWT) then decides.
      const keyRole = sameKey(apikey, secretKey) ? "service_role" : sameKey(apikey, publishableKey) ? "anon" : null;
      if (!keyRole) return send(res, 401, { message: "Invalid API key", hint: "Double check your Supabase `anon` or `service_role` API key." });
      if (bearer && bearer !== apikey) {
        const claims = verifyJwt(bearer, jwtSecret);
        role = claims && typeof claims.role === "string" ? claims.role : null;
      } else {
        role = keyRole;
      }
    } else {
      const token = bearer || apikey;
      const claims = token ? verifyJwt(token, jwtSecret) : null;
      role = claims && typeof claims.role === "string" ? claims.role : null;
    }
    if (!role || !ROLES.has(role)) {
      return send(res, 401, { code: "PGRST301", message: "JWT invalid", details: null, hint: null });
    }
    let body = "";
    for await (const chunk of req) body += chunk;
    let args: Record<string, unknown>;
    try {
      args = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      return send(res, 400, { code: "PGRST102", message: "Empty or invalid json", details: null, hint: null });
    }
    calls.set(fn, (calls.get(fn) ?? 0) + 1);
    try {
      const sig = await rpc.signature(fn);
      const rows = await sql.begin(async (tx) => {
        await tx.unsafe(`set local role ${role}`);
        const exec = async (text: string, params: unknown[]) =>
          (await tx.unsafe(text, params as string[])) as unknown as Record<string, unknown>[];
        return rpc.call(fn, args, exec);
      });
      if (sig.scalar) return send(res, 200, rows[0]?.[fn] ?? null);
      if (await returnsSet(fn)) return send(res, 200, rows);
      return send(res, 200, rows[0] ?? null);
    } catch (err) {
      const e = err as { sqlstate?: string; message?: string; detail?: string; hint?: string };
      return send(res, statusFor(e.sqlstate, role), {
        code: e.sqlstate ?? "PGRST000",
        message: e.message ?? String(err),
        details: e.detail ?? null,
        hint: e.hint ?? null,
      });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, { code: "PGRST000", message: String(err), details: null, hint: null }));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    anonKey,
    serviceRoleKey,
    secretKey,
    publishableKey,
    jwtSecret,
    calls,
    close: async () => {
      await new Promise<void>((ok) => server.close(() => ok()));
      await sql.end({ timeout: 5 });
    },
  };
}
