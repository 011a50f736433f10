// Read-your-writes by WAL position. The test pauses WAL replay on the replica
// (pg_wal_replay_pause), so that none of the writer's writes is on it, for certain and for as
// long as the test needs; REPLICA_MAX_LAG_MS is set far above the test's length, so the replica
// stays in the read rotation and only the session's own write position decides where its
// reads go:
// - a user reads back each item they just wrote, at once, with its content (the replica lacks
//   it: the read must go to the primary);
// - users who wrote nothing read from the replica meanwhile;
// - once the replica has replayed the writer's last write, the writer's reads go to the
//   replica again (the session is not pinned to the primary).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import {
  Client,
  countBy,
  jsonOf,
  type Reply,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

const WRITES = 50;
const SEEDED = 10;

let stack: Topology | undefined;

before(async () => {
  stack = await startStack("ryw", { instances: 2, appEnv: { REPLICA_MAX_LAG_MS: "600000" } });
});

after(async () => {
  await stopStack(stack);
});

test(`a writer reads back ${WRITES}/${WRITES} own writes at once; others read from the paused replica`, {
  timeout: 90_000,
}, async () => {
  assert.ok(stack);
  const s = stack;
  const seeder = new Client(s.lbUrl);
  const writer = new Client(s.lbUrl);
  const other = new Client(s.lbUrl);
  const anonymous = new Client(s.lbUrl);
  const replicaAdmin = new pg.Client({ connectionString: s.adminUrl("replica") });
  await replicaAdmin.connect();
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
    await waitFor(
      "seeded items on the replica",
      async () => (await s.query("replica", `select count(*) from items where id = ${lastSeeded}`)).trim() === "1",
    );
    await waitFor("anonymous reads served by the replica", async () => {
      return (await anonymous.get(`/api/items/${lastSeeded}`)).dbRoute === "replica";
    });
    await registerAndLogin(writer, "writer");
    await registerAndLogin(other, "other"); // logged in, but has written nothing
    await replicaAdmin.query("select pg_wal_replay_pause()");

    const ownReads: { status: number; route: string; match: boolean; onReplica: boolean }[] = [];
    const otherReads: Reply[] = [];
    let lastWritten = 0;
    for (let i = 0; i < WRITES; i++) {
      const title = `mine ${i} ${Date.now()}`;
      const created = await writer.post("/api/items", { title, body: `body ${i}` });
      assert.equal(created.status, 201, `POST /api/items: ${created.status} ${created.text}`);
      const { id } = jsonOf(created) as { id: number };
      lastWritten = id;
      const read = await writer.get(`/api/items/${id}`);
      const item = jsonOf(read) as { id?: number; title?: string } | undefined;
      const onReplica = (await s.query("replica", `select count(*) from items where id = ${id}`)).trim() === "1";
      ownReads.push({
        status: read.status,
        route: read.dbRoute ?? "(none)",
        match: read.status === 200 && item?.id === id && item.title === title,
        onReplica,
      });
      // Other users, between the writer's writes: a fixed number of reads, not a rate.
      const id2 = seeded[i % seeded.length] as number;
      otherReads.push(await (i % 2 === 0 ? anonymous : other).get(`/api/items/${id2}`));
      if (i % 5 === 4) otherReads.push(await other.get("/api/items?limit=5"));
    }

    const ownOk = ownReads.filter((r) => r.match).length;
    const lagging = ownReads.filter((r) => !r.onReplica).length;
    const ownRoutes = countBy(ownReads, (r) => r.route);
    const otherStatuses = countBy(otherReads, (r) => String(r.status));
    const otherRoutes = countBy(otherReads, (r) => r.dbRoute ?? "(none)");
    console.log(
      `writer: ${ownOk}/${WRITES} read back at once; x-db-route ${JSON.stringify(ownRoutes)}; ` +
        `${lagging}/${WRITES} not yet on the replica right after the read`,
    );
    console.log(
      `other users: ${otherReads.length} reads, statuses ${JSON.stringify(otherStatuses)}, x-db-route ${JSON.stringify(otherRoutes)}`,
    );

    assert.equal(lagging, WRITES, "replay is paused: no write reached the replica");
    assert.equal(ownOk, WRITES, "every own write reads back at once, with its content");
    assert.deepEqual(ownRoutes, { primary: WRITES }, "the replica lacked each write, so the primary served it");
    assert.deepEqual(otherStatuses, { 200: otherReads.length }, "other users' reads all succeed");
    assert.deepEqual(otherRoutes, { replica: otherReads.length }, "users who wrote nothing read from the replica");

    // Once the replica has the writer's last write, the writer's reads go back to it.
    await replicaAdmin.query("select pg_wal_replay_resume()");
    await waitFor(
      "the writer's last item on the replica",
      async () => (await s.query("replica", `select count(*) from items where id = ${lastWritten}`)).trim() === "1",
    );
    await waitFor("the writer's reads served by the replica again", async () => {
      const read = await writer.get(`/api/items/${lastWritten}`);
      return read.status === 200 && read.dbRoute === "replica";
    });
  } finally {
    await replicaAdmin.query("select pg_wal_replay_resume()").catch(() => undefined);
    await replicaAdmin.end();
    for (const c of [seeder, writer, other, anonymous]) c.close();
  }
});
