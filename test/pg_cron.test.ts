// pg_cron really runs the reaper: the migration scheduled `taskwarden-reap` every
// reap_interval_seconds (pg_cron 1.6, as hosted Supabase runs it) in the database pg_cron serves,
// and a run lands in reaper_runs within a few intervals. schedule_reaper() changes the schedule.
// When no reap has run for three intervals, status, the health summary and the dashboard say so;
// `taskwarden migrate` prints the migrations' NOTICEs (what they skipped and why).
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../src/cli/program.ts";
import { serveDashboard } from "../src/dashboard/server.ts";
import { connect } from "../src/rpc/index.ts";
import { skipWithoutSupabaseExtensions, withDatabase } from "./support/cluster.ts";
import { adminUrl, cronDatabaseUrl, freshDatabase } from "./support/db.ts";

const sql = postgres(cronDatabaseUrl(), { max: 1, onnotice: () => {} });
afterAll(() => sql.end({ timeout: 5 }));

const skip = skipWithoutSupabaseExtensions();
if (skip) console.warn(`pg_cron 1.6 / pg_net / Vault tests ${skip}`);

async function cli(url: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { DATABASE_URL: url } });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe.skipIf(skip)("pg_cron 1.6: reaping every few seconds", () => {
  it("schedules taskwarden-reap every reap_interval_seconds (5 s by default)", async () => {
    const [ext] = await sql`select extversion from pg_extension where extname = 'pg_cron'`;
    expect(ext.extversion).toBe("1.6");
    const jobs = await sql`select jobname, schedule, command, active from cron.job where jobname = 'taskwarden-reap'`;
    expect(jobs).toEqual([
      { jobname: "taskwarden-reap", schedule: "5 seconds", command: "select taskwarden.reap('pg_cron')", active: true },
    ]);
    const [s] = await sql`select value, value_type, min_value, max_value from taskwarden.settings where key = 'reap_interval_seconds'`;
    expect(s).toEqual({ value: 5, value_type: "integer", min_value: "1", max_value: "59" });
  });

  it("schedule_reaper(n) changes the job and the setting; out of range is TW002 naming the argument", async () => {
    try {
      expect((await sql`select taskwarden.schedule_reaper(12) as s`)[0].s).toBe("12 seconds");
      expect((await sql`select schedule from cron.job where jobname = 'taskwarden-reap'`)[0].schedule).toBe("12 seconds");
      expect((await sql`select value from taskwarden.settings where key = 'reap_interval_seconds'`)[0].value).toBe(12);
      // Without an argument it re-applies the setting (after an UPDATE of the settings row, say).
      await sql`update taskwarden.settings set value = '7' where key = 'reap_interval_seconds'`;
      expect((await sql`select taskwarden.schedule_reaper() as s`)[0].s).toBe("7 seconds");
      for (const bad of [0, 60, -1]) {
        const err = await sql`select taskwarden.schedule_reaper(${bad})`.catch((e: postgres.PostgresError) => e);
        expect(err).toMatchObject({ code: "TW002", message: `interval_seconds must be between 1 and 59 (got ${bad})` });
      }
      // A refused call changed nothing.
      expect((await sql`select schedule from cron.job where jobname = 'taskwarden-reap'`)[0].schedule).toBe("7 seconds");
      // The setting itself refuses what pg_cron's seconds syntax cannot express.
      const direct = await sql`update taskwarden.settings set value = '60' where key = 'reap_interval_seconds'`.catch((e) => e);
      expect(direct).toMatchObject({ code: "TW002" });
    } finally {
      await sql`select taskwarden.schedule_reaper(5)`;
    }
  });

  it("rescheduling is the job owner's: anyone else would add a second job, so service_role is refused and nothing changes", async () => {
    const err = await sql
      .begin(async (tx) => {
        await tx`set local role service_role`;
        return tx`select taskwarden.schedule_reaper(9)`;
      })
      .catch((e: postgres.PostgresError) => e);
    expect(err).toMatchObject({ code: "42501", message: "only postgres (who owns the taskwarden-reap job) can reschedule it" });
    expect((await sql`select count(*)::int as n from cron.job where jobname = 'taskwarden-reap'`)[0].n).toBe(1);
    expect((await sql`select schedule from cron.job where jobname = 'taskwarden-reap'`)[0].schedule).toBe("5 seconds");
    expect((await sql`select value from taskwarden.settings where key = 'reap_interval_seconds'`)[0].value).toBe(5);
  });

  it("pg_cron runs it within a few intervals, and the reap is logged with source pg_cron", { timeout: 60_000 }, async () => {
    // A task whose lease ran out, for the cron-driven reap to take back.
    await sql`select taskwarden.enqueue_task('cron-probe')`;
    const [claimed] = await sql`select id from taskwarden.claim_tasks('cron-probe#dead', array['cron-probe'], 1, 60)`;
    const [{ since }] = await sql`select now() as since`;
    await sql`update taskwarden.tasks set lease_expires_at = now() - interval '1 second' where id = ${claimed.id}`;
    await expect
      .poll(async () => (await sql`select status from taskwarden.tasks where id = ${claimed.id}`)[0].status, { timeout: 45_000, interval: 500 })
      .toBe("queued");
    const [logged] = await sql`select count(*)::int as n, sum(requeued)::int as requeued
      from taskwarden.reaper_runs where source = 'pg_cron' and not skipped and started_at >= ${since}`;
    expect(logged.n).toBeGreaterThan(0);
    expect(logged.requeued).toBeGreaterThanOrEqual(1);
    const [ok] = await sql`select count(*)::int as n from cron.job_run_details d join cron.job j using (jobid)
      where j.jobname = 'taskwarden-reap' and d.status = 'succeeded'`;
    expect(ok.n).toBeGreaterThan(0);
  });

  it("schedules the reaper edge function every minute, with pg_net's timeout set (its default is 1 s)", async () => {
    const [job] = await sql`select schedule, command from cron.job where jobname = 'taskwarden-reaper-edge'`;
    expect(job.schedule).toBe("* * * * *");
    expect(job.command).toContain("timeout_milliseconds := 30000");
    expect(job.command).toContain("vault.decrypted_secrets");
    expect((await sql`select extname from pg_extension where extname in ('pg_net', 'supabase_vault') order by 1`).map((r) => r.extname))
      .toEqual(["pg_net", "supabase_vault"]);
  });
});

