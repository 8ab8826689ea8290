// Heartbeat load: 1,000 simulated workers (the SDK's own WorkerHeartbeat, one per worker) beat
// every 5 s, each renewing the lease of the one task it holds. Reports the write rate, table and
// index sizes at start and end (bloat), and the share of HOT updates.
import { setTimeout as sleep } from "node:timers/promises";
import { Taskwarden } from "../src/rpc/client.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import { WorkerHeartbeat } from "../src/worker/heartbeat.ts";
import { connect, createDatabase, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { quietLogger } from "./systems/taskwarden.ts";

export interface TableState {
  tableBytes: number;
  indexBytes: number;
  updates: number;
  hotUpdates: number;
}

export interface HeartbeatRun {
  workers: number;
  intervalSeconds: number;
  soakSeconds: number;
  beats: number;
  beatsPerSecond: number;
  /** Row writes per second (inserts + updates + deletes) on worker_heartbeats and tasks. */
  writesPerSecond: number;
  failedBeats: number;
  heartbeats: { start: TableState; end: TableState; hotShare: number; growth: number };
  tasks: { start: TableState; end: TableState; hotShare: number; growth: number };
  /** Table + index bytes of both tables every 30 s (when growth happens, not just that it did). */
  samples: { seconds: number; heartbeatsBytes: number; tasksBytes: number; tasksHot: number; tasksUpdates: number }[];
}

async function tableState(sql: Sql, table: string): Promise<TableState & { writes: number }> {
  const [r] = await sql`
    select pg_table_size(c.oid)::float8 as table_bytes, pg_indexes_size(c.oid)::float8 as index_bytes,
           s.n_tup_upd::float8 as updates, s.n_tup_hot_upd::float8 as hot,
           (s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::float8 as writes
    from pg_class c join pg_stat_user_tables s on s.relid = c.oid
    where c.oid = ${`taskwarden.${table}`}::regclass`;
  return { tableBytes: r.table_bytes, indexBytes: r.index_bytes, updates: r.updates, hotUpdates: r.hot, writes: r.writes };
}

export async function measureHeartbeats(o: {
  admin: Sql;
  baseUrl: string;
  template: string;
  workers: number;
  intervalSeconds: number;
  soakSeconds: number;
}): Promise<HeartbeatRun> {
  const db = "bench_heartbeat";
  await createDatabase(o.admin, db, o.template);
  const url = withDatabase(o.baseUrl, db);
  const sql = connect(url);
  const tw = new Taskwarden(new PostgresTransport({ url, max: 10 }));
  const beaters: WorkerHeartbeat[] = [];
  try {
    // Each worker holds one running task; its beats renew that lease.
    const workerIds = Array.from({ length: o.workers }, (_, i) => `hb-${i}#bench`);
    const tasks = await sql`
      insert into taskwarden.tasks (task_type, status, owner_id, lease_token, lease_seconds, lease_expires_at,
                                    last_heartbeat, attempts, started_at)
      select 'hb', 'running', w, gen_random_uuid(), 60, now() + interval '60 seconds', now(), 1, now()
      from unnest(${workerIds}::text[]) w
      returning id, owner_id`;
    const held = new Map(tasks.map((t) => [t.owner_id as string, Number(t.id)]));

    // Registration, spread over one interval so the steady load is even.
    for (const [i, workerId] of workerIds.entries()) {
      const hb = new WorkerHeartbeat({
        rpc: tw,
        workerType: "bench",
        workerId,
        intervalSeconds: o.intervalSeconds,
        leaseSeconds: 60,
        heldTaskIds: () => [held.get(workerId)!],
        logger: quietLogger,
      });
      beaters.push(hb);
      void sleep((i / o.workers) * o.intervalSeconds * 1000).then(() => hb.start("processing"));
    }
    await sleep(o.intervalSeconds * 1000 + 500);
    await sql`vacuum analyze taskwarden.worker_heartbeats`;
    await sql`vacuum analyze taskwarden.tasks`;
    await sleep(1500); // statistics are flushed about once a second

    const beats0 = Number((await sql`select sum(beats)::float8 as b from taskwarden.worker_heartbeats`)[0].b);
    const hbStart = await tableState(sql, "worker_heartbeats");
    const taskStart = await tableState(sql, "tasks");
    const t0 = performance.now();
    const samples: HeartbeatRun["samples"] = [];
    const end = t0 + o.soakSeconds * 1000;
    while (performance.now() < end) {
      await sleep(Math.min(30_000, end - performance.now()));
      const [hb, tk] = [await tableState(sql, "worker_heartbeats"), await tableState(sql, "tasks")];
      samples.push({
        seconds: Math.round((performance.now() - t0) / 1000),
        heartbeatsBytes: hb.tableBytes + hb.indexBytes,
        tasksBytes: tk.tableBytes + tk.indexBytes,
        tasksHot: tk.hotUpdates - taskStart.hotUpdates,
        tasksUpdates: tk.updates - taskStart.updates,
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    const beats1 = Number((await sql`select sum(beats)::float8 as b from taskwarden.worker_heartbeats`)[0].b);
    const hbEnd = await tableState(sql, "worker_heartbeats");
    const taskEnd = await tableState(sql, "tasks");
    const failedBeats = beaters.reduce((a, b) => a + b.failures, 0);

    const summary = (start: TableState, end: TableState) => ({
      start,
      end,
      hotShare: end.updates > start.updates ? (end.hotUpdates - start.hotUpdates) / (end.updates - start.updates) : 0,
      growth: (end.tableBytes + end.indexBytes) / (start.tableBytes + start.indexBytes),
    });
    const strip = ({ writes: _w, ...s }: TableState & { writes: number }) => s;
    return {
      workers: o.workers,
      intervalSeconds: o.intervalSeconds,
      soakSeconds: seconds,
      beats: beats1 - beats0,
      beatsPerSecond: (beats1 - beats0) / seconds,
      writesPerSecond: (hbEnd.writes - hbStart.writes + taskEnd.writes - taskStart.writes) / seconds,
      failedBeats,
      heartbeats: summary(strip(hbStart), strip(hbEnd)),
      tasks: summary(strip(taskStart), strip(taskEnd)),
      samples,
    };
  } finally {
    // Stop the timers without stop_worker: the database is dropped next.
    for (const hb of beaters) hb.status = "stopped";
    await Promise.all(beaters.map((hb) => hb.stop({ releaseTasks: false }).catch(() => 0)));
    await tw.close();
    await sql.end({ timeout: 5 });
    await dropDatabase(o.admin, db);
  }
}
