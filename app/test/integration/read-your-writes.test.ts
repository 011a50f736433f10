// Read-your-writes by WAL position, against a replica that applies WAL 2 s late
// (recovery_min_apply_delay): a user reads back each item they just wrote, 200 of 200, while
// other users' item reads keep going to the replica (at least 90%).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  Client,
  countBy,
  jsonOf,
  type Reply,
  registerAndLogin,
  sleep,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

const APPLY_DELAY_MS = 2000;
const WRITES = 200;
const SEEDED = 20;
const READERS = 4;
const MIN_REPLICA_SHARE = 0.9;

let stack: Topology | undefined;

before(async () => {
  stack = await startStack("ryw", { instances: 2, replicaApplyDelayMs: APPLY_DELAY_MS });
});

after(async () => {
  await stopStack(stack);
});

test(`a writer reads back ${WRITES}/${WRITES} own writes; others read from the lagging replica`, {
  timeout: 90_000,
}, async () => {
  assert.ok(stack);
  const s = stack;
  const seeder = new Client(s.lbUrl);
  const writer = new Client(s.lbUrl);
  const other = new Client(s.lbUrl);
  const anonymous = new Client(s.lbUrl);
  try {
    // Items other users will read: written by someone else, then given time to reach the replica.
    await registerAndLogin(seeder, "seeder");
    const seeded: number[] = [];
    for (let i = 0; i < SEEDED; i++) {
      const reply = await seeder.post("/api/items", { title: `seeded ${i}` });
      assert.equal(reply.status, 201, reply.text);
      seeded.push((jsonOf(reply) as { id: number }).id);
    }
    const lastSeeded = seeded.at(-1) as number;
    const replayMs = await waitFor(
      "seeded items on the replica",
      async () => (await s.query("replica", `select count(*) from items where id = ${lastSeeded}`)).trim() === "1",
    );
    console.log(`${SEEDED} seeded items reached the replica after ${replayMs} ms (apply delay ${APPLY_DELAY_MS} ms)`);
    await registerAndLogin(writer, "writer");
    await registerAndLogin(other, "other"); // logged in, but has written nothing

    // Other users read seeded items for as long as the writer runs.
    let writing = true;
    const otherReads: Reply[] = [];
    const readers = Array.from({ length: READERS }, async (_, r) => {
      const client = r % 2 === 0 ? anonymous : other;
      for (let i = 0; writing; i++) {
        const id = seeded[(r + i * READERS) % seeded.length] as number;
        const reply = i % 5 === 4 ? await client.get("/api/items?limit=5") : await client.get(`/api/items/${id}`);
        otherReads.push(reply);
        await sleep(2);
      }
    });

    const started = performance.now();
    const ownReads: { status: number; route: string; match: boolean }[] = [];
    let lastWritten = 0;
    try {
      for (let i = 0; i < WRITES; i++) {
        const title = `mine ${i} ${Date.now()}`;
        const created = await writer.post("/api/items", { title, body: `body ${i}` });
        assert.equal(created.status, 201, `POST /api/items: ${created.status} ${created.text}`);
        const { id } = jsonOf(created) as { id: number };
        lastWritten = id;
        const read = await writer.get(`/api/items/${id}`);
        const item = jsonOf(read) as { id?: number; title?: string } | undefined;
        ownReads.push({
          status: read.status,
          route: read.dbRoute ?? "(none)",
          match: read.status === 200 && item?.id === id && item.title === title,
        });
      }
    } finally {
      writing = false;
      await Promise.all(readers);
    }
    const ms = performance.now() - started;
    // The replica must really lag, or this test proves nothing: the last write is not there yet.
    const lastOnReplica = (await s.query("replica", `select count(*) from items where id = ${lastWritten}`)).trim();

    const ownOk = ownReads.filter((r) => r.match).length;
    const ownStatuses = countBy(ownReads, (r) => String(r.status));
    const ownRoutes = countBy(ownReads, (r) => r.route);
    const otherStatuses = countBy(otherReads, (r) => String(r.status));
    const otherRoutes = countBy(otherReads, (r) => r.dbRoute ?? "(none)");
    const replicaShare = (otherRoutes.replica ?? 0) / otherReads.length;
    console.log(
      `writer: ${ownOk}/${WRITES} read back at once in ${ms.toFixed(0)} ms; statuses ${JSON.stringify(ownStatuses)}, ` +
        `x-db-route ${JSON.stringify(ownRoutes)}; last write on the replica right after: ${lastOnReplica === "1" ? "yes" : "no"}`,
    );
    console.log(
      `other users: ${otherReads.length} item reads, statuses ${JSON.stringify(otherStatuses)}, ` +
        `x-db-route ${JSON.stringify(otherRoutes)} (replica ${(replicaShare * 100).toFixed(1)}%)`,
    );

    assert.equal(lastOnReplica, "0", "the replica lags (the writer's last item is not on it yet)");
    assert.equal(ownOk, WRITES, "every own write reads back at once, with its content");
    assert.deepEqual(otherStatuses, { 200: otherReads.length }, "other users' reads all succeed");
    assert.ok(otherReads.length >= 100, `enough reads by other users to judge (${otherReads.length})`);
    assert.ok(
      replicaShare >= MIN_REPLICA_SHARE,
      `at least ${MIN_REPLICA_SHARE * 100}% of other users' reads use the replica (got ${(replicaShare * 100).toFixed(1)}%)`,
    );
  } finally {
    for (const c of [seeder, writer, other, anonymous]) c.close();
  }
});
