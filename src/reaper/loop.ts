// The in-process reaper for local use (PGlite, or a Postgres without pg_cron): reap('local')
// every few seconds. One call at a time: the next one is scheduled when the previous returns,
// so a slow database never piles reaps up (reap() would skip them anyway). With alert channels it
// tells people what the edge function would: the same messages, de-duplicated in SQL.
import type { Taskwarden } from "../rpc/index.ts";
import type { ReapSummary } from "../rpc/client.ts";
import { deliverAlerts, type AlertChannel, type ChannelReport, type MonitorLogger } from "./monitor.ts";

export interface ReaperLoopOptions {
  client: Taskwarden;
  intervalMs?: number;
  source?: string;
  /** Every summary, including idle ones. */
  onReap?: (summary: ReapSummary) => void;
  /** A failed reap or alert round; the loop keeps going. */
  onError?: (err: unknown) => void;
  /** Where alerts go after each reap (email, webhook); none by default. */
  channels?: AlertChannel[];
  /** What each alert round delivered, when it delivered or failed something. */
  onAlerts?: (reports: ChannelReport[]) => void;
  log?: MonitorLogger;
}

/** Tasks the reap took back or failed, across all of its steps. */
export function reapTotals(s: ReapSummary): { requeued: number; failed: number } {
  let requeued = 0;
  let failed = 0;
  for (const step of [s.lease_expired, s.worker_dead, s.timed_out, s.stale]) {
    requeued += step?.requeued ?? 0;
    failed += step?.failed ?? 0;
  }
  return { requeued, failed };
}

export class ReaperLoop {
  readonly #opts: Required<Pick<ReaperLoopOptions, "intervalMs" | "source">> & ReaperLoopOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #alerting: Promise<void> | undefined;
  #stopped = true;

  constructor(opts: ReaperLoopOptions) {
    const intervalMs = opts.intervalMs ?? 2000;
    if (!Number.isFinite(intervalMs) || intervalMs < 50) throw new RangeError(`reaper interval must be at least 50 ms (got ${intervalMs})`);
    this.#opts = { ...opts, intervalMs, source: opts.source ?? "local" };
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Runs one reap now (also used by the loop). */
  async reapOnce(): Promise<ReapSummary | undefined> {
    try {
      const summary = await this.#opts.client.reap({ source: this.#opts.source });
      this.#opts.onReap?.(summary);
      this.#alert();
      return summary;
    } catch (err) {
      this.#opts.onError?.(err);
      return undefined;
    }
  }

  /**
   * One alert round at a time, beside the reaps rather than before the next one: a slow SMTP
   * server must never delay taking tasks back. A round skipped here is caught up by the next,
   * since sync_alerts returns everything not yet marked sent.
   */
  #alert(): void {
    const channels = this.#opts.channels ?? [];
    if (channels.length === 0 || this.#alerting) return;
    this.#alerting = deliverAlerts(this.#opts.client.transport, channels, this.#opts.log)
      .then((reports) => {
        if (reports.some((r) => r.sent > 0 || r.failed > 0)) this.#opts.onAlerts?.(reports);
      })
      .catch((err: unknown) => this.#opts.onError?.(err))
      .finally(() => {
        this.#alerting = undefined;
      });
  }

  #schedule(delay: number): void {
    this.#timer = setTimeout(() => {
      this.#running = this.reapOnce().then(() => {
        this.#running = undefined;
        if (!this.#stopped) this.#schedule(this.#opts.intervalMs);
      });
    }, delay);
  }

  /** Stops the loop and waits for a reap and an alert round in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    await this.#alerting;
  }
}
