// The reasons a handler's signal is aborted with, and the errors a worker's entry point sees.

/** The reason a handler's signal is aborted when the task is no longer this worker's (or may not be). */
export class LeaseLostError extends Error {
  constructor(
    readonly taskId: number,
    why = "it was reaped, cancelled or claimed again",
  ) {
    super(`lease lost on task ${taskId}: ${why}; its result will not be reported`);
    this.name = "LeaseLostError";
  }
}

/** The reason a handler's signal is aborted when it ran past its timeout. */
export class TaskTimeoutError extends Error {
  constructor(readonly taskId: number, readonly seconds: number) {
    super(`task ${taskId} timed out after ${seconds} s`);
    this.name = "TaskTimeoutError";
  }
}

/** The reason a handler's signal is aborted when the worker shuts down before it finished. */
export class WorkerShutdownError extends Error {
  constructor(readonly taskId: number) {
    super(`worker shutting down: task ${taskId} is handed back to the queue`);
    this.name = "WorkerShutdownError";
  }
}

/** Throw this from a handler to fail the task for good instead of retrying it. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NonRetryableError";
  }
}

/**
 * Why Worker.start() rejected when the process should end: the library never exits; the entry
 * point does, with `exitCode` (130 / 143 for an insisted SIGINT / SIGTERM, 1 otherwise), and its
 * supervisor restarts it.
 */
export class WorkerFatalError extends Error {
  constructor(message: string, readonly exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WorkerFatalError";
  }
}

/** The exit code for an error from Worker.start(): a WorkerFatalError's own, else 1. */
export function exitCodeOf(err: unknown): number {
  return err instanceof WorkerFatalError ? err.exitCode : 1;
}
