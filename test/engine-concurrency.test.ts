// The engine under real concurrency: many claimers never share a task, many reapers never
// count an attempt twice, and a completion racing the reaper either wins or is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { freshDatabase } from "./support/db.ts";

let url: string;
const clients: postgres.Sql[] = [];
function connect(max = 1, dbUrl = url): postgres.Sql {
  const sql = postgres(dbUrl, { max, onnotice: () => {}, types: { bigint: postgres.BigInt } });
  clients.push(sql);
  return sql;
}

beforeAll(async () => {
  url = await freshDatabase();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
});

describe("claims under contention", () => {
  it("16 claimers drain 2,000 tasks; every task is handed out exactly once", async () => {
    const admin = connect();
    // The claimed events are the audit this test reads (off by default).
    await admin`update taskwarden.settings set value = 'true' where key = 'log_success_events'`;
    await admin`select count(*) from taskwarden.enqueue_tasks('contended',
      array(select jsonb_build_object('n', g) from generate_series(1, 2000) g))`;
    const claimers = Array.from({ length: 16 }, (_, i) => ({ id: `claimer-${i}#t`, sql: connect() }));
    const seen: number[] = [];
    await Promise.all(
      claimers.map(async ({ id, sql }) => {
        for (;;) {
          const rows = await sql`select id, lease_token from taskwarden.claim_tasks(
            worker_id => ${id}, task_types => array['contended'], batch_size => 7, lease_seconds => 60)`;
          if (rows.length === 0) break;
          for (const r of rows) {
            seen.push(Number(r.id));
            await sql`select taskwarden.complete_task(${r.id}::bigint, ${r.lease_token}::uuid, '{"ok": true}')`;
          }
        }
      }),
    );
    expect(seen.length).toBe(2000);
    expect(new Set(seen).size).toBe(2000);
    const [counts] = await admin`select count(*) filter (where status = 'completed')::int as completed,
        count(*) filter (where attempts <> 1)::int as odd_attempts
      from taskwarden.tasks where task_type = 'contended'`;
    expect(counts).toEqual({ completed: 2000, odd_attempts: 0 });
    const [events] = await admin`select count(*)::int as claims, count(distinct task_id)::int as tasks
      from taskwarden.task_events e join taskwarden.tasks t on t.id = e.task_id
      where t.task_type = 'contended' and e.event = 'claimed'`;
    expect(events).toEqual({ claims: 2000, tasks: 2000 });
  });
});

describe("reapers under contention", () => {
  it("8 reap() calls and 8 direct cleanups at once requeue each expired task exactly once", async () => {
    const admin = connect();
    await admin`update taskwarden.settings set value = '1000' where key = 'reap_batch'`;
    await admin`insert into taskwarden.tasks (task_type, status, owner_id, lease_token, lease_seconds,
        lease_expires_at, last_heartbeat, attempts, max_attempts, started_at)
      select 'expired', 'running', 'gone-' || (g % 10) || '#x', gen_random_uuid(), 60,
             now() - interval '1 minute', now() - interval '20 minutes', 1, 5, now() - interval '20 minutes'
      from generate_series(1, 500) g`;
    const calls = [
      ...Array.from({ length: 8 }, () => connect().unsafe(`select taskwarden.reap('race') as r`)),
      ...Array.from({ length: 4 }, () =>
        connect().unsafe(`select count(*) as r from taskwarden.cleanup_stale_running_tasks(15, 5, 1000, false)`),
      ),
      ...Array.from({ length: 4 }, () =>
        connect().unsafe(`select count(*) as r from taskwarden.release_dead_worker_leases(1)`),
      ),
    ];
    const results = await Promise.allSettled(calls);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);

    const [state] = await admin`select count(*) filter (where status = 'queued')::int as queued,
        count(*) filter (where crash_count <> 1)::int as wrong_crash_count,
        count(*) filter (where attempts <> 1)::int as wrong_attempts,
        count(*) filter (where jsonb_array_length(errors) <> 1)::int as wrong_history
      from taskwarden.tasks where task_type = 'expired'`;
    expect(state).toEqual({ queued: 500, wrong_crash_count: 0, wrong_attempts: 0, wrong_history: 0 });
    const [ev] = await admin`select count(*)::int as requeues, count(distinct task_id)::int as tasks
      from taskwarden.task_events e join taskwarden.tasks t on t.id = e.task_id
      where t.task_type = 'expired' and e.event = 'requeued'`;
    expect(ev).toEqual({ requeues: 500, tasks: 500 });
    const runs = await admin`select skipped, requeued from taskwarden.reaper_runs where source = 'race'`;
    expect(runs.length).toBe(8);
    const skippedRows = runs.filter((r) => r.skipped);
    expect(skippedRows.every((r) => r.requeued === 0)).toBe(true);
  });

  it("a completion racing the reaper either wins or is refused with lease_lost, never both", async () => {
    const admin = connect();
    await admin`select count(*) from taskwarden.enqueue_tasks('racing',
      array(select '{}'::jsonb from generate_series(1, 300)))`;
    const claimed = await admin`select id, lease_token from taskwarden.claim_tasks('racer#1', array['racing'], 300, 60)`;
    await admin`update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where task_type = 'racing'`;
    const worker = connect(4);
    const reaper = connect();
    const outcomes = { completed: 0, refused: 0 };
    await Promise.all([
      (async () => {
        for (let i = 0; i < 30; i++) await reaper`select taskwarden.reap('racer')`;
      })(),
      Promise.all(
        claimed.map(async (t) => {
          try {
            await worker`select taskwarden.complete_task(${t.id}::bigint, ${t.lease_token}::uuid)`;
            outcomes.completed++;
          } catch (e) {
            expect((e as { code?: string }).code).toBe("TW001");
            outcomes.refused++;
          }
        }),
      ),
    ]);
    expect(outcomes.completed + outcomes.refused).toBe(300);
    const [state] = await admin`select
        count(*) filter (where status = 'completed')::int as completed,
        count(*) filter (where status = 'completed' and crash_count > 0)::int as completed_and_reaped,
        count(*) filter (where status = 'queued' and crash_count = 1)::int as requeued
      from taskwarden.tasks where task_type = 'racing'`;
    expect(state.completed).toBe(outcomes.completed);
    expect(state.completed_and_reaped).toBe(0);
    expect(state.requeued).toBe(outcomes.refused);
  });
});

