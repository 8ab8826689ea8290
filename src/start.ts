// `npm start`. With no configuration: an embedded Postgres (PGlite) in .taskwarden/, the
// migrations, the in-process reaper every 2 s, the dashboard on localhost and a demo in which a
// worker process is killed mid-task and the reaper recovers its task. With DATABASE_URL (or
// SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY) the same against that database, demo only with --demo.
import { Command, InvalidArgumentError, Option } from "commander";
import { randomBytes } from "node:crypto";
import { isSqlTransport, Taskwarden } from "./rpc/index.ts";
import { openEmbedded } from "./rpc/embedded.ts";
import { openClient, resolveConnection } from "./cli/connection.ts";
import { describeError } from "./cli/errors.ts";
import { stopSignals } from "./signals.ts";
import { applyDemoSettings, Demo, DEMO_SETTINGS } from "./demo/demo.ts";
import { serveDashboard, type DashboardServer } from "./dashboard/server.ts";
import { ReaperLoop, reapTotals } from "./reaper/loop.ts";
import { alertChannels } from "./reaper/alerts/index.ts";

const say = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function positive(what: string) {
  return (raw: string) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number (got "${raw}")`);
    return n;
  };
}

function port(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n > 65535) throw new InvalidArgumentError(`must be a port number between 0 and 65535 (got "${raw}")`);
  return n;
}

const cli = new Command("npm start")
  .description("taskwarden locally: embedded database, reaper, dashboard and a demo")
  .option("--demo", "run the demo against DATABASE_URL too (it writes short reaper thresholds to taskwarden.settings)")
  .option("--no-demo", "no demo workers, even on the embedded database")
  .addOption(new Option("--port <port>", "dashboard port (0: any free port)").env("DASHBOARD_PORT").argParser(port))
  .option("--host <host>", "dashboard interface", "127.0.0.1")
  .addOption(new Option("--reap-interval <seconds>", "in-process reaper period (default 2 with the demo or embedded, else 30)").argParser(positive("--reap-interval")))
  .option("--data-dir <dir>", "embedded database directory (default: TASKWARDEN_DATA_DIR or .taskwarden/pglite)")
  .showHelpAfterError();
cli.parse(process.argv.slice(2), { from: "user" });
const opts = cli.opts<{ demo?: boolean; port?: number; host: string; reapInterval?: number; dataDir?: string }>();

const cleanups: (() => Promise<void>)[] = [];
let stopping: Promise<void> | undefined;
/** The database, as named in error messages. */
let where: string | undefined;

async function shutdown(reason: string): Promise<void> {
  stopping ??= (async () => {
    say(`stopping (${reason})`);
    for (const fn of cleanups.reverse()) {
      await fn().catch((err: unknown) => say(`while stopping: ${describeError(err).message}`));
    }
    say("stopped");
  })();
  return stopping;
}

async function main(): Promise<void> {
  const resolved = resolveConnection({ dataDir: opts.dataDir });
  where = resolved.describe;
  const embedded = resolved.kind === "pglite";
  const dataDir = resolved.config.TASKWARDEN_DATA_DIR;
  if (resolved.served) {
    const { pid, role } = resolved.served;
    throw new Error(role === "npm start"
      ? `npm start is already running for ${dataDir} (pid ${pid}); stop it first`
      : `the embedded database in ${dataDir} is held by pid ${pid} (${role}); stop it first, then start npm start before your workers`);
  }
  const demoWanted = opts.demo ?? embedded;

  let client: Taskwarden;
  let databaseUrl = resolved.config.DATABASE_URL;
  if (embedded) {
    const t0 = performance.now();
    // The owner of the directory: it waits for a `taskwarden` command that holds it for a moment,
    // and refuses a process that serves it (the message above, or this race's).
    // Other processes (the demo workers, `taskwarden` in another terminal) reach it through its server.
    const opened = await openEmbedded(dataDir, { role: "npm start", ifServed: "refuse", onClientError: (m) => say(`database server: ${m}`) });
    if (opened.role !== "owner") throw new Error(`the embedded database in ${dataDir} is served by another process`);
    const { transport } = opened;
    // Closes its server too, and then lets go of the directory.
    cleanups.push(() => transport.close());
    client = new Taskwarden(transport);
    say(`embedded Postgres (PGlite) in ${dataDir}: ready in ${seconds(performance.now() - t0)}, ${opened.applied} migration(s) applied`);
    const server = transport.server!;
    databaseUrl = server.url;
    say(`the embedded database is served on ${server.host}:${server.port} for worker processes and the taskwarden CLI`);
  } else {
    client = await openClient(resolved, { migrate: false });
    cleanups.push(() => client.close());
  }
  // Fails here, clearly, when the database is unreachable or not migrated.
  await client.getWorkerHealthSummary();
  if (!embedded) say(`connected to ${resolved.describe}`);

  const demo = demoWanted && databaseUrl !== undefined && isSqlTransport(client.transport);
  if (demoWanted && !demo) throw new Error("--demo needs DATABASE_URL (worker processes connect to it directly)");
  if (demo) {
    await applyDemoSettings(client.transport as Parameters<typeof applyDemoSettings>[0]);
    say(`demo thresholds in taskwarden.settings: ${Object.entries(DEMO_SETTINGS).map(([k, v]) => `${k}=${v}`).join(", ")}`);
  }

  const reapMs = (opts.reapInterval ?? (demo || embedded ? 2 : 30)) * 1000;
  // Alerts go out from here as from the edge function, through the same channels.
  const channels = alertChannels(resolved.config);
  const reaper = new ReaperLoop({
    client,
    intervalMs: reapMs,
    source: "local",
    channels,
    onAlerts: (reports) =>
      say(`reaper: alerts ${reports.map((r) => `${r.channel} sent ${r.sent}${r.failed ? `, failed ${r.failed} (${r.error})` : ""}`).join("; ")}`),
    onReap: (s) => {
      const { requeued, failed } = reapTotals(s);
      if (requeued || failed || s.stale_runs_failed) {
        say(`reaper: reap #${s.reaper_run_id} requeued ${requeued}, failed ${failed} task(s), failed ${s.stale_runs_failed ?? 0} stale run(s) in ${s.duration_ms} ms`);
      }
    },
    onError: (err) => say(`reaper: ${describeError(err).message}`),
  });
  reaper.start();
  cleanups.push(() => reaper.stop());
  say(`in-process reaper: reap('local') every ${seconds(reapMs)}${channels.length ? `, alerts by ${channels.map((c) => c.name).join(" and ")}` : ""}`);

  // The embedded database is a local sandbox: its dashboard gets a token so the buttons work.
  const configured = resolved.config.DASHBOARD_TOKEN;
  const token = configured ?? (embedded ? randomBytes(18).toString("base64url") : undefined);
  let dashboard: DashboardServer;
  const serve = (port: number) => serveDashboard({ client, token, host: opts.host, port, refreshMs: 2000 });
  try {
    dashboard = await serve(opts.port ?? 8787);
  } catch (err) {
    if (opts.port !== undefined || !/already in use/.test(String(err))) throw err;
    dashboard = await serve(0);
  }
  cleanups.push(() => dashboard.close());
  const answering = await fetch(new URL("healthz", dashboard.url));
  if (!answering.ok) throw new Error(`the dashboard did not answer (${answering.status})`);
  say(`dashboard: ${dashboard.url}${token && !configured ? `?token=${token}` : ""} (answering ${seconds(performance.now())} after the process started)`);

  if (demo) {
    const d = new Demo({ client, databaseUrl: databaseUrl!, log: say });
    cleanups.push(() => d.stop());
    await d.start();
    void d.recovered.then(() => say("demo: done — the dashboard keeps showing new tasks; Ctrl-C to stop"));
  }
  say("running; Ctrl-C to stop");
}

const signals = stopSignals((signal) => {
  say(`${signal} again: exiting without waiting for the workers`);
  process.exit(1);
});
void signals.first.then((signal) => shutdown(signal).then(() => process.exit(0)));

main().catch(async (err: unknown) => {
  const { message } = describeError(err, where);
  process.stderr.write(`npm start: ${message}\n`);
  await shutdown("error");
  process.exit(1);
});
