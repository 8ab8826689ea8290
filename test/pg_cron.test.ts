// pg_cron really runs the reaper: the migration scheduled `taskwarden-reap` every minute in the
// database pg_cron serves, and within a minute a run succeeds and lands in reaper_runs.
import postgres from "postgres";
import { afterAll, expect, it } from "vitest";
import { cronDatabaseUrl } from "./support/db.ts";

const sql = postgres(cronDatabaseUrl(), { max: 1, onnotice: () => {} });
afterAll(() => sql.end({ timeout: 5 }));

it("schedules taskwarden-reap every minute", async () => {
  const jobs = await sql`select jobname, schedule, command, active from cron.job where jobname = 'taskwarden-reap'`;
  expect(jobs).toEqual([
    { jobname: "taskwarden-reap", schedule: "* * * * *", command: "select taskwarden.reap('pg_cron')", active: true },
  ]);
});

it("does not schedule the reaper edge function where pg_net and Vault are missing (the migration's NOTICE path)", async () => {
  const [{ net, vault }] = await sql`select
      exists (select from pg_catalog.pg_available_extensions where name = 'pg_net') as net,
      exists (select from pg_catalog.pg_namespace where nspname = 'vault') as vault`;
  expect(net && vault).toBe(false); // this cluster is plain Postgres + pg_cron
  expect(await sql`select jobname from cron.job where jobname = 'taskwarden-reaper-edge'`).toEqual([]);
});

it("pg_cron runs it, and the reap is logged with source pg_cron", { timeout: 150_000 }, async () => {
  // A task whose worker died, for the cron-driven reap to take back.
  await sql`select taskwarden.enqueue_task('cron-probe')`;
  const [claimed] = await sql`select id from taskwarden.claim_tasks('cron-probe#dead', array['cron-probe'], 1, 60)`;
  await sql`update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where id = ${claimed.id}`;
  const deadline = Date.now() + 130_000;
  for (;;) {
    const [done] = await sql`select count(*)::int as n from cron.job_run_details d join cron.job j using (jobid)
      where j.jobname = 'taskwarden-reap' and d.status = 'succeeded'`;
    const [task] = await sql`select status, crash_count from taskwarden.tasks where id = ${claimed.id}`;
    if (done.n > 0 && task.status === "queued") {
      expect(task.crash_count).toBe(1);
      break;
    }
    if (Date.now() > deadline) throw new Error(`no successful pg_cron reap within 130 s (runs: ${done.n}, task: ${task.status})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const [logged] = await sql`select count(*)::int as n, sum(requeued)::int as requeued
    from taskwarden.reaper_runs where source = 'pg_cron' and not skipped`;
  expect(logged.n).toBeGreaterThan(0);
  expect(logged.requeued).toBeGreaterThanOrEqual(1);
});
