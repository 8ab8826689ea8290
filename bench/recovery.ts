// Recovery after SIGKILL: a worker process holds 100 jobs and is killed with SIGKILL; the clock
// runs from the kill until survivors (16 slots, in this process) have completed all 100.
// "fast" is each system's quickest supported setting; "defaults" is measured only on request
// (minutes to hours), otherwise reported by design from the settings in force.
import { setTimeout as sleep } from "node:timers/promises";
import PgBoss from "pg-boss";
import { run } from "graphile-worker";
import { loadConfig } from "../src/config.ts";
import { Taskwarden } from "../src/rpc/client.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { ReaperLoop } from "../src/reaper/loop.ts";
import { Worker } from "../src/worker/worker.ts";
import { CRON_DB } from "../test/support/cluster.ts";
import { connect, createDatabase, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { killAndWait, spawnTs, waitForLine } from "./lib/proc.ts";
import type { SystemName } from "./lib/report.ts";
import { waitFor } from "./lib/stats.ts";
import { graphileOptions, TASK } from "./systems/graphile.ts";
import { QUEUE } from "./systems/pgboss.ts";
import { quietLogger, TASK_TYPE } from "./systems/taskwarden.ts";

export const HELD = 100;
const VICTIM = new URL("./recovery-victim.ts", import.meta.url);

/** taskwarden's fast settings: heartbeat 1 s, dead after 5 s, reap every 1 s, first retry after 1 s. */
export const FAST = { heartbeatSeconds: 1, deadWorkerSeconds: 5, reapIntervalMs: 1000, retryBaseSeconds: 1, idleSleepMs: 500 };
/** pg-boss's fast settings: jobs expire after 5 s, maintenance (which expires them) every second. */
export const PGBOSS_FAST = { expireInSeconds: 5, maintenanceIntervalSeconds: 1, pollingIntervalSeconds: 0.5 };

export interface RecoveryRun {
  /** Seconds from SIGKILL until all HELD jobs were completed by the survivors; null: not within the window. */
  seconds: number | null;
  completed: number;
  windowSeconds: number;
}

interface Plan {
  enqueue(url: string): Promise<void>;
  held(sql: Sql): Promise<number>;
  completed(sql: Sql): Promise<number>;
  survivors(url: string): Promise<() => Promise<void>>;
}

function plan(system: SystemName, mode: "fast" | "defaults"): Plan {
  const fast = mode === "fast";
  if (system === "taskwarden") {
    return {
      async enqueue(url) {
        const tw = new Taskwarden(new PostgresTransport({ url, max: 1 }));
        await tw.enqueueTasks({ task_type: TASK_TYPE, payloads: Array.from({ length: HELD }, () => ({})) });
        await tw.close();
      },
      async held(sql) {
        const [r] = await sql`select count(*)::int as n from taskwarden.tasks where status = 'running'`;
        return r.n;
      },
      async completed(sql) {
        const [r] = await sql`select count(*)::int as n from taskwarden.tasks where status = 'completed'`;
        return r.n;
      },
      async survivors(url) {
        const transport = new PostgresTransport({ url });
        const tw = new Taskwarden(transport);
        const worker = new Worker({
          type: TASK_TYPE,
          rpc: tw,
          concurrency: 16,
          heartbeatSeconds: fast ? FAST.heartbeatSeconds : undefined,
          idleSleep: fast ? FAST.idleSleepMs : undefined,
          handler: () => {},
          handleSignals: false,
          logger: quietLogger,
        });
        const done = worker.start();
        // Under the defaults pg_cron reaps (every reap_interval_seconds); the fast settings add a 1 s reaper loop.
        const reaper = fast ? new ReaperLoop({ client: tw, intervalMs: FAST.reapIntervalMs, source: "bench" }) : undefined;
        reaper?.start();
        return async () => {
          await reaper?.stop();
          await worker.stop();
          await done;
          await transport.close();
        };
      },
    };
  }
  if (system === "pg-boss") {
    return {
      async enqueue(url) {
        const b = new PgBoss({ connectionString: url, supervise: false, schedule: false, max: 1 });
        await b.start();
        await b.insert(
          Array.from({ length: HELD }, () => ({
            name: QUEUE,
            data: {},
            retryLimit: 3,
            retryDelay: 0,
            ...(fast ? { expireInSeconds: PGBOSS_FAST.expireInSeconds } : {}),
          })),
        );
        await b.stop({ graceful: false, wait: true });
      },
      async held(sql) {
        const [r] = await sql`select count(*)::int as n from pgboss.job where name = ${QUEUE} and state = 'active'`;
        return r.n;
      },
      async completed(sql) {
        const [r] = await sql`select count(*)::int as n from pgboss.job where name = ${QUEUE} and state = 'completed'`;
        return r.n;
      },
      async survivors(url) {
        const b = new PgBoss({
          connectionString: url,
          ...(fast ? { maintenanceIntervalSeconds: PGBOSS_FAST.maintenanceIntervalSeconds } : {}),
        });
        b.on("error", (err) => console.error(`pg-boss: ${err.message}`));
        await b.start();
        await b.work(QUEUE, { batchSize: 16, ...(fast ? { pollingIntervalSeconds: PGBOSS_FAST.pollingIntervalSeconds } : {}) }, async () => {});
        return () => b.stop({ graceful: false, wait: true });
      },
    };
  }
  return {
    async enqueue(url) {
      const { graphileWorker } = await import("./systems/graphile.ts");
      const p = await graphileWorker.producer(url);
      await p.enqueueMany(HELD, HELD);
      await p.close();
    },
    async held(sql) {
      const [r] = await sql`select count(*)::int as n from graphile_worker._private_jobs where locked_at is not null`;
      return r.n;
    },
    async completed(sql) {
      // Completed jobs are deleted.
      const [r] = await sql`select (${HELD}::int - count(*))::int as n from graphile_worker._private_jobs`;
      return r.n;
    },
    async survivors(url) {
      const runner = await run({
        ...graphileOptions(url, { concurrency: 16, batchSize: 16, profile: fast ? "throughput" : "defaults" }),
        taskList: { [TASK]: async () => {} },
      });
      return () => runner.stop();
    },
  };
}

export async function measureRecovery(
  system: SystemName,
  o: { admin: Sql; baseUrl: string; template: string; mode: "fast" | "defaults"; windowSeconds: number },
): Promise<RecoveryRun> {
  // taskwarden's defaults rely on pg_cron's reap every reap_interval_seconds, and pg_cron serves
  // one database: that one is used (emptied first), so the real job does the reaping.
  const onCron = system === "taskwarden" && o.mode === "defaults";
  const db = onCron ? CRON_DB : `bench_recovery_${system.replace(/\W/g, "_")}`;
  if (!onCron) await createDatabase(o.admin, db, o.template);
  const url = withDatabase(o.baseUrl, db);
  const sql = connect(url);
  const p = plan(system, o.mode);
  try {
    if (onCron) {
      const [job] = await sql`select count(*)::int as n from pg_catalog.pg_extension e, cron.job j
                              where e.extname = 'pg_cron' and j.jobname = 'taskwarden-reap' and j.active`;
      if (job.n !== 1) throw new Error(`no active pg_cron job taskwarden-reap in ${db}: the defaults cannot be measured here`);
      await sql`truncate taskwarden.tasks, taskwarden.task_events, taskwarden.worker_heartbeats, taskwarden.reaper_runs restart identity cascade`;
    }
    if (system === "taskwarden" && o.mode === "fast") {
      await sql`update taskwarden.settings set value = to_jsonb(${FAST.deadWorkerSeconds}::int) where key = 'dead_worker_seconds'`;
      await sql`update taskwarden.settings set value = to_jsonb(${FAST.retryBaseSeconds}::int) where key = 'retry_base_seconds'`;
    }
    await p.enqueue(url);
    const victim = spawnTs(VICTIM, [system, url, o.mode]);
    try {
      // Starting a tsx process takes seconds, and far longer on a machine shared with other work.
      await waitForLine(victim, "ready", 120_000);
      await waitFor(async () => (await p.held(sql)) === HELD, { timeoutMs: 30_000, what: `the victim to hold ${HELD} jobs` });
      const stopSurvivors = await p.survivors(url);
      try {
        await sleep(200); // survivors idle: nothing is claimable while the victim lives
        if ((await p.completed(sql)) !== 0) throw new Error("a survivor completed a job the victim held");
        const t0 = performance.now();
        await killAndWait(victim, "SIGKILL");
        const deadline = t0 + o.windowSeconds * 1000;
        let completed = 0;
        while (performance.now() < deadline) {
          completed = await p.completed(sql);
          if (completed === HELD) return { seconds: (performance.now() - t0) / 1000, completed, windowSeconds: o.windowSeconds };
          await sleep(50);
        }
        return { seconds: null, completed, windowSeconds: o.windowSeconds };
      } finally {
        await stopSurvivors();
      }
    } finally {
      await killAndWait(victim, "SIGKILL");
    }
  } finally {
    await sql.end({ timeout: 5 });
    if (!onCron) await dropDatabase(o.admin, db);
  }
}

/** What the defaults promise, from the settings in force (taskwarden) or the peers' documented defaults. */
export async function recoveryByDesign(system: SystemName, sql: Sql): Promise<string> {
  if (system === "taskwarden") {
    const rows = await sql`select key, value #>> '{}' as v from taskwarden.settings
      where key in ('dead_worker_seconds', 'retry_base_seconds', 'reap_interval_seconds')`;
    const s = Object.fromEntries(rows.map((r) => [r.key, Number(r.v)]));
    const heartbeat = loadConfig({}).WORKER_HEARTBEAT_INTERVAL;
    // Dead dead_worker_seconds after its last beat (which was up to one heartbeat before the
    // kill), found by the next pg_cron reap, retried after retry_base_seconds, seen by a LISTEN
    // worker's 5 s poll (a retry's run_at sends no NOTIFY).
    const lo = s.dead_worker_seconds - heartbeat + s.retry_base_seconds;
    const hi = s.dead_worker_seconds + s.reap_interval_seconds + s.retry_base_seconds + 5;
    return `${lo}–${hi} s by design`;
  }
  if (system === "pg-boss") return "15–17 min by design (expireIn 15 min, maintenance every 2 min)";
  return "4 h by design (lock timeout)";
}
