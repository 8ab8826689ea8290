// `supabase functions deploy reaper --use-api` with the real CLI, against a stand-in of the
// Management API (test/support/function-bundle.ts): what it uploads must run on its own. The
// upload is unpacked into an empty directory and served with Deno from those files and the
// uploaded import map alone (npm packages from the registry, no node_modules), against the real
// database through the PostgREST stand-in, authenticated with a new secret key (sb_secret_…) the
// way the platform hands it to functions (SUPABASE_SECRET_KEYS).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";
import { deployWithCli, serveUpload, unpack, type DeployResult, type ServedFunction, type Upload } from "./support/function-bundle.ts";
import { startPostgrestStandin, type PostgrestStandin } from "./support/postgrest-standin.ts";

const ROOT = resolve(import.meta.dirname, "..");
const REF = "taskwardenstandinref";

let deploy: DeployResult;
let upload: Upload;
let dir: string;
let sql: postgres.Sql;
let standin: PostgrestStandin;
let served: ServedFunction;

beforeAll(async () => {
  deploy = await deployWithCli("reaper", { ref: REF });
  if (deploy.code !== 0 || deploy.uploads.length !== 1) throw new Error(`the deploy failed (${deploy.code}): ${deploy.output}`);
  upload = deploy.uploads[0]!;
  dir = unpack(upload);
  const url = await freshDatabase();
  sql = postgres(url, { max: 1, onnotice: () => {} });
  standin = await startPostgrestStandin({ databaseUrl: url });
  served = await serveUpload(dir, upload.metadata, {
    SUPABASE_URL: standin.url,
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: standin.secretKey }),
  });
}, 300_000);

afterAll(async () => {
  await served?.stop();
  await Promise.allSettled([standin?.close(), sql?.end({ timeout: 5 })]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the deploy upload", () => {
  it("is made by the real CLI with the access token, to the project given with --remote", () => {
    expect(deploy.accessToken).toMatch(/^sbp_[0-9a-f]{40}$/);
    expect(deploy.requests.map((r) => `${r.method} ${r.path}`).sort()).toEqual(
      [`GET /v1/projects/${REF}`, `POST /v1/projects/${REF}/functions/deploy?slug=reaper`].sort(),
    );
    expect(new Set(deploy.requests.map((r) => r.authorization))).toEqual(new Set([`Bearer ${deploy.accessToken}`]));
    expect(deploy.output).toMatch(/Deployed Functions on project taskwardenstandinref: reaper/);
  });

  it("holds the function, its own import map and the shared src/ files it imports, nothing else", () => {
    expect(upload.slug).toBe("reaper");
    expect(upload.metadata).toMatchObject({
      entrypoint_path: "supabase/functions/reaper/index.ts",
      import_map_path: "supabase/functions/reaper/deno.json",
      verify_jwt: false, // supabase/config.toml: the function checks the bearer itself
    });
    expect([...upload.files.keys()].sort()).toEqual([
      "src/config.ts",
      "src/reaper/alerts/email.ts",
      "src/reaper/alerts/index.ts",
      "src/reaper/alerts/smtp.ts",
      "src/reaper/alerts/webhook.ts",
      "src/reaper/monitor.ts",
      "src/retry.ts",
      "src/rpc/client.ts",
      "src/rpc/database.types.ts",
      "src/rpc/supabase.ts",
      "src/rpc/transport.ts",
      "supabase/functions/reaper/deno.json",
      "supabase/functions/reaper/index.ts",
    ]);
    // Byte for byte what is in the repository.
    for (const [path, content] of upload.files) expect(content, path).toBe(readFileSync(join(ROOT, path), "utf8"));
  });

  it("its import map names every bare import as an npm: specifier in the range package.json uses", () => {
    const map = JSON.parse(upload.files.get(upload.metadata.import_map_path)!) as { imports: Record<string, string> };
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const bare = new Set<string>();
    for (const [path, content] of upload.files) {
      if (!path.endsWith(".ts")) continue;
      for (const m of content.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"./][^"]*)"/gm)) bare.add(m[1]!);
    }
    // node: built-ins are Deno's own; a package's subpath (hono/csrf) resolves through its "name/" entry.
    const packageOf = (s: string) => s.split("/").slice(0, s.startsWith("@") ? 2 : 1).join("/");
    const packages = new Set([...bare].filter((s) => !s.startsWith("node:")).map(packageOf));
    expect([...packages].sort()).toEqual(["@hono/zod-validator", "@supabase/supabase-js", "hono", "nodemailer", "zod"]);
    for (const name of packages) {
      expect(map.imports[name], name).toBe(`npm:${name}@${pkg.dependencies[name]}`);
    }
    for (const sub of [...bare].filter((s) => !s.startsWith("node:") && s !== packageOf(s))) {
      expect(map.imports[`${packageOf(sub)}/`], sub).toBe(`npm:/${packageOf(sub)}@${pkg.dependencies[packageOf(sub)]}/`);
    }
    expect(Object.values(map.imports).every((s) => !s.includes("node_modules"))).toBe(true);
  });
});

describe("the uploaded bundle, served by Deno on its own", () => {
  it("answers GET /reaper/health with the health summary, for the secret key from SUPABASE_SECRET_KEYS", async () => {
    const res = await fetch(`${served.url}/reaper/health`, { headers: { authorization: `Bearer ${standin.secretKey}` } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ healthy: true, dead_workers: [] });
    expect(standin.calls.get("get_worker_health_summary")).toBeGreaterThanOrEqual(1);
    expect(existsSync(join(dir, "node_modules"))).toBe(false);
  });

  it("answers the README's curl of step 6, run as written with the project URL pointed here", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const curl = /^curl .*\/functions\/v1\/reaper\/health$/m.exec(readme)?.[0];
    expect(curl).toBeDefined();
    // The project URL is the gateway stand-in, which serves the function under /functions/v1 as Supabase does.
    const command = curl!.replace("https://<project-ref>.supabase.co", served.projectUrl);
    expect(command).not.toContain("<");
    // Not execFileSync: the gateway and PostgREST stand-ins answer from this process's event loop.
    const { stdout: out } = await promisify(execFile)("sh", ["-c", command], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, TASKWARDEN_REAPER_SECRET: standin.secretKey },
    });
    expect(JSON.parse(out)).toMatchObject({ healthy: true });
  });

  it("reaps on the cron job's POST with that key as its bearer, recorded as source edge", async () => {
    await sql`select 1 from taskwarden.upsert_worker_heartbeat('deployed-1#b1', 'mail', 'processing')`;
    await sql`select taskwarden.enqueue_task('mail', '{}')`;
    const [task] = await sql`select id from taskwarden.claim_tasks('deployed-1#b1', array['mail'])`;
    await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '1 day'`;
    const res = await fetch(`${served.url}/reaper`, {
      method: "POST",
      headers: { authorization: `Bearer ${standin.secretKey}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await res.json()).reap.worker_dead).toEqual({ requeued: 1, failed: 0 });
    const [row] = await sql`select status from taskwarden.tasks where id = ${task.id}`;
    expect(row.status).toBe("queued");
    const runs = await sql`select source from taskwarden.reaper_runs where source = 'edge'`;
    expect(runs).toHaveLength(1);
  });

  it("refuses other bearers: none, the publishable key, another project's secret key", async () => {
    for (const bearer of [null, standin.publishableKey, "sb_secret_of-some-other-project-000000"]) {
      const res = await fetch(`${served.url}/reaper/health`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
      expect(res.status).toBe(401);
      await res.body?.cancel();
    }
  });
});