describe("heartbeats", () => {
  it("renewing leases and beating are HOT updates", async () => {
    // Its own database, so the update counters see nothing but this test.
    const hotUrl = await freshDatabase();
    const admin = connect(1, hotUrl);
    await admin`select count(*) from taskwarden.enqueue_tasks('hot', array(select '{}'::jsonb from generate_series(1, 20)))`;
    const held = await admin`select id from taskwarden.claim_tasks('hot#1', array['hot'], 20, 60)`;
    const ids = held.map((r) => r.id);
    const beater = connect(1, hotUrl);
    for (let i = 0; i < 200; i++) {
      await beater`select * from taskwarden.upsert_worker_heartbeat(worker_id => 'hot#1', worker_type => 'hot',
        status => 'processing', held_task_ids => ${`{${ids.join(",")}}`}::bigint[], lease_seconds => 60)`;
    }
    await beater`select pg_stat_force_next_flush()`;
    await beater.end();
    await new Promise((r) => setTimeout(r, 700));
    const stats = await admin`select relname, n_tup_upd::int as upd, n_tup_hot_upd::int as hot
      from pg_stat_user_tables where schemaname = 'taskwarden' and relname in ('tasks', 'worker_heartbeats')`;
    const byName = Object.fromEntries(stats.map((s) => [s.relname, s]));
    // 200 beats x 20 leases on tasks (+20 claim updates, which change status and are not HOT).
    // An indexed heartbeat column would make every one of them non-HOT (share 0). The exact share
    // depends on opportunistic pruning, which a busy machine skips when another process pins the
    // page, so it is measured by the heartbeat benchmark; here HOT must clearly dominate.
    expect(byName.tasks.upd).toBeGreaterThanOrEqual(4000);
    expect(byName.tasks.hot / byName.tasks.upd).toBeGreaterThan(0.5);
    expect(byName.worker_heartbeats.hot / byName.worker_heartbeats.upd).toBeGreaterThan(0.5);

    // The control: the same beats on a copy of the table with last_heartbeat indexed are never HOT.
    await admin`create table taskwarden.tasks_indexed_control (like taskwarden.tasks including defaults)`;
    await admin`insert into taskwarden.tasks_indexed_control select * from taskwarden.tasks`;
    await admin`create index on taskwarden.tasks_indexed_control (last_heartbeat)`;
    const control = connect(1, hotUrl);
    for (let i = 0; i < 50; i++) {
      await control`update taskwarden.tasks_indexed_control set last_heartbeat = clock_timestamp()`;
    }
    await control`select pg_stat_force_next_flush()`;
    await control.end();
    await new Promise((r) => setTimeout(r, 700));
    const [ctl] = await admin`select n_tup_upd::int as upd, n_tup_hot_upd::int as hot
      from pg_stat_user_tables where relname = 'tasks_indexed_control'`;
    expect(ctl.upd).toBe(1000);
    expect(ctl.hot).toBe(0);
  });
});
