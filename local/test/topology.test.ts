// The local topology end to end: nginx spreads 1,000 requests over every instance, a row
// written on the primary shows up on the replica within 2 s, and stop() leaves no listener
// and no process behind.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
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

  test("a row written on the primary is readable on the replica within 2 s", async (t) => {
    assert.ok(stack);
    const marker = `row-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    await stack.query(
      "primary",
      "CREATE TABLE IF NOT EXISTS local_replication_check (id serial PRIMARY KEY, marker text NOT NULL)",
    );
    const written = Date.now();
    await stack.query("primary", `INSERT INTO local_replication_check (marker) VALUES ('${marker}')`);
    let seenAfter = -1;
    while (Date.now() - written < 2000) {
      const found = await stack
        .query("replica", `SELECT count(*) FROM local_replication_check WHERE marker = '${marker}'`)
        .catch(() => "0");
      if (found === "1") {
        seenAfter = Date.now() - written;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const inRecovery = await stack.query("replica", "SELECT pg_is_in_recovery()");
    t.diagnostic(`row visible on the replica ${seenAfter} ms after the write (replica in recovery: ${inRecovery})`);
    console.log(`measured: row visible on the replica ${seenAfter} ms after the write on the primary`);
    assert.equal(inRecovery, "t", "the replica is a standby (pg_is_in_recovery)");
    assert.ok(seenAfter >= 0, "the row reached the replica within 2 s");
  });

  test("stop() leaves no listener and no process behind", async (t) => {
    assert.ok(stack);
    const p = stack.ports;
    const ports = [p.lb, p.redis, p.pgPrimary, p.pgReplica, ...p.apps];
    const records = processRecords(stack);
    assert.equal(records.length, 4 + INSTANCES, "every component was running before stop()");
    const started = Date.now();
    await stack.stop();
    const ms = Date.now() - started;
    const left = await leftovers(ports, records);
    t.diagnostic(`stop() took ${ms} ms; checked ${ports.length} ports and ${records.length} processes`);
    console.log(
      `measured: stop() in ${ms} ms; ${ports.length} ports and ${records.length} process groups checked, left: ${left.length}`,
    );
    assert.deepEqual(left, [], "nothing of the stack is left running");
  });
});
