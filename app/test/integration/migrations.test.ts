// `migrate` against a real PostgreSQL: several processes at once (as when pods start together,
// each running it in its initContainer, or a manual run overlaps) apply each migration
// exactly once, a second run applies nothing, and the app's schema wait sees what is missing.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { REPO_ROOT } from "../../../local/topology.ts";
import { listMigrations, pendingMigrations } from "../../src/db/migrate.ts";
import { startStack, stopStack, type Topology } from "./support.ts";

const run = promisify(execFile);
const MAIN = join(REPO_ROOT, "app", "src", "main.ts");

describe("migrations", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let pool: pg.Pool;

  before(async () => {
    stack = await startStack("migrate", { instances: 1 });
    pool = new pg.Pool({ connectionString: stack.databaseUrl, password: stack.appEnv(0).PGPASSWORD, max: 2 });
  });

  after(async () => {
    await pool?.end();
    await stopStack(stack);
  });

  test("four concurrent runs apply each migration once; the schema wait sees the gap and its end", async () => {
    assert.ok(stack);
    const known = (await listMigrations()).map((m) => m.version);
    assert.deepEqual(await pendingMigrations(pool), [], "the topology migrated at start");

    await stack.query("primary", "drop table if exists items, users, schema_migrations cascade");
    assert.deepEqual(await pendingMigrations(pool), known, "an empty database lacks every migration");

    const env = { ...stack.appEnv(0), LOG_LEVEL: "info" };
    const runs = await Promise.all(
      [1, 2, 3, 4].map(() => run(process.execPath, [MAIN, "migrate"], { env, timeout: 60_000 })),
    );
    const appliedPerRun = runs.map(({ stdout }) => {
      const line = stdout.split("\n").find((l) => l.includes('"applied"'));
      return (line ? (JSON.parse(line) as { applied: string[] }).applied : []).length;
    });
    console.log(`4 concurrent migrate runs applied ${JSON.stringify(appliedPerRun)} migrations`);
    assert.equal(
      appliedPerRun.reduce((a, b) => a + b, 0),
      known.length,
      "every migration applied exactly once across the runs",
    );
    const rows = (await stack.query("primary", "select version from schema_migrations order by version")).trim();
    assert.equal(rows, known.join("\n"));
    assert.deepEqual(await pendingMigrations(pool), []);
  });
});
