import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // 2 cores: files run two at a time; the process tests spawn their own children.
    maxWorkers: 2,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent" },
  },
});
