// The lease clock: every claim this worker holds, keyed by its lease token, with the local
// deadline after which the worker must assume the claim is gone (the self-fence).
//
// How a deadline is counted without trusting clocks to agree (DESIGN.md): the database grants a
// duration (its lease_expires_at, or the worker's own expiry if sooner, minus its now() in the
// same answer); the worker counts it from the moment it SENT the request, on its monotonic clock
// (performance.now()), so any time the request and the answer spent on the wire only makes the
// deadline earlier; and it subtracts a margin.

import type { ClaimedTask, HeartbeatResult } from "../rpc/client.ts";

/**
 * The self-fence margin: max(2 s, 10 % of the granted duration), at most half of it.
 *
 * The reaper can hand a task out again only after its lease expired on the database's clock, and
 * the local deadline is already counted from before the database started the lease. What is left
 * to cover:
 * - the time between the deadline and the handler actually stopping: the fence timer's own
 *   resolution (100 ms), an event loop blocked by a busy handler or a GC pause (hundreds of ms on
 *   a loaded host), and the handler reacting to its signal. The 2 s floor is for these; it is what
 *   keeps short leases (a few seconds, as in tests and the chaos run) honest;
 * - the two clocks running at different rates over the lease. NTP keeps a host's rate within
 *   500 ppm (0.05 %), and a VM paused and resumed can jump further; 10 % of the lease is far above
 *   any rate error and still leaves 90 % of a long lease usable (54 s of margin on the default
 *   600 s lease, against 30 s heartbeats).
 * A pooler or the reaper's own schedule only delay a take-back, so they need no margin.
 * The cap at half the grant keeps short leases usable: a lease outlasts two heartbeats (the
 * options insist), so half of it still outlasts one, and a healthy worker is never fenced.
 */
export const FENCE_MARGIN_FLOOR_MS = 2000;
export const FENCE_MARGIN_FRACTION = 0.1;
/** How often the clock checks for deadlines that passed. */
export const FENCE_TICK_MS = 100;

export function fenceMargin(grantedMs: number): number {
  return Math.min(Math.max(FENCE_MARGIN_FLOOR_MS, grantedMs * FENCE_MARGIN_FRACTION), grantedMs / 2);
}

/** The local deadline of a grant of `grantedMs` whose request was sent at `sentAt` (performance.now()). */
export function localDeadline(sentAt: number, grantedMs: number): number {
  return sentAt + grantedMs - fenceMargin(grantedMs);
}

const ms = (iso: string | null | undefined) => (iso ? Date.parse(iso) : NaN);

/**
 * The fields of the heartbeat answer the clock reads. Older databases lack the last four (the
 * clock then counts the lease alone and matches lost claims by id).
 */
export interface BeatAnswer extends HeartbeatResult {
  lost_lease_tokens?: string[] | null;
  worker_expires_at?: string | null;
  dead_after_seconds?: number | null;
  handed_back_task_ids?: number[] | null;
}

/** Milliseconds the answer granted the renewed claims: least(lease_expires_at, worker_expires_at) - server_time. */
export function grantedByBeat(answer: BeatAnswer): number | undefined {
  const server = ms(answer.server_time);
  const ends = [ms(answer.lease_expires_at), ms(answer.worker_expires_at)].filter((t) => !Number.isNaN(t));
  if (Number.isNaN(server) || ends.length === 0) return undefined;
  return Math.min(...ends) - server;
}

/** Milliseconds the worker itself stays alive in the database's eyes after a beat: worker_expires_at - server_time. */
export function workerGrantByBeat(answer: BeatAnswer): number | undefined {
  const d = ms(answer.worker_expires_at) - ms(answer.server_time);
  return Number.isNaN(d) ? undefined : d;
}

export type ClaimPhase = "queued" | "running" | "finished";
/** Why a claim is no longer held. */
export type EndReason = "reported" | "lost" | "fenced" | "replaced" | "released" | "abandoned";

