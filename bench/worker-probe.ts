// Where a Worker's time goes over one throughput run: one Worker (or the batch loops) over N
// pre-enqueued no-op tasks on the bench cluster, sampled from outside the Worker (its transport
// timed, the server's pg_stat_activity): jobs started, claims and completions per interval with
// their sizes, mean durations and how many were in flight, heartbeats, the time with no call in
// flight, results not yet reported, and what the active sessions wait on.
//
//   npx tsx bench/worker-probe.ts [--tasks=100000] [--concurrency=16] [--batch-size=100]
//     [--system=worker|batch] [--claims-in-flight=2] [--every-ms=250]
//
// claims x claim_ms near 1000 per second of samples: one claim after another, the Worker waits
// on claim round trips; the same for completions.
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { openCluster, taskwardenDatabase } from "./lib/cluster.ts";
import { connect, dropDatabase } from "./lib/db.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { Worker } from "../src/worker/worker.ts";
import { quietLogger, TASK_TYPE, taskwarden, taskwardenBatch, poolSize } from "./systems/taskwarden.ts";

const { values: a } = parseArgs({
  options: {
    tasks: { type: "string", default: "100000" },
    concurrency: { type: "string", default: "16" },
    "batch-size": { type: "string", default: "100" },
    system: { type: "string", default: "worker" },
    "claims-in-flight": { type: "string", default: "2" },
    "every-ms": { type: "string", default: "250" },
  },
});
const tasks = Number(a.tasks);
const concurrency = Number(a.concurrency);
const batchSize = Number(a["batch-size"]);

interface Stat {
  calls: number;
  ms: number;
  rows: number;
  inFlight: number;
}
const stats = new Map<string, Stat>();
const stat = (fn: string) => {
  let s = stats.get(fn);
  if (!s) stats.set(fn, (s = { calls: 0, ms: 0, rows: 0, inFlight: 0 }));
  return s;
};
let busyAny = 0;
let idleSince: number | undefined = performance.now();
let idleMs = 0;
const gaps: number[] = [];

/** Times every call of the transport (the instance itself, so the Worker still sees a SQL transport and LISTENs). */
function instrument(t: PostgresTransport): PostgresTransport {
  const call = t.call.bind(t);
  t.call = async (fn, args, options) => {
    const s = stat(fn);
    s.inFlight++;
    if (busyAny++ === 0 && idleSince !== undefined) {
      const gap = performance.now() - idleSince;
      idleMs += gap;
      gaps.push(gap);
      idleSince = undefined;
    }
    const t0 = performance.now();
    try {
      const rows = await call(fn, args, options);
      s.rows += rows.length;
      return rows;
    } finally {
      s.calls++;
      s.ms += performance.now() - t0;
      s.inFlight--;
      if (--busyAny === 0) idleSince = performance.now();
    }
  };
  return t;
}

