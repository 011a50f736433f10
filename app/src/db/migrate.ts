import { readdir, readFile } from "node:fs/promises";
import type pg from "pg";
import type { Logger } from "../logger.ts";

// Several pods may run `migrate` at the same moment (the chart runs it as an initContainer of
// every pod, and a manual run may overlap); a session-level advisory lock makes them take turns, and each migration is
// applied in its own transaction and recorded, so a second run applies nothing.
export const MIGRATION_LOCK_KEY = 7_302_115_001;

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

/** Migrations this build knows that the database has not applied (all of them on a new database). */
export async function pendingMigrations(pool: pg.Pool): Promise<string[]> {
  const known = (await listMigrations()).map((m) => m.version);
  const { rows: table } = await pool.query<{ found: boolean }>(
    "select to_regclass('schema_migrations') is not null as found",
  );
  const applied = new Set<string>();
  if (table[0]?.found) {
    const { rows } = await pool.query<{ version: string }>("select version from schema_migrations");
    for (const row of rows) applied.add(row.version);
  }
  return known.filter((version) => !applied.has(version));
}

/**
 * Resolves once the database has every migration this build knows. The chart migrates before
 * the app starts (an initContainer), but a process started any other way, or a migration run
 * by hand later, must not meet missing tables: it waits here, not ready, instead of answering
 * 500.
 */
export async function waitForSchema(pool: pg.Pool, log: Logger, retryMs = 1000): Promise<void> {
  let lastReport = 0;
  for (;;) {
    let pending: string[] | string;
    try {
      pending = await pendingMigrations(pool);
      if (pending.length === 0) return;
    } catch (error) {
      pending = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() - lastReport > 10_000) {
      log.warn({ pending }, "not ready: waiting for the database schema (run `migrate`)");
      lastReport = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}