/** One claim: a (task id, lease token) pair. A task taken back and claimed again is a new Claim. */
export class Claim {
  readonly id: number;
  readonly token: string;
  phase: ClaimPhase = "queued";
  /** performance.now() past which the claim is treated as lost. */
  deadline: number;
  /** Set once the claim is no longer held; it is then never renewed nor reported. */
  ended: EndReason | undefined;
  readonly ac = new AbortController();

  constructor(readonly task: ClaimedTask, deadline: number) {
    this.id = task.id;
    this.token = task.lease_token;
    this.deadline = deadline;
  }

  get held(): boolean {
    return this.ended === undefined;
  }
}

export interface LeaseClockOptions {
  /** A held claim ended by the database ("lost") or by its own deadline ("fenced"). */
  onEnd: (claim: Claim, reason: "lost" | "fenced") => void;
}

export class LeaseClock {
  readonly #claims = new Map<string, Claim>();
  readonly #onEnd: LeaseClockOptions["onEnd"];
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The worker's own deadline from its last successful beat (its row's expiry, less the margin). */
  #workerDeadline = Infinity;

  constructor(options: LeaseClockOptions) {
    this.#onEnd = options.onEnd;
  }

  /** True while the worker's own row may have expired in the database (no beat got through in time). */
  workerExpired(now = performance.now()): boolean {
    return now >= this.#workerDeadline;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.check(), FENCE_TICK_MS);
    this.#timer.unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A claim from claim_tasks sent at `sentAt`: its grant is the task's lease_expires_at -
   * started_at (both set by the claim's now()), capped by the worker's own deadline from its last
   * beat (a claim does not beat for the worker).
   */
  add(task: ClaimedTask, sentAt: number): Claim {
    const granted = ms(task.lease_expires_at) - ms(task.started_at);
    const leaseDeadline = Number.isNaN(granted) ? sentAt : localDeadline(sentAt, granted);
    const claim = new Claim(task, Math.min(leaseDeadline, this.#workerDeadline));
    this.#claims.set(claim.token, claim);
    return claim;
  }

  /** Held claims, in claim order: what every heartbeat lists. */
  held(): Claim[] {
    return [...this.#claims.values()];
  }

  /** The held claim of task `id`, if any. */
  heldFor(id: number): Claim | undefined {
    for (const c of this.#claims.values()) if (c.id === id) return c;
    return undefined;
  }

  /** Ends a held claim (idempotent); it is never renewed again. */
  end(claim: Claim, reason: EndReason): boolean {
    if (claim.ended) return false;
    claim.ended = reason;
    this.#claims.delete(claim.token);
    return true;
  }

  /**
   * Applies a heartbeat answer to the claims that beat listed (sent at `sentAt`): renewed ones get
   * a new deadline, lost ones end. Claims made after the beat was sent keep their own.
   */
  applyBeat(listed: Claim[], sentAt: number, answer: BeatAnswer): void {
    const workerGrant = workerGrantByBeat(answer);
    if (workerGrant !== undefined) this.#workerDeadline = localDeadline(sentAt, workerGrant);
    const lostTokens = answer.lost_lease_tokens ? new Set(answer.lost_lease_tokens) : undefined;
    const lostIds = new Set(answer.lost_task_ids);
    const renewed = new Set(answer.renewed_task_ids);
    const granted = grantedByBeat(answer);
    for (const claim of listed) {
      if (!claim.held) continue;
      const lost = lostTokens ? lostTokens.has(claim.token) : lostIds.has(claim.id);
      // A finished claim's report is on its way and its answer is the authority: a beat that
      // crossed a completion committing meanwhile calls the claim lost (it is no longer running),
      // and a claim really taken back is refused by the fence (TW001). No handler runs to abort.
      if (lost && claim.phase === "finished") continue;
      if (lost) {
        if (this.end(claim, "lost")) this.#onEnd(claim, "lost");
      } else if (renewed.has(claim.id) && granted !== undefined) {
        claim.deadline = Math.max(claim.deadline, localDeadline(sentAt, granted));
      }
    }
  }

  /** Ends every held claim whose deadline passed. */
  check(now = performance.now()): void {
    for (const claim of [...this.#claims.values()]) {
      if (now >= claim.deadline && this.end(claim, "fenced")) this.#onEnd(claim, "fenced");
    }
  }
}
