// Readiness under a saturated PostgreSQL pool (issue 13, chart item 2): /readyz answers from
// what the background sample already knows. The instance gets one connection per pool and a
// one-minute connection wait; the test holds a table lock so that a registration keeps the
// primary pool's only connection and a second one queues behind it. /readyz must still answer
// 200, and answer while that queued request is still waiting (it took no place in the queue);
// its body reports the pool as busy. A probe that waited for a pool slot would not answer at
// all until the lock is released.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { Client, jsonOf, type Reply, startStack, stopStack, type Topology, waitFor } from "./support.ts";

type Readiness = { status: string; dependencies: { primary: string; redis: string; checkedAt: string | null } };

/** The value of one sample of a Prometheus gauge (`name{pool="primary"} 3`). */
function gauge(metrics: string, name: string, pool: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}{pool="${pool}"}`));
  return line === undefined ? Number.NaN : Number(line.split(" ")[1]);
}

describe("readiness with a saturated pool", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;

  before(async () => {
    stack = await startStack("readiness", {
      instances: 1,
      appEnv: { PG_POOL_MAX: "1", PG_CONNECT_TIMEOUT_MS: "60000" },
    });
  });

  after(async () => {
    await stopStack(stack);
  });

  test("/readyz answers 200 from the last sample while every pool connection is taken and requests queue", async () => {
    assert.ok(stack);
    const instance = stack.instances[0];
    assert.ok(instance);
    const client = new Client(instance.url, { maxSockets: 8 });
    const env = stack.appEnv(0);
    const blocker = new pg.Client({ connectionString: env.DATABASE_URL, password: env.PGPASSWORD });
    await blocker.connect();
    const pending: { reply?: Reply }[] = [];
    try {
      await blocker.query("begin");
      await blocker.query("lock table users in access exclusive mode");

      // The first registration takes the primary pool's only connection and waits on the lock;
      // the second waits for that connection.
      for (const name of ["first", "second"]) {
        const entry: { reply?: Reply } = {};
        pending.push(entry);
        void client
          .post("/api/auth/register", { username: `ready_${name}_${process.pid}`, password: "pw-0123456789ab" })
          .then((reply) => {
            entry.reply = reply;
          });
      }
      await waitFor("the primary pool is saturated (1 connection, none idle, requests waiting)", async () => {
        const metrics = (await client.get("/metrics")).text;
        return (
          gauge(metrics, "nodescale_pg_pool_connections", "primary") === 1 &&
          gauge(metrics, "nodescale_pg_pool_idle_connections", "primary") === 0 &&
          gauge(metrics, "nodescale_pg_pool_waiting_requests", "primary") >= 1
        );
      });

      const ready = await client.get("/readyz", { timeoutMs: 10_000 });
      assert.equal(
        ready.status,
        200,
        `GET /readyz with the pool saturated: ${ready.status} ${ready.error ?? ready.text}`,
      );
      assert.deepEqual(
        pending.map((p) => p.reply?.status),
        [undefined, undefined],
        "both registrations still wait for the pool: readiness answered without a pool connection",
      );

      // The next sample sees the saturated pool without queueing in it.
      await waitFor("/readyz reports the primary pool busy", async () => {
        const reply = await client.get("/readyz", { timeoutMs: 10_000 });
        assert.equal(reply.status, 200, `GET /readyz: ${reply.status} ${reply.error ?? reply.text}`);
        return (jsonOf(reply) as Readiness).dependencies.primary === "busy";
      });
      const metrics = (await client.get("/metrics")).text;
      assert.equal(gauge(metrics, "nodescale_pg_pool_idle_connections", "primary"), 0, "the pool is still saturated");
      assert.ok(
        pending.every((p) => p.reply === undefined),
        "the registrations are still waiting",
      );
    } finally {
      await blocker.query("commit").catch(() => undefined);
      await blocker.end();
    }

    await waitFor("both registrations finish once the lock is released", async () =>
      pending.every((p) => p.reply !== undefined),
    );
    assert.deepEqual(
      pending.map((p) => p.reply?.status),
      [201, 201],
      "the queued requests completed",
    );
    await waitFor("/readyz reports the primary up again", async () => {
      const body = jsonOf(await client.get("/readyz")) as Readiness;
      return body.dependencies.primary === "up";
    });
    client.close();
  });
});
