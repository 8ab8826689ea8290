// The RPC layer on each transport: the same calls give the same shapes (numbers for bigint ids,
// ISO strings for timestamps, jsonb and arrays intact), the same typed errors, and on direct
// connections one transaction for the caller's SQL and complete_task. Migrations are applied
// to PGlite and to the real Postgres and recorded where the supabase CLI looks.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./support/db.ts";
import { connect, Taskwarden, TaskwardenError, type RpcTransport } from "../src/rpc/index.ts";
import { PGliteTransport } from "../src/rpc/pglite.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";
import type { SqlTransport } from "../src/rpc/sql.ts";
import { listMigrations, migrate } from "../src/rpc/migrate.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/;
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

async function expectError(p: Promise<unknown>): Promise<TaskwardenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TaskwardenError);
  return err as TaskwardenError;
}

type Make = () => Promise<{ transport: RpcTransport; sql?: SqlTransport }>;

const standinPath = fileURLToPath(new URL("./support/postgrest-standin.ts", import.meta.url));

const transports: [string, Make][] = [
  [
    "node-postgres",
    async () => {
      const t = new PostgresTransport(await freshDatabase());
      closers.push(() => t.close());
      return { transport: t, sql: t };
    },
  ],
  [
    "PGlite",
    async () => {
      const t = await PGliteTransport.open();
      await migrate(t);
      closers.push(() => t.close());
      return { transport: t, sql: t };
    },
  ],
];
if (existsSync(standinPath)) {
  transports.push([
    "supabase-js through the PostgREST stand-in",
    async () => {
      const url = await freshDatabase();
      const { startPostgrestStandin } = await import(standinPath);
      const standin = await startPostgrestStandin({ databaseUrl: url });
      closers.push(() => standin.close());
      const tw = await connect({ SUPABASE_URL: standin.url, SUPABASE_SERVICE_ROLE_KEY: standin.serviceRoleKey });
      closers.push(() => tw.close());
      return { transport: tw.transport };
    },
  ]);
}

