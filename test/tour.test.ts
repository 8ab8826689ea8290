// docs/tour.sql, the README's tour, run as a person would: verbatim through psql with
// ON_ERROR_STOP, and as the Supabase SQL editor sends it (one simple-protocol query, which
// Postgres runs as one transaction). Only the statement the file marks may fail, with TW001.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";

const run = promisify(execFile);
const TOUR = readFileSync(resolve(import.meta.dirname, "../docs/tour.sql"), "utf8");
const MARK = "-- expect-error: TW001";

function parts(): { steps: string; zombie: string } {
  const at = TOUR.indexOf(MARK);
  expect(at, "the tour marks its one failing statement").toBeGreaterThan(0);
  expect(TOUR.indexOf(MARK, at + 1), "and only one").toBe(-1);
  return { steps: TOUR.slice(0, at), zombie: TOUR.slice(at) };
}

async function psql(url: string, sql: string): Promise<{ code: number; out: string; err: string }> {
  const child = run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", url, "-f", "-"], {
    maxBuffer: 8 * 1024 * 1024,
  });
  child.child.stdin!.end(sql);
  return child.then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );
}

/** What the tour must have done, read back from the database. */
async function expectToured(url: string): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const tasks = (await db.query(`select status, attempts, crash_count, owner_id from taskwarden.tasks
                                   where task_type = 'tour_research' order by id`)).rows;
    // Two claimed by the worker that died, taken back by the reaper; the third never claimed.
    expect(tasks).toEqual([
      { status: "queued", attempts: 1, crash_count: 1, owner_id: null },
      { status: "queued", attempts: 1, crash_count: 1, owner_id: null },
      { status: "queued", attempts: 0, crash_count: 0, owner_id: null },
    ]);
    const reaps = (await db.query(`select dry_run, requeued from taskwarden.reaper_runs where source = 'tour' order by id`)).rows;
    // A dry run records what it would have done.
    expect(reaps).toEqual([{ dry_run: true, requeued: 2 }, { dry_run: false, requeued: 2 }]);
    const [stale] = (await db.query(`select status, error, completed_at is not null as done from taskwarden.runs
                                     where name = 'tour: nightly import'`)).rows;
    expect(stale).toEqual({ status: "failed", error: "Run marked as stale after 24h with no completion", done: true });
    expect((await db.query(`select 1 from taskwarden.worker_heartbeats where worker_id = 'tour-worker#boot1'`)).rowCount).toBe(0);
  } finally {
    await db.end();
  }
}

describe("docs/tour.sql", () => {
  it("runs verbatim in psql: every step succeeds, the marked zombie completion fails with TW001", async () => {
    const url = await freshDatabase();
    const { steps, zombie } = parts();
    const first = await psql(url, steps);
    expect(first.err).toBe("");
    expect(first.code).toBe(0);
    // The steps show what they say: the dead worker, why its tasks are stale, the dry run.
    expect(first.out).toMatch(/tour-worker#boot1 \| processing \|/);
    expect(first.out.match(/\| worker_dead\s*$/gm)).toHaveLength(2);
    expect(first.out).toMatch(/"requeued": 2/);
    await expectToured(url);
    const last = await psql(url, zombie);
    expect(last.code).not.toBe(0);
    expect(last.err).toMatch(/ERROR:\s+TW001: lease lost on task \d+/);
    // The whole file in one go (psql without ON_ERROR_STOP runs on past the error) ends the same way.
    const again = await freshDatabase();
    const whole = await run("psql", ["-X", "-v", "VERBOSITY=verbose", "-d", again, "-f", resolve(import.meta.dirname, "../docs/tour.sql")]);
    expect(whole.stderr).toMatch(/TW001: lease lost/);
    await expectToured(again);
  });

  it("runs as the SQL editor sends it: one multi-statement query", async () => {
    const url = await freshDatabase();
    const { steps, zombie } = parts();
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await db.query(steps); // no parameters: the simple query protocol, like the editor
      await expect(db.query(zombie)).rejects.toMatchObject({ code: "TW001" });
    } finally {
      await db.end();
    }
    await expectToured(url);
  });
});
