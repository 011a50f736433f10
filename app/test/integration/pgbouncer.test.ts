// The app behind PgBouncer in transaction mode (issue 17): the local stack with PGBOUNCER=1
// (Debian's pgbouncer, local/pgbouncer.ts) between 2 app instances and the PostgreSQL primary
// and replica; migrations went to the primary directly (DATABASE_MIGRATE_URL).
// - the wiring: the app's URLs lead to PgBouncer, which refuses the statement_timeout startup
//   parameter the app sends to PostgreSQL directly, and sets the timeout itself;
// - read-your-writes with replay paused on the replica, through PgBouncer;
// - a few thousand rows imported (COPY) and exported (a cursor, in its transaction) through it,
//   while other requests share its server connections;
// - the replica-lag poller: the replica stopped, reads move to the primary, and back;
// - 2,000 concurrent client connections (raw pg clients) on at most 20 server connections,
//   counted on the PostgreSQL side in pg_stat_activity;
// - named prepared statements (PG_PREPARED_STATEMENTS): with them on, PgBouncer 1.18 sends a
//   later transaction to a server connection that lacks the statement, and the query fails;
//   off (the default), the same sequence works; on, straight to PostgreSQL, they work.
//
// Run it alone: node --test app/test/integration/pgbouncer.test.ts

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { loadConfig } from "../../src/config.ts";
import { createDatabase, type Database, statementName } from "../../src/db/pools.ts";
import { createLogger } from "../../src/logger.ts";
import { createMetrics } from "../../src/metrics.ts";
import {
  Client,
  countBy,
  jsonOf,
  mapLimit,
  type Reply,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

const CLIENTS = 2000;
const SERVER_CONNECTIONS_MAX = 20;
const ROWS = 3000;
const WRITES = 20;

let stack: Topology | undefined;
let urls: { primary: string; replicas: string[] };

before(async () => {
  stack = await startStack("pgbouncer", {
    instances: 2,
    pgbouncer: true,
    // The replica stays in the read rotation while its replay is paused: only a reader's own
    // write position, or the replica being down, sends reads to the primary.
    appEnv: { REPLICA_MAX_LAG_MS: "600000" },
  });
  urls = stack.pgbouncerUrls ?? assert.fail("the stack runs no PgBouncer");
});

after(async () => {
  await stopStack(stack);
});

/** Runs one of PgBouncer's SHOW commands on its admin database, as the app role (stats_users). */
async function pgbouncerShow(what: string): Promise<Record<string, unknown>[]> {
  const admin = new pg.Client({ connectionString: urls.primary.replace(/\/nodescale$/, "/pgbouncer") });
  await admin.connect();
  try {
    return (await admin.query(`SHOW ${what}`)).rows;
  } finally {
    await admin.end();
  }
}

/** Server connections of the app role on the primary, as PostgreSQL reports them. */
const SERVER_COUNT = `select count(*)::int as n from pg_stat_activity
   where usename = 'nodescale' and backend_type = 'client backend'`;

test("the app's URLs lead to PgBouncer, which sets the statement timeout itself", async () => {
  assert.ok(stack);
  const env = stack.appEnv(0);
  assert.equal(env.DATABASE_URL, urls.primary);
  assert.equal(env.DATABASE_REPLICA_URLS, urls.replicas.join(","));
  assert.equal(env.DATABASE_MIGRATE_URL, stack.databaseUrl, "migrations go to the primary itself");
  assert.equal(env.PG_TRANSACTION_POOLING, "on");
  assert.equal(await stack.query("primary", "select to_regclass('items') is not null"), "t", "migrated");

  // What the app sends to PostgreSQL directly is refused here: hence PG_TRANSACTION_POOLING.
  const withTimeout = new pg.Client({ connectionString: urls.primary, statement_timeout: 1000 });
  await assert.rejects(withTimeout.connect(), /unsupported startup parameter: statement_timeout/);
  await withTimeout.end().catch(() => undefined);

  for (const url of [urls.primary, ...urls.replicas]) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      assert.equal((await client.query("show statement_timeout")).rows[0]?.statement_timeout, "15s");
    } finally {
      await client.end();
    }
  }
  // The instances' pools are PgBouncer's clients, on both databases.
  const web = new Client(stack.lbUrl);
  try {
    assert.equal((await web.get("/readyz")).status, 200);
  } finally {
    web.close();
  }
  const pools = (await pgbouncerShow("POOLS")).map((p) => `${p.database}/${p.user}`);
  assert.ok(pools.includes("nodescale/nodescale"), JSON.stringify(pools));
  assert.ok(pools.includes("nodescale_replica/nodescale"), JSON.stringify(pools));
});

