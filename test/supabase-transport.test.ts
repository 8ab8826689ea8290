// The supabase-js transport: its list of scalar functions is checked against the catalog, and the
// SDK reaches taskwarden with either kind of service key, legacy service_role JWT or new secret key
// (sb_secret_…), through the PostgREST stand-in (a test double for PostgREST + the API gateway).
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, supabaseServiceKey } from "../src/config.ts";
import { connect, TaskwardenError } from "../src/rpc/index.ts";
import { SCALAR_FUNCTIONS } from "../src/rpc/supabase.ts";
import { freshDatabase } from "./support/db.ts";
import { signJwt, startPostgrestStandin, type PostgrestStandin } from "./support/postgrest-standin.ts";

let sql: postgres.Sql;
let standin: PostgrestStandin;

beforeAll(async () => {
  const url = await freshDatabase();
  sql = postgres(url, { max: 1, onnotice: () => {} });
  standin = await startPostgrestStandin({ databaseUrl: url });
});
afterAll(async () => {
  await standin?.close();
  await sql?.end({ timeout: 5 });
});

it("SCALAR_FUNCTIONS lists exactly the public functions of the schema that return one base value", async () => {
  const rows = await sql`select p.proname from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
    where n.nspname = 'taskwarden' and p.proname !~ '^_' and not p.proretset and t.typtype <> 'c'
    order by p.proname`;
  expect([...SCALAR_FUNCTIONS].sort()).toEqual(rows.map((r) => r.proname));
});

describe("new API keys (sb_secret_…) work wherever the service_role JWT does", () => {
  it("the SDK, configured from the environment, enqueues, claims and reaps with either key", async () => {
    for (const key of [standin.serviceRoleKey, standin.secretKey]) {
      const config = loadConfig({ SUPABASE_URL: standin.url, SUPABASE_SERVICE_ROLE_KEY: key });
      const tw = await connect(config);
      try {
        const before = standin.calls.get("claim_tasks") ?? 0;
        const [task] = await sql`select (taskwarden.enqueue_task('keys', '{}')).id`;
        const claimed = await tw.claimTasks({ worker_id: `keys-${key.slice(0, 6)}#1`, task_types: ["keys"] });
        expect(claimed.map((t) => String(t.id))).toEqual([String(task.id)]);
        expect((await tw.reap({ source: "key-test" })).source).toBe("key-test");
        expect(standin.calls.get("claim_tasks")).toBe(before + 1); // through HTTP, not a side door
      } finally {
        await tw.close();
      }
    }
    const sources = await sql`select count(*)::int as n from taskwarden.reaper_runs where source = 'key-test'`;
    expect(sources[0].n).toBe(2);
  });

  it("the platform's SUPABASE_SECRET_KEYS is enough and preferred to the legacy key, its default key first", () => {
    const secretKeys = JSON.stringify({ other: "sb_secret_other0000000000", default: standin.secretKey });
    expect(supabaseServiceKey(loadConfig({ SUPABASE_URL: standin.url, SUPABASE_SECRET_KEYS: secretKeys }))).toBe(standin.secretKey);
    // As in a deployed function, where Supabase sets both.
    const both = loadConfig({ SUPABASE_URL: standin.url, SUPABASE_SECRET_KEYS: secretKeys, SUPABASE_SERVICE_ROLE_KEY: standin.serviceRoleKey });
    expect(supabaseServiceKey(both)).toBe(standin.secretKey);
    expect(supabaseServiceKey(loadConfig({ SUPABASE_URL: standin.url, SUPABASE_SERVICE_ROLE_KEY: standin.serviceRoleKey }))).toBe(
      standin.serviceRoleKey,
    );
  });

  it("an unknown secret key is refused by the gateway, the publishable key by the database itself", async () => {
    const unknown = await connect({ SUPABASE_URL: standin.url, SUPABASE_SERVICE_ROLE_KEY: "sb_secret_not-this-project-0000000" });
    const err = (await unknown.reap().catch((e: unknown) => e)) as TaskwardenError;
    expect(err).toBeInstanceOf(TaskwardenError);
    expect(err.message).toMatch(/Invalid API key/);
    // The config refuses the publishable key up front; past it (a hand-built client) Postgres says no.
    const publishable = await connect({ SUPABASE_URL: standin.url, SUPABASE_SERVICE_ROLE_KEY: standin.publishableKey });
    const denied = (await publishable.reap().catch((e: unknown) => e)) as TaskwardenError;
    expect(denied.sqlstate).toBe("42501");
  });

  it("the config names the wrong kind of key: publishable, an anon JWT, a malformed SUPABASE_SECRET_KEYS", () => {
    const issues = (env: Record<string, string>) => {
      try {
        loadConfig({ SUPABASE_URL: "https://abc.supabase.co", ...env });
      } catch (err) {
        return (err as ConfigError).issues.map((i) => `${i.variable} ${i.message}`);
      }
      return [];
    };
    expect(issues({ SUPABASE_SERVICE_ROLE_KEY: standin.publishableKey })).toEqual([
      "SUPABASE_SERVICE_ROLE_KEY is a publishable key; use a secret key (sb_secret_…) or the service_role key",
    ]);
    expect(issues({ SUPABASE_SERVICE_ROLE_KEY: standin.anonKey })).toEqual([
      'SUPABASE_SERVICE_ROLE_KEY is a JWT for role "anon"; use the service_role key or a secret key (sb_secret_…)',
    ]);
    expect(issues({ SUPABASE_SERVICE_ROLE_KEY: signJwt({ role: "service_role" }, "x") })).toEqual([]);
    const bad = issues({ SUPABASE_SECRET_KEYS: '{"default": "eyJ-not-a-secret-key"}' });
    expect(bad).toEqual(['SUPABASE_SECRET_KEYS must be a JSON object of secret keys, {"default": "sb_secret_…"} (value not shown)']);
    expect(bad.join()).not.toContain("eyJ-not");
  });
});
