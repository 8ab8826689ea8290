// The local queue: claims taken ahead of a free slot (prefetch), in claim order. They are held
// (listed in every heartbeat, so renewed) until they start. A claim whose task still has an
// execution here that has not settled (a handler of an earlier claim of the same task, aborted
// but ignoring its signal) waits behind it: two executions of one task never overlap.

import type { Claim } from "./lease-clock.ts";

export class LocalQueue {
  #claims: Claim[] = [];

  get length(): number {
    return this.#claims.length;
  }

  push(...claims: Claim[]): void {
    this.#claims.push(...claims);
  }

  /** Takes the first claim that may start now; drops claims that ended while they waited. */
  take(busy: (taskId: number) => boolean): Claim | undefined {
    this.#claims = this.#claims.filter((c) => c.held);
    const i = this.#claims.findIndex((c) => !busy(c.id));
    if (i < 0) return undefined;
    return this.#claims.splice(i, 1)[0];
  }

  /** Removes one claim (it ended while queued). */
  remove(claim: Claim): boolean {
    const before = this.#claims.length;
    this.#claims = this.#claims.filter((c) => c !== claim);
    return this.#claims.length < before;
  }

  /** Empties the queue, returning what it held. */
  clear(): Claim[] {
    const all = this.#claims;
    this.#claims = [];
    return all;
  }
}
