// One private Postgres for the whole run; test files clone databases from its template.
import type { TestProject } from "vitest/node";
import { startCluster } from "./support/cluster.ts";

declare module "vitest" {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const cluster = await startCluster();
  if (process.env.TASKWARDEN_TEST_TIMINGS) console.log(`cluster ready in ${Date.now() - started} ms`);
  project.provide("adminUrl", cluster.url);
  return () => cluster.stop();
}