test(`read-your-writes through PgBouncer: ${WRITES}/${WRITES} own writes read back with replay paused`, {
  timeout: 90_000,
}, async () => {
  assert.ok(stack);
  const s = stack;
  const seeder = new Client(s.lbUrl);
  const writer = new Client(s.lbUrl);
  const anonymous = new Client(s.lbUrl);
  const replicaAdmin = new pg.Client({ connectionString: s.adminUrl("replica") });
  await replicaAdmin.connect();
  try {
    await registerAndLogin(seeder, "seeder");
    const seeded = await seeder.post("/api/items", { title: "seeded" });
    assert.equal(seeded.status, 201, seeded.text);
    const seededId = (jsonOf(seeded) as { id: number }).id;
    await waitFor("anonymous reads served by the replica", async () => {
      const read = await anonymous.get(`/api/items/${seededId}`);
      return read.status === 200 && read.dbRoute === "replica";
    });
    await registerAndLogin(writer, "writer");
    await replicaAdmin.query("select pg_wal_replay_pause()");

    const own: { route: string; match: boolean; onReplica: boolean }[] = [];
    const others: Reply[] = [];
    for (let i = 0; i < WRITES; i++) {
      const title = `through pgbouncer ${i} ${Date.now()}`;
      const created = await writer.post("/api/items", { title });
      assert.equal(created.status, 201, created.text);
      const { id } = jsonOf(created) as { id: number };
      const read = await writer.get(`/api/items/${id}`);
      own.push({
        route: read.dbRoute ?? "(none)",
        match: read.status === 200 && (jsonOf(read) as { title?: string }).title === title,
        onReplica: (await s.query("replica", `select count(*) from items where id = ${id}`)) === "1",
      });
      others.push(await anonymous.get(`/api/items/${seededId}`));
    }
    console.log(
      `writer: ${own.filter((r) => r.match).length}/${WRITES} read back, routes ${JSON.stringify(countBy(own, (r) => r.route))}; ` +
        `others: ${JSON.stringify(countBy(others, (r) => `${r.status} ${r.dbRoute}`))}`,
    );
    assert.equal(own.filter((r) => r.onReplica).length, 0, "replay is paused: no write reached the replica");
    assert.equal(own.filter((r) => r.match).length, WRITES, "every own write reads back at once");
    assert.deepEqual(
      countBy(own, (r) => r.route),
      { primary: WRITES },
    );
    assert.deepEqual(
      countBy(others, (r) => `${r.status} ${r.dbRoute}`),
      { "200 replica": WRITES },
    );
  } finally {
    await replicaAdmin.query("select pg_wal_replay_resume()").catch(() => undefined);
    await replicaAdmin.end();
    for (const c of [seeder, writer, anonymous]) c.close();
  }
});

test(`${ROWS} rows imported and exported through PgBouncer while other requests share it`, {
  timeout: 120_000,
}, async () => {
  assert.ok(stack);
  const s = stack;
  const owner = new Client(s.lbUrl);
  const reader = new Client(s.lbUrl, { maxSockets: 8 });
  try {
    const user = await registerAndLogin(owner, "bulk");
    const titles = Array.from({ length: ROWS }, (_, i) => `bulk ${i} ${user.id}`);
    const body = titles.map((title, i) => JSON.stringify({ title, body: `row\t${i}\n` })).join("\n");
    const imported = await owner.request("/api/items/import", {
      method: "POST",
      body: `${body}\n`,
      headers: { "content-type": "application/x-ndjson" },
      timeoutMs: 60_000,
    });
    assert.equal(imported.status, 201, imported.text);
    assert.deepEqual(jsonOf(imported), { imported: ROWS });

    // Point reads meanwhile take PgBouncer's server connections between the export's batches.
    const first = (jsonOf(await owner.get("/api/items?mine=true&limit=1")) as { items: { id: number }[] }).items[0];
    assert.ok(first);
    let stop = false;
    const background = (async () => {
      const statuses: number[] = [];
      while (!stop) statuses.push((await reader.get(`/api/items/${first.id}`)).status);
      return statuses;
    })();
    const exports = await Promise.all([
      owner.get("/api/items/export?mine=true", { timeoutMs: 60_000 }),
      owner.get("/api/items/export?mine=true", { timeoutMs: 60_000 }),
    ]);
    stop = true;
    const statuses = await background;
    for (const exported of exports) {
      assert.equal(exported.status, 200, exported.text.slice(0, 500));
      const items = exported.text
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { id: number; title: string; body: string; ownerId: number });
      console.log(`export: ${items.length} rows via ${exported.dbRoute}; point reads meanwhile: ${statuses.length}`);
      assert.deepEqual(
        items.map((item) => item.title),
        titles,
        "every row, in order, once",
      );
      assert.ok(items.every((item, i) => item.ownerId === user.id && item.body === `row\t${i}\n`));
    }
    assert.ok(statuses.length > 0);
    assert.deepEqual(countBy(statuses, String), { 200: statuses.length });

    // Anyone's export reads from the replica (through PgBouncer too) once it has the rows.
    const anonymous = new Client(s.lbUrl);
    try {
      const last = await s.query("primary", `select max(id) from items where owner_id = ${user.id}`);
      await waitFor("the import on the replica", async () => {
        return (await s.query("replica", `select count(*) from items where id = ${last}`)) === "1";
      });
      const exported = await anonymous.get("/api/items/export", { timeoutMs: 60_000 });
      assert.equal(exported.status, 200, exported.text.slice(0, 500));
      assert.equal(exported.dbRoute, "replica");
      const mine = exported.text
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { title: string; ownerId: number })
        .filter((item) => item.ownerId === user.id);
      assert.deepEqual(
        mine.map((item) => item.title),
        titles,
      );
    } finally {
      anonymous.close();
    }
  } finally {
    owner.close();
    reader.close();
  }
});

