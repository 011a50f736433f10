// Read-your-writes as a per-user watermark, and the faults around it (issue 15, items 1-4, 6
// and 8). WAL replay on the replica is paused (pg_wal_replay_pause) whenever a test needs the
// replica to lack a write for certain; REPLICA_MAX_LAG_MS is far above the file's length, so
// the replica stays in the read rotation and only the watermark decides where a read goes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { createWatermarks, watermarkKey } from "../../src/db/watermarks.ts";
import { createMetrics } from "../../src/metrics.ts";
import { LSN_BOUNDARY_PAIRS } from "../lsn-pairs.ts";
import { Client, jsonOf, registerAndLogin, startStack, stopStack, type Topology, waitFor } from "./support.ts";

let stack: Topology | undefined;
let replicaAdmin: pg.Client | undefined;

before(async () => {
  stack = await startStack("ryw-user", {
    instances: 2,
    // A short statement timeout for item 8; long enough for every other query here.
    appEnv: { REPLICA_MAX_LAG_MS: "600000", PG_STATEMENT_TIMEOUT_MS: "1000" },
  });
  replicaAdmin = new pg.Client({ connectionString: stack.adminUrl("replica") });
  await replicaAdmin.connect();
});

after(async () => {
  await replicaAdmin?.query("select pg_wal_replay_resume()").catch(() => undefined);
  await replicaAdmin?.end();
  await stopStack(stack);
});

function started(): { s: Topology; admin: pg.Client } {
  assert.ok(stack && replicaAdmin, "the stack started");
  return { s: stack, admin: replicaAdmin };
}

/** Replay paused for the duration of `body`, with an item already on the replica to compare against. */
async function withReplayPaused<T>(body: () => Promise<T>): Promise<T> {
  const { admin } = started();
  await admin.query("select pg_wal_replay_pause()");
  try {
    return await body();
  } finally {
    await admin.query("select pg_wal_replay_resume()");
  }
}

async function createItem(client: Client, title: string): Promise<number> {
  const reply = await client.post("/api/items", { title });
  assert.equal(reply.status, 201, `POST /api/items: ${reply.status} ${reply.text}`);
  return (jsonOf(reply) as { id: number }).id;
}

async function metricValue(instanceUrl: string, line: RegExp): Promise<number | undefined> {
  const text = (await new Client(instanceUrl).get("/metrics")).text;
  const match = text.split("\n").find((l) => line.test(l));
  return match === undefined ? undefined : Number(match.split(" ").at(-1));
}