describe("the missing scheduler is never silent", () => {
  it("the health summary, `taskwarden status` and the dashboard say the reaper is not running after three intervals", async () => {
    // A database pg_cron does not serve: nothing reaps it.
    const url = await freshDatabase();
    const db = postgres(url, { max: 1, onnotice: () => {} });
    const tw = await connect({ DATABASE_URL: url });
    const dashboard = await serveDashboard({ client: tw, refreshMs: 1000 });
    const reaper = async () => (await db`select taskwarden.get_worker_health_summary() -> 'reaper' as r`)[0].r;
    const page = async () => (await fetch(dashboard.url)).text();
    try {
      expect(await reaper()).toEqual({ last_reap_at: null, interval_seconds: 5, running: false });
      const never = await cli(url, "status");
      expect(never.code).toBe(0);
      expect(never.out).toMatch(/^reaper {5}NOT RUNNING: no reap for over 15 s \(3 intervals\)/m);
      expect(await page()).toContain('data-testid="reaper"');

      await db`select taskwarden.reap('test')`;
      expect(await reaper()).toMatchObject({ interval_seconds: 5, running: true });
      expect((await cli(url, "status")).out).toMatch(/^reaper {5}running \(every 5 s\)$/m);
      expect(await page()).not.toContain('data-testid="reaper"');
      // A dry run changes nothing, so it does not count as the reaper running.
      await db`update taskwarden.reaper_runs set started_at = now() - interval '16 seconds'`;
      await db`select taskwarden.reap('test', dry_run => true)`;
      expect(await reaper()).toMatchObject({ running: false });
      expect((await cli(url, "status")).out).toMatch(/^reaper {5}NOT RUNNING/m);
      expect(await page()).toContain("reaper not running");
      // Two intervals late is still running: the threshold is three.
      await db`update taskwarden.reaper_runs set started_at = now() - interval '10 seconds'`;
      expect(await reaper()).toMatchObject({ running: true });
      // A longer interval moves the threshold with it.
      await db`update taskwarden.reaper_runs set started_at = now() - interval '50 seconds'`;
      await db`update taskwarden.settings set value = '20' where key = 'reap_interval_seconds'`;
      expect(await reaper()).toMatchObject({ interval_seconds: 20, running: true });
    } finally {
      await dashboard.close();
      await tw.close();
      await db.end({ timeout: 5 });
    }
  });

  it.skipIf(skip)("the cron database, reaped by pg_cron, reports it running", async () => {
    await expect
      .poll(async () => (await sql`select taskwarden.get_worker_health_summary() -> 'reaper' as r`)[0].r, { timeout: 30_000, interval: 500 })
      .toMatchObject({ interval_seconds: 5, running: true });
  });

  it("schedule_reaper() where pg_cron is not enabled is TW004 with a hint", async () => {
    const db = postgres(await freshDatabase(), { max: 1, onnotice: () => {} });
    try {
      const err = await db`select taskwarden.schedule_reaper(10)`.catch((e: postgres.PostgresError) => e);
      expect(err).toMatchObject({ code: "TW004", message: "pg_cron is not enabled in this database" });
      expect((err as postgres.PostgresError).hint).toMatch(/cron\.database_name/);
      // All or nothing: the setting is unchanged too.
      expect((await db`select value from taskwarden.settings where key = 'reap_interval_seconds'`)[0].value).toBe(5);
    } finally {
      await db.end({ timeout: 5 });
    }
  });

  it("`taskwarden migrate` prints each migration's NOTICE: here, why the reaper is not scheduled", async () => {
    const name = `tw_migrate_notice_${process.pid}`;
    const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
    try {
      const r = await cli(withDatabase(adminUrl(), name), "migrate");
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      // pg_cron is installed but serves another database (cron.database_name): the migration says so under its name.
      expect(r.out).toMatch(
        /^applied 20261123001000_cron\n {2}NOTICE: taskwarden: pg_cron could not be enabled in this database \(.*\); the taskwarden-reap job is not scheduled$/m,
      );
      expect(r.out).toMatch(/^applied 20261123100100_reaper_schedule\n {2}NOTICE: taskwarden: pg_cron is not enabled; the reaper edge function is not scheduled$/m);
      const j = await cli(withDatabase(adminUrl(), name), "--json", "migrate");
      expect(JSON.parse(j.out)).toMatchObject({ applied: [], notices: [] });
    } finally {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 5 });
    }
  });
});