test("the replica-lag poller through PgBouncer: replica stopped, reads move to the primary, and back", {
  timeout: 90_000,
}, async () => {
  assert.ok(stack);
  const s = stack;
  const seeder = new Client(s.lbUrl);
  const anonymous = new Client(s.lbUrl);
  try {
    await registerAndLogin(seeder, "lag");
    const created = await seeder.post("/api/items", { title: "for the poller" });
    const { id } = jsonOf(created) as { id: number };
    await waitFor(
      "reads from the replica",
      async () => (await anonymous.get(`/api/items/${id}`)).dbRoute === "replica",
    );

    await s.stopReplica();
    await waitFor("reads moved to the primary", async () => {
      const read = await anonymous.get(`/api/items/${id}`);
      return read.status === 200 && read.dbRoute === "primary";
    });
    const meanwhile = await mapLimit(Array.from({ length: 20 }), 4, () => anonymous.get(`/api/items/${id}`));
    assert.deepEqual(
      countBy(meanwhile, (r) => `${r.status} ${r.dbRoute}`),
      { "200 primary": 20 },
    );

    await s.startReplica();
    await waitFor(
      "reads back on the replica",
      async () => (await anonymous.get(`/api/items/${id}`)).dbRoute === "replica",
      30_000,
    );
  } finally {
    seeder.close();
    anonymous.close();
  }
});

test(`${CLIENTS} concurrent client connections on at most ${SERVER_CONNECTIONS_MAX} server connections`, {
  timeout: 180_000,
}, async () => {
  assert.ok(stack);
  const s = stack;
  const admin = new pg.Client({ connectionString: s.adminUrl("primary") });
  await admin.connect();
  const clients: pg.Client[] = [];
  try {
    const maxConnections = Number((await admin.query("show max_connections")).rows[0]?.max_connections);
    assert.ok(maxConnections < CLIENTS, `PostgreSQL alone admits ${maxConnections}`);

    await mapLimit(Array.from({ length: CLIENTS }), 100, async () => {
      const client = new pg.Client({ connectionString: urls.primary });
      client.on("error", () => undefined);
      await client.connect();
      clients.push(client);
    });
    const shownClients = (await pgbouncerShow("CLIENTS")).filter((c) => c.database === "nodescale").length;

    // Sample both sides while every client runs a query at once.
    const samples: { server: number; waiting: number }[] = [];
    let running = true;
    const sampler = (async () => {
      while (running) {
        const server = (await admin.query(SERVER_COUNT)).rows[0]?.n as number;
        const pool = (await pgbouncerShow("POOLS")).find((p) => p.database === "nodescale");
        samples.push({ server, waiting: Number(pool?.cl_waiting ?? 0) });
      }
    })();
    const results = await Promise.allSettled(
      clients.map((client, i) => client.query("select $1::int as i, pg_sleep(0.02)", [i])),
    );
    running = false;
    await sampler;
    const served = results.filter((r, i) => r.status === "fulfilled" && r.value.rows[0]?.i === i).length;
    const failed = results.filter((r) => r.status === "rejected");
    const peakServer = Math.max(...samples.map((x) => x.server));
    const peakWaiting = Math.max(...samples.map((x) => x.waiting));
    const afterwards = (await admin.query(SERVER_COUNT)).rows[0]?.n as number;
    console.log(
      `${CLIENTS} clients connected (PgBouncer lists ${shownClients}); ${served} queries served, ${failed.length} failed; ` +
        `server connections in pg_stat_activity: peak ${peakServer} over ${samples.length} samples, ${afterwards} after; ` +
        `peak clients waiting in PgBouncer: ${peakWaiting}; PostgreSQL max_connections ${maxConnections}`,
    );
    assert.equal(failed.length, 0, String((failed[0] as PromiseRejectedResult | undefined)?.reason));
    assert.equal(served, CLIENTS);
    assert.ok(shownClients >= CLIENTS, `PgBouncer held ${shownClients} client connections at once`);
    assert.ok(samples.length > 0);
    assert.ok(peakServer <= SERVER_CONNECTIONS_MAX, `peak ${peakServer} server connections`);
    assert.ok(afterwards <= SERVER_CONNECTIONS_MAX);
    assert.ok(peakServer > 1, "PgBouncer ran the queries over several server connections");
    assert.ok(peakWaiting > 0, "more clients had queries at once than there were server connections");
  } finally {
    await Promise.allSettled(clients.map((client) => client.end()));
    await admin.end();
  }
});