const cluster = await openCluster();
const admin = connect(cluster.url);
try {
  const db = "probe_run";
  await dropDatabase(admin, db);
  const url = await taskwardenDatabase(cluster.url, db);
  const sql = connect(url);
  const p = await taskwarden.producer(url);
  await p.enqueueMany(tasks, 1000);
  await p.close();
  await sql`vacuum analyze`;

  let started = 0;
  let first = 0;
  const transport = instrument(new PostgresTransport({ url, max: poolSize(concurrency) }));
  let stop: () => Promise<void>;
  const onJob = () => {
    if (first === 0) first = performance.now();
    started++;
  };
  if (a.system === "worker") {
    const worker = new Worker({
      type: TASK_TYPE,
      rpc: transport,
      concurrency,
      prefetch: batchSize,
      claimsInFlight: Number(a["claims-in-flight"]),
      handler: onJob,
      handleSignals: false,
      logger: quietLogger,
    });
    const done = worker.start();
    stop = async () => {
      await worker.stop();
      await done;
    };
  } else {
    await transport.close();
    const running = await taskwardenBatch.startWorkers(url, { concurrency, batchSize, profile: "throughput", onJob });
    stop = () => running.stop();
  }

  const t0 = performance.now();
  let last = { t: t0, started: 0, claim: { calls: 0, ms: 0, rows: 0 }, complete: { calls: 0, ms: 0, rows: 0 }, idle: 0, gaps: 0 };
  const line = (s: string) => process.stdout.write(s + "\n");
  line("t_s\tjobs/s\tclaims\tclaim_rows\tclaim_ms\tcompl\tcompl_rows\tcompl_ms\tclaim_if\tcompl_if\tbeats\tidle_ms\tmax_gap\tunreported");
  const waits = new Map<string, number>();
  let samples = 0;
  let remaining = tasks;
  let plan = "";
  // The claim's candidate scan late in the run, rolled back: does it walk past dead index entries?
  const claimPlan = async () => {
    let text = "";
    await sql
      .begin(async (tx) => {
        const rows = await tx.unsafe(`explain (analyze, buffers, costs off)
          select t.id from taskwarden.tasks t where t.status = 'queued' and t.run_at <= now() and t.task_type = any (array['${TASK_TYPE}'])
          order by t.priority desc, t.run_at, t.id limit ${batchSize} for update skip locked`);
        text = rows.map((r) => Object.values(r)[0]).join("\n");
        throw new Error("rollback");
      })
      .catch(() => {});
    return text;
  };
  while (remaining > 0) {
    await new Promise((r) => setTimeout(r, Number(a["every-ms"])));
    const now = performance.now();
    const c = stat("claim_tasks");
    const k = stat("complete_tasks");
    const curIdle = idleMs + (idleSince !== undefined ? now - idleSince : 0);
    const newGaps = gaps.slice(last.gaps);
    const dt = (now - last.t) / 1000;
    line(
      [
        ((now - t0) / 1000).toFixed(2),
        Math.round((started - last.started) / dt),
        c.calls - last.claim.calls,
        c.calls - last.claim.calls ? ((c.rows - last.claim.rows) / (c.calls - last.claim.calls)).toFixed(0) : "-",
        c.calls - last.claim.calls ? ((c.ms - last.claim.ms) / (c.calls - last.claim.calls)).toFixed(1) : "-",
        k.calls - last.complete.calls,
        k.calls - last.complete.calls ? ((k.rows - last.complete.rows) / (k.calls - last.complete.calls)).toFixed(0) : "-",
        k.calls - last.complete.calls ? ((k.ms - last.complete.ms) / (k.calls - last.complete.calls)).toFixed(1) : "-",
        c.inFlight,
        k.inFlight,
        stat("upsert_worker_heartbeat").calls,
        Math.round(curIdle - last.idle),
        Math.round(Math.max(0, ...newGaps)),
        started - k.rows,
      ].join("\t"),
    );
    last = { t: now, started, claim: { ...c }, complete: { ...k }, idle: curIdle, gaps: gaps.length };
    // What the Worker's busy sessions wait on: nothing (CPU), a lock, the client, I/O.
    for (const r of await sql`select coalesce(wait_event_type || ':' || wait_event, 'cpu') as w, count(*)::int as n
        from pg_stat_activity where datname = current_database() and state = 'active' and pid <> pg_backend_pid() group by 1`)
      waits.set(r.w as string, (waits.get(r.w as string) ?? 0) + (r.n as number));
    samples++;
    const [{ n }] = await sql`select count(*)::int as n from taskwarden.tasks where status <> 'completed'`;
    if (remaining > tasks / 10 && n <= tasks / 10) plan = await claimPlan();
    remaining = n;
  }
  const secs = (performance.now() - first) / 1000;
  line(`# ${a.system} c=${concurrency}: ${tasks} jobs in ${secs.toFixed(1)} s = ${Math.round(tasks / secs)} jobs/s; idle (no call in flight) ${Math.round(idleMs)} ms in ${gaps.length} gaps; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  line(plan.replace(/^/gm, "# "));
  line(`# active sessions by wait (mean per sample): ${[...waits].map(([w, n]) => `${w} ${(n / samples).toFixed(2)}`).join(", ")}`);
  for (const [fn, s] of stats) line(`# ${fn}: ${s.calls} calls, ${(s.rows / s.calls).toFixed(1)} rows, ${(s.ms / s.calls).toFixed(2)} ms mean`);
  await stop();
  await sql.end();
  await dropDatabase(admin, db);
} finally {
  await admin.end();
  await cluster.stop();
}
