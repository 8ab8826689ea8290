// Serves the dashboard on Node (used by `npm start` and `taskwarden dashboard`).
import { createAdaptorServer } from "@hono/node-server";
import type { Server } from "node:http";
import { createDashboard, type DashboardOptions } from "./app.ts";

export interface DashboardServer {
  url: string;
  close(): Promise<void>;
}

export async function serveDashboard(
  opts: DashboardOptions & { host?: string; port?: number },
): Promise<DashboardServer> {
  const app = createDashboard(opts);
  const host = opts.host ?? "127.0.0.1";
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`port ${opts.port} is already in use (set --port or DASHBOARD_PORT)`) : err),
    );
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const shown = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shown}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Polling browsers keep connections alive; do not wait for them.
        server.closeAllConnections();
      }),
  };
}
