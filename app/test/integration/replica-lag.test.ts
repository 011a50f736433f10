// Lag-based skipping (REPLICA_MAX_LAG_MS): the replica applies WAL 3 s late
// (recovery_min_apply_delay) and the app tolerates 1 s. While a writer keeps the primary
// moving, the replica is further behind than the bound, so every instance takes it out of the
// read rotation (nodescale_pg_replica_up 0) and even reads with no session go to the primary,
// which has what the replica lacks. Once writes stop and the replica catches up, reads return
// to it. Without the lag check, those reads would be served stale by the replica.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, jsonOf, registerAndLogin, startStack, stopStack, type Topology, waitFor } from "./support.ts";

const APPLY_DELAY_MS = 3000;
const MAX_LAG_MS = 1000;

let stack: Topology | undefined;

before(async () => {
  stack = await startStack("lag", {
    instances: 2,
    replicaApplyDelayMs: APPLY_DELAY_MS,
    appEnv: { REPLICA_MAX_LAG_MS: String(MAX_LAG_MS), REPLICA_POLL_INTERVAL_MS: "100" },
  });
});

after(async () => {
  await stopStack(stack);
});

async function replicaUp(url: string): Promise<number> {
  const client = new Client(url);
  const metrics = await client.get("/metrics");
  client.close();
  const line = metrics.text.split("\n").find((l) => l.startsWith('nodescale_pg_replica_up{replica="replica-1"}'));
  return Number(line?.split(" ")[1]);
}

test(`a replica further behind than REPLICA_MAX_LAG_MS (${MAX_LAG_MS} ms) is skipped, then taken back`, {
  timeout: 120_000,
}, async () => {
  assert.ok(stack);
  const s = stack;
  const instances = s.instances;
  const writer = new Client(s.lbUrl);
  const readers = instances.map((i) => new Client(i.url));
  try {
    await registerAndLogin(writer, "lagwriter");
    const first = jsonOf(await writer.post("/api/items", { title: "before the lag" })) as { id: number };
    await waitFor(
      "the first item on the replica",
      async () => (await s.query("replica", `select count(*) from items where id = ${first.id}`)).trim() === "1",
    );
    for (const reader of readers)
      await waitFor("anonymous reads on the replica", async () => {
        return (await reader.get(`/api/items/${first.id}`)).dbRoute === "replica";
      });

    // A writer that keeps the primary ahead of the replica by the apply delay.
    let writing = true;
    let latest = first.id;
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        const created = await writer.post("/api/items", { title: `during the lag ${i}` });
        assert.equal(created.status, 201, created.text);
        latest = (jsonOf(created) as { id: number }).id;
      }
    })();
    try {
      for (const instance of instances)
        await waitFor(
          `${instance.name} takes the replica out`,
          async () => (await replicaUp(instance.url)) === 0,
          30_000,
        );
      // Every instance now reads from the primary, with no session, and sees what the replica lacks.
      const checks: string[] = [];
      for (const [n, reader] of readers.entries()) {
        for (let i = 0; i < 5; i++) {
          const id = latest;
          const read = await reader.get(`/api/items/${id}`);
          const onReplica = (await s.query("replica", `select count(*) from items where id = ${id}`)).trim();
          checks.push(`${instances[n]?.name} item ${id}: ${read.status} ${read.dbRoute} (on replica: ${onReplica})`);
          assert.equal(read.status, 200, `${checks.at(-1)}: ${read.text}`);
          assert.equal(read.dbRoute, "primary", checks.at(-1));
          assert.equal(onReplica, "0", `${checks.at(-1)}: the replica really lacks it`);
        }
      }
      console.log(checks.join("\n"));
    } finally {
      writing = false;
      await writes;
    }

    await waitFor(
      "the replica caught up",
      async () => (await s.query("replica", `select count(*) from items where id = ${latest}`)).trim() === "1",
      30_000,
    );
    for (const [n, reader] of readers.entries()) {
      await waitFor(
        `${instances[n]?.name} takes the replica back`,
        async () => (await replicaUp(instances[n]?.url ?? "")) === 1,
        30_000,
      );
      const read = await reader.get(`/api/items/${latest}`);
      assert.equal(read.status, 200);
      assert.equal(read.dbRoute, "replica", "reads return to the replica once it is within the bound");
    }
  } finally {
    writer.close();
    for (const r of readers) r.close();
  }
});
