// The dashboard in a real browser (headless Chromium) over a real database: it refreshes itself
// and shows a worker turning dead when its heartbeat ages (with the task it still holds), keeps a
// stopped worker listed as stopped, renders hostile text inertly, spans the page with its chart,
// says in words whether its drain / fail-run buttons are there, and those ask for confirmation
// and need the token.
import { mkdirSync } from "node:fs";
import postgres from "postgres";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveDashboard, type DashboardServer } from "../src/dashboard/server.ts";
import { connect, type Taskwarden } from "../src/rpc/index.ts";
import { freshDatabase } from "./support/db.ts";

const ARTIFACTS = new URL("../test-artifacts/", import.meta.url).pathname;
const TOKEN = "dashboard-test-token-0123456789";
const HOSTILE = `<img src=x onerror="window.__pwned=1">`;

let sql: postgres.Sql;
let tw: Taskwarden;
let server: DashboardServer;
let readOnly: DashboardServer;
let browser: Browser;
let beating: NodeJS.Timeout;
/** The doomed worker beats until the page has seen it alive; then its heartbeat ages. */
let doomedBeating: NodeJS.Timeout | undefined;
let doomedTask: number;

async function beat(worker: string, task?: number): Promise<void> {
  await sql`select from taskwarden.upsert_worker_heartbeat(${worker}, 'render', ${task ? "processing" : "idle"},
    current_task => ${task ? `${HOSTILE} #${task}` : null}, held_task_ids => ${task ? [task] : []}::bigint[],
    metadata => ${sql.json({ host: "test-host", pid: 4242 })})`;
}

beforeAll(async () => {
  const url = await freshDatabase();
  sql = postgres(url, { max: 2, onnotice: () => {} });
  tw = await connect({ DATABASE_URL: url });
  // Dead after 2 s without a heartbeat, so the test watches it happen.
  await sql`update taskwarden.settings set value = '2' where key = 'dead_worker_seconds'`;
  const [t] = await sql`select id::int from taskwarden.enqueue_task('render', '{"page": 1}')`;
  doomedTask = t!.id;
  await sql`select from taskwarden.claim_tasks('render-1#doomed', array['render'])`;
  await beat("render-1#doomed", doomedTask);
  await beat("render-2#alive");
  beating = setInterval(() => void beat("render-2#alive").catch(() => {}), 400);
  doomedBeating = setInterval(() => void beat("render-1#doomed", doomedTask).catch(() => {}), 400);
  // A drained worker: stopped, its row kept until cleanup.
  await sql`select from taskwarden.upsert_worker_heartbeat('render-3#drained', 'render', 'idle')`;
  await sql`select taskwarden.stop_worker('render-3#drained')`;
  server = await serveDashboard({ client: tw, token: TOKEN, refreshMs: 400 });
  readOnly = await serveDashboard({ client: tw, refreshMs: 400 });
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}, 60_000);

afterAll(async () => {
  clearInterval(beating);
  clearInterval(doomedBeating);
  await browser?.close();
  await server?.close();
  await readOnly?.close();
  await tw?.close();
  await sql?.end({ timeout: 5 });
});

async function open(base: string, path = "/"): Promise<Page> {
  const page = await browser.newPage();
  page.on("pageerror", (err) => {
    throw err;
  });
  await page.goto(new URL(path, base).toString());
  return page;
}

describe("dashboard in Chromium", () => {
  it("refreshes itself and shows the worker turn dead as its heartbeat ages, with the task it holds; hostile text stays text", async () => {
    const page = await open(server.url, `/?token=${TOKEN}`);
    const doomed = page.locator('tr[data-worker-id="render-1#doomed"]');
    // Alive while it beats, however long the browser took to start.
    await expect.poll(() => doomed.getAttribute("data-dead"), { timeout: 15_000 }).toBe("false");
    expect(await page.getByTestId("health").textContent()).toBe("healthy");
    // Its own label is shown as the literal text it is, never as markup.
    expect(await doomed.getByTestId("current-task").textContent()).toBe(`${HOSTILE} #${doomedTask}`);
    expect(await page.locator("main img").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    // A marker that a reload would wipe: the refresh must happen in place.
    await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 42));

    clearInterval(doomedBeating);
    await expect.poll(() => doomed.getAttribute("data-dead"), { timeout: 15_000, interval: 200 }).toBe("true");
    expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).toBe(42);
    expect(await doomed.locator(".badge.bad").textContent()).toBe("dead");
    expect(await page.getByTestId("dead-workers").locator("b").textContent()).toBe("1");
    expect(await page.getByTestId("health").textContent()).toBe("unhealthy");
    expect(await page.locator('tr[data-worker-id="render-2#alive"]').getAttribute("data-dead")).toBe("false");
    // Dead, it shows the task it still holds (what the reaper will take back), not its last label.
    expect(await doomed.getByTestId("current-task").textContent()).toBe(`holds #${doomedTask} render`);
    expect(await page.locator("main img").count()).toBe(0);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-dead-worker.png`, fullPage: true });
    await page.close();
  }, 40_000);

  it("a stopped (drained) worker stays listed as stopped, without a drain button, and is counted once", async () => {
    const page = await open(server.url, `/?token=${TOKEN}`);
    const row = page.locator('tr[data-worker-id="render-3#drained"]');
    await expect.poll(() => row.getAttribute("data-status")).toBe("stopped");
    expect(await row.getAttribute("data-dead")).toBe("false");
    expect(await row.locator(".badge").textContent()).toBe("stopped");
    expect(await row.locator("button").count()).toBe(0);
    expect(await page.locator('tr[data-worker-id="render-2#alive"] button', { hasText: "Drain" }).count()).toBe(1);
    expect(await page.getByTestId("stopped").locator("b").textContent()).toBe("1");
    expect(await page.locator('tr[data-status="stopped"]').count()).toBe(1);
    // Listed after the live ones.
    const ids = await page.locator("table[data-testid=workers] tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-worker-id")));
    expect(ids.at(-1)).toBe("render-3#drained");
    await page.close();
  });

  it("the chart spans the page's width, at any width", async () => {
    for (const width of [1280, 700]) {
      const page = await browser.newPage({ viewport: { width, height: 900 } });
      await page.goto(server.url);
      // Measured in one go: the live section is replaced on every refresh.
      const m = await page.evaluate(() => {
        const chart = document.querySelector("[data-testid=activity-chart]")!;
        const box = chart.getBoundingClientRect();
        return { page: document.documentElement.clientWidth, x: box.x, width: box.width, plot: chart.querySelector("svg")!.getBoundingClientRect().width };
      });
      expect(m.page).toBe(width);
      // The page's own padding (1.5rem a side) is all that is left over.
      expect(m.width).toBeGreaterThan(m.page - 60);
      expect(m.x).toBeLessThan(30);
      expect(m.plot).toBeGreaterThan(m.page * 0.85);
      await page.close();
    }
  });

  it("the chart counts completed and requeued tasks from the task events", async () => {
    // Success events are off by default; this chart reads them.
    await sql`update taskwarden.settings set value = 'true' where key = 'log_success_events'`;
    const [t] = await sql`select id::int from taskwarden.enqueue_task('render', '{}')`;
    const [c] = await sql`select lease_token from taskwarden.claim_tasks('render-2#alive', array['render'])`;
    await sql`select from taskwarden.complete_task(${t!.id}::bigint, ${c!.lease_token}::uuid)`;
    await tw.reap({ source: "dashboard-test" }); // takes the dead worker's task back
    const page = await open(server.url);
    const chart = page.getByTestId("activity-chart");
    await expect.poll(() => chart.getAttribute("data-completed")).toBe("1");
    await expect.poll(() => chart.getAttribute("data-requeued")).toBe("1");
    expect(await chart.locator("polyline").count()).toBe(2);
    const actions = page.getByTestId("reaper-actions");
    expect(await actions.locator("tbody tr").first().textContent()).toMatch(/requeued\s*worker_dead\s*render-1#doomed/);
    await page.close();
  });

  it("drain asks for confirmation: cancelled does nothing, accepted drains the worker", async () => {
    const page = await open(server.url, `/?token=${TOKEN}`);
    const drain = page.locator('tr[data-worker-id="render-2#alive"] button', { hasText: "Drain" });
    const dialogs: string[] = [];
    page.once("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await drain.click();
    await page.waitForTimeout(300);
    const [before] = await sql`select stop_requested_at from taskwarden.worker_heartbeats where worker_id = 'render-2#alive'`;
    expect(before!.stop_requested_at).toBeNull();

    page.once("dialog", (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await Promise.all([page.waitForURL(/\?ok=/), drain.click()]);
    expect(dialogs).toEqual([
      "Ask worker render-2#alive to finish its task and exit?",
      "Ask worker render-2#alive to finish its task and exit?",
    ]);
    expect(await page.locator(".flash.ok").textContent()).toBe("drain requested: worker render-2#alive exits after its next heartbeat");
    const [after] = await sql`select stop_requested_at from taskwarden.worker_heartbeats where worker_id = 'render-2#alive'`;
    expect(after!.stop_requested_at).not.toBeNull();
    await page.close();
  });

  it("fail-stale-run marks the run failed after confirmation", async () => {
    const [r] = await sql`select id from taskwarden.create_run('stuck export')`;
    await sql`select from taskwarden.start_run(${r!.id}::uuid)`;
    await sql`update taskwarden.runs set started_at = now() - interval '30 hours', created_at = now() - interval '30 hours',
      updated_at = now() - interval '30 hours' where id = ${r!.id}`;
    const page = await open(server.url, `/?token=${TOKEN}`);
    const row = page.locator(`tr[data-run-id="${r!.id}"]`);
    expect(await row.locator("td").nth(1).textContent()).toBe("stuck export");
    page.once("dialog", (d) => {
      expect(d.message()).toBe('Mark run "stuck export" as failed?');
      void d.accept();
    });
    await Promise.all([page.waitForURL(/\?ok=/), row.locator("button", { hasText: "Fail run" }).click()]);
    expect(await page.locator(".flash.ok").textContent()).toBe("run stuck export is now failed");
    const [run] = await sql`select status, error from taskwarden.runs where id = ${r!.id}`;
    expect(run).toEqual({ status: "failed", error: "Run marked as stale from the dashboard" });
    await expect.poll(() => page.locator(`tr[data-run-id="${r!.id}"]`).count()).toBe(0);
    await page.close();
  });

  it("without the token: no buttons, and POSTs are refused", async () => {
    const page = await open(server.url);
    expect(await page.locator("main button").count()).toBe(0);
    expect(await page.getByTestId("access").textContent()).toBe(
      "Read-only: open this page once with ?token=… (the DASHBOARD_TOKEN) to enable the Drain and Fail run buttons.",
    );
    await page.close();
    const ro = await open(readOnly.url);
    expect(await ro.locator("main button").count()).toBe(0);
    expect(await ro.getByTestId("access").textContent()).toBe("Read-only: set DASHBOARD_TOKEN to enable the Drain and Fail run buttons.");
    const withToken = await open(server.url, `/?token=${TOKEN}`);
    expect(await withToken.getByTestId("access").textContent()).toMatch(/^Actions enabled: this browser presented the dashboard token \(DASHBOARD_TOKEN\), so each live worker has a Drain button/);
    await withToken.close();
    await ro.close();

    const post = (base: string, headers: Record<string, string>) =>
      fetch(new URL("/actions/drain-worker", base), {
        method: "POST",
        headers: { accept: "application/json", ...headers },
        body: new URLSearchParams({ worker_id: "render-1#doomed" }),
      });
    const wrong = await post(server.url, { authorization: "Bearer not-the-token" });
    expect([wrong.status, await wrong.json()]).toEqual([403, { error: "this action needs the dashboard token" }]);
    const none = await post(readOnly.url, { authorization: `Bearer ${TOKEN}` });
    expect([none.status, await none.json()]).toEqual([403, { error: "the dashboard is read-only: set DASHBOARD_TOKEN to enable actions" }]);
    const unknown = await fetch(new URL("/actions/drain-worker", server.url), {
      method: "POST",
      headers: { accept: "application/json", authorization: `Bearer ${TOKEN}` },
      body: new URLSearchParams({ worker_id: "nobody#1" }),
    });
    expect([unknown.status, await unknown.json()]).toEqual([404, { error: "worker nobody#1 not found" }]);
    const badRun = await fetch(new URL("/actions/fail-run", server.url), {
      method: "POST",
      headers: { accept: "application/json", authorization: `Bearer ${TOKEN}` },
      body: new URLSearchParams({ run_id: "'; drop table x; --" }),
    });
    expect([badRun.status, await badRun.json()]).toEqual([400, { error: "run_id is missing or malformed" }]);
    const [still] = await sql`select stop_requested_at from taskwarden.worker_heartbeats where worker_id = 'render-1#doomed'`;
    expect(still!.stop_requested_at).toBeNull();
  });
});

describe("dashboard: headers and where actions may come from", () => {
  const drain = (headers: Record<string, string>) =>
    fetch(new URL("/actions/drain-worker", server.url), {
      method: "POST",
      headers: { accept: "application/json", ...headers },
      body: new URLSearchParams({ worker_id: "nobody#2" }),
    });
  const cookie = `taskwarden_token=${TOKEN}`;

  it("the token cookie counts only for a request from the page's own origin", async () => {
    const own = new URL(server.url).origin;
    // Past the checks: the database answers that there is no such worker.
    const same = await drain({ cookie, origin: own });
    expect([same.status, await same.json()]).toEqual([404, { error: "worker nobody#2 not found" }]);
    const forged: Record<string, string>[] = [{ cookie, origin: "http://evil.example" }, { cookie }, { cookie, "sec-fetch-site": "cross-site" }];
    for (const headers of forged) {
      const res = await drain(headers);
      expect([res.status, await res.json()], JSON.stringify(headers)).toEqual([403, { error: "cross-origin request refused" }]);
    }
    const wrongCookie = await drain({ cookie: "taskwarden_token=not-the-token", origin: own });
    expect([wrongCookie.status, await wrongCookie.json()]).toEqual([403, { error: "this action needs the dashboard token" }]);
    // A script sends the bearer; no other site can, so no origin is needed.
    const script = await drain({ authorization: `Bearer ${TOKEN}`, origin: "http://evil.example" });
    expect(script.status).toBe(404);
    await script.body?.cancel();
  });

  it("every answer, a refusal too, carries the secure headers and is never cached", async () => {
    const answers = [await fetch(server.url), await fetch(new URL("/api/snapshot", server.url)), await drain({ authorization: "Bearer wrong" })];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 403]);
    for (const res of answers) {
      await res.body?.cancel();
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    }
  });
});

describe("dashboard: retention", () => {
  it("shows the last prune: when, and how many tasks and events it deleted", async () => {
    await sql`insert into taskwarden.tasks (task_type, status, attempts, completed_at) values ('pruned', 'completed', 1, now() - interval '2 days')`;
    await sql`insert into taskwarden.task_events (task_id, event) select id, 'completed' from taskwarden.tasks where task_type = 'pruned'`;
    await sql`select taskwarden.prune()`;
    const page = await open(server.url);
    await expect.poll(() => page.getByTestId("last-prune").textContent()).toMatch(/^last prune .+ \(deleted 1 task\(s\), 1 event\(s\)\)$/);
    await page.close();
  });
});
