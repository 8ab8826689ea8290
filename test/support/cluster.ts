// A private PostgreSQL 15 cluster for the tests and benchmarks: initdb into a temp dir, a free
// port, pg_cron (and, where installed, pg_net and supabase_vault) preloaded, Supabase's roles,
// and the migrations applied by the real Supabase CLI (`supabase db push`). With DATABASE_URL
// set, that server is used instead (it must allow CREATEDB: test databases are cloned from a
// migrated template there).
import { execFile, spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");

/** The database pg_cron serves (cron.database_name) and the one cloned for every test file. */
export const CRON_DB = "taskwarden";
export const TEMPLATE_DB = "taskwarden_template";

export interface Cluster {
  /** Superuser URL of the maintenance database `postgres`. */
  url: string;
  /** `url` with another database name. */
  urlFor(database: string): string;
  /** Restarts the server (fast shutdown: connections are cut, as in a real restart). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Undefined for an external DATABASE_URL server. */
  dataDir?: string;
  port: number;
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function pgBin(): string {
  const fromConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  const dir = fromConfig.status === 0 ? fromConfig.stdout.trim() : "";
  for (const candidate of [dir, "/usr/lib/postgresql/15/bin"]) {
    if (candidate && existsSync(join(candidate, "initdb"))) return candidate;
  }
  throw new Error("PostgreSQL 15 server binaries not found (install postgresql-15, or set DATABASE_URL)");
}

/** Whether the extensions hosted Supabase runs are installed into this PostgreSQL. */
export interface SupabaseExtensions {
  ok: boolean;
  /** Why not, in one line (empty when ok). */
  reason: string;
}

// The versions hosted Supabase runs: pg_cron 1.6 schedules in seconds, 1.4 (Debian's) by the minute.
const WANTED: [name: string, version: RegExp | null][] = [
  ["pg_cron", /^1\.([5-9]|\d\d)/],
  ["pg_net", null],
  ["supabase_vault", null],
];

/**
 * Checks the control files (and Vault's key script) in PostgreSQL's extension directory, where
 * .ci/run's build of the extensions puts them; a user's clone needs no build tool to ask.
 */
export function supabaseExtensions(): SupabaseExtensions {
  const pgConfig = join(pgBinOrNull() ?? "/usr/lib/postgresql/15/bin", "pg_config");
  const share = spawnSync(existsSync(pgConfig) ? pgConfig : "pg_config", ["--sharedir"], { encoding: "utf8" });
  if (share.status !== 0) return { ok: false, reason: "pg_config not found" };
  const dir = join(share.stdout.trim(), "extension");
  const missing: string[] = [];
  for (const [name, version] of WANTED) {
    const control = join(dir, `${name}.control`);
    if (!existsSync(control)) {
      missing.push(name);
      continue;
    }
    const v = /default_version\s*=\s*'([^']+)'/.exec(readFileSync(control, "utf8"))?.[1] ?? "";
    if (version && !version.test(v)) missing.push(`${name} >= 1.5 (found ${v})`);
  }
  if (!existsSync(join(dir, "pgsodium_getkey"))) missing.push("Vault's pgsodium_getkey key script");
  if (missing.length === 0) return { ok: true, reason: "" };
  return { ok: false, reason: `missing ${missing.join(", ")}: install hosted Supabase's extensions into this PostgreSQL (as .ci/run does)` };
}

/**
 * For a test that needs pg_net and Vault: undefined when they are here, else the one line to skip
 * with. Under CI=true their absence is a failure, never a skip.
 */
export function skipWithoutSupabaseExtensions(): string | undefined {
  const ext = supabaseExtensions();
  if (ext.ok) return undefined;
  if (process.env.CI === "true") throw new Error(`CI=true needs the Supabase extensions: ${ext.reason}`);
  return `skipped: ${ext.reason}`;
}

function pgBinOrNull(): string | null {
  try {
    return pgBin();
  } catch {
    return null;
  }
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? ok(addr.port) : fail(new Error("no port"))));
    });
  });
}

/** initdb refuses to run as root: run the server binaries as the `postgres` OS user then. */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
}

async function pg(bin: string, tool: string, args: string[]): Promise<void> {
  const [cmd, argv] = asPostgres(join(bin, tool), args);
  await run(cmd, argv, { maxBuffer: 16 * 1024 * 1024 });
}

