// Idle memory: one worker process per system with its default settings, on an empty queue in a
// fresh copy of that system's template database; its RSS after it has sat idle for a while.
import { createDatabase, dropDatabase, withDatabase, type Sql } from "./lib/db.ts";
import { killAndWait, spawnTs, waitForLine } from "./lib/proc.ts";
import type { SystemName } from "./lib/report.ts";

const IDLE_WORKER = new URL("./idle-worker.ts", import.meta.url);

/** RSS in bytes of an idle worker process of `system`, `idleSeconds` after it reported ready. */
export async function measureIdleRss(
  system: SystemName,
  o: { admin: Sql; baseUrl: string; template: string; idleSeconds: number },
): Promise<number> {
  const db = `bench_memory_${system.replace(/\W/g, "_")}`;
  await createDatabase(o.admin, db, o.template);
  const child = spawnTs(IDLE_WORKER, [system, withDatabase(o.baseUrl, db), String(o.idleSeconds)]);
  try {
    await waitForLine(child, "ready");
    return await new Promise<number>((resolve, reject) => {
      let buffer = "";
      const timer = setTimeout(() => reject(new Error(`no RSS from the ${system} idle worker`)), (o.idleSeconds + 30) * 1000);
      child.stdout!.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        const line = buffer.split("\n").find((l) => l.startsWith('{"rss"'));
        if (line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { rss: number }).rss);
        }
      });
    });
  } finally {
    await killAndWait(child, "SIGKILL");
    await dropDatabase(o.admin, db);
  }
}
