// Waiting in tests for a moment to come. To wait for a condition, use expect.poll.

/** A promise and the function that resolves it. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
