// Multi-row writes under real concurrency: a batch completion listing its tasks in any order, a
// heartbeat renewing them and cancel_run cancelling the same run all lock rows in id order, so
// they queue behind each other instead of deadlocking; and whoever goes first wins cleanly.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import postgres from "postgres";
import { freshDatabase } from "./support/db.ts";
import { Taskwarden } from "../src/rpc/index.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";

let url: string;
const clients: postgres.Sql[] = [];
function connect(): postgres.Sql {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  clients.push(sql);
  return sql;
}

beforeAll(async () => {
  url = await freshDatabase();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
});

/** A deterministic shuffle (a seeded LCG): the order a worker's report buffer happens to hold. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const BARRIER = 70_07;

/**
 * Runs each statement in its own transaction on its own connection, all released at the same
 * instant: each first waits for a shared advisory lock the admin holds until every one of them
 * is queued behind it. Resolves with each outcome.
 */
async function startTogether(
  admin: postgres.Sql,
  statements: ((tx: postgres.TransactionSql) => Promise<unknown>)[],
): Promise<PromiseSettledResult<unknown>[]> {
  await admin`select pg_advisory_lock(${BARRIER})`;
  const running = statements.map((stmt) => {
    const sql = connect();
    return sql
      .begin(async (tx) => {
        await tx`select pg_advisory_xact_lock_shared(${BARRIER})`;
        return stmt(tx);
      })
      .finally(() => sql.end({ timeout: 5 }));
  });
  try {
    await expect
      .poll(async () => {
        const [w] = await admin`select count(*)::int as n from pg_locks
          where locktype = 'advisory' and objid = ${BARRIER} and not granted`;
        return w.n;
      }, { timeout: 30_000, interval: 20 })
      .toBe(statements.length);
  } finally {
    await admin`select pg_advisory_unlock(${BARRIER})`;
  }
  return Promise.allSettled(running);
}

describe("multi-row writes lock in id order", () => {
  it.each([
    { name: "batch completion with unsorted ids against cancel_run", beat: false },
    { name: "batch completion, a heartbeat listing the same tasks unsorted, and cancel_run", beat: true },
  ])("$name: no deadlock in 12 rounds", async ({ beat }) => {
    const admin = connect();
    const ROUNDS = 12;
    const N = 400;
    const deadlocks: string[] = [];
    const other: string[] = [];
    let completedFirst = 0;
    let cancelledFirst = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const worker = `fences-${beat ? "b" : "c"}${round}#w`;
      const [run] = await admin`select id from taskwarden.create_run(${`fences round ${round}`})`;
      await admin`select count(*) from taskwarden.enqueue_tasks('fences', array(select '{}'::jsonb from generate_series(1, ${N}::int)),
        run_id => ${run.id}::uuid)`;
      const claimed = await admin`select id::text, lease_token::text from taskwarden.claim_tasks(${worker}, array['fences'], ${N}::int, 600)`;
      expect(claimed.length).toBe(N);
      const order = shuffled(claimed, round + 1);
      const beatOrder = shuffled(claimed, round + 101);

      const results = await startTogether(admin, [
        (tx) => tx`select task_id::text, completed from taskwarden.complete_tasks(
          ${`{${order.map((t) => t.id).join(",")}}`}::bigint[], ${`{${order.map((t) => t.lease_token).join(",")}}`}::uuid[])`,
        (tx) => tx`select status from taskwarden.cancel_run(${run.id}::uuid, 'operator')`,
        ...(beat
          ? [(tx: postgres.TransactionSql) => tx`select * from taskwarden.upsert_worker_heartbeat(${worker}, 'fences', 'processing',
              held_task_ids => ${`{${beatOrder.map((t) => t.id).join(",")}}`}::bigint[], lease_seconds => 600)`]
          : []),
      ]);
      for (const r of results) {
        if (r.status === "fulfilled") continue;
        const err = r.reason as { code?: string; message?: string };
        (err.code === "40P01" ? deadlocks : other).push(`round ${round}: ${err.code} ${err.message}`);
      }
      if (results[0].status !== "fulfilled") continue;

      // Whoever went first won cleanly: each answer matches the row, and no task is both.
      const answers = results[0].value as unknown as { task_id: string; completed: boolean }[];
      const rows = await admin`select id::text, status from taskwarden.tasks where run_id = ${run.id}::uuid`;
      const status = new Map(rows.map((r) => [r.id as string, r.status as string]));
      expect(answers.length).toBe(N);
      for (const a of answers) expect(status.get(a.task_id)).toBe(a.completed ? "completed" : "cancelled");
      const completed = answers.filter((a) => a.completed).length;
      if (completed === N) completedFirst++;
      if (completed === 0) cancelledFirst++;
    }
    // Each write is one statement over locked rows: all or none of a batch wins, never a mix.
    expect({ deadlocks, other }).toEqual({ deadlocks: [], other: [] });
    expect(completedFirst + cancelledFirst).toBe(ROUNDS);
  });
});

describe("the typed client", () => {
  it("sends held_lease_tokens and reads the answer's claim columns", async () => {
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const tw = new Taskwarden(new PostgresTransport({ pool }));
    try {
      await tw.enqueueTasks({ task_type: "typed", payloads: [{}, {}] });
      const [a, b] = await tw.claimTasks({ worker_id: "typed#1", task_types: ["typed"], batch_size: 2, lease_seconds: 60 });
      const bogus = "00000000-0000-4000-8000-000000000000";
      const beat = await tw.upsertWorkerHeartbeat({
        worker_id: "typed#1",
        worker_type: "typed",
        status: "processing",
        held_task_ids: [a.id, b.id],
        held_lease_tokens: [a.lease_token, bogus],
        lease_seconds: 120,
      });
      expect(beat).toMatchObject({ renewed_task_ids: [a.id], lost_task_ids: [b.id], lost_lease_tokens: [bogus], handed_back_task_ids: [] });
      const granted = Date.parse(beat.lease_expires_at!) - Date.parse(beat.server_time);
      expect(granted).toBe(120_000);
      expect(Date.parse(beat.worker_expires_at!) - Date.parse(beat.server_time)).toBe(beat.dead_after_seconds! * 1000);
      // The same claim listed twice is a bad argument, named, and nothing is renewed.
      const err = await tw
        .upsertWorkerHeartbeat({ worker_id: "typed#1", worker_type: "typed", held_task_ids: [a.id, a.id], held_lease_tokens: [a.lease_token, a.lease_token] })
        .then(() => undefined, (e: unknown) => e as { sqlstate?: string; message: string });
      expect(err?.sqlstate).toBe("TW002");
      expect(err?.message).toMatch(/^held_task_ids lists task \d+ twice with the same lease token/);
    } finally {
      await tw.close();
      await pool.end();
    }
  });
});
