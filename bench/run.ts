// `npm run bench`: taskwarden beside pg-boss and graphile-worker on one private Postgres.
// Progress goes to stderr; stdout gets the table and one JSON line per figure.
//
//   npm run bench                          everything, a 1-minute heartbeat soak (~25 min)
//   npm run bench -- --only=throughput --tasks=20000 --reps=1   a quick throughput look
//   npm run bench -- --concurrency=1,4,16  the throughput concurrencies (default 4,16)
//   npm run bench -- --durability=off      only the fsync-off throughput table (default off,on)
//   npm run bench -- --soak-minutes=10     the full 10-minute heartbeat soak
//   npm run bench -- --only=reaper,latency one or more of: throughput latency recovery reaper heartbeat memory scale
//   npm run bench -- --only=scale          10^6 and 10^7 tasks (not in the default run: ~20 min; --scale-rows=1000000 for one size)
//   npm run bench -- --recovery-defaults   also measure recovery with default settings, taskwarden's on the
//                                          real pg_cron schedule (~20 min: pg-boss's defaults take 15-17 min)
//   npm run bench -- --only=pooler         the Worker's throughput through PgBouncer (transaction mode) and direct
//   npm run bench -- --json-out=file       also write the JSON lines to a file
import { writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, platform, release, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { openCluster } from "./lib/cluster.ts";
import { connect, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { jsonLine, PEERS, table, type Figure, type SystemName } from "./lib/report.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { median, round } from "./lib/stats.ts";
import { measureHeartbeats } from "./heartbeat.ts";
import { measureIdleRss } from "./memory.ts";
import { measureLatency } from "./latency.ts";
import { measureReaper } from "./reaper.ts";
import { measureScale, scaleTable, type ScaleResult } from "./scale.ts";
import { FAST, measureRecovery, PGBOSS_FAST, recoveryByDesign } from "./recovery.ts";
import { graphileWorker } from "./systems/graphile.ts";
import { pgBoss } from "./systems/pgboss.ts";
import { pgmq } from "./systems/pgmq.ts";
import { taskwarden, taskwardenBatch } from "./systems/taskwarden.ts";
import type { QueueSystem } from "./systems/types.ts";
import { measureThroughput } from "./throughput.ts";
import { benchPooler, viaPooler } from "./pooler.ts";

const SECTIONS = ["throughput", "pooler", "latency", "recovery", "reaper", "heartbeat", "memory", "scale"] as const;
/** Sections a plain `npm run bench` leaves out: they take long and answer another question. */
const ON_REQUEST: readonly Section[] = ["scale"];
type Section = (typeof SECTIONS)[number];

const { values: args } = parseArgs({
  options: {
    only: { type: "string" },
    "soak-minutes": { type: "string", default: "1" },
    reps: { type: "string", default: "3" },
    tasks: { type: "string", default: "100000" },
    concurrency: { type: "string", default: "4,16" },
    durability: { type: "string", default: "off,on" },
    "batch-size": { type: "string", default: "100" },
    "recovery-defaults": { type: "boolean", default: false },
    "json-out": { type: "string" },
    "scale-rows": { type: "string", default: "1000000,10000000" },
    "scale-running": { type: "string" },
  },
});

function positive(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number (got "${raw}")`);
    process.exit(2);
  }
  return n;
}

const only = (args.only?.split(",").map((s) => s.trim()).filter(Boolean) ?? SECTIONS.filter((s) => !ON_REQUEST.includes(s))) as Section[];
const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
if (unknown.length > 0) {
  console.error(`--only: unknown section ${unknown.join(", ")} (sections: ${SECTIONS.join(", ")})`);
  process.exit(2);
}
const soakMinutes = positive("soak-minutes", args["soak-minutes"]);
const reps = Math.round(positive("reps", args.reps));
const tasks = Math.round(positive("tasks", args.tasks));
const batchSize = Math.round(positive("batch-size", args["batch-size"]));

const progress = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const figures: Figure[] = [];
const extra: string[] = [];
function emit(f: Figure): void {
  figures.push(f);
  progress(jsonLine(f));
}

const concurrencies = args.concurrency!.split(",").map((c) => Math.round(positive("concurrency", c)));
const durabilities = args.durability!.split(",").map((d) => d.trim());
if (durabilities.some((d) => d !== "off" && d !== "on")) {
  console.error(`--durability: off and/or on (got "${args.durability}")`);
  process.exit(2);
}

const SYSTEMS: QueueSystem[] = [taskwarden, taskwardenBatch, pgBoss, graphileWorker, pgmq];
const templateOf = (name: SystemName) => `bench_tpl_${name.replace(/\W/g, "_")}`;

async function describeMachine(sql: Sql): Promise<string> {
  const [v] = await sql`select version() as version,
    current_setting('shared_buffers') as shared_buffers, current_setting('fsync') as fsync,
    current_setting('synchronous_commit') as synchronous_commit, current_setting('max_connections') as max_connections`;
  const cpu = cpus();
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${round(totalmem() / 2 ** 30, 1)} GiB RAM (${round(freemem() / 2 ** 30, 1)} free), ${platform()} ${release()}`,
    `node ${process.version}; ${String(v.version).split(" on ")[0]}; shared_buffers ${v.shared_buffers}, fsync ${v.fsync}, synchronous_commit ${v.synchronous_commit}`,
    `pg-boss ${await pkgVersion("pg-boss")}, graphile-worker ${await pkgVersion("graphile-worker")}, pgmq ${await pgmqVersion(sql)}; workers, Postgres and this process share the machine (load average at start ${loadavg().map((l) => l.toFixed(2)).join(" ")})`,
  ].join("\n");
}

async function pgmqVersion(sql: Sql): Promise<string> {
  const [r] = await sql`select default_version from pg_available_extensions where name = 'pgmq'`;
  return r ? String(r.default_version) : "not installed";
}

async function pkgVersion(name: string): Promise<string> {
  const { createRequire } = await import("node:module");
  const req = createRequire(import.meta.url);
  return (req(`${name}/package.json`) as { version: string }).version;
}

/**
 * Durability as production runs it (fsync, synchronous_commit and full_page_writes on), or as
 * the test cluster runs (all off). All three take effect on a reload, no restart.
 */
async function setDurability(admin: Sql, on: boolean): Promise<string> {
  const value = on ? "on" : "off";
  for (const setting of ["fsync", "synchronous_commit", "full_page_writes"]) {
    await admin.unsafe(`alter system set ${setting} = ${value}`);
  }
  await admin`select pg_reload_conf()`;
  // The reload is a signal each backend handles between commands, a moment later: wait for it.
  for (let attempt = 0; ; attempt++) {
    const [r] = await admin`select current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc,
      current_setting('full_page_writes') as fpw`;
    if (r.fsync === value && r.sc === value && r.fpw === value) return `fsync ${r.fsync}, synchronous_commit ${r.sc}, full_page_writes ${r.fpw}`;
    if (attempt >= 100) throw new Error(`durability settings did not take effect: fsync ${r.fsync}, synchronous_commit ${r.sc}, full_page_writes ${r.fpw}`);
    await sleep(50);
  }
}

async function throughput(admin: Sql, baseUrl: string): Promise<void> {
  try {
    for (const durability of durabilities) {
      const durable = durability === "on";
      const settings = await setDurability(admin, durable);
      progress(`throughput with ${settings}`);
      for (const concurrency of concurrencies) await throughputAt(admin, baseUrl, concurrency, durable, settings);
    }
  } finally {
    // The other sections measure on the test cluster's settings.
    await setDurability(admin, false);
  }
}

async function throughputAt(admin: Sql, baseUrl: string, concurrency: number, durable: boolean, settings: string): Promise<void> {
  const samples = new Map<SystemName, number[]>(SYSTEMS.map((s) => [s.name, []]));
  const cpu = new Map<SystemName, { server: number; client: number }[]>(SYSTEMS.map((s) => [s.name, []]));
  for (let rep = 0; rep < reps; rep++) {
    // Alternate the order, so no system always runs on the warmest (or the most tired) server.
    const order = SYSTEMS.map((_, i) => SYSTEMS[(i + rep) % SYSTEMS.length]);
    for (const sys of order) {
      const r = await measureThroughput(sys, { admin, baseUrl, template: templateOf(sys.name), tasks, concurrency, batchSize });
      if (r.duplicates > 0) throw new Error(`${sys.name} ran ${r.duplicates} jobs twice in a run without failures`);
      samples.get(sys.name)!.push(r.jobsPerSecond);
      cpu.get(sys.name)!.push(r.cpuMsPerJob);
      progress(`throughput${durable ? " (fsync on)" : ""} c=${concurrency} rep ${rep + 1}/${reps} ${sys.name}: ${Math.round(r.jobsPerSecond)} jobs/s (${r.seconds.toFixed(2)} s; CPU ms/job server ${r.cpuMsPerJob.server.toFixed(3)} + client ${r.cpuMsPerJob.client.toFixed(3)}; load ${loadavg()[0].toFixed(2)})`);
    }
  }
  const values = Object.fromEntries([...samples].map(([k, v]) => [k, Math.round(median(v))])) as Record<SystemName, number>;
  const gw = values["graphile-worker"];
  emit({
    id: durable ? `throughput_durable_c${concurrency}` : `throughput_c${concurrency}`,
    label: `Throughput, concurrency ${concurrency} (median of ${reps})`,
    unit: "jobs/s",
    better: "higher",
    table: durable ? DURABLE_TABLE : undefined,
    values,
    details: {
      tasks,
      batch_size: batchSize,
      settings,
      load_average_at_end: loadavg().map((l) => round(l, 2)),
      samples: Object.fromEntries([...samples].map(([k, v]) => [k, v.map((x) => Math.round(x))])),
      ...Object.fromEntries(PEERS.map((p) => [`taskwarden/${p}`, round(values.taskwarden / values[p], 2)])),
    },
    ...(concurrency === 4 || concurrency === 16
      ? {
          target: {
            text: `Worker >= 1.0x graphile-worker (${gw} jobs/s): ${round(values.taskwarden / gw, 2)}x`,
            met: values.taskwarden >= gw,
          },
        }
      : {}),
  });
  // Medians of server and client apart, and of their sum (the sum's median is the figure).
  const cpuMedian = (name: SystemName, part: (c: { server: number; client: number }) => number) => round(median(cpu.get(name)!.map(part)), 3);
  emit({
    id: durable ? `throughput_cpu_durable_c${concurrency}` : `throughput_cpu_c${concurrency}`,
    label: `CPU per job at concurrency ${concurrency}: server + the workers' process (median of ${reps})`,
    unit: "ms",
    better: "lower",
    table: durable ? DURABLE_TABLE : undefined,
    values: Object.fromEntries(SYSTEMS.map((s) => [s.name, cpuMedian(s.name, (c) => c.server + c.client)])),
    details: {
      server: Object.fromEntries(SYSTEMS.map((s) => [s.name, cpuMedian(s.name, (c) => c.server)])),
      client: Object.fromEntries(SYSTEMS.map((s) => [s.name, cpuMedian(s.name, (c) => c.client)])),
    },
  });
}

const DURABLE_TABLE = "Throughput as production runs: fsync = on, synchronous_commit = on, full_page_writes = on";

/** The Worker through a transaction-mode pooler beside the direct connection, alternating. */
async function pooler(admin: Sql, baseUrl: string): Promise<void> {
  const bouncer = await benchPooler(baseUrl);
  try {
    for (const concurrency of [1, 16]) {
      const samples = { direct: [] as number[], pooled: [] as number[] };
      for (let rep = 0; rep < reps; rep++) {
        const pair = [["direct", taskwarden], ["pooled", viaPooler(bouncer)]] as const;
        for (const [how, sys] of rep % 2 === 0 ? pair : [...pair].reverse()) {
          // A ratio of two runs of the same Worker: 20,000 jobs answer it, and keep the default run short.
          const r = await measureThroughput(sys, { admin, baseUrl, template: templateOf("taskwarden"), tasks: Math.min(tasks, 20_000), concurrency, batchSize });
          samples[how].push(r.jobsPerSecond);
          progress(`pooler c=${concurrency} rep ${rep + 1}/${reps} ${how}: ${Math.round(r.jobsPerSecond)} jobs/s`);
        }
      }
      const direct = Math.round(median(samples.direct));
      const pooled = Math.round(median(samples.pooled));
      emit({
        id: `pooler_throughput_c${concurrency}`,
        label: `Worker throughput, concurrency ${concurrency}: through PgBouncer in transaction mode (direct)`,
        unit: "jobs/s",
        better: "higher",
        values: { taskwarden: `${pooled} (${direct})` },
        details: { pooled, direct, ratio: round(pooled / direct, 2), tasks: Math.min(tasks, 20_000), batch_size: batchSize, samples },
      });
    }
  } finally {
    await bouncer.stop();
  }
}

async function latency(admin: Sql, baseUrl: string): Promise<void> {
  const runs: [QueueSystem, number, [number, number]][] = [
    [taskwarden, 200, [20, 100]],
    [graphileWorker, 200, [20, 100]],
    // pg-boss polls every 2 s by default: the pause spans it (see latency.ts), so fewer samples.
    [pgBoss, 40, [20, 2100]],
  ];
  const p50: Partial<Record<SystemName, number>> = {};
  const p99: Partial<Record<SystemName, number>> = {};
  const n: Record<string, number> = {};
  for (const [sys, samples, pauseMs] of runs) {
    const r = await measureLatency(sys, { admin, baseUrl, template: templateOf(sys.name), samples, pauseMs });
    p50[sys.name] = round(r.p50Ms, 1);
    p99[sys.name] = round(r.p99Ms, 1);
    n[sys.name] = r.samples;
    progress(`latency ${sys.name}: p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, max ${r.maxMs.toFixed(1)} ms (${r.samples} samples)`);
  }
  const details = { samples: n, settings: "defaults: taskwarden Worker LISTEN + 5 s poll; graphile-worker LISTEN + 2 s poll; pg-boss 2 s poll" };
  emit({ id: "claim_latency_p50", label: "Claim latency on an idle queue, p50", unit: "ms", better: "lower", values: p50, details });
  emit({ id: "claim_latency_p99", label: "Claim latency on an idle queue, p99", unit: "ms", better: "lower", values: p99, details });
}

async function recovery(admin: Sql, baseUrl: string): Promise<void> {
  const fast: Partial<Record<SystemName, number | string>> = {};
  const runs: [SystemName, number][] = [["taskwarden", 30], ["pg-boss", 30], ["graphile-worker", 20]];
  for (const [system, windowSeconds] of runs) {
    const r = await measureRecovery(system, { admin, baseUrl, template: templateOf(system), mode: "fast", windowSeconds });
    fast[system] = r.seconds === null ? `${r.completed}/100 in ${windowSeconds} s` : round(r.seconds, 2);
    progress(`recovery (fast) ${system}: ${r.seconds === null ? `${r.completed}/100 completed within ${windowSeconds} s` : `${r.seconds.toFixed(2)} s`}`);
  }
  fast["graphile-worker"] = `${fast["graphile-worker"]}; 4 h lock timeout by design`;
  emit({
    id: "recovery_fast",
    label: "Recovery after SIGKILL of a worker holding 100 jobs, fast settings",
    unit: "s",
    better: "lower",
    values: fast,
    details: {
      taskwarden: `heartbeat ${FAST.heartbeatSeconds} s, dead_worker_seconds ${FAST.deadWorkerSeconds}, reap every ${FAST.reapIntervalMs} ms, retry_base_seconds ${FAST.retryBaseSeconds}, survivors poll ${FAST.idleSleepMs} ms`,
      "pg-boss": `expireInSeconds ${PGBOSS_FAST.expireInSeconds}, maintenanceIntervalSeconds ${PGBOSS_FAST.maintenanceIntervalSeconds}, pollingIntervalSeconds ${PGBOSS_FAST.pollingIntervalSeconds}`,
      "graphile-worker": "no setting shortens its 4 h lock timeout",
    },
    target: { text: "taskwarden < 10 s with the fast settings", met: typeof fast.taskwarden === "number" && fast.taskwarden < 10 },
  });

  const defaults: Partial<Record<SystemName, number | string>> = {};
  for (const system of ["taskwarden", "pg-boss", "graphile-worker"] as const) {
    if (args["recovery-defaults"] && system !== "graphile-worker") {
      const r = await measureRecovery(system, { admin, baseUrl, template: templateOf(system), mode: "defaults", windowSeconds: 20 * 60 });
      defaults[system] = r.seconds === null ? "not within 20 min" : round(r.seconds, 1);
    } else {
      // A template database must have no sessions when it is cloned: connect, read, leave.
      const tpl = connect(withDatabase(baseUrl, templateOf("taskwarden")));
      try {
        defaults[system] = await recoveryByDesign(system, tpl);
      } finally {
        await tpl.end({ timeout: 5 });
      }
    }
  }
  emit({ id: "recovery_defaults", label: "Recovery after SIGKILL, default settings", unit: "s", better: "lower", values: defaults });
}

async function reaper(admin: Sql, baseUrl: string): Promise<void> {
  // 1% in flight at three sizes; and 10% of 10^5: 10,000 expired at once, as after a mass crash.
  for (const [rows, percent] of [[10_000, 1], [100_000, 1], [1_000_000, 1], [100_000, 10]] as const) {
    const r = await measureReaper({ admin, baseUrl, template: templateOf("taskwarden"), rows, percent });
    const label = rows.toLocaleString("en-US");
    const id = percent === 1 ? `${rows}` : `${rows}_${percent}pct`;
    progress(`reaper ${label} rows: idle ${r.idle.medianMs.toFixed(2)} ms, idle with ${percent}% running ${r.idleInFlight.medianMs.toFixed(2)} ms, ${percent}% expired first call ${r.expired.firstCallMs.toFixed(1)} ms, drain ${r.expired.drainMs.toFixed(1)} ms in ${r.expired.calls} calls`);
    if (percent === 1) {
      emit({
        id: `reap_idle_${id}`,
        label: `reap(), nothing expired, ${label} rows, ${r.idle.running} running (median of ${r.idle.calls})`,
        unit: "ms",
        better: "lower",
        values: { taskwarden: round(r.idle.medianMs, 2) },
        details: { p95_ms: round(r.idle.p95Ms, 2), server_duration_ms: r.idle.serverMedianMs },
        ...(rows === 1_000_000 ? { target: { text: "< 5 ms at 10^6 rows", met: r.idle.medianMs < 5 } } : {}),
      });
    }
    emit({
      id: `reap_idle_${percent}pct_${rows}`,
      label: `reap(), nothing expired, ${label} rows, ${percent}% (${r.idleInFlight.running}) running`,
      unit: "ms",
      better: "lower",
      values: { taskwarden: round(r.idleInFlight.medianMs, 2) },
      details: { p95_ms: round(r.idleInFlight.p95Ms, 2), server_duration_ms: r.idleInFlight.serverMedianMs },
    });
    emit({
      id: `reap_expired_${id}`,
      label: `reap(), ${percent}% (${r.expired.expired}) expired, ${label} rows: first call (${r.expired.firstCallRequeued} requeued); all in ${r.expired.calls} calls`,
      unit: "ms",
      better: "lower",
      values: { taskwarden: round(r.expired.firstCallMs, 1) },
      details: { drain_ms: round(r.expired.drainMs, 1), calls: r.expired.calls, ms_per_requeued: round(r.expired.msPerRequeued, 3) },
    });
    if (rows === 1_000_000) {
      extra.push(
        `### EXPLAIN ANALYZE (auto_explain) of reap()'s statements on tasks, ${label} rows, nothing expired, ${r.idle.running} running\n\n${r.plans.idle.join("\n\n")}`,
        `### The same with 1% (${r.expired.expired}) expired: the first round\n\n${r.plans.expired.slice(0, 5).join("\n\n")}`,
      );
    }
  }
}

async function heartbeat(admin: Sql, baseUrl: string): Promise<void> {
  const r = await measureHeartbeats({ admin, baseUrl, template: templateOf("taskwarden"), workers: 1000, intervalSeconds: 5, soakSeconds: soakMinutes * 60 });
  const kib = (b: number) => round(b / 1024, 0);
  progress(`heartbeats: ${r.beatsPerSecond.toFixed(1)} beats/s, ${r.writesPerSecond.toFixed(1)} row writes/s, HOT ${(r.heartbeats.hotShare * 100).toFixed(1)}% / ${(r.tasks.hotShare * 100).toFixed(1)}%, growth ${r.heartbeats.growth.toFixed(2)}x`);
  const sizes = (t: typeof r.heartbeats) => `${kib(t.start.tableBytes)}+${kib(t.start.indexBytes)} KiB -> ${kib(t.end.tableBytes)}+${kib(t.end.indexBytes)} KiB`;
  emit({
    id: "heartbeat_writes",
    label: `Heartbeats: 1,000 workers every 5 s for ${soakMinutes} min: beats/s`,
    unit: "beats/s",
    better: "higher",
    values: { taskwarden: round(r.beatsPerSecond, 1) },
    details: { row_writes_per_second: round(r.writesPerSecond, 1), failed_beats: r.failedBeats, soak_seconds: round(r.soakSeconds, 1) },
  });
  emit({
    id: "heartbeat_hot_share",
    label: "Heartbeats: HOT share of updates (worker_heartbeats / tasks)",
    unit: "%",
    better: "higher",
    values: { taskwarden: `${round(r.heartbeats.hotShare * 100, 2)} / ${round(r.tasks.hotShare * 100, 2)}` },
    details: { heartbeats: r.heartbeats, tasks: r.tasks },
  });
  emit({
    id: "heartbeat_growth",
    label: "Heartbeats: table + index size, start -> end (worker_heartbeats; tasks)",
    unit: "KiB",
    better: "lower",
    values: { taskwarden: `${sizes(r.heartbeats)}; ${sizes(r.tasks)}` },
    details: { heartbeats_growth: round(r.heartbeats.growth, 3), tasks_growth: round(r.tasks.growth, 3), samples: r.samples },
    target: {
      text: `worker_heartbeats no growth past 2x over the soak: ${round(r.heartbeats.growth, 2)}x (tasks: ${round(r.tasks.growth, 2)}x)`,
      met: r.heartbeats.growth <= 2,
    },
  });
}

async function memory(admin: Sql, baseUrl: string): Promise<void> {
  const rss: Partial<Record<SystemName, number>> = {};
  const samples: Record<string, number[]> = {};
  for (const system of ["taskwarden", "pg-boss", "graphile-worker"] as const) {
    samples[system] = [];
    for (let rep = 0; rep < 3; rep++) samples[system].push(await measureIdleRss(system, { admin, baseUrl, template: templateOf(system), idleSeconds: 15 }));
    rss[system] = round(median(samples[system]) / 2 ** 20, 1);
    progress(`idle RSS ${system}: ${samples[system].map((b) => (b / 2 ** 20).toFixed(1)).join(", ")} MiB`);
  }
  emit({
    id: "idle_rss",
    label: "Idle worker process RSS, default settings, after 15 s on an empty queue (median of 3)",
    unit: "MiB",
    better: "lower",
    values: rss,
    details: { samples_mib: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((b) => round(b / 2 ** 20, 1))])) },
  });
}

