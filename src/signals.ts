// Stop signals for the long-running commands (npm start, dashboard, supervise). One Ctrl-C often
// arrives twice: from the terminal to the whole process group, and again forwarded by npm / npx.
// Both must mean one graceful stop, so the handlers stay installed while stopping; only a signal
// well after the first one means "stop now".

export interface StopSignals {
  /** The first SIGINT / SIGTERM. */
  first: Promise<NodeJS.Signals>;
  /** Removes the handlers (after the graceful stop finished). */
  dispose(): void;
}

/** A repeated signal this long after the first is a person insisting, not a duplicate. */
const DUPLICATE_WINDOW_MS = 1000;

export function stopSignals(onInsist: (signal: NodeJS.Signals) => void): StopSignals {
  let firstAt: number | undefined;
  let resolveFirst!: (s: NodeJS.Signals) => void;
  const first = new Promise<NodeJS.Signals>((resolve) => (resolveFirst = resolve));
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt === undefined) {
      firstAt = Date.now();
      resolveFirst(signal);
    } else if (Date.now() - firstAt > DUPLICATE_WINDOW_MS) {
      onInsist(signal);
    }
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    first,
    dispose: () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}
