// The worker SDK: Worker for new workers, WorkerHeartbeat and runToCompletion for existing loops.

import { Taskwarden } from "../rpc/client.ts";
import type { RpcTransport } from "../rpc/transport.ts";

export {
  Worker,
  CALL_TIMEOUT_MS,
  LeaseLostError,
  NonRetryableError,
  TaskTimeoutError,
  WorkerShutdownError,
  WorkerFatalError,
  exitCodeOf,
  type TaskContext,
  type TaskHandler,
  type WorkerOptions,
  type WorkerSummary,
} from "./worker.ts";
export { fenceMargin, FENCE_MARGIN_FLOOR_MS, FENCE_MARGIN_FRACTION } from "./lease-clock.ts";
export type { StuckHandler } from "./runner.ts";
export { WorkerHeartbeat, makeWorkerId, type WorkerHeartbeatOptions, type WorkerStatus } from "./heartbeat.ts";

/**
 * start_run, then `fn`, then finish_run: completed once `fn` returned and the run's tasks are all
 * finished (a job that fans out tasks waits for them), failed with the error when `fn` threw, so a
 * crashed job can no longer leave its run `running`. See Taskwarden.runToCompletion.
 */
export function runToCompletion<T>(
  rpc: RpcTransport | Taskwarden,
  runId: string,
  fn: () => Promise<T>,
  opts: { pollMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const tw = rpc instanceof Taskwarden ? rpc : new Taskwarden(rpc);
  return tw.runToCompletion(runId, fn, opts);
}
