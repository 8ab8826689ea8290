// The library a worker imports: `import { connect, loadConfig, Worker } from "taskwarden"`.
// The CLI, the dashboard and the demo are entry points of their own, not part of it.

export { loadConfig, ConfigError, type Config } from "./config.ts";
export * from "./rpc/index.ts";
export * from "./worker/index.ts";
