// The reporter: delivers a finished task's outcome (complete_tasks, coalesced; or fail_task).
// A report is retried until it is delivered or the claim is known lost: the database said so
// (TW001, or a heartbeat listed it lost) or the lease clock's deadline passed. Meanwhile the claim
// stays held, so every heartbeat keeps renewing its lease: a completion made during a failover
// is delivered once the database is back, instead of the task being reaped and run again.
// Fenced writes are idempotent per token, so a retry whose first answer was lost is answered
// like the first.

import type { Taskwarden, Task } from "../rpc/client.ts";
import { TaskwardenError } from "../rpc/transport.ts";
import type { Logger } from "../log.ts";
import { backoff, retry } from "../retry.ts";
import { Completions } from "./completions.ts";
import type { Claim } from "./lease-clock.ts";
import { NonRetryableError } from "./errors.ts";

/** Pause between attempts: short at first, then at most this (a failover takes seconds). */
const RETRY_MAX_MS = 2000;

export type Delivery =
  | { kind: "completed" }
  | { kind: "failed"; status: Task["status"]; cause: string }
  /** The claim ended before the report landed (lost, fenced, replaced): nothing was written. */
  | { kind: "lost"; why: string }
  /** The database refused the report itself for good (logged); the lease is left to expire. */
  | { kind: "refused"; err: unknown };

export interface ReporterOptions {
  /** A client whose calls time out (below lost_claim_grace_seconds). */
  tw: Taskwarden;
  /** Ends the claim (it is no longer listed in heartbeats). */
  end: (claim: Claim, why: "reported" | "lost" | "abandoned") => void;
  /** Stop trying (the worker gave up waiting at shutdown). */
  giveUp: () => boolean;
}

/** Postgres text cannot hold NUL; a message quoting one would fail fail_task itself. */
function storable(text: string): string {
  return text.replaceAll("\u0000", "\\u0000").slice(0, 10_000);
}

export function describeError(error: unknown): string {
  return storable((error instanceof Error ? `${error.name}: ${error.message}` : String(error)) || "error");
}

/** Between two attempts the claim ended (lost, revoked, or the worker gave up waiting): stop trying. */
class ClaimEnded extends Error {
  constructor(readonly why: string) {
    super(`the claim ended: ${why}`);
  }
}

export class Reporter {
  readonly #o: ReporterOptions;
  readonly #completions: Completions;

  constructor(options: ReporterOptions) {
    this.#o = options;
    this.#completions = new Completions(options.tw);
  }

  /** Completes the claim with `value`; a result the database cannot store fails the attempt at once. */
  async complete(claim: Claim, value: unknown, log: Logger): Promise<Delivery> {
    const done = await this.#retry(claim, log, "complete", () => this.#completions.complete(claim.id, claim.token, value ?? null));
    if (done.ok) return { kind: "completed" };
    if (done.kind !== "refused") return done;
    // Not a connection problem and not a lost lease: the result itself (a \u0000 in a string is
    // SQLSTATE 22P05; one over max_json_bytes is TW002). Retrying cannot help; waiting for the
    // lease to expire would record "lease expired" instead of the cause. Fail the attempt now.
    const err = done.err;
    const cause = err instanceof TaskwardenError && err.sqlstate ? `${err.sqlstate} ${err.message}` : describeError(err);
    log.error({ err }, "the result could not be stored; failing the attempt with the cause");
    return this.fail(claim, new Error(`result could not be stored: ${cause}`), log);
  }

  async fail(claim: Claim, error: unknown, log: Logger): Promise<Delivery> {
    const cause = describeError(error);
    const retryable = !(error instanceof NonRetryableError);
    const done = await this.#retry(claim, log, "fail", () =>
      this.#o.tw.failTask({ task_id: claim.id, lease_token: claim.token, error: cause, retryable }),
    );
    if (done.ok) return { kind: "failed", status: done.value.status, cause };
    if (done.kind === "refused") {
      log.error({ err: done.err }, "fail_task refused the report; the lease is left to expire");
      this.#o.end(claim, "abandoned");
    }
    return done;
  }

  async #retry<T>(
    claim: Claim,
    log: Logger,
    what: string,
    call: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | ({ ok: false } & ({ kind: "lost"; why: string } | { kind: "refused"; err: unknown }))> {
    let attempts = 0;
    try {
      const value = await retry(
        async (attempt) => {
          attempts = attempt;
          if (!claim.held || this.#o.giveUp()) throw new ClaimEnded(claim.ended ?? "shutdown");
          return call();
        },
        {
          retryIf: (err) => err instanceof TaskwardenError && err.transient,
          delayMs: backoff(100, RETRY_MAX_MS),
          // Logged on the first failure and then every 10th, not on each retry of a long outage.
          onRetry: (err, attempt) => {
            if (attempt === 1 || attempt % 10 === 0) log.warn({ err, attempt }, `${what} failed; retrying until delivered or the lease is lost`);
          },
        },
      );
      this.#o.end(claim, "reported");
      if (attempts > 1) log.info({ attempts }, `${what} delivered after retries`);
      return { ok: true, value };
    } catch (err) {
      if (err instanceof ClaimEnded) {
        log.warn({ why: err.why, attempts: attempts - 1 }, `${what} not delivered: the claim ended first; the result is discarded`);
        return { ok: false, kind: "lost", why: err.why };
      }
      if (err instanceof TaskwardenError && err.leaseLost) {
        this.#o.end(claim, "lost");
        log.warn({ err }, `lease lost: ${what} refused, the result is discarded`);
        return { ok: false, kind: "lost", why: "refused_by_fence" };
      }
      return { ok: false, kind: "refused", err };
    }
  }
}
