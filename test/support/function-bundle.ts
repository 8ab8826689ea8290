// Deploying an edge function the way users do, without Supabase: the real CLI
// (`supabase functions deploy <name> --use-api`) uploads to a STAND-IN of the Management API (a
// test double: a small HTTP server here that answers the two calls the CLI makes and keeps the
// multipart upload). The upload can then be unpacked into an empty directory and served with Deno
// from those files and their import map alone, as the platform would serve it.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const SUPABASE = resolve(ROOT, "node_modules/.bin/supabase");
const DENO = resolve(ROOT, "node_modules/.bin/deno");

export interface DeployMetadata {
  entrypoint_path: string;
  import_map_path: string;
  verify_jwt?: boolean;
  name?: string;
  static_patterns?: string[];
}

export interface Upload {
  slug: string;
  metadata: DeployMetadata;
  /** Path (as uploaded) → content. */
  files: Map<string, string>;
}

export interface DeployResult {
  /** The CLI's exit code and output. */
  code: number | null;
  output: string;
  /** Every request the CLI made to the Management API, in order. */
  requests: { method: string; path: string; authorization: string | undefined }[];
  uploads: Upload[];
  accessToken: string;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Runs `supabase functions deploy <name> --use-api --remote=<ref>` from the repository against a
 * Management API stand-in on loopback; returns what it uploaded. The CLI finds the stand-in through
 * a profile file (`--profile`, YAML with api_url) and authenticates with SUPABASE_ACCESS_TOKEN.
 */
export async function deployWithCli(name: string, opts: { ref?: string; extraArgs?: string[] } = {}): Promise<DeployResult> {
  const ref = opts.ref ?? "taskwardenstandinref";
  const requests: DeployResult["requests"] = [];
  const uploads: Upload[] = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://standin");
    const body = await readBody(req);
    requests.push({ method: req.method ?? "", path: url.pathname + url.search, authorization: req.headers.authorization });
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (req.method === "GET" && url.pathname === `/v1/projects/${ref}`) {
      return json(200, {
        id: ref, ref, name: "taskwarden", organization_id: "stand-in", region: "local", status: "ACTIVE_HEALTHY",
        created_at: new Date().toISOString(), database: { host: "127.0.0.1", version: "15" },
      });
    }
    if (req.method === "POST" && url.pathname === `/v1/projects/${ref}/functions/deploy`) {
      // Node's own multipart parser (undici's Request.formData), not one written here.
      const form = await new Request("http://standin/", {
        method: "POST",
        headers: { "content-type": String(req.headers["content-type"]) },
        body: new Uint8Array(body),
      }).formData();
      const files = new Map<string, string>();
      for (const entry of form.getAll("file")) {
        if (typeof entry !== "string") files.set(entry.name, await entry.text());
      }
      const slug = url.searchParams.get("slug") ?? "";
      uploads.push({ slug, metadata: JSON.parse(String(form.get("metadata"))) as DeployMetadata, files });
      return json(201, { id: randomBytes(8).toString("hex"), slug, name: slug, status: "ACTIVE", version: uploads.length,
                         created_at: Date.now(), updated_at: Date.now(), verify_jwt: false });
    }
    return json(404, { message: `the stand-in does not serve ${req.method} ${url.pathname}` });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const apiUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const home = mkdtempSync(join(tmpdir(), "tw-cli-home-"));
  const profile = join(home, "standin-profile.yaml");
  writeFileSync(profile, [
    "name: taskwarden-standin",
    `api_url: ${apiUrl}`,
    `dashboard_url: ${apiUrl}/dashboard`,
    "project_host: localhost",
  ].join("\n") + "\n");
  const accessToken = `sbp_${randomBytes(20).toString("hex")}`;
  try {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((ok) => {
      execFile(
        SUPABASE,
        ["functions", "deploy", name, "--use-api", `--remote=${ref}`, "--profile", profile, "--workdir", ROOT, "--yes",
         ...(opts.extraArgs ?? [])],
        {
          cwd: ROOT,
          timeout: 120_000,
          env: {
            PATH: process.env.PATH,
            HOME: home,
            SUPABASE_ACCESS_TOKEN: accessToken,
            SUPABASE_TELEMETRY_DISABLED: "1",
            DO_NOT_TRACK: "1",
            NO_COLOR: "1",
          },
        },
        (err, stdout, stderr) => ok({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
      );
    });
    return { code, output, requests, uploads, accessToken };
  } finally {
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}

/** Writes the uploaded files into a new empty directory; returns it. */
export function unpack(upload: Upload): string {
  const dir = mkdtempSync(join(tmpdir(), `tw-upload-${upload.slug}-`));
  for (const [path, content] of upload.files) {
    const target = resolve(dir, path);
    if (!target.startsWith(`${dir}/`)) throw new Error(`an uploaded path escapes the bundle: ${path}`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
  return dir;
}

export interface ServedFunction {
  /** http://127.0.0.1:<port> — the function's routes hang below it (/reaper, /reaper/health). */
  url: string;
  /**
   * A stand-in of the platform's gateway in front of it: `${projectUrl}/functions/v1/reaper/health`
   * reaches `/reaper/health`, as on `https://<ref>.supabase.co`. What Vault's taskwarden_project_url
   * holds in a test of the scheduled path.
   */
  projectUrl: string;
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Environment a Deno child needs to reach the npm registry through this machine's TLS setup. */
function registryEnv(): Record<string, string> {
  const keep = /^(PATH|HOME|DENO_DIR|DENO_CERT|DENO_TLS_CA_STORE|NPM_CONFIG_REGISTRY|SSL_CERT_FILE|SSL_CERT_DIR|NODE_EXTRA_CA_CERTS|HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy)$/;
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => keep.test(k) && v !== undefined)) as Record<string, string>;
}

/**
 * Serves an unpacked upload with Deno: the uploaded entrypoint, resolved through the uploaded
 * import map only (`--config` on it: no other deno.json, no node_modules; npm packages come from
 * the registry into Deno's cache). The function listens on REAPER_PORT; resolves once it answers.
 */
export async function serveUpload(
  dir: string,
  metadata: DeployMetadata,
  env: Record<string, string>,
  opts: { timeoutMs?: number; probePath?: string } = {},
): Promise<ServedFunction> {
  const port = await new Promise<number>((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => ok(p));
    });
  });
  const args = ["run", "--allow-net", "--allow-env", "--allow-read"];
  if (metadata.import_map_path) args.push("--config", join(dir, metadata.import_map_path));
  args.push(join(dir, metadata.entrypoint_path));
  let out = "";
  const child = spawn(DENO, args, {
    cwd: dir,
    env: { ...registryEnv(), DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env, REAPER_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (c) => (out += c));
  child.stderr!.on("data", (c) => (out += c));
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const timeout = opts.timeoutMs ?? 180_000;
  for (;;) {
    const res = await fetch(`${url}${opts.probePath ?? "/"}`).catch(() => null);
    if (res) {
      await res.body?.cancel();
      break;
    }
    if (child.exitCode !== null) throw new Error(`the served function exited (${child.exitCode}): ${out}`);
    if (Date.now() - started > timeout) {
      child.kill("SIGKILL");
      throw new Error(`the served function did not answer within ${timeout / 1000} s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const gateway = await startGateway(url);
  return {
    url,
    projectUrl: gateway.url,
    process: child,
    output: () => out,
    stop: async () => {
      await gateway.close();
      if (child.exitCode !== null) return;
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Forwards /functions/v1/<path> to <target>/<path> with method, headers and body; 404 otherwise. */
async function startGateway(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://gateway");
    if (!url.pathname.startsWith("/functions/v1/")) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"message":"no route"}');
      return;
    }
    const body = await readBody(req);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host") headers.set(k, v);
    try {
      const answer = await fetch(`${target}${url.pathname.slice("/functions/v1".length)}${url.search}`, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : new Uint8Array(body),
      });
      // fetch has already decoded the body: its length and encoding headers no longer apply.
      const kept = [...answer.headers].filter(([k]) => !["content-length", "content-encoding", "transfer-encoding"].includes(k));
      res.writeHead(answer.status, Object.fromEntries(kept));
      res.end(Buffer.from(await answer.arrayBuffer()));
    } catch (err) {
      res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ message: String(err) }));
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