describe("read-your-writes per user", { timeout: 120_000 }, () => {
  test("item 1: the watermark only rises, so the older of two concurrent writes never lowers it", async () => {
    const { s } = started();
    const redis = new Redis(s.redisUrl, { lazyConnect: true });
    await redis.connect();
    try {
      const watermarks = createWatermarks(redis, { ttlMs: 60_000 }, createMetrics());
      const user = 900_000_001;
      // The newer write's position lands first; the older one's arrives last, as two writes
      // from one user finishing on two instances can. Positions across a hex-width boundary.
      await watermarks.raise(user, "1/0");
      await watermarks.raise(user, "0/FFFFFFFF");
      assert.deepEqual(await watermarks.need(user), { kind: "after", lsn: "1/0" });
      await watermarks.raise(user, "1/10");
      assert.deepEqual(await watermarks.need(user), { kind: "after", lsn: "1/10" });
      assert.ok((await redis.pttl(watermarkKey(user))) > 0, "the watermark expires");
      assert.deepEqual(await watermarks.need(user + 1), { kind: "any" }, "a user who never wrote");
      await assert.rejects(watermarks.raise(user, "1/0;"), /not a WAL position/);
      // The script orders positions by number, not text, across every width change.
      for (const [n, [behind, ahead]] of LSN_BOUNDARY_PAIRS.entries()) {
        const other = user + 10 + n;
        await watermarks.raise(other, ahead);
        await watermarks.raise(other, behind);
        assert.deepEqual(await watermarks.need(other), { kind: "after", lsn: ahead }, `${behind} after ${ahead}`);
        await watermarks.raise(other + 100, behind);
        await watermarks.raise(other + 100, ahead);
        assert.deepEqual(await watermarks.need(other + 100), { kind: "after", lsn: ahead }, `${ahead} after ${behind}`);
      }
    } finally {
      redis.disconnect();
    }
  });

  test("item 1: two sessions of one user writing at once on two instances read back every write", async () => {
    const { s } = started();
    const phone = new Client(s.instances[0]?.url as string);
    const account = await registerAndLogin(phone, "twowriters");
    const laptop = new Client(s.instances[1]?.url as string);
    const login = await laptop.post("/api/auth/login", { username: account.username, password: account.password });
    assert.equal(login.status, 200, login.text);
    try {
      await withReplayPaused(async () => {
        for (let round = 0; round < 10; round++) {
          const ids = await Promise.all([createItem(phone, `phone ${round}`), createItem(laptop, `laptop ${round}`)]);
          for (const client of [phone, laptop]) {
            for (const id of ids) {
              const read = await client.get(`/api/items/${id}`);
              assert.equal(read.status, 200, `round ${round}: item ${id} read back: ${read.status} ${read.text}`);
              assert.equal(read.dbRoute, "primary", "the paused replica lacks it");
            }
          }
        }
      });
    } finally {
      phone.close();
      laptop.close();
    }
  });

  test("item 2: a write on one device is read back at once on another, and after a new login", async () => {
    const { s } = started();
    const phone = new Client(s.lbUrl);
    const account = await registerAndLogin(phone, "devices");
    const laptop = new Client(s.lbUrl);
    const login = await laptop.post("/api/auth/login", { username: account.username, password: account.password });
    assert.equal(login.status, 200, login.text);
    try {
      await withReplayPaused(async () => {
        const id = await createItem(phone, "written on the phone");
        const onLaptop = await laptop.get(`/api/items/${id}`);
        assert.equal(onLaptop.status, 200, `the laptop reads the phone's write: ${onLaptop.status} ${onLaptop.text}`);
        assert.equal(onLaptop.dbRoute, "primary");
        // Logging in again replaces the session; the position belongs to the user and stays.
        const again = await phone.post("/api/auth/login", { username: account.username, password: account.password });
        assert.equal(again.status, 200, again.text);
        const afterLogin = await phone.get(`/api/items/${id}`);
        assert.equal(afterLogin.status, 200, `read back after a new login: ${afterLogin.status} ${afterLogin.text}`);
      });
    } finally {
      phone.close();
      laptop.close();
    }
  });

  test("item 3: while Redis is down, a reader with a session reads from the primary", async () => {
    const { s } = started();
    const writer = new Client(s.lbUrl);
    await registerAndLogin(writer, "redisdown");
    const anonymous = new Client(s.lbUrl);
    try {
      await withReplayPaused(async () => {
        const id = await createItem(writer, "written before Redis went down");
        await s.stopRedis();
        try {
          const read = await writer.get(`/api/items/${id}`);
          assert.equal(read.status, 200, `own write read back with Redis down: ${read.status} ${read.text}`);
          assert.equal(read.dbRoute, "primary", "an unknown position means the primary");
          const list = await anonymous.get("/api/items?limit=1");
          assert.equal(list.status, 200, list.text);
          assert.equal(list.dbRoute, "replica", "a reader with no session still uses the replica");
        } finally {
          await s.startRedis();
        }
      });
    } finally {
      writer.close();
      anonymous.close();
    }
  });

  test("item 4: a committed write answers 201 when its position cannot be kept, and counts it", async () => {
    const { s } = started();
    const instanceUrl = s.instances[0]?.url as string;
    const writer = new Client(instanceUrl);
    await registerAndLogin(writer, "lostposition");
    const redis = new Redis(s.redisUrl, { lazyConnect: true });
    await redis.connect();
    const before = (await metricValue(instanceUrl, /^nodescale_read_your_writes_lost_total\{reason="redis"\}/)) ?? 0;
    try {
      // Sessions still load, but nothing can be written to Redis: neither a session save nor
      // the watermark's script.
      await redis.call("ACL", "SETUSER", "default", "-set", "-eval", "-evalsha", "-fcall");
      const title = `kept though its position was lost ${Date.now()}`;
      const reply = await writer.post("/api/items", { title });
      assert.equal(reply.status, 201, `a committed write is a success: ${reply.status} ${reply.text}`);
      await redis.call("ACL", "SETUSER", "default", "+@all");
      const rows = await s.query("primary", `select count(*) from items where title = '${title}'`);
      assert.equal(rows.trim(), "1", "written exactly once");
      const lost = await metricValue(instanceUrl, /^nodescale_read_your_writes_lost_total\{reason="redis"\}/);
      assert.equal(lost, before + 1, "the lost position is counted");
    } finally {
      await redis.call("ACL", "SETUSER", "default", "+@all").catch(() => undefined);
      redis.disconnect();
      writer.close();
    }
  });

  test("item 5: with synchronous_commit off, a write's position covers its commit record", async () => {
    const { s } = started();
    const writer = new Client(s.lbUrl);
    await registerAndLogin(writer, "asynccommit");
    const admin = new pg.Client({ connectionString: s.adminUrl("primary") });
    await admin.connect();
    try {
      // Commits return before their WAL is written, and the WAL writer waits as long as it may:
      // the written (and streamed) WAL stays short of each commit record for seconds.
      await admin.query("alter system set synchronous_commit = off");
      await admin.query("alter system set wal_writer_delay = '10s'");
      await admin.query("select pg_reload_conf()");
      await waitFor("the replica at the primary's flushed position", async () => {
        const flushed = (await admin.query("select pg_current_wal_flush_lsn()::text as l")).rows[0].l as string;
        const replayed = await s.query("replica", "select pg_last_wal_replay_lsn()::text");
        return replayed.trim() === flushed;
      });
      for (let i = 0; i < 10; i++) {
        const id = await createItem(writer, `async commit ${i}`);
        const read = await writer.get(`/api/items/${id}`);
        assert.equal(read.status, 200, `write ${i} read back at once: ${read.status} ${read.text}`);
      }
    } finally {
      await admin.query("alter system reset synchronous_commit");
      await admin.query("alter system reset wal_writer_delay");
      await admin.query("select pg_reload_conf()");
      await admin.end();
      writer.close();
    }
  });

  test("item 6: an id past 2^53 is refused, never rounded to another row's", async () => {
    const { s } = started();
    const reader = new Client(s.lbUrl);
    try {
      // 2^53 itself names a row; 2^53 + 1 rounds to it as a JavaScript number.
      await s.query(
        "primary",
        "insert into items (id, title, body) overriding system value values (9007199254740992, 'at 2^53', '')",
      );
      await waitFor(
        "the 2^53 row on the replica",
        async () => (await s.query("replica", "select count(*) from items where id = 9007199254740992")).trim() === "1",
      );
      const past = await reader.get("/api/items/9007199254740993");
      assert.equal(past.status, 400, `2^53 + 1: ${past.status} ${past.text}`);
      const pastAfter = await reader.get("/api/items?after=9007199254740993");
      assert.equal(pastAfter.status, 400, `after=2^53 + 1: ${pastAfter.status} ${pastAfter.text}`);
      const largestSafe = await reader.get(`/api/items/${Number.MAX_SAFE_INTEGER}`);
      assert.equal(largestSafe.status, 404, "the largest safe id is a valid id with no row");
    } finally {
      await s.query("primary", "delete from items where id = 9007199254740992");
      reader.close();
    }
  });

  test("item 8: a query that times out on the replica does not take the replica out of the rotation", async () => {
    const { s } = started();
    const instanceUrl = s.instances[0]?.url as string;
    const reader = new Client(instanceUrl);
    const upLine = /^nodescale_pg_replica_up\{replica="replica-1"\}/;
    await waitFor("the replica in the rotation", async () => (await metricValue(instanceUrl, upLine)) === 1);
    // An ACCESS EXCLUSIVE lock taken on the primary is replayed on the replica, where it makes
    // every read of items wait, past the statement timeout.
    const appDatabase = new URL(s.adminUrl("primary"));
    appDatabase.pathname = new URL(s.databaseUrl).pathname;
    const locker = new pg.Client({ connectionString: appDatabase.href });
    await locker.connect();
    try {
      await locker.query("begin");
      await locker.query("lock table items in access exclusive mode");
      await waitFor("the lock replayed on the replica", async () => {
        const held = await s.query(
          "replica",
          "select count(*) from pg_locks where relation = 'items'::regclass and mode = 'AccessExclusiveLock'",
        );
        return held.trim() !== "0";
      });
      const read = await reader.get("/api/items?limit=1");
      assert.equal(read.status, 503, `a timed-out read is an outage answer: ${read.status} ${read.text}`);
      assert.equal((jsonOf(read) as { error?: { code?: string } }).error?.code, "database_timeout");
      assert.equal(await metricValue(instanceUrl, upLine), 1, "the replica is still in the rotation");
    } finally {
      await locker.query("rollback").catch(() => undefined);
      await locker.end();
      reader.close();
    }
  });
});
