// The embedded database `npm start` serves to worker processes: PGlite's one session shared
// by several real postgres.js connections, one protocol cycle at a time, a transaction at a time.
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../src/rpc/migrate.ts";
import { servePGlite, type PGliteServer } from "../src/rpc/pglite-server.ts";
import { PGliteTransport } from "../src/rpc/pglite.ts";
import { PostgresTransport } from "../src/rpc/postgres.ts";

let local: PGliteTransport;
let server: PGliteServer;
const clients: { end(o?: { timeout?: number }): Promise<void> }[] = [];
const errors: string[] = [];

function client(max = 2, url = server.url): postgres.Sql {
  const sql = postgres(url, { max, onnotice: () => {} });
  clients.push(sql);
  return sql;
}

beforeAll(async () => {
  local = await PGliteTransport.open();
  await migrate(local);
  server = await servePGlite({ db: local.db, onClientError: (m) => errors.push(m) });
}, 240_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
  await server?.close();
  await local?.close();
});

describe("PGlite served over the wire protocol", () => {
  it("three transports claim and complete 60 tasks concurrently; each task exactly once", async () => {
    const transports = [1, 2, 3].map(() => new PostgresTransport({ url: server.url, max: 2 }));
    clients.push({ end: () => Promise.all(transports.map((t) => t.close())).then(() => {}) });
    await transports[0]!.call("enqueue_tasks", { task_type: "wire", payloads: Array.from({ length: 60 }, (_, i) => ({ i })) });
    const seen: number[] = [];
    await Promise.all(
      transports.map(async (t, k) => {
        for (;;) {
          const rows = await t.call("claim_tasks", { worker_id: `wire-${k}#t`, task_types: ["wire"], batch_size: 3 });
          if (rows.length === 0) break;
          for (const r of rows) {
            seen.push(Number(r.id));
            await t.call("complete_task", { task_id: r.id, lease_token: r.lease_token });
          }
        }
      }),
    );
    expect(seen).toHaveLength(60);
    expect(new Set(seen).size).toBe(60);
    // The process that owns PGlite sees the same data, in between the clients' statements.
    const [row] = await local.query<{ n: number }>("select count(*)::int as n from taskwarden.tasks where task_type = 'wire' and status = 'completed'");
    expect(row!.n).toBe(60);
  });

  it("transactions of two clients never interleave, and errors come back with their SQLSTATE", async () => {
    const a = client(1);
    const b = client(1);
    await a`create table if not exists public.ledger (who text, seq int)`;
    const write = (sql: postgres.Sql, who: string) =>
      sql.begin(async (tx) => {
        for (let i = 0; i < 5; i++) {
          await tx`insert into public.ledger values (${who}, ${i})`;
          await new Promise((r) => setTimeout(r, 10));
        }
      });
    await Promise.all([write(a, "a"), write(b, "b")]);
    const rows = await a`select who from public.ledger order by ctid`;
    const order = rows.map((r) => r.who).join("");
    expect(["aaaaabbbbb", "bbbbbaaaaa"]).toContain(order);

    const err = await a`select taskwarden.claim_tasks(worker_id => 'w#1', batch_size => 0)`.catch((e: postgres.PostgresError) => e);
    expect(err).toMatchObject({ code: "TW002", message: "batch_size must be between 1 and 1000 (got 0)" });
  });

  it("a client that dies inside a transaction is rolled back, and the session is free again", async () => {
    const doomed = client(1);
    let inside!: () => void;
    const entered = new Promise<void>((r) => (inside = r));
    const pending = doomed
      .begin(async (tx) => {
        await tx`insert into taskwarden.runs (name) values ('ghost of a killed process')`;
        inside();
        await new Promise(() => {}); // never commits
      })
      .catch(() => {});
    await entered;
    await doomed.end({ timeout: 0 }); // the socket closes mid-transaction, like a SIGKILL
    await pending;
    const [row] = await client(1)`select count(*)::int as n from taskwarden.runs where name like 'ghost%'`;
    expect(row!.n).toBe(0);
    const [own] = await local.query<{ n: number }>("select count(*)::int as n from taskwarden.runs where name like 'ghost%'");
    expect(own!.n).toBe(0);
  });

  it("NOTIFY reaches listeners in other connections", async () => {
    const listener = new PostgresTransport({ url: server.url });
    clients.push({ end: () => listener.close() });
    const got: string[] = [];
    await listener.listen("taskwarden_tasks", (p) => got.push(p));
    await client(1)`select taskwarden.enqueue_task('notified')`;
    await expect.poll(() => got, { timeout: 2000 }).toContain("notified");
  });

  it("refuses a wrong password", async () => {
    const wrong = client(1, server.url.replace(`:${encodeURIComponent(server.password)}@`, ":not-the-password@"));
    const err = await wrong`select 1`.catch((e: postgres.PostgresError) => e);
    expect(err).toMatchObject({ code: "28P01" });
    expect(errors).toContain("a client sent a wrong password");
  });
});
