// Completions: a Worker's complete_task calls, coalesced. While one complete_tasks is in flight
// the next completions queue and go together in the following one, so an idle worker reports at
// once and a busy one sends one statement per wave of finished tasks instead of one per task.

import type { Taskwarden } from "../rpc/client.ts";
import { SQLSTATE, TaskwardenError } from "../rpc/transport.ts";

/** complete_tasks takes up to 10,000; a smaller cap keeps one statement short. */
const MAX_BATCH = 500;

interface Pending {
  id: number;
  token: string;
  result: unknown;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Completions {
  #pending: Pending[] = [];
  #flushing = false;

  constructor(private readonly tw: Taskwarden) {}

  /**
   * Completes one held task, fenced by its token. Rejects with the "lease lost" TaskwardenError
   * (TW001) when the lease is gone, as complete_task would, and with the transport's error when
   * the batch could not be sent (the caller retries; complete_tasks is idempotent per token).
   */
  complete(taskId: number, leaseToken: string, result: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ id: taskId, token: leaseToken, result, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #one(p: Pending): Promise<void> {
    try {
      await this.tw.completeTask({ task_id: p.id, lease_token: p.token, result: p.result ?? null });
      p.resolve();
    } catch (err) {
      p.reject(err);
    }
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, MAX_BATCH);
        try {
          const answers = await this.tw.completeTasks({
            task_ids: batch.map((p) => p.id),
            lease_tokens: batch.map((p) => p.token),
            results: batch.some((p) => p.result !== null) ? batch.map((p) => p.result) : null,
          });
          const completed = new Map(answers.map((a) => [a.task_id, a.completed]));
          for (const p of batch) {
            if (completed.get(p.id)) p.resolve();
            else p.reject(leaseLost(p.id));
          }
        } catch (err) {
          if (batch.length === 1 || (err instanceof TaskwardenError && err.transient)) {
            for (const p of batch) p.reject(err);
          } else {
            // One bad result (a \u0000 in a string, say) must not fail the others: each alone.
            await Promise.all(batch.map((p) => this.#one(p)));
          }
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}

function leaseLost(taskId: number): TaskwardenError {
  return new TaskwardenError(`lease lost on task ${taskId}: its lease_token is no longer current`, {
    sqlstate: SQLSTATE.leaseLost,
    fn: "complete_tasks",
  });
}