async function sqlOnce(url: string, text: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(text);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Applies supabase/migrations to `url` with the real Supabase CLI. */
export async function pushMigrations(url: string): Promise<void> {
  try {
    await run("npx", ["--no-install", "supabase", "db", "push", `--remote=${url}`, "--yes"], {
      cwd: ROOT,
      env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`supabase db push failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

const ROLES_SQL = `
do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then create role authenticated nologin noinherit; end if;
  if not exists (select from pg_roles where rolname = 'service_role') then create role service_role nologin noinherit bypassrls; end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
    grant anon, authenticated, service_role to authenticator;
  end if;
end $$;`;

/** Creates the cron database and the template (both migrated) on a server reachable at `url`. */
async function prepare(url: string): Promise<void> {
  await sqlOnce(url, ROLES_SQL);
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    for (const db of [CRON_DB, TEMPLATE_DB]) {
      await admin.unsafe(`alter database ${db} with is_template false`).catch(() => {});
      await admin.unsafe(`drop database if exists ${db} with (force)`);
      await admin.unsafe(`create database ${db}`);
    }
  } finally {
    await admin.end({ timeout: 5 });
  }
  await Promise.all([pushMigrations(withDatabase(url, CRON_DB)), pushMigrations(withDatabase(url, TEMPLATE_DB))]);
  // pgTAP is a test tool, not part of the schema: only the template (cloned for pg_prove) has it.
  await sqlOnce(withDatabase(url, TEMPLATE_DB), "create extension if not exists pgtap");
  // Nobody (autovacuum included) may hold a connection to the template while it is cloned.
  await sqlOnce(url, `alter database ${TEMPLATE_DB} with is_template true allow_connections false`);
}

export async function startCluster(): Promise<Cluster> {
  const external = process.env.DATABASE_URL;
  if (external) {
    const url = withDatabase(external, new URL(external).pathname.slice(1) || "postgres");
    await prepare(url);
    return {
      url,
      urlFor: (db) => withDatabase(url, db),
      restart: async () => {
        throw new Error("cannot restart an external DATABASE_URL server");
      },
      stop: async () => {},
      port: Number(new URL(url).port || 5432),
    };
  }

  const bin = pgBin();
  const dir = mkdtempSync(join(tmpdir(), "taskwarden-pg-"));
  const dataDir = join(dir, "data");
  if (process.getuid?.() === 0) chownSync(dir, Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout), 0);
  const port = await freePort();
  const ext = supabaseExtensions();
  await pg(bin, "initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-N"]);
  writeFileSync(
    join(dir, "extra.conf"),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      // As on hosted Supabase: the cron database is also where pg_net's worker sends from.
      ext.ok ? `shared_preload_libraries = 'pg_cron,pg_net,supabase_vault'` : `shared_preload_libraries = 'pg_cron'`,
      `cron.database_name = '${CRON_DB}'`,
      ...(ext.ok ? [`pg_net.database_name = '${CRON_DB}'`] : []),
      // Durability is not under test; speed is.
      `fsync = off`,
      `synchronous_commit = off`,
      `full_page_writes = off`,
      `max_connections = 300`,
      `shared_buffers = 256MB`,
      `log_min_messages = warning`,
      `timezone = 'UTC'`,
    ].join("\n") + "\n",
  );
  // initdb made postgresql.conf; pull our settings in last so they win.
  spawnSync("sh", ["-c", `echo "include '${join(dir, "extra.conf")}'" >> '${join(dataDir, "postgresql.conf")}'`]);
  if (process.getuid?.() === 0) spawnSync("chown", ["-R", "postgres", dir]);

  const ctl = (action: string, ...extra: string[]) =>
    pg(bin, "pg_ctl", ["-D", dataDir, "-l", join(dir, "server.log"), "-w", "-t", "60", action, ...extra]);
  await ctl("start");

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await prepare(url);
  } catch (err) {
    await ctl("stop", "-m", "immediate").catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    url,
    urlFor: (db) => withDatabase(url, db),
    restart: () => ctl("restart", "-m", "fast"),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await ctl("stop", "-m", "immediate").catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
    dataDir,
    port,
  };
}

/** Clones the migrated template into a new database and returns its URL (fast: a file copy). */
export async function cloneTemplate(adminUrl: string, name: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      await sqlOnce(adminUrl, `create database ${name} template ${TEMPLATE_DB}`);
      return withDatabase(adminUrl, name);
    } catch (err) {
      // 55006: the template is briefly in use (another clone's checkpoint); try again.
      if ((err as { code?: string }).code !== "55006" || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}
