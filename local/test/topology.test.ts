// The local topology end to end: nginx spreads 1,000 requests over every instance, a row
// written on the primary shows up on the replica (a bounded wait; how fast is `make bench`'s
// business), and stop() leaves no listener and no process behind (on a stack of its own, so
// no test depends on running before or after it).

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { waitUntil } from "../net.ts";
import type { Topology } from "../topology.ts";
import { countBy, leftovers, processRecords, request, startTestStack, teardown } from "./helpers.ts";

const INSTANCES = 2;
const REQUESTS = 1000;

describe("local topology", { timeout: 180_000 }, () => {
  let stack: Topology | undefined;

  before(async () => {
    stack = await startTestStack("topology", { instances: INSTANCES });
  });

  after(async () => {
    await teardown(stack);
  });

  test(`${REQUESTS} requests through nginx reach every instance`, async (t) => {
    assert.ok(stack);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const started = Date.now();
    const replies = await Promise.all(
      Array.from({ length: REQUESTS }, () => request(`${stack?.lbUrl}/livez`, { agent })),
    );
    const ms = Date.now() - started;
    agent.destroy();
    const statuses = countBy(replies, (r) => String(r.status));
    const perInstance = countBy(replies, (r) => r.instance ?? "(none)");
    t.diagnostic(
      `${REQUESTS} requests in ${ms} ms; statuses ${JSON.stringify(statuses)}; per instance ${JSON.stringify(perInstance)}`,
    );
    console.log(
      `measured: ${REQUESTS} requests in ${ms} ms, statuses ${JSON.stringify(statuses)}, per instance ${JSON.stringify(perInstance)}`,
    );

    assert.deepEqual(statuses, { 200: REQUESTS }, "every request answered 200");
    const fairShare = REQUESTS / INSTANCES;
    for (const instance of stack.instances) {
      const served = perInstance[instance.name] ?? 0;
      assert.ok(
        served >= fairShare / 2,
        `${instance.name} served ${served} of ${REQUESTS}, less than half its fair share (${fairShare})`,
      );
    }
    assert.equal(
      Object.keys(perInstance).length,
      INSTANCES,
      `only the stack's instances answer: ${Object.keys(perInstance)}`,
    );
  });

  test("a row written on the primary reaches the streaming replica", async () => {
    assert.ok(stack);
    const s = stack;
    const marker = `row-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    await s.query(
      "primary",
      "CREATE TABLE IF NOT EXISTS local_replication_check (id serial PRIMARY KEY, marker text NOT NULL)",
    );
    await s.query("primary", `INSERT INTO local_replication_check (marker) VALUES ('${marker}')`);
    await waitUntil(
      "the row on the replica",
      async () =>
        (await s.query("replica", `SELECT count(*) FROM local_replication_check WHERE marker = '${marker}'`)) === "1",
      { timeoutMs: 30_000, intervalMs: 25 },
    );
    assert.equal(
      await s.query("replica", "SELECT pg_is_in_recovery()"),
      "t",
      "the replica is a standby (pg_is_in_recovery)",
    );
  });

  test("stop() leaves no listener and no process behind", async (t) => {
    const own = await startTestStack("topology-stop", { instances: INSTANCES });
    const p = own.ports;
    const ports = [p.lb, p.redis, p.pgPrimary, p.pgReplica, ...p.apps];
    const records = processRecords(own);
    assert.equal(records.length, 4 + INSTANCES, "every component was running before stop()");
    const started = Date.now();
    try {
      await own.stop();
    } finally {
      await teardown(own);
    }
    const ms = Date.now() - started;
    const left = await leftovers(ports, records);
    t.diagnostic(`stop() took ${ms} ms; checked ${ports.length} ports and ${records.length} processes`);
    console.log(
      `measured: stop() in ${ms} ms; ${ports.length} ports and ${records.length} process groups checked, left: ${left.length}`,
    );
    assert.deepEqual(left, [], "nothing of the stack is left running");
  });
});