async function scale(admin: Sql, baseUrl: string): Promise<void> {
  const results: ScaleResult[] = [];
  for (const rows of args["scale-rows"]!.split(",").map((r) => Math.round(positive("scale-rows", r)))) {
    // 10^3 running at 10^6 rows, 10^5 at 10^7: the two shapes the targets are stated for.
    const running = args["scale-running"] ? Math.round(positive("scale-running", args["scale-running"])) : rows >= 10_000_000 ? 100_000 : 1000;
    const r = await measureScale(baseUrl, admin, { rows, running }, progress);
    results.push(r);
    emit({
      id: `scale_${rows}`,
      label: `Scale: ${rows.toLocaleString("en")} tasks, ${r.running.toLocaleString("en")} running: reap() idle / health summary / dashboard data`,
      unit: "ms",
      better: "lower",
      values: { taskwarden: `${r.reap.medianMs} / ${r.healthMs} / ${r.dashboardMs}` },
      details: r as unknown as Record<string, unknown>,
      target: {
        text: `reap < 10 ms, health and dashboard < 50 ms, renewals >= 95% HOT (${(r.hot.share * 100).toFixed(1)}%)`,
        met: r.reap.medianMs < 10 && r.healthMs < 50 && r.dashboardMs < 50 && r.taskCountsMs < 50 && r.hot.share >= 0.95,
      },
    });
  }
  extra.push(`### Scale\n\n${scaleTable(results)}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const cluster = await openCluster();
  const admin = connect(cluster.url);
  try {
    const machine = await describeMachine(admin);
    progress(`on the ${cluster.description}\n${machine}`);
    progress("installing each system into its template database");
    if (only.some((s) => !ON_REQUEST.includes(s))) for (const sys of SYSTEMS) await sys.install(cluster.url, templateOf(sys.name));

    const sections: Record<Section, () => Promise<void>> = {
      throughput: () => throughput(admin, cluster.url),
      pooler: () => pooler(admin, cluster.url),
      latency: () => latency(admin, cluster.url),
      recovery: () => recovery(admin, cluster.url),
      reaper: () => reaper(admin, cluster.url),
      heartbeat: () => heartbeat(admin, cluster.url),
      memory: () => memory(admin, cluster.url),
      scale: () => scale(admin, cluster.url),
    };
    for (const s of SECTIONS) {
      if (!only.includes(s)) continue;
      progress(`== ${s}`);
      await sections[s]();
    }

    const minutes = ((Date.now() - started) / 60_000).toFixed(1);
    console.log(`${machine}\nrun time: ${minutes} min; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
    console.log(table(figures.filter((f) => f.table === undefined)));
    for (const name of new Set(figures.flatMap((f) => (f.table === undefined ? [] : [f.table])))) {
      console.log(`\n### ${name}\n\n${table(figures.filter((f) => f.table === name))}`);
    }
    for (const e of extra) console.log(`\n${e}`);
    console.log("");
    const lines = figures.map(jsonLine);
    for (const l of lines) console.log(l);
    if (args["json-out"]) writeFileSync(args["json-out"], `${lines.join("\n")}\n`);
  } finally {
    for (const sys of SYSTEMS) await dropDatabase(admin, templateOf(sys.name)).catch(() => {});
    await admin.end({ timeout: 5 });
    await cluster.stop();
  }
}

await main();
