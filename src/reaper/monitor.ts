// The heartbeat monitor: reap, then tell people what is newly wrong (dead workers, stale runs) and
// what recovered, once per problem and channel. The de-duplication state lives in SQL
// (sync_alerts / mark_alerts_sent); this file formats and delivers. Web-standard: the Deno edge
// function and Node (CLI, in-process reaper) run the same code.
import { Taskwarden, type PendingAlert } from "../rpc/client.ts";
import type { RpcTransport } from "../rpc/transport.ts";

export type { PendingAlert };

export type AlertKind = "dead_worker" | "stale_run";
export type AlertEvent = "open" | "resolved";

/** One message: every alert of one kind and event for one channel. */
export interface AlertMessage {
  kind: AlertKind;
  event: AlertEvent;
  subject: string;
  text: string;
  alerts: PendingAlert[];
}

export interface AlertChannel {
  readonly name: string;
  send(message: AlertMessage): Promise<void>;
}

export interface MonitorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ChannelReport {
  channel: string;
  sent: number;
  failed: number;
  error?: string;
}

export interface MonitorResult {
  reap: Record<string, unknown>;
  alerts: ChannelReport[];
}

function ago(seconds: unknown): string {
  const s = Math.round(Number(seconds));
  if (!Number.isFinite(s)) return "unknown";
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function line(a: PendingAlert): string {
  const d = a.details;
  if (a.kind === "dead_worker") {
    if (a.event === "resolved") return `- ${a.subject} (${d.worker_type}) is beating again or was cleaned up`;
    const doing = d.current_task ? `working on ${d.current_task}` : `status ${d.status}`;
    return `- ${a.subject} (${d.worker_type}): last seen ${ago(d.seconds_since_heartbeat)}, ${doing}, ${d.held_tasks ?? 0} task(s) held`;
  }
  if (a.event === "resolved") return `- run ${d.name ?? ""} (${a.subject}) is no longer stale`;
  return `- run ${d.name ?? ""} (${a.subject}): running since ${d.started_at}, no progress for ${d.stale_for_hours} h`;
}

const TITLES: Record<AlertKind, Record<AlertEvent, string>> = {
  dead_worker: { open: "Dead workers detected", resolved: "Workers recovered" },
  stale_run: { open: "Stale runs detected", resolved: "Stale runs resolved" },
};

/** Groups a channel's pending alerts into one message per kind and event. */
export function composeMessages(alerts: PendingAlert[]): AlertMessage[] {
  const groups = new Map<string, PendingAlert[]>();
  for (const a of alerts) {
    const key = `${a.kind}/${a.event}`;
    groups.set(key, [...(groups.get(key) ?? []), a]);
  }
  return [...groups.values()].map((list) => {
    const { kind, event } = list[0];
    const subject = `${TITLES[kind][event]} (${list.length})`;
    return { kind, event, subject, alerts: list, text: `${subject}\n\n${list.map(line).join("\n")}\n` };
  });
}

/** reap(source), then deliver pending alerts on every channel; a failing channel never stops the rest. */
export async function runMonitor(
  rpc: RpcTransport,
  opts: { source: string; channels: AlertChannel[]; log?: MonitorLogger },
): Promise<MonitorResult> {
  const reap = await new Taskwarden(rpc).reap({ source: opts.source });
  return { reap, alerts: await deliverAlerts(rpc, opts.channels, opts.log) };
}

/**
 * Delivers what sync_alerts hands this caller (each pending alert goes to one caller at a time),
 * marking each message sent only after its channel took it, or failed when it did not. Reads the
 * current dead workers and stale runs, so it can follow a reap made elsewhere (the Node
 * in-process reaper reaps through the typed client first).
 */
export async function deliverAlerts(rpc: RpcTransport, channels: AlertChannel[], log?: MonitorLogger): Promise<ChannelReport[]> {
  const reports: ChannelReport[] = [];
  if (channels.length === 0) return reports;

  const tw = new Taskwarden(rpc);
  const pending = await tw.syncAlerts({ channels: channels.map((c) => c.name) });
  for (const channel of channels) {
    const report: ChannelReport = { channel: channel.name, sent: 0, failed: 0 };
    for (const message of composeMessages(pending.filter((a) => a.channel === channel.name))) {
      const alert_ids = message.alerts.map((a) => a.alert_id);
      try {
        await channel.send(message);
        await tw.markAlertsSent({ alert_ids, event: message.event });
        report.sent += message.alerts.length;
      } catch (err) {
        report.failed += message.alerts.length;
        report.error = err instanceof Error ? err.message : String(err);
        log?.warn({ channel: channel.name, err: report.error, alerts: message.alerts.length }, "alert delivery failed; retried next time");
        // Given back, so the next call offers them again; if this fails too, they come back when
        // their delivery lease ends.
        await tw.markAlertsSent({ alert_ids, event: "failed" }).catch(() => {});
      }
    }
    reports.push(report);
  }
  return reports;
}
