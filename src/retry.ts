// One way to try a call again while it fails for a reason that passes (a database restarting, a
// failover, a run whose tasks are not finished yet): the caller says which errors are worth
// another attempt and how long to pause. The pause is node:timers/promises' (Deno has it too),
// abortable by a signal.
import { setTimeout as sleep } from "node:timers/promises";

export interface RetryOptions {
  /** Whether `err`, thrown by attempt `attempt` (the first is 1), is worth another attempt; if not, it is thrown. */
  retryIf: (err: unknown, attempt: number) => boolean;
  /** The pause after attempt `attempt` failed. */
  delayMs: (attempt: number) => number;
  /** Called before each pause (for logs). */
  onRetry?: (err: unknown, attempt: number) => void;
  /** Ends the pause: the retry rejects with an AbortError. */
  signal?: AbortSignal;
}

/** Exponential pauses: `firstMs * 2^attempt`, never more than `maxMs`. */
export const backoff = (firstMs: number, maxMs: number) => (attempt: number): number => Math.min(firstMs * 2 ** attempt, maxMs);

/** Calls `call` until it resolves or throws an error `retryIf` refuses. */
export async function retry<T>(call: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(attempt);
    } catch (err) {
      if (!o.retryIf(err, attempt)) throw err;
      o.onRetry?.(err, attempt);
      await sleep(o.delayMs(attempt), undefined, { signal: o.signal });
    }
  }
}