/** The app's own pools (pools.ts), from the app's own configuration. */
function appDatabase(url: string, env: Record<string, string>): Database {
  const config = loadConfig({ DATABASE_URL: url, PG_POOL_MAX: "2", ...env }, "migrate");
  return createDatabase(config.database, createLogger({ level: "silent", instance: "test" }), createMetrics());
}

const PREPARED = "select count(*)::int as n from items where id > $1";

/**
 * Runs PREPARED on one pool client in a transaction, then holds the server connection that ran
 * it in another client's open transaction, and runs PREPARED on the first client again: behind
 * PgBouncer that must run on another server connection. The second result, or its error.
 */
async function againOnAnotherServer(db: Database): Promise<{ n: number } | Error> {
  const client = await db.primary.pool.connect();
  const holders: pg.Client[] = [];
  try {
    await client.query("begin");
    await client.query(PREPARED, [0]);
    const pid = (await client.query("select pg_backend_pid() as pid")).rows[0]?.pid as number;
    await client.query("commit");
    for (;;) {
      if (holders.length >= SERVER_CONNECTIONS_MAX) throw new Error(`server ${pid} was never handed out again`);
      const holder = new pg.Client({ connectionString: urls.primary });
      holders.push(holder);
      await holder.connect();
      await holder.query("begin");
      if ((await holder.query("select pg_backend_pid() as pid")).rows[0]?.pid === pid) break;
    }
    return await client.query(PREPARED, [0]).then(
      (r) => r.rows[0] as { n: number },
      (error: Error) => error,
    );
  } finally {
    for (const holder of holders) await holder.end().catch(() => undefined);
    client.release(true);
  }
}

test("PG_PREPARED_STATEMENTS=on fails through PgBouncer 1.18; off (the default) works", async () => {
  const on = appDatabase(urls.primary, {
    PG_TRANSACTION_POOLING: "on",
    DATABASE_MIGRATE_URL: urls.primary,
    PG_PREPARED_STATEMENTS: "on",
  });
  const off = appDatabase(urls.primary, { PG_TRANSACTION_POOLING: "on", DATABASE_MIGRATE_URL: urls.primary });
  try {
    const failed = await againOnAnotherServer(on);
    assert.ok(failed instanceof Error, `expected an error, got ${JSON.stringify(failed)}`);
    assert.equal((failed as Error & { code?: string }).code, "26000");
    assert.match(failed.message, new RegExp(`prepared statement "${statementName(PREPARED)}" does not exist`));

    const worked = await againOnAnotherServer(off);
    assert.ok(!(worked instanceof Error), String(worked));
    assert.equal(typeof worked.n, "number");
  } finally {
    await on.close();
    await off.close();
  }
});

test("PG_PREPARED_STATEMENTS=on straight to PostgreSQL: parsed once, kept on the connection", async () => {
  assert.ok(stack);
  const on = appDatabase(stack.databaseUrl, { PG_PREPARED_STATEMENTS: "on" });
  const client = await on.primary.pool.connect();
  try {
    const first = (await client.query(PREPARED, [0])).rows[0];
    const second = (await client.query(PREPARED, [0])).rows[0];
    assert.deepEqual(second, first);
    const { rows } = await client.query("select name, statement from pg_prepared_statements");
    assert.deepEqual(rows, [{ name: statementName(PREPARED), statement: PREPARED }]);
    // The statement timeout reaches the server as a startup parameter when no pooler is between.
    assert.equal((await client.query("show statement_timeout")).rows[0]?.statement_timeout, "15s");
  } finally {
    client.release();
    await on.close();
  }
});
