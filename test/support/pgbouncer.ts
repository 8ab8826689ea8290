// Debian's PgBouncer in transaction mode, standing in for Supavisor (Supabase's pooler on port
// 6543): a server connection is lent for one transaction at a time, so session state (prepared
// statements, LISTEN) does not survive from one transaction to the next.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Pooler {
  /** A URL with the same user and database as the one given, through the pooler. */
  urlFor(directUrl: string, params?: Record<string, string>): string;
  port: number;
  /** Everything the pooler logged (its errors included). */
  log(): string;
  stop(): Promise<void>;
}

export const PGBOUNCER = "/usr/sbin/pgbouncer";

/** One line saying why the pooler tests cannot run here, or undefined when they can. */
export function poolerMissing(): string | undefined {
  if (existsSync(PGBOUNCER)) return undefined;
  if (process.env.CI === "true") throw new Error(`CI=true needs pgbouncer (${PGBOUNCER}): apt-get install pgbouncer`);
  return `skipped: ${PGBOUNCER} not found (apt-get install pgbouncer)`;
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => ok(port));
    });
  });
}

/** Starts PgBouncer in transaction mode in front of the Postgres at `serverUrl`. */
export async function startPooler(serverUrl: string, opts: { poolSize?: number } = {}): Promise<Pooler> {
  const server = new URL(serverUrl);
  const dir = mkdtempSync(join(tmpdir(), "taskwarden-pgbouncer-"));
  const port = await freePort();
  const logFile = join(dir, "pgbouncer.log");
  writeFileSync(join(dir, "users.txt"), `"${decodeURIComponent(server.username || "postgres")}" ""\n`);
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${server.hostname} port=${server.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${opts.poolSize ?? 10}`,
      "max_client_conn = 500",
      // Supavisor's defaults are as strict: a startup parameter it does not know is refused.
      "ignore_startup_parameters = extra_float_digits",
      "server_reset_query =",
      `logfile = ${logFile}`,
      "log_connections = 0",
      "log_disconnections = 0",
      "",
    ].join("\n"),
  );
  // PgBouncer, like Postgres, refuses to run as root.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) spawnSync("chown", ["-R", "postgres", dir]);
  const [cmd, args] = asRoot
    ? ["runuser", ["-u", "postgres", "--", PGBOUNCER, join(dir, "pgbouncer.ini")]]
    : [PGBOUNCER, [join(dir, "pgbouncer.ini")]];
  const child: ChildProcess = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: false });
  let output = "";
  child.stdout!.on("data", (c) => (output += c));
  child.stderr!.on("data", (c) => (output += c));
  const log = () => output + (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");

  for (const started = Date.now(); ; ) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited ${child.exitCode}: ${log()}`);
    const up = await new Promise<boolean>((ok) => {
      const s = createConnection({ host: "127.0.0.1", port }, () => (s.end(), ok(true)));
      s.on("error", () => ok(false));
    });
    if (up) break;
    if (Date.now() - started > 15_000) throw new Error(`pgbouncer did not listen within 15 s: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    port,
    log,
    urlFor(directUrl, params = {}) {
      const u = new URL(directUrl);
      u.host = `127.0.0.1:${port}`;
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return u.toString();
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((ok) => child.once("exit", ok));
        // runuser passes the signal on to pgbouncer.
        child.kill("SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
