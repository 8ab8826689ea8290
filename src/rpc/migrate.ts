// Applies supabase/migrations/*.sql in order, recording each in the table the supabase CLI
// uses (supabase_migrations.schema_migrations), so `supabase db push` and this agree on what
// is applied. Works on a direct connection (node-postgres) and on PGlite.

import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { PGlite } from "@electric-sql/pglite";
import { encodeParam } from "./sql.ts";
import { PGliteTransport } from "./pglite.ts";
import { PostgresTransport } from "./postgres.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../supabase/migrations/", import.meta.url));

/** The CLI's file name rule: `<version>_<name>.sql`, version all digits. */
const MIGRATION_FILE = /^([0-9]+)_(.*)\.sql$/;

export interface Migration {
  version: string;
  name: string;
  path: string;
}

export interface MigrateResult {
  applied: Migration[];
  /** Versions that were already recorded (by this tool or the supabase CLI). */
  alreadyApplied: string[];
  /**
   * The server's NOTICEs while applying, by migration: what a migration skipped and why (no
   * pg_cron here, say), which a person has to act on.
   */
  notices: MigrationNotice[];
}

export interface MigrationNotice {
  version: string;
  message: string;
}

export interface MigrateOptions {
  dir?: string;
  /** Called after each applied migration. */
  onApplied?: (m: Migration, ms: number) => void;
  /** Called with each NOTICE a migration raises, as it arrives. */
  onNotice?: (notice: MigrationNotice) => void;
}

export type MigrationTarget = PGlite | PostgresTransport | PGliteTransport;

/** One session: the advisory lock and explicit BEGIN/COMMIT must all run on the same connection. */
interface Session {
  /** Runs a whole file; `onNotice` gets the NOTICEs it raises. */
  exec(text: string, onNotice?: (message: string) => void): Promise<void>;
  query(text: string, params?: (string | null)[]): Promise<Record<string, unknown>[]>;
  release(): Promise<void>;
}

export async function listMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => MIGRATION_FILE.test(f)).sort();
  return files.map((f) => {
    const [, version, name] = MIGRATION_FILE.exec(f)!;
    return { version, name, path: `${dir.replace(/\/$/, "")}/${f}` };
  });
}

// The supabase CLI's own definition (it adds later columns with ADD COLUMN IF NOT EXISTS).
const HISTORY_SQL = `
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key,
  statements text[],
  name text
)`;

export async function migrate(target: MigrationTarget, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = await listMigrations(options.dir);
  const session = await openSession(target);
  try {
    // Two processes starting at once must not both apply the same file.
    await session.query("select pg_advisory_lock(hashtext('taskwarden.migrate'))");
    try {
      await session.exec(HISTORY_SQL);
      const done = new Set(
        (await session.query("select version from supabase_migrations.schema_migrations")).map((r) => String(r.version)),
      );
      const applied: Migration[] = [];
      const notices: MigrationNotice[] = [];
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        const sql = await readFile(m.path, "utf8");
        const started = performance.now();
        await session.exec("begin");
        try {
          await session.exec(sql, (message) => {
            const notice = { version: m.version, message };
            notices.push(notice);
            options.onNotice?.(notice);
          });
          await session.query(
            "insert into supabase_migrations.schema_migrations (version, statements, name) values ($1::text, $2::text::text[], $3::text)",
            [m.version, encodeParam([sql], "text[]"), m.name],
          );
          await session.exec("commit");
        } catch (err) {
          await session.exec("rollback").catch(() => {});
          const reason = err instanceof Error ? err.message : String(err);
          throw new Error(`migration ${m.version}_${m.name}.sql failed: ${reason}`, { cause: err });
        }
        applied.push(m);
        options.onApplied?.(m, performance.now() - started);
      }
      return { applied, alreadyApplied: [...done].sort(), notices };
    } finally {
      await session.query("select pg_advisory_unlock(hashtext('taskwarden.migrate'))").catch(() => {});
    }
  } finally {
    await session.release();
  }
}

async function openSession(target: MigrationTarget): Promise<Session> {
  if (target instanceof PGliteTransport) return pgliteSession(target.db);
  if (target instanceof PostgresTransport) return postgresSession(target);
  return pgliteSession(target);
}

function pgliteSession(db: PGlite): Session {
  return {
    exec: async (text, onNotice) => {
      await db.exec(text, onNotice ? { onNotice: (n) => onNotice(n.message ?? "") } : undefined);
    },
    query: async (text, params = []) => (await db.query<Record<string, unknown>>(text, params)).rows,
    release: async () => {},
  };
}

async function postgresSession(transport: PostgresTransport): Promise<Session> {
  const client = await transport.pool.connect();
  return {
    // No parameters: the simple protocol, which runs a whole multi-statement file.
    exec: async (text, onNotice) => {
      const listener = (n: { message?: string }) => onNotice?.(n.message ?? "");
      client.on("notice", listener);
      try {
        await client.query(text);
      } finally {
        client.off("notice", listener);
      }
    },
    query: async (text, params = []) => (await client.query(text, params)).rows as Record<string, unknown>[],
    release: async () => client.release(),
  };
}