describe.each(transports)("over %s", (name, make) => {
  const direct = !name.startsWith("supabase-js");
  let tw: Taskwarden;
  let sql: SqlTransport | undefined;
  beforeAll(async () => {
    const made = await make();
    tw = new Taskwarden(made.transport);
    sql = made.sql;
  });

  it("round-trips ids, timestamps, jsonb, arrays and uuids in the shapes the client validates", async () => {
    const run = await tw.createRun({ name: "shapes", metadata: { source: "rpc test", n: 1 } });
    expect(run.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(run.created_at).toMatch(ISO);
    expect(run.metadata).toEqual({ source: "rpc test", n: 1 });

    const tricky = { s: 'quote " backslash \\ comma , braces {} unicode ✓', nested: [1, null, { a: true }], big: 2 ** 40 };
    const type = 'odd "type", {with} \\ chars';
    const tasks = await tw.enqueueTasks({ task_type: type, payloads: [tricky, {}, [1, 2]], run_id: run.id, priority: 5 });
    expect(tasks.map((t) => typeof t.id)).toEqual(["number", "number", "number"]);
    expect(tasks[0].payload).toEqual(tricky);
    expect(tasks[2].payload).toEqual([1, 2]);

    const claimed = await tw.claimTasks({ worker_id: "shapes#1", task_types: [type, "other"], batch_size: 2, lease_seconds: 60 });
    expect(claimed.map((t) => t.id)).toEqual([tasks[0].id, tasks[1].id]);
    expect(claimed[0]).toMatchObject({ status: "running", owner_id: "shapes#1", attempts: 1, lease_seconds: 60 });
    expect(claimed[0].lease_expires_at).toMatch(ISO);

    const beat = await tw.upsertWorkerHeartbeat({
      worker_id: "shapes#1",
      worker_type: "shapes",
      status: "processing",
      held_task_ids: [claimed[0].id, claimed[1].id, 999_999],
      lease_seconds: 120,
    });
    expect(beat.renewed_task_ids).toEqual([claimed[0].id, claimed[1].id]);
    expect(beat.lost_task_ids).toEqual([999_999]);
    expect(beat.stop_requested).toBe(false);

    const done = await tw.completeTask({ task_id: claimed[0].id, lease_token: claimed[0].lease_token, result: { ok: [1, "two"] } });
    expect(done).toMatchObject({ status: "completed", result: { ok: [1, "two"] } });
    expect(await tw.isRunStale({ run_id: run.id })).toBe(false);
    expect(await tw.stopWorker({ worker_id: "shapes#1" })).toBe(1); // the second claim goes back
    const summary = await tw.reap({ source: "rpc-test", dry_run: true });
    expect(summary).toMatchObject({ source: "rpc-test", dry_run: true, skipped: false });
    expect(typeof summary.reaper_run_id).toBe("number");
    const health = await tw.getWorkerHealthSummary();
    expect(health.workers.stopped).toBeGreaterThanOrEqual(1);
    const stats = await tw.getWorkerStats();
    expect(stats.find((s) => s.worker_type === "shapes")).toMatchObject({ stopped: 1, total: 1 });
  });

  it("omitted arguments take the SQL defaults; null is sent as SQL NULL", async () => {
    const t = await tw.enqueueTask({ task_type: "defaults" });
    expect(t).toMatchObject({ payload: {}, max_attempts: 3, priority: 0, run_id: null });
    // task_types => null claims any type
    const [c] = await tw.claimTasks({ worker_id: "defaults#1", task_types: null });
    expect(c.lease_seconds).toBe(600);
  });

  it("typed errors tell a lost lease from a bad argument, an unknown row and a bad transition", async () => {
    const t = await tw.enqueueTask({ task_type: "errors" });
    const [c] = await tw.claimTasks({ worker_id: "errors#1", task_types: ["errors"] });
    expect(c.id).toBe(t.id);

    const lost = await expectError(tw.completeTask({ task_id: t.id, lease_token: "00000000-0000-4000-8000-000000000000" }));
    expect(lost.sqlstate).toBe("TW001");
    expect(lost.leaseLost).toBe(true);
    expect(lost.invalidArgument).toBe(false);
    expect(lost.message).toContain(`lease lost on task ${t.id}`);
    expect(lost.hint).toMatch(/discard this result/);

    const bad = await expectError(tw.claimTasks({ worker_id: "errors#1", batch_size: 0 }));
    expect(bad.sqlstate).toBe("TW002");
    expect(bad.invalidArgument).toBe(true);
    expect(bad.leaseLost).toBe(false);
    expect(bad.message).toMatch(/^batch_size must be between 1 and 1000 \(got 0\)/);
    expect(bad.hint).toBeTruthy();

    const missing = await expectError(tw.startRun({ run_id: "00000000-0000-4000-8000-000000000000" }));
    expect(missing.sqlstate).toBe("TW003");
    expect(missing.notFound).toBe(true);

    await tw.completeTask({ task_id: t.id, lease_token: c.lease_token });
    const state = await expectError(tw.cancelTask({ task_id: t.id }));
    expect(state.sqlstate).toBe("TW004");
    expect(state.message).toContain("already completed");

    // Nothing was written by the failed calls: the completion stands.
    expect((await tw.getTask({ task_id: t.id })).task.status).toBe("completed");
  });

  it("a malformed value is refused by the server, named by its type", async () => {
    const err = await expectError(tw.cancelTask({ task_id: "seven" as unknown as number }));
    expect(err.sqlstate).toBe("22P02");
    expect(err.message).toContain("bigint");
  });

  it("a scalar function comes back as [{ fn: value }] from the transport", async () => {
    const rows = await tw.transport.call("is_run_stale", { run_id: (await tw.createRun({ name: "scalar" })).id });
    expect(rows).toEqual([{ is_run_stale: false }]);
  });

  it.runIf(direct)("direct connections: the caller's SQL and complete_task commit together, or not at all", async () => {
    const s = sql!;
    await s.query("create table if not exists public.rpc_effects (task_id bigint not null)");
    const [a, b] = await tw.enqueueTasks({ task_type: "tx", payloads: [{}, {}] });
    const claimed = await tw.claimTasks({ worker_id: "tx#1", task_types: ["tx"], batch_size: 2 });

    await s.transaction(async (tx) => {
      await tx.query("insert into public.rpc_effects values ($1)", [a.id]);
      await tx.call("complete_task", { task_id: a.id, lease_token: claimed[0].lease_token, result: { n: 1 } });
    });
    // b's lease is lost before its transaction: the fence raises and the effect rolls back.
    await tw.cancelTask({ task_id: b.id, reason: "test" });
    const err = await expectError(
      s.transaction(async (tx) => {
        await tx.query("insert into public.rpc_effects values ($1)", [b.id]);
        await tx.call("complete_task", { task_id: b.id, lease_token: claimed[1].lease_token });
      }),
    );
    expect(err.leaseLost).toBe(true);
    const effects = await s.query<{ task_id: number }>("select task_id::int as task_id from public.rpc_effects order by 1");
    expect(effects).toEqual([{ task_id: a.id }]);
  });

  it.runIf(direct)("direct connections: LISTEN hears the NOTIFY that enqueue sends", async () => {
    const heard: string[] = [];
    const unlisten = await sql!.listen("taskwarden_tasks", (p) => heard.push(p));
    await tw.enqueueTasks({ task_type: "notify-me", payloads: [{}, {}, {}] });
    for (let i = 0; i < 100 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await unlisten();
    expect(heard).toEqual(["notify-me"]); // one NOTIFY per call, not per row
  });

  it("unknown functions and argument names fail before reaching the database, naming the problem", async () => {
    const fn = await expectError(tw.transport.call("claim_task", { worker_id: "x" }));
    expect(fn.message).toMatch(/claim_task/);
    const arg = await expectError(tw.transport.call("claim_tasks", { worker: "x#1" }));
    expect(arg.message).toMatch(/worker/);
    if (direct) expect(arg.message).toContain("worker_id, task_types, batch_size, lease_seconds, run_id");
  });
});

describe("node-postgres behind a transaction-mode pooler", () => {
  it("?pgbouncer=true turns off prepared statements and LISTEN; calls work the same", async () => {
    const url = await freshDatabase();
    const direct = new PostgresTransport({ url, max: 1 });
    const pooled = new PostgresTransport({ url: `${url}?pgbouncer=true`, max: 1 });
    closers.push(() => direct.close(), () => pooled.close());
    expect([direct.pooled, pooled.pooled, new PostgresTransport({ url: "postgres://u@h:6543/db" }).pooled]).toEqual([false, true, true]);
    const prepared = async (t: PostgresTransport) => {
      await new Taskwarden(t).createRun({ name: "prepared?" });
      const [{ n }] = await t.query<{ n: number }>("select count(*)::int as n from pg_prepared_statements");
      return n;
    };
    expect(await prepared(direct)).toBeGreaterThan(0);
    expect(await prepared(pooled)).toBe(0);
    const err = await expectError(pooled.listen("taskwarden_tasks", () => {}));
    expect(err.message).toContain("transaction-mode pooler");
  });
});

describe("migrate", () => {
  const expected = async () => (await listMigrations()).map((m) => m.version);

  it("applies every migration to PGlite once, recorded like the supabase CLI records them", async () => {
    const t = await PGliteTransport.open();
    closers.push(() => t.close());
    const first = await migrate(t);
    expect(first.applied.map((m) => m.version)).toEqual(await expected());
    // The very first RPC inside a transaction reads the function signatures through it.
    const inTx = await t.transaction((tx) => tx.call("create_run", { name: "first call in a transaction" }));
    expect(inTx[0]).toMatchObject({ status: "pending" });
    const second = await migrate(t);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(await expected());
    const rows = await t.query<{ version: string; name: string; n: number }>(
      "select version, name, cardinality(statements) as n from supabase_migrations.schema_migrations order by version",
    );
    expect(rows.map((r) => r.version)).toEqual(await expected());
    expect(rows[0]).toMatchObject({ name: "schema", n: 1 });
    const roles = await t.query<{ rolname: string }>(
      "select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') order by 1",
    );
    expect(roles.map((r) => r.rolname)).toEqual(["anon", "authenticated", "service_role"]);
  });

  it("on the real Postgres: two migrators at once apply each file exactly once", async () => {
    const url = await freshDatabase();
    const db = postgres(url, { max: 1, onnotice: () => {} });
    closers.push(() => db.end());
    // freshDatabase() is already migrated: start from an empty database of our own.
    const name = `migrate_${process.pid}_${Date.now()}`;
    await db.unsafe(`create database ${name}`);
    const target = new URL(url);
    target.pathname = `/${name}`;
    const a = new PostgresTransport(target.toString());
    const b = new PostgresTransport(target.toString());
    closers.push(() => a.close(), () => b.close());
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
    expect([...ra.applied, ...rb.applied].map((m) => m.version).sort()).toEqual(await expected());
    const rows = await a.query<{ version: string }>("select version from supabase_migrations.schema_migrations order by 1");
    expect(rows.map((r) => r.version)).toEqual(await expected());
    // The schema works through the typed client straight away.
    const tw = new Taskwarden(a);
    expect((await tw.createRun({ name: "after migrate" })).status).toBe("pending");
  });

  it("agrees with the supabase CLI in both directions", async () => {
    const { execFile } = await import("node:child_process");
    const root = fileURLToPath(new URL("..", import.meta.url));
    const cli = (args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(`${root}node_modules/.bin/supabase`, args, { cwd: root, timeout: 60_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`supabase ${args.join(" ")}: ${stderr}`)) : resolve(stdout + stderr),
        ),
      );
    const base = await freshDatabase();
    const admin = postgres(base, { max: 1, onnotice: () => {} });
    closers.push(() => admin.end());
    const dbUrl = async (name: string) => {
      await admin.unsafe(`create database ${name}`);
      const u = new URL(base);
      u.pathname = `/${name}`;
      return u.toString();
    };
    // Applied here: the CLI has nothing left to push.
    const ours = await dbUrl(`cli_a_${process.pid}_${Date.now()}`);
    const a = new PostgresTransport(ours);
    closers.push(() => a.close());
    await migrate(a);
    expect(await cli(["db", "push", "--dry-run", "--db-url", ours])).toContain("Remote database is up to date");
    // Pushed by the CLI: nothing left to apply here.
    const theirs = await dbUrl(`cli_b_${process.pid}_${Date.now()}`);
    await cli(["db", "push", "--yes", "--db-url", theirs]);
    const b = new PostgresTransport(theirs);
    closers.push(() => b.close());
    const r = await migrate(b);
    expect(r.applied).toEqual([]);
    expect(r.alreadyApplied).toEqual(await expected());
  }, 60_000);

  it("a failing migration is rolled back and named", async () => {
    const { mkdtemp, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const dir = await mkdtemp(`${tmpdir()}/tw-migrations-`);
    await writeFile(`${dir}/20990101000000_ok.sql`, "create table public.mig_ok (id int);");
    await writeFile(`${dir}/20990101000100_broken.sql`, "create table public.mig_broken (id int); select no_such_function();");
    const t = await PGliteTransport.open();
    closers.push(() => t.close());
    await expect(migrate(t, { dir })).rejects.toThrow(/20990101000100_broken\.sql failed: .*no_such_function/);
    const tables = await t.query<{ t: string }>("select tablename as t from pg_tables where tablename like 'mig_%' order by 1");
    expect(tables).toEqual([{ t: "mig_ok" }]);
    const versions = await t.query<{ version: string }>("select version from supabase_migrations.schema_migrations");
    expect(versions).toEqual([{ version: "20990101000000" }]);
  });
});

describe("connect()", () => {
  it("DATABASE_URL picks node-postgres", async () => {
    const tw = await connect({ DATABASE_URL: await freshDatabase() });
    closers.push(() => tw.close());
    expect(tw.transport).toBeInstanceOf(PostgresTransport);
    expect((await tw.createRun({ name: "connect" })).status).toBe("pending");
  });

  it("with nothing set it opens the embedded PGlite in TASKWARDEN_DATA_DIR and migrates it", async () => {
    const { mkdtemp } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const dir = `${await mkdtemp(`${tmpdir()}/tw-pglite-`)}/data`;
    const tw = await connect({ TASKWARDEN_DATA_DIR: dir });
    expect(tw.transport).toBeInstanceOf(PGliteTransport);
    const t = await tw.enqueueTask({ task_type: "embedded" });
    await tw.close();
    // The data directory persists across opens.
    const again = await connect({ TASKWARDEN_DATA_DIR: dir });
    closers.push(() => again.close());
    expect((await again.getTask({ task_id: t.id })).task.task_type).toBe("embedded");
  });
});

describe("runToCompletion: work done inline, and work fanned out as tasks", () => {
  let tw: Taskwarden;
  let db: PostgresTransport;
  beforeAll(async () => {
    db = new PostgresTransport(await freshDatabase());
    closers.push(() => db.close());
    tw = new Taskwarden(db);
  });
  const runRow = async (id: string) =>
    (await db.query<{ status: string; error: string | null; done: boolean }>(
      "select status, error, completed_at is not null as done from taskwarden.runs where id = $1", [id]))[0];
  const taskStatuses = async (id: string) =>
    (await db.query<{ status: string }>("select status from taskwarden.tasks where run_id = $1 order by id", [id])).map((r) => r.status);
  /** What a worker does with one task of the run: claim it and complete it. */
  const workOne = async (type: string) => {
    const [t] = await tw.claimTasks({ worker_id: `${type}#w`, task_types: [type] });
    await tw.completeTask({ task_id: t.id, lease_token: t.lease_token });
  };

  it("inline: fn does the work; the run completes when it returns, with fn's value", async () => {
    const run = await tw.createRun({ name: "inline" });
    expect(await tw.runToCompletion(run.id, async () => 42)).toBe(42);
    expect(await runRow(run.id)).toEqual({ status: "completed", error: null, done: true });
  });

  it("fanned out: fn only enqueues; the run completes once its tasks are finished, none is cancelled", async () => {
    const run = await tw.createRun({ name: "fan out" });
    let settled = false;
    const job = tw.runToCompletion(run.id, async () => {
      await tw.enqueueTasks({ task_type: "fan", payloads: [{ n: 1 }, { n: 2 }], run_id: run.id });
      return "enqueued";
    }, { pollMs: 50 }).finally(() => { settled = true; });
    await expect.poll(() => taskStatuses(run.id), { timeout: 30_000 }).toEqual(["queued", "queued"]);
    await workOne("fan");
    // Many polls later the run still waits for its last task (finish_run refused with TW004).
    await new Promise((r) => setTimeout(r, 500));
    expect(settled).toBe(false);
    expect((await runRow(run.id)).status).toBe("running");
    await workOne("fan");
    expect(await job).toBe("enqueued");
    expect(await runRow(run.id)).toEqual({ status: "completed", error: null, done: true });
    expect(await taskStatuses(run.id)).toEqual(["completed", "completed"]);
  });

  it("finish_run itself refuses to complete a run with unfinished tasks: TW004 naming the counts, with a hint", async () => {
    const run = await tw.createRun({ name: "refused" });
    await tw.enqueueTask({ task_type: "refused", run_id: run.id });
    const err = await expectError(tw.finishRun({ run_id: run.id }));
    expect(err.sqlstate).toBe("TW004");
    expect(err.message).toContain("has 1 unfinished tasks (1 queued, 0 running)");
    expect(err.hint).toMatch(/cancel_run/);
    expect(await taskStatuses(run.id)).toEqual(["queued"]);
  });

  it("fn throws after enqueueing: the run fails with the error and what is left is cancelled", async () => {
    const run = await tw.createRun({ name: "crash after enqueue" });
    await expect(tw.runToCompletion(run.id, async () => {
      await tw.enqueueTasks({ task_type: "crash", payloads: [{}, {}], run_id: run.id });
      throw new Error("crashed halfway");
    })).rejects.toThrow("crashed halfway");
    expect(await runRow(run.id)).toEqual({ status: "failed", error: "crashed halfway", done: true });
    expect(await taskStatuses(run.id)).toEqual(["cancelled", "cancelled"]);
  });

  it("an aborted wait fails the run with the reason and cancels its unfinished tasks", async () => {
    const run = await tw.createRun({ name: "aborted wait" });
    const ac = new AbortController();
    const job = tw.runToCompletion(run.id, async () => {
      await tw.enqueueTask({ task_type: "abort", run_id: run.id });
    }, { pollMs: 50, signal: ac.signal });
    await expect.poll(() => taskStatuses(run.id), { timeout: 30_000 }).toEqual(["queued"]);
    ac.abort(new Error("deploy is shutting down"));
    await expect(job).rejects.toThrow("deploy is shutting down");
    expect(await runRow(run.id)).toEqual({ status: "failed", error: "deploy is shutting down", done: true });
    expect(await taskStatuses(run.id)).toEqual(["cancelled"]);
  });

  it("a run cancelled while it waits stays cancelled and the wait ends", async () => {
    const run = await tw.createRun({ name: "cancelled while waiting" });
    const job = tw.runToCompletion(run.id, async () => {
      await tw.enqueueTask({ task_type: "cancelled-wait", run_id: run.id });
      return "enqueued";
    }, { pollMs: 50 });
    await expect.poll(() => taskStatuses(run.id), { timeout: 30_000 }).toEqual(["queued"]);
    await tw.cancelRun({ run_id: run.id, reason: "operator" });
    expect(await job).toBe("enqueued");
    expect(await runRow(run.id)).toEqual({ status: "cancelled", error: "operator", done: true });
  });
});

describe("recover_worker_tasks with one configured id given to two live processes", () => {
  it("leaves the live boot's task alone and warns, naming the other boot", async () => {
    const notices: string[] = [];
    const db = new PostgresTransport({ url: await freshDatabase(), onNotice: (m) => notices.push(m) });
    closers.push(() => db.close());
    const tw = new Taskwarden(db);
    await tw.upsertWorkerHeartbeat({ worker_id: "pm2-app#one", worker_type: "pm2" });
    await tw.enqueueTask({ task_type: "pm2" });
    const [held] = await tw.claimTasks({ worker_id: "pm2-app#one", task_types: ["pm2"] });
    await tw.upsertWorkerHeartbeat({ worker_id: "pm2-app#two", worker_type: "pm2" });
    expect(await tw.recoverWorkerTasks({ worker_id: "pm2-app#two" })).toBe(0);
    expect((await tw.getTask({ task_id: held.id })).task).toMatchObject({ status: "running", owner_id: "pm2-app#one" });
    expect(notices).toEqual([
      "worker id base pm2-app is also used by live boot(s) pm2-app#one: their tasks were left alone",
    ]);
    const health = await tw.getWorkerHealthSummary();
    expect(health.duplicate_worker_bases).toEqual([{ base: "pm2-app", worker_ids: ["pm2-app#one", "pm2-app#two"] }]);
  });
});
