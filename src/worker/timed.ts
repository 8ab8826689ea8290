// A client whose every call has a timeout. The transport bounds the call itself (and frees its
// connection); the race here also bounds a transport that ignores CallOptions.

import { Taskwarden } from "../rpc/client.ts";
import { withTimeout, type RpcTransport } from "../rpc/transport.ts";

export function timedClient(tw: Taskwarden, timeoutMs: number): Taskwarden {
  const inner = tw.transport;
  const transport: RpcTransport = {
    call: (fn, args, options) => {
      const ms = Math.min(options?.timeoutMs ?? Infinity, timeoutMs);
      return withTimeout(inner.call(fn, args, { ...options, timeoutMs: ms }), fn, ms);
    },
    // The caller owns the underlying transport.
    close: async () => {},
  };
  return new Taskwarden(transport);
}
