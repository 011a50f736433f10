import { readdir, readFile } from "node:fs/promises";
import type pg from "pg";
import type { Logger } from "../logger.ts";

// Several pods may run `migrate` at the same moment (a hook Job plus a manual run, or a
// rollout); a session-level advisory lock makes them take turns, and each migration is
// applied in its own transaction and recorded, so a second run applies nothing.
const MIGRATION_LOCK_KEY = 7_302_115_001;

const migrationsFolder = new URL("../../migrations/", import.meta.url);

export async function listMigrations(): Promise<{ version: string; sql: string }[]> {
  const files = (await readdir(migrationsFolder)).filter((file) => /^\d{3,}_[\w-]+\.sql$/.test(file)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: file.replace(/\.sql$/, ""),
      sql: await readFile(new URL(file, migrationsFolder), "utf8"),
    })),
  );
}

export async function migrate(pool: pg.Pool, log: Logger): Promise<string[]> {
  const migrations = await listMigrations();
  const client = await pool.connect();
  try {
    await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    await client.query(
      "create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())",
    );
    const done = new Set(
      (await client.query<{ version: string }>("select version from schema_migrations")).rows.map((r) => r.version),
    );
    const applied: string[] = [];
    for (const { version, sql } of migrations) {
      if (done.has(version)) continue;
      await client.query("begin");
      try {
        await client.query(sql);
        await client.query("insert into schema_migrations (version) values ($1)", [version]);
        await client.query("commit");
      } catch (error) {
        await client.query("rollback");
        throw error;
      }
      log.info({ version }, "migration applied");
      applied.push(version);
    }
    return applied;
  } finally {
    await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
}
