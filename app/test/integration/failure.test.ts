// Dependencies failing under a running app, with no restart of the app:
// - the replica stops while item reads are flowing: every read still succeeds (the primary
//   serves them), none answers 5xx, and reads return to the replica once it is back;
// - Redis stops: session routes answer 503 JSON with retry-after (not a hang: the client gives
//   up after 10 s), /livez stays 200 and session-less item reads go on; Redis restarts: a fresh
//   login works and the session holds again.
// Each phase lasts until a state is reached (a number of replies seen, a metric), never a
// fixed time; each test starts by putting back the dependency it stops.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  Client,
  countBy,
  isErrorBody,
  jsonOf,
  mapLimit,
  type Reply,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

const INSTANCES = 2;
const SEEDED = 10;
const READERS = 2;
// Replies to see in a phase before moving on: enough to show the behaviour, counted not timed.
const PHASE_REPLIES = 20;

describe("dependency failures", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let pidsAtStart: (number | null)[] = [];
  const seeded: number[] = [];

  before(async () => {
    stack = await startStack("failure", { instances: INSTANCES });
    pidsAtStart = stack.instances.map((i) => i.pid);
    const seeder = new Client(stack.lbUrl);
    await registerAndLogin(seeder, "seeder");
    for (let i = 0; i < SEEDED; i++) {
      const reply = await seeder.post("/api/items", { title: `seeded ${i}` });
      assert.equal(reply.status, 201, reply.text);
      seeded.push((jsonOf(reply) as { id: number }).id);
    }
    seeder.close();
    const last = seeded.at(-1) as number;
    const s = stack;
    await waitFor("seeded items on the replica", async () => {
      return (await s.query("replica", `select count(*) from items where id = ${last}`)).trim() === "1";
    });
  });

  after(async () => {
    await stopStack(stack);
  });

  /** Item reads by other users (anonymous) in a loop until stopped; each reply with its time. */
  function readTraffic(lbUrl: string) {
    const client = new Client(lbUrl);
    const replies: { at: number; reply: Reply }[] = [];
    let running = true;
    const loops = Array.from({ length: READERS }, async (_, r) => {
      for (let i = 0; running; i++) {
        const path = i % 4 === 3 ? "/api/items?limit=5" : `/api/items/${seeded[(r + i) % seeded.length]}`;
        const reply = await client.get(path, { timeoutMs: 5000 });
        replies.push({ at: Date.now(), reply });
      }
    });
    return {
      replies,
      async stop() {
        running = false;
        await Promise.all(loops);
        client.close();
      },
    };
  }

  /** Waits until `count` replies that satisfy `match` have arrived. */
  const repliesSeen = (
    traffic: ReturnType<typeof readTraffic>,
    what: string,
    match: (r: { at: number; reply: Reply }) => boolean,
  ) => waitFor(what, async () => traffic.replies.filter(match).length >= PHASE_REPLIES, 30_000);

  test("the replica stops mid-traffic: item reads keep succeeding from the primary, no 5xx", async () => {
    assert.ok(stack);
    await stack.startReplica();
    const traffic = readTraffic(stack.lbUrl);
    await repliesSeen(traffic, "reads from the replica before the stop", (r) => r.reply.dbRoute === "replica");
    const stopAt = Date.now();
    await stack.stopReplica();
    const stoppedAt = Date.now();
    await repliesSeen(traffic, "reads while the replica is down", (r) => r.at > stoppedAt);
    const restartAt = Date.now();
    await stack.startReplica();
    // Reads go back to the replica by themselves once it is up again.
    const backMs = await waitFor(
      "reads back on the replica",
      async () => traffic.replies.slice(-20).every((r) => r.at > restartAt && r.reply.dbRoute === "replica"),
      15_000,
    ).catch((error: Error) => error.message);
    await traffic.stop();

    const phase = (at: number) =>
      at < stopAt ? "before" : at <= stoppedAt ? "stopping" : at < restartAt ? "down" : "after";
    const byPhase = countBy(traffic.replies, (r) => `${phase(r.at)} ${r.reply.status} ${r.reply.dbRoute ?? "-"}`);
    const statuses = countBy(traffic.replies, (r) => String(r.reply.status));
    console.log(
      `${traffic.replies.length} item reads; replica stop took ${stoppedAt - stopAt} ms; ` +
        `by phase/status/route ${JSON.stringify(byPhase)}; back on the replica ${typeof backMs === "number" ? `${backMs} ms after restart` : backMs}`,
    );
    assert.deepEqual(statuses, { 200: traffic.replies.length }, "every item read succeeded");
    const down = traffic.replies.filter((r) => phase(r.at) === "down");
    assert.ok(down.length >= PHASE_REPLIES, `reads while the replica was down (${down.length})`);
    assert.ok(
      down.every((r) => r.reply.dbRoute === "primary"),
      "with the replica down, reads are served by the primary",
    );
    assert.ok(
      traffic.replies.some((r) => phase(r.at) === "before" && r.reply.dbRoute === "replica"),
      "before the stop, reads used the replica",
    );
    assert.equal(typeof backMs, "number", "reads returned to the replica after it restarted");
  });

  test("Redis stops: session routes answer 503 JSON, /livez 200; it recovers without an app restart", async () => {
    assert.ok(stack);
    const s = stack;
    await s.startRedis();
    const user = new Client(s.lbUrl);
    const { username, password } = await registerAndLogin(user, "victim");
    assert.equal((await user.get("/api/me")).status, 200);

    await s.stopRedis();
    const outage: { what: string; reply: Reply }[] = [];
    const live: Reply[] = [];
    const itemReads: Reply[] = [];
    // Round 1 right after the stop; round 2 once every instance's client knows Redis is gone
    // and is reconnecting in the background (nodescale_redis_connected 0).
    for (let round = 0; round < 2; round++) {
      if (round === 1)
        for (const instance of s.instances)
          await waitFor(`${instance.name} sees Redis down`, async () => {
            const probe = new Client(instance.url);
            const metrics = await probe.get("/metrics");
            probe.close();
            return /^nodescale_redis_connected 0$/m.test(metrics.text);
          });
      for (const target of [s.lbUrl, ...s.instances.map((i) => i.url)]) {
        const asUser = user.withBase(target);
        const fresh = new Client(target);
        const probes: [string, () => Promise<Reply>][] = [
          ["GET /api/me", () => asUser.get("/api/me")],
          ["POST /api/auth/login", () => fresh.post("/api/auth/login", { username, password })],
          ["POST /api/auth/logout", () => asUser.post("/api/auth/logout", {})],
          ["POST /api/items", () => asUser.post("/api/items", { title: "during the outage" })],
        ];
        for (const [what, probe] of probes) outage.push({ what, reply: await probe() });
        live.push(await fresh.get("/livez"));
        itemReads.push(await asUser.get(`/api/items/${seeded[0]}`));
        asUser.close();
        fresh.close();
      }
    }

    const summary = countBy(outage, (o) => `${o.what} ${o.reply.status}`);
    const slowest = Math.max(...outage.map((o) => o.reply.ms));
    const wrong = outage.filter(
      (o) => o.reply.status !== 503 || !isErrorBody(o.reply) || o.reply.headers["retry-after"] === undefined,
    );
    console.log(
      `Redis down: ${outage.length} session requests ${JSON.stringify(summary)}, slowest ${slowest.toFixed(0)} ms; ` +
        `/livez ${JSON.stringify(countBy(live, (r) => String(r.status)))}; ` +
        `item reads ${JSON.stringify(countBy(itemReads, (r) => String(r.status)))}`,
    );
    assert.deepEqual(
      wrong.map((o) => `${o.what}: ${o.reply.status} in ${o.reply.ms.toFixed(0)} ms ${o.reply.text.slice(0, 120)}`),
      [],
      "every session route answers 503 JSON with retry-after",
    );
    assert.ok(
      outage.every((o) => (jsonOf(o.reply) as { error: { code: string } }).error.code === "redis_unavailable"),
      "the error says sessions are unavailable",
    );
    assert.deepEqual(
      countBy(live, (r) => String(r.status)),
      { 200: live.length },
      "/livez stays 200",
    );
    assert.deepEqual(
      countBy(itemReads, (r) => String(r.status)),
      { 200: itemReads.length },
      "item reads need no session and go on",
    );

    await s.startRedis();
    const restarted = Date.now();
    // A fresh login on every instance, then the session holds across them again.
    const again = new Client(s.lbUrl);
    const recoveryMs = await waitFor(
      "login after Redis restarted",
      async () => {
        const clients = s.instances.map((i) => new Client(i.url));
        const replies = await Promise.all(clients.map((c) => c.post("/api/auth/login", { username, password })));
        for (const c of clients) c.close();
        return replies.every((r) => r.status === 200);
      },
      15_000,
    );
    const login = await again.post("/api/auth/login", { username, password });
    assert.equal(login.status, 200, login.text);
    const mes = await mapLimit(Array.from({ length: 20 }), 4, () => again.get("/api/me"));
    const item = await again.post("/api/items", { title: "after the outage" });
    console.log(
      `Redis back: logins succeed on every instance ${recoveryMs} ms after restart ` +
        `(${Date.now() - restarted} ms in all); /api/me ${JSON.stringify(countBy(mes, (r) => `${r.status} ${r.instance}`))}; ` +
        `POST /api/items ${item.status}`,
    );
    assert.deepEqual(
      countBy(mes, (r) => String(r.status)),
      { 200: 20 },
      "the new session holds",
    );
    assert.equal(new Set(mes.map((r) => r.instance)).size, INSTANCES, "on every instance");
    assert.equal(item.status, 201, "session writes work again");
    assert.deepEqual(
      s.instances.map((i) => i.pid),
      pidsAtStart,
      "no app instance was restarted",
    );
    user.close();
    again.close();
  });
});
