// `migrate` against a real PostgreSQL, shown by states, not by chance:
// - Two runs at once (as when pods start together, each migrating in its initContainer, or a
//   manual run overlaps) take turns on the advisory lock. The test holds that lock itself,
//   starts both runs, sees both waiting for it in pg_locks, then lets go: one run applies
//   every migration, the other applies none.
// - An instance started on a database without the schema stays unready (503 "starting") while
//   it waits for the schema, and becomes ready once `migrate` has run.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { freePort, releasePorts } from "../../../local/net.ts";
import { REPO_ROOT } from "../../../local/topology.ts";
import { listMigrations, MIGRATION_LOCK_KEY, migrate, pendingMigrations } from "../../src/db/migrate.ts";
import { createLogger } from "../../src/logger.ts";
import { Client, jsonOf, startStack, stopStack, type Topology, waitFor } from "./support.ts";

const MAIN = join(REPO_ROOT, "app", "src", "main.ts");
const silent = createLogger({ level: "silent", instance: "migrations-test" });

describe("migrations", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let pool: pg.Pool;

  before(async () => {
    stack = await startStack("migrate", { instances: 1 });
    pool = new pg.Pool({ connectionString: stack.databaseUrl, max: 4 });
  });

  after(async () => {
    await pool?.end();
    await stopStack(stack);
  });

  async function dropSchema(): Promise<void> {
    await pool.query("drop table if exists items, users, schema_migrations cascade");
    assert.deepEqual(
      await pendingMigrations(pool),
      (await listMigrations()).map((m) => m.version),
      "an empty database lacks every migration",
    );
  }

  /** Sessions waiting for the migration lock, as PostgreSQL reports them. */
  async function waitingForLock(): Promise<number> {
    const { rows } = await pool.query<{ waiting: number }>(
      `select count(*)::int as waiting from pg_locks
        where locktype = 'advisory' and not granted and objsubid = 1
          and (classid::bigint << 32) + objid::bigint = $1::bigint`,
      [MIGRATION_LOCK_KEY],
    );
    return rows[0]?.waiting ?? 0;
  }

  test("two runs at once wait for the lock, then one applies every migration and the other none", async () => {
    await dropSchema();
    const known = (await listMigrations()).map((m) => m.version);
    const holder = await pool.connect();
    let runs: Promise<string[]>[] = [];
    try {
      await holder.query("select pg_advisory_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
      runs = [migrate(pool, silent), migrate(pool, silent)];
      for (const run of runs) run.catch(() => undefined);
      await waitFor("both runs waiting for the migration lock", async () => (await waitingForLock()) === 2, 20_000);
      assert.deepEqual(await pendingMigrations(pool), known, "nothing applied while the lock is held");
    } finally {
      await holder.query("select pg_advisory_unlock($1::bigint)", [MIGRATION_LOCK_KEY]);
      holder.release();
    }
    const applied = await Promise.all(runs);
    console.log(`two runs held at the lock, then released: applied ${JSON.stringify(applied)}`);
    assert.deepEqual(
      applied.map((a) => a.length).sort(),
      [0, known.length],
      "one run applied every migration, the other none",
    );
    assert.deepEqual(applied.flat(), known, "in order, each once");
    const { rows } = await pool.query<{ version: string }>("select version from schema_migrations order by version");
    assert.deepEqual(
      rows.map((r) => r.version),
      known,
    );
    assert.deepEqual(await migrate(pool, silent), [], "a later run applies nothing");
    assert.equal(await waitingForLock(), 0);
  });

  test("an instance stays unready while the schema is missing, and is ready once migrate has run", async () => {
    assert.ok(stack);
    await dropSchema();
    const port = await freePort();
    const env = { ...stack.appEnv(0), PORT: String(port), INSTANCE_NAME: "before-schema", LOG_LEVEL: "warn" };
    const child = spawn(process.execPath, [MAIN], { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const client = new Client(`http://127.0.0.1:${port}`);
    try {
      await waitFor(
        "the instance waiting for the schema",
        async () => output.includes("waiting for the database schema"),
        30_000,
      );
      const unready = await client.get("/readyz");
      assert.equal(unready.status, 503, unready.text);
      assert.equal((jsonOf(unready) as { status: string }).status, "starting");
      assert.equal((await client.get("/livez")).status, 200, "alive while it waits");

      assert.equal((await migrate(pool, silent)).length, (await listMigrations()).length);
      await waitFor(
        "the instance ready after migrate",
        async () => (await client.get("/readyz")).status === 200,
        30_000,
      );
    } finally {
      client.close();
      child.kill("SIGTERM");
      await exited;
      releasePorts([port]);
    }
    assert.match(output, /"msg":"not ready: waiting for the database schema \(run `migrate`\)"/);
  });
});
