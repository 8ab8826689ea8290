// Supabase Queues: pgmq 1.5, the extension, called the way Supabase's docs show: send_batch to
// enqueue; each consumer loop reads a batch with a visibility timeout (read(queue, vt, qty)) and
// deletes what it handled with one delete(queue, msg_ids) per batch. pgmq has no fencing token,
// no heartbeat and no retry budget: a message whose consumer dies is visible again once its
// visibility timeout passes, and read_ct only counts the reads.
// Latency (profile "defaults") reads one message at a time with read_with_poll (the docs'
// long-poll: 5 s, every 100 ms).
import pg from "pg";
import { connect, createDatabase, withDatabase } from "../lib/db.ts";
import { setTimeout as sleep } from "node:timers/promises";
import type { Producer, QueueSystem, Running, WorkerOptions } from "./types.ts";

export const QUEUE = "bench";
/** Seconds a read message stays invisible to other readers: ample for a no-op batch. */
export const VISIBILITY_TIMEOUT_S = 30;

function pool(url: string, max: number): pg.Pool {
  const p = new pg.Pool({ connectionString: url, max, application_name: "pgmq-bench" });
  p.on("error", (err) => console.error(`pgmq pool error: ${err.message}`));
  return p;
}

export const pgmq: QueueSystem = {
  name: "pgmq",

  async install(adminUrl, database) {
    const admin = connect(adminUrl);
    await createDatabase(admin, database).finally(() => admin.end({ timeout: 5 }));
    const db = connect(withDatabase(adminUrl, database));
    try {
      await db`create extension if not exists pgmq`;
      await db`select pgmq.create(${QUEUE})`;
    } finally {
      await db.end({ timeout: 5 });
    }
  },

  async producer(url): Promise<Producer> {
    const p = pool(url, 1);
    return {
      async enqueueMany(n, batch) {
        for (let done = 0; done < n; done += batch) {
          const size = Math.min(batch, n - done);
          await p.query("select pgmq.send_batch($1, $2::jsonb[])", [QUEUE, Array.from({ length: size }, () => "{}")]);
        }
      },
      async enqueueOne() {
        await p.query("select pgmq.send($1, $2::jsonb)", [QUEUE, "{}"]);
      },
      close: () => p.end(),
    };
  },

  async startWorkers(url, o: WorkerOptions): Promise<Running> {
    const defaults = o.profile === "defaults";
    const loops = defaults ? 1 : o.concurrency;
    const p = pool(url, loops + 2);
    let stopping = false;
    const running = Array.from({ length: loops }, async () => {
      while (!stopping) {
        const { rows } = defaults
          ? await p.query({ name: "pgmq_poll", text: "select msg_id from pgmq.read_with_poll($1, $2, 1)", values: [QUEUE, VISIBILITY_TIMEOUT_S] })
          : await p.query({ name: "pgmq_read", text: "select msg_id from pgmq.read($1, $2, $3)", values: [QUEUE, VISIBILITY_TIMEOUT_S, o.batchSize] });
        if (rows.length === 0) {
          if (!defaults) await sleep(20);
          continue;
        }
        const ids = rows.map((r) => String(r.msg_id));
        for (const id of ids) o.onJob(id);
        await p.query({ name: "pgmq_delete", text: "select pgmq.delete($1, $2::bigint[])", values: [QUEUE, ids] });
      }
    });
    return {
      async stop() {
        stopping = true;
        await Promise.all(running);
        await p.end();
      },
    };
  },

  async unfinished(sql) {
    // Deleted messages are gone; what is left is waiting or invisible (read, not yet deleted).
    const [r] = await sql`select count(*)::int as n from pgmq.q_bench`;
    return r.n as number;
  },
};
