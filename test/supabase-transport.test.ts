// The supabase-js transport must know which functions answer a bare value (PostgREST sends an
// object for both a jsonb and a one-row composite): its list is checked against the catalog.
import postgres from "postgres";
import { afterAll, expect, it } from "vitest";
import { SCALAR_FUNCTIONS } from "../src/rpc/supabase.ts";
import { freshDatabase } from "./support/db.ts";

let sql: postgres.Sql;
afterAll(() => sql?.end({ timeout: 5 }));

it("SCALAR_FUNCTIONS lists exactly the public functions of the schema that return one base value", async () => {
  sql = postgres(await freshDatabase(), { max: 1, onnotice: () => {} });
  const rows = await sql`select p.proname from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
    where n.nspname = 'taskwarden' and p.proname !~ '^_' and not p.proretset and t.typtype <> 'c'
    order by p.proname`;
  expect([...SCALAR_FUNCTIONS].sort()).toEqual(rows.map((r) => r.proname));
});
