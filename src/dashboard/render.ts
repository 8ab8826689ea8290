// Server-rendered HTML of the dashboard. Every value goes through hono's `html` template, which
// escapes interpolations; nothing from the database is ever inserted raw.
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { ActivityBucket } from "../rpc/client.ts";
import { ago, cell as dash, duration } from "../format.ts";
import type { ReaperAction, Snapshot, WorkerView } from "./data.ts";

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface ViewOptions {
  /** Actions allowed: a DASHBOARD_TOKEN is configured and this request presented it. */
  canAct: boolean;
  tokenConfigured: boolean;
  refreshMs: number;
  now?: number;
  flash?: { kind: "ok" | "error"; text: string };
}

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #6e7781; --line: #d0d7de88; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; padding: 1rem 1.5rem 3rem; }
header { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1rem; margin: 1.6rem 0 .5rem; }
.badge { padding: .1rem .5rem; border-radius: 1rem; font-size: .8rem; font-weight: 600; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: .6rem; margin-top: 1rem; }
.card { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .8rem; min-width: 7.5rem; }
.card b { display: block; font-size: 1.5rem; }
.card.bad b { color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .75rem; text-transform: uppercase; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.dead td { background: #cf222e18; }
tr.stopped td { color: var(--muted); }
.badge.muted-badge { background: var(--muted); }
.access { margin: .6rem 0 0; }
.chart { display: grid; grid-template-columns: 2.5rem 1fr; grid-template-rows: 160px auto; width: 100%; }
.chart .yaxis { display: flex; flex-direction: column; justify-content: space-between; align-items: flex-end; padding-right: .4rem; font-size: .75rem; color: var(--muted); }
.chart svg { width: 100%; height: 160px; border-left: 1px solid #8888; border-bottom: 1px solid #8888; display: block; }
.chart .xaxis { grid-column: 2; position: relative; height: 1.2rem; font-size: .75rem; color: var(--muted); }
.chart .xaxis span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
.chart .xaxis span:first-child { transform: none; } .chart .xaxis span:last-child { transform: translateX(-100%); }
code { font-size: .85em; }
form.inline { display: inline; margin: 0; }
button { font: inherit; font-size: .8rem; padding: .1rem .5rem; cursor: pointer; }
.flash { padding: .5rem .8rem; border-radius: .4rem; margin-top: .8rem; }
.flash.ok { background: #1a7f3722; } .flash.error { background: #cf222e22; }
#conn.lost { color: var(--bad); font-weight: 600; }
`;

function card(label: string, value: number | string, bad = false): Html {
  return html`<div class="card${bad ? " bad" : ""}" data-testid="${label.replaceAll(" ", "-")}"><b>${value}</b><span class="muted">${label}</span></div>`;
}

function actionForm(action: string, field: string, value: string, label: string, confirmText: string): Html {
  // The confirmation text travels as a data attribute (escaped), never spliced into script.
  return html`<form class="inline" method="post" action="${action}" data-confirm="${confirmText}">
<input type="hidden" name="${field}" value="${value}"><button type="submit">${label}</button></form>`;
}

function workerStatus(w: WorkerView): Html {
  if (w.dead) return html`<span class="badge bad">dead</span> <span class="muted">was ${w.status}</span>`;
  if (w.status === "stopped") return html`<span class="badge muted-badge">stopped</span>`;
  return html`${w.status}${w.stop_requested_at ? html` <span class="badge warn">drain requested</span>` : ""}`;
}

// A worker's own label is as old as its last heartbeat: a dead worker's may name a task it had
// already finished. What it holds comes from the tasks it owns, which is what the reaper takes back.
function currentTask(w: WorkerView): Html {
  if (w.dead) return w.held_task ? html`<span title="still running under its lease">holds ${w.held_task}</span>` : html`<span class="muted">none held</span>`;
  if (w.status === "stopped") return html`<span class="muted">${dash(null)}</span>`;
  return html`${dash(w.current_task ?? w.held_task)}`;
}

function workersTable(workers: WorkerView[], opts: ViewOptions, now: number): Html {
  if (workers.length === 0) return html`<p class="muted">No workers are registered. Start one (<code>taskwarden supervise worker.ts --workers 2</code>).</p>`;
  return html`<table data-testid="workers">
<thead><tr><th>Worker</th><th>Type</th><th>Status</th><th class="num">Heartbeat</th><th>Current task</th><th class="num">Held</th><th>Host / pid</th><th>Started</th>${opts.canAct ? html`<th></th>` : ""}</tr></thead>
<tbody>${workers.map(
    (w) => html`<tr class="${w.dead ? "dead" : w.status === "stopped" ? "stopped" : ""}" data-worker-id="${w.worker_id}" data-dead="${String(w.dead)}" data-status="${w.status}">
<td><code>${w.worker_id}</code></td><td>${w.worker_type}</td>
<td>${workerStatus(w)}</td>
<td class="num">${duration(w.seconds_since_heartbeat)} ago</td>
<td data-testid="current-task">${currentTask(w)}</td><td class="num">${w.held_tasks}</td>
<td>${dash(w.host)} / ${dash(w.pid)}</td><td>${ago(w.started_at, now)}</td>
${opts.canAct ? html`<td>${!w.dead && !w.stop_requested_at && w.status !== "stopped" ? actionForm("/actions/drain-worker", "worker_id", w.worker_id, "Drain", `Ask worker ${w.worker_id} to finish its task and exit?`) : ""}</td>` : ""}
</tr>`,
  )}</tbody></table>`;
}

function statsTable(s: Snapshot): Html {
  const rows = s.health.by_type as Record<string, unknown>[];
  if (rows.length === 0) return html`<p class="muted">No workers yet.</p>`;
  const cols = ["active", "idle", "processing", "stopping", "dead", "stopped", "total"] as const;
  return html`<table data-testid="stats"><thead><tr><th>Worker type</th>${cols.map((c) => html`<th class="num">${c}</th>`)}</tr></thead>
<tbody>${rows.map((r) => html`<tr><td>${String(r.worker_type)}</td>${cols.map((c) => html`<td class="num">${dash(r[c])}</td>`)}</tr>`)}</tbody></table>`;
}

function staleRunsTable(s: Snapshot, opts: ViewOptions, now: number): Html {
  const runs = s.health.stale_runs as Record<string, unknown>[];
  if (runs.length === 0) return html`<p class="muted">No stale runs.</p>`;
  return html`<table data-testid="stale-runs"><thead><tr><th>Run</th><th>Name</th><th>Started</th><th>Last progress</th><th class="num">Stale for</th>${opts.canAct ? html`<th></th>` : ""}</tr></thead>
<tbody>${runs.map(
    (r) => html`<tr data-run-id="${String(r.run_id)}"><td><code>${String(r.run_id)}</code></td><td>${dash(r.name)}</td>
<td>${ago(r.started_at as string, now)}</td><td>${ago(r.last_progress_at as string, now)}</td>
<td class="num">${duration(Number(r.stale_for_hours) * 3600)}</td>
${opts.canAct ? html`<td>${actionForm("/actions/fail-run", "run_id", String(r.run_id), "Fail run", `Mark run "${String(r.name)}" as failed?`)}</td>` : ""}</tr>`,
  )}</tbody></table>`;
}

function reaperTable(actions: ReaperAction[], now: number): Html {
  if (actions.length === 0) return html`<p class="muted">The reaper has not taken any task back.</p>`;
  return html`<table data-testid="reaper-actions"><thead><tr><th>When</th><th class="num">Task</th><th>Action</th><th>Why</th><th>From worker</th><th class="num">Attempt</th></tr></thead>
<tbody>${actions.map(
    (a) => html`<tr><td>${ago(a.created_at, now)}</td><td class="num">${a.task_id}</td><td>${a.event}</td><td>${dash(a.reason)}</td><td><code>${dash(a.worker_id)}</code></td><td class="num">${dash(a.attempt)}</td></tr>`,
  )}</tbody></table>`;
}

/**
 * Completed and requeued tasks per bucket, as two polylines across the page's whole width. The
 * plot stretches (preserveAspectRatio none, strokes that do not scale); its labels are HTML, so
 * they keep their size at any width.
 */
export function activityChart(buckets: ActivityBucket[], bucketSeconds: number): Html {
  const W = 1000, H = 100, PAD = 4;
  const max = Math.max(1, ...buckets.flatMap((b) => [b.completed, b.requeued + b.failed]));
  const x = (i: number) => (buckets.length <= 1 ? 0 : (i * W) / (buckets.length - 1));
  const y = (v: number) => PAD + (H - 2 * PAD) * (1 - v / max);
  const points = (pick: (b: ActivityBucket) => number, upTo = buckets.length) =>
    buckets.slice(0, upTo).map((b, i) => `${x(i).toFixed(1)},${y(pick(b)).toFixed(1)}`).join(" ");
  // The last bucket is still filling up: its segment is dashed, so it does not read as a drop.
  const settled = Math.max(1, buckets.length - 1);
  const partial = (pick: (b: ActivityBucket) => number, colour: string) => {
    const n = buckets.length;
    if (n < 2) return "";
    return html`<line x1="${x(n - 2).toFixed(1)}" y1="${y(pick(buckets[n - 2]!)).toFixed(1)}" x2="${x(n - 1).toFixed(1)}" y2="${y(pick(buckets[n - 1]!)).toFixed(1)}"
 stroke="${colour}" stroke-width="2" stroke-dasharray="3 4" vector-effect="non-scaling-stroke"/>`;
  };
  const total = (pick: (b: ActivityBucket) => number) => buckets.reduce((n, b) => n + pick(b), 0);
  const hhmm = (iso: string) => new Date(iso).toISOString().slice(11, 16);
  const completed = total((b) => b.completed), requeued = total((b) => b.requeued), failed = total((b) => b.failed);
  // About six time labels on bucket boundaries; the last always, and none crowding it.
  const lastIndex = buckets.length - 1;
  const every = Math.max(1, Math.ceil(buckets.length / 6));
  const ticks = buckets
    .map((b, i) => ({ i, label: hhmm(b.bucket_start) }))
    .filter(({ i }) => i === lastIndex || (i % every === 0 && lastIndex - i >= every / 2));
  const left = (i: number) => (buckets.length <= 1 ? 0 : (100 * i) / (buckets.length - 1));
  const completedLine = points((b) => b.completed, settled);
  const lost = (b: ActivityBucket) => b.requeued + b.failed;
  return html`<div class="chart" role="img" aria-label="Tasks completed and requeued per ${bucketSeconds} s" data-testid="activity-chart"
 data-completed="${completed}" data-requeued="${requeued}" data-failed="${failed}">
<div class="yaxis"><span>${max}</span><span>${max > 1 ? Math.round(max / 2) : ""}</span><span>0</span></div>
<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" aria-hidden="true">
<line x1="0" y1="${y(max / 2)}" x2="${W}" y2="${y(max / 2)}" stroke="#8884" vector-effect="non-scaling-stroke" stroke-dasharray="4 4"/>
${buckets.length > 1 ? html`<polygon fill="#1a7f3722" stroke="none" points="0,${H} ${completedLine} ${x(settled - 1).toFixed(1)},${H}"/>` : ""}
<polyline fill="none" stroke="#1a7f37" stroke-width="2" vector-effect="non-scaling-stroke" stroke-linejoin="round" points="${completedLine}"><title>completed</title></polyline>
<polyline fill="none" stroke="#cf222e" stroke-width="2" vector-effect="non-scaling-stroke" stroke-linejoin="round" points="${points(lost, settled)}"><title>requeued or failed</title></polyline>
${partial((b) => b.completed, "#1a7f37")}${partial(lost, "#cf222e")}
</svg>
<div class="xaxis">${ticks.map((t) => html`<span style="left:${left(t.i).toFixed(2)}%">${t.label}</span>`)}</div>
</div>
<p class="muted"><span style="color:#1a7f37">■</span> completed ${completed} &nbsp; <span style="color:#cf222e">■</span> requeued / released ${requeued}, failed attempts ${failed} — per ${bucketSeconds} s (the dashed end: so far), times in UTC</p>`;
}

/** The retention duty's latest pass (get_worker_health_summary().last_prune). */
interface LastPrune {
  at: string;
  tasks: Record<string, number>;
  task_events: number;
}

function prunedTasks(p: LastPrune): number {
  return Object.values(p.tasks).reduce((a, b) => a + b, 0);
}

/** The part of the page that refreshes itself. */
export function renderLive(s: Snapshot, opts: ViewOptions): Html {
  const now = opts.now ?? Date.now();
  const h = s.health;
  const w = h.workers;
  const t = h.tasks;
  const lastReap = h.last_reap as Record<string, unknown> | null;
  const lastPrune = h.last_prune as LastPrune | null | undefined;
  const reaper = h.reaper as { running: boolean; interval_seconds: number } | undefined;
  return html`<header>
<h1>taskwarden</h1>
${h.healthy ? html`<span class="badge ok" data-testid="health">healthy</span>` : html`<span class="badge bad" data-testid="health">unhealthy</span>`}
${reaper && !reaper.running ? html`<span class="badge bad" data-testid="reaper" title="no reap for three intervals of ${String(reaper.interval_seconds)} s: dead workers' tasks are not taken back">reaper not running</span>` : ""}
<span class="muted">updated ${new Date(h.generated_at).toISOString().slice(11, 19)} UTC · workers count as dead after ${h.dead_after_seconds} s without a heartbeat ·
last reap ${lastReap ? html`${ago(lastReap.finished_at as string, now)} (${String(lastReap.source)}: requeued ${String(lastReap.requeued)}, failed ${String(lastReap.failed)})` : "never"} ·
<span data-testid="last-prune">last prune ${lastPrune ? html`${ago(lastPrune.at, now)} (deleted ${prunedTasks(lastPrune)} task(s), ${lastPrune.task_events} event(s))` : "never"}</span></span>
</header>
${accessNote(opts)}
<div class="cards">
${card("active workers", w.active)}${card("dead workers", w.dead, w.dead > 0)}
${card("processing", w.processing)}${card("idle", w.idle)}${card("stopped", w.stopped)}
${card("queued", t.queued)}${card("running", t.running)}${card("completed", t.completed)}${card("failed", t.failed, t.failed > 0)}
${card("stale running", t.stale_running, t.stale_running > 0)}
</div>
<h2>Workers</h2>
${workersTable(s.workers, opts, now)}
<h2>Tasks over the last ${s.activityMinutes} minutes</h2>
${activityChart(s.activity, s.activityBucketSeconds)}
<h2>Task status</h2>
<table data-testid="task-counts"><thead><tr>${(["queued", "running", "completed", "failed", "cancelled", "stale_running"] as const).map((k) => html`<th class="num">${k.replace("_", " ")}</th>`)}</tr></thead>
<tbody><tr>${(["queued", "running", "completed", "failed", "cancelled", "stale_running"] as const).map((k) => html`<td class="num">${t[k]}</td>`)}</tr></tbody></table>
<h2>Workers by type</h2>
${statsTable(s)}
<h2>Stale runs</h2>
${staleRunsTable(s, opts, now)}
<h2>Latest reaper actions</h2>
${reaperTable(s.reaperActions, now)}`;
}

/** Whether the buttons are there, and why (or why not), in words. */
function accessNote(opts: ViewOptions): Html {
  const text = opts.canAct
    ? "Actions enabled: this browser presented the dashboard token (DASHBOARD_TOKEN), so each live worker has a Drain button (it finishes its task and exits) and each stale run a Fail run button. Both ask for confirmation."
    : opts.tokenConfigured
      ? html`Read-only: open this page once with <code>?token=…</code> (the DASHBOARD_TOKEN) to enable the Drain and Fail run buttons.`
      : "Read-only: set DASHBOARD_TOKEN to enable the Drain and Fail run buttons.";
  return html`<p class="muted access" data-testid="access">${text}</p>`;
}

// Polls /partial and swaps the live section; a failed poll marks the page as stale instead of
// clearing it. Forms ask for confirmation with their data-confirm text. No swap while a button is
// held down: a button replaced between press and release never gets its click. (The flash of an
// action's result sits outside the live section, so a refresh does not wipe it.)
const SCRIPT = `
(() => {
  const live = document.getElementById("live");
  const conn = document.getElementById("conn");
  const every = Number(live.dataset.refreshMs);
  let pressed = false;
  document.addEventListener("pointerdown", () => (pressed = true), true);
  document.addEventListener("pointerup", () => setTimeout(() => (pressed = false), 0), true);
  async function poll() {
    if (pressed) return;
    try {
      const res = await fetch("/partial", { headers: { accept: "text/html" }, cache: "no-store" });
      if (!res.ok) throw new Error(String(res.status));
      const text = await res.text();
      if (pressed) return;
      live.innerHTML = text;
      conn.textContent = "live"; conn.className = "";
    } catch (e) {
      conn.textContent = "connection lost, retrying"; conn.className = "lost";
    }
  }
  document.addEventListener("submit", (ev) => {
    const text = ev.target.dataset && ev.target.dataset.confirm;
    if (text && !window.confirm(text)) ev.preventDefault();
  });
  setInterval(poll, every);
})();`;

export function renderPage(s: Snapshot, opts: ViewOptions): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>taskwarden${s.health.healthy ? "" : " — unhealthy"}</title><style>${raw(STYLE)}</style></head>
<body><div class="muted" style="float:right">refresh every ${opts.refreshMs / 1000} s · <span id="conn">live</span></div>
${opts.flash ? html`<div class="flash ${opts.flash.kind}" role="status">${opts.flash.text}</div>` : ""}
<main id="live" data-refresh-ms="${opts.refreshMs}">${renderLive(s, opts)}</main>
<script>${raw(SCRIPT)}</script></body></html>`;
}

export function renderError(message: string, refreshMs: number): Html {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>taskwarden — database unreachable</title>
<meta http-equiv="refresh" content="${Math.max(1, Math.round(refreshMs / 1000))}"><style>${raw(STYLE)}</style></head>
<body><h1>taskwarden</h1><p class="flash error">The database did not answer: ${message}</p><p class="muted">Retrying…</p></body></html>`;
}
