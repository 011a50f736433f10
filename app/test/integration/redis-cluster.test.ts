// The app on a Redis Cluster (REDIS_CLUSTER_NODES, issue 17): the local stack with
// REDIS_CLUSTER=1 (3 primaries + 3 replicas of Debian's redis-server, local/redis-cluster.ts),
// 2 app instances behind nginx, real PostgreSQL.
// - sessions: users logged in on one instance are served by every instance, and their session
//   keys are spread over the shards (no hash tag pins them to one);
// - rate limits: one count across instances, kept in the cluster;
// - a primary failed over under load, twice: `CLUSTER FAILOVER` on its replica (planned), and
//   SIGKILL of the primary (the replica takes over after cluster-node-timeout). Requests for
//   sessions on that shard may fail meanwhile, as 503 redis_unavailable only; the other shards
//   never fail; service comes back by itself. Sent, failed, retried and recovery are printed;
// - slots holding live sessions migrated to another primary under load: no request fails.
//
// Run it alone: node --test app/test/integration/redis-cluster.test.ts

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  type ClusterNode,
  clusterNodes,
  keySlot,
  migrateSlot,
  ownerOf,
  redisCli,
} from "../../../local/redis-cluster.ts";
import {
  Client,
  countBy,
  isErrorBody,
  jsonOf,
  mapLimit,
  registerAndLogin,
  sleep,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

const INSTANCES = 2;
const USERS = 12;
const LOGIN_LIMIT = 5;
const USERNAME_FAILURES = 6;
/** The load the issue names for the failover: requests per second, as scheduled. */
const RATE = 500;

let stack: Topology | undefined;
let users: { id: number; client: Client; key: string }[] = [];
let ports: number[] = [];

before(async () => {
  stack = await startStack("redis-cluster", {
    instances: INSTANCES,
    redisCluster: true,
    appEnv: {
      LOGIN_RATE_LIMIT_PER_MINUTE: String(LOGIN_LIMIT),
      LOGIN_FAILURES_PER_USERNAME: String(USERNAME_FAILURES),
      LOGIN_FAILURES_PER_IP: "1000000",
    },
  });
  ports = (stack.state.redisCluster ?? []).map((n) => n.port);
});

after(async () => {
  for (const user of users) user.client.close();
  await stopStack(stack);
});

/** The session key of a logged-in client: `sess:` + the id inside the signed `sid` cookie. */
function sessionKey(client: Client): string {
  const cookie = decodeURIComponent(client.cookies.get("sid") ?? "");
  const match = /^s:(.+)\.[^.]+$/.exec(cookie);
  if (!match) throw new Error(`not a signed session cookie: ${cookie}`);
  return `sess:${match[1]}`;
}

/** Each primary's count of keys matching `pattern` (SCAN on the primary itself). */
async function keysPerPrimary(pattern: string): Promise<Map<number, number>> {
  const primaries = (await clusterNodes(ports[0] as number)).filter((n) => n.role === "primary" && !n.failing);
  const counts = new Map<number, number>();
  for (const p of primaries) {
    const out = await redisCli(p.port, ["--scan", "--pattern", pattern]);
    counts.set(p.port, out.split("\n").filter((line) => line.trim() !== "").length);
  }
  return counts;
}

/** The primary now serving each user's session key. */
async function shardsOfUsers(): Promise<{ nodes: ClusterNode[]; owners: (ClusterNode | undefined)[] }> {
  const nodes = await clusterNodes(ports[0] as number);
  const owners = [];
  for (const user of users) owners.push(ownerOf(nodes, await keySlot(ports[0] as number, user.key)));
  return { nodes, owners };
}

type Outcome = {
  user: number;
  /** ms since the load started, when the request was sent. */
  at: number;
  /** ms it took to answer. */
  ms: number;
  status: number;
  code: string | undefined;
  /** Status of the one retry of a failed request (100 ms later), if it failed. */
  retry?: number;
};

/**
 * GET /api/me through nginx for every user in turn, RATE per second on a fixed schedule for
 * durationMs, with `during` run at eventAtMs. A failed request is retried once, 100 ms later,
 * as a client told to retry would.
 */
async function load(durationMs: number, eventAtMs: number, during: () => Promise<void>) {
  assert.ok(stack);
  const outcomes: Outcome[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  let event: Promise<void> | undefined;
  let eventAt = Number.NaN;
  const send = (n: number) => {
    const userIndex = n % users.length;
    const user = users[userIndex] as (typeof users)[number];
    const at = performance.now() - started;
    pending.push(
      user.client.get("/api/me", { timeoutMs: 10_000 }).then(async (reply) => {
        const body = jsonOf(reply) as { id?: number; error?: { code?: string } } | undefined;
        const ok = reply.status === 200 && body?.id === user.id;
        const outcome: Outcome = {
          user: userIndex,
          at,
          ms: reply.ms,
          status: ok ? 200 : reply.status,
          code: body?.error?.code,
        };
        if (!ok) {
          outcome.code ??= reply.error ?? (isErrorBody(reply) ? "error body" : "unexpected body");
          await sleep(100);
          outcome.retry = (await user.client.get("/api/me", { timeoutMs: 10_000 })).status;
        }
        outcomes.push(outcome);
      }),
    );
  };
  while (performance.now() - started < durationMs) {
    const elapsed = performance.now() - started;
    if (event === undefined && elapsed >= eventAtMs) {
      eventAt = elapsed;
      event = during();
    }
    const due = Math.floor((elapsed * RATE) / 1000);
    while (sent < due) send(sent++);
    await sleep(5);
  }
  await event;
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  return { outcomes, eventAt, seconds, sent };
}

function report(what: string, run: Awaited<ReturnType<typeof load>>, extra = "") {
  const failed = run.outcomes.filter((o) => o.status !== 200);
  const retriedOk = failed.filter((o) => o.retry === 200).length;
  // Recovery: from the event until the last failed request had its answer; after it, every
  // request succeeded. The slowest answer shows what the requests that waited instead paid.
  const last = failed.reduce((max, o) => Math.max(max, o.at + o.ms), Number.NEGATIVE_INFINITY);
  const recovery = failed.length === 0 ? 0 : last - run.eventAt;
  const slowest = run.outcomes.reduce((max, o) => Math.max(max, o.ms), 0);
  console.log(
    `[${what}] sent ${run.sent} in ${run.seconds.toFixed(1)} s (${(run.sent / run.seconds).toFixed(0)} req/s scheduled at ${RATE}); ` +
      `failed ${failed.length} (${JSON.stringify(countBy(failed, (o) => `${o.status} ${o.code}`))}); ` +
      `retried ${failed.length}, of which ok ${retriedOk}; ` +
      `recovery ${recovery.toFixed(0)} ms after the event (the last failure answered then); slowest answer ${slowest.toFixed(0)} ms${extra}`,
  );
  return { failed, recovery };
}

test(`${USERS} users logged in on one instance are served by every instance; their sessions spread over the shards`, {
  timeout: 120_000,
}, async () => {
  assert.ok(stack);
  const nodes = await clusterNodes(ports[0] as number);
  const primaries = nodes.filter((n) => n.role === "primary" && n.slots.length > 0);
  assert.equal(primaries.length, 3, "3 primaries serve the slots");
  for (const p of primaries)
    assert.equal(nodes.filter((n) => n.role === "replica" && n.primaryId === p.id).length, 1, "each has a replica");

  const instances = stack.instances;
  users = await mapLimit(Array.from({ length: USERS }), 4, async (_, i) => {
    // Registered and logged in directly on one instance, each from a client IP of its own.
    const direct = new Client((instances[i % instances.length] as (typeof instances)[number]).url);
    const { id } = await registerAndLogin(direct, "cl", { "x-forwarded-for": `198.51.100.${10 + i}` });
    const client = direct.withBase(stack?.lbUrl as string);
    direct.close();
    return { id, client, key: sessionKey(client) };
  });

  const replies = await mapLimit(Array.from({ length: USERS * 10 }), 8, async (_, n) => ({
    user: users[n % USERS],
    reply: await users[n % USERS]?.client.get("/api/me"),
  }));
  const asUser = replies.filter(
    ({ user, reply }) => reply?.status === 200 && (jsonOf(reply) as { id?: number }).id === user?.id,
  ).length;
  const perInstance = countBy(replies, ({ reply }) => reply?.instance ?? "(none)");
  const perPrimary = await keysPerPrimary("sess:*");
  console.log(`${replies.length} GET /api/me: as the user ${asUser}, per instance ${JSON.stringify(perInstance)}`);
  console.log(`session keys per primary (port: count): ${JSON.stringify(Object.fromEntries(perPrimary))}`);

  assert.equal(asUser, replies.length, "every request answered 200 as its user");
  assert.deepEqual(
    Object.keys(perInstance).sort(),
    instances.map((i) => i.name).sort(),
    "every instance served sessions made on another",
  );
  const total = [...perPrimary.values()].reduce((a, b) => a + b, 0);
  assert.ok(total >= USERS, `every session is in the cluster (${total} keys)`);
  // 12 keys all in one of 3 shards by chance: 3 * (1/3)^12, about 6 in a million.
  assert.ok([...perPrimary.values()].filter((c) => c > 0).length >= 2, "sessions are on more than one shard");
});

test(`logins from one IP over every instance are limited to ${LOGIN_LIMIT} together; a username's failures too`, {
  timeout: 120_000,
}, async () => {
  assert.ok(stack);
  const setup = new Client(stack.instances[0]?.url as string);
  const { username, password } = await registerAndLogin(setup, "limited", { "x-forwarded-for": "198.51.100.200" });
  setup.close();
  const clients = stack.instances.map((i) => new Client(i.url));
  try {
    const ip = "203.0.113.1";
    const logins = await mapLimit(Array.from({ length: LOGIN_LIMIT + 4 }), 4, (_, n) =>
      (clients[n % clients.length] as Client).post(
        "/api/auth/login",
        { username, password },
        { headers: { "x-forwarded-for": ip }, timeoutMs: 30_000 },
      ),
    );
    const attemptsKey = `ratelimit:login:${ip}`;
    const counted = (await redisCli(ports[0] as number, ["-c", "GET", attemptsKey])).trim();

    const guesses = [];
    for (let n = 0; n < USERNAME_FAILURES + 2; n++)
      guesses.push(
        await (clients[n % clients.length] as Client).post(
          "/api/auth/login",
          { username, password: `${password}-wrong-${n}` },
          { headers: { "x-forwarded-for": `203.0.113.${10 + n}` }, timeoutMs: 30_000 },
        ),
      );
    console.log(
      `${logins.length} logins from ${ip}: ${JSON.stringify(countBy(logins, (r) => String(r.status)))} ` +
        `over ${JSON.stringify(countBy(logins, (r) => r.instance ?? "(none)"))}; ${attemptsKey} = ${counted} in the cluster; ` +
        `wrong passwords: ${guesses.map((r) => r.status).join(",")}`,
    );

    assert.deepEqual(
      countBy(logins, (r) => String(r.status)),
      { 200: LOGIN_LIMIT, 429: 4 },
      "one limit over both instances",
    );
    assert.equal(new Set(logins.map((r) => r.instance)).size, INSTANCES, "both instances took logins");
    assert.equal(Number(counted), LOGIN_LIMIT + 4, "the count is one key in the cluster");
    assert.deepEqual(
      guesses.map((r) => r.status),
      [...Array(USERNAME_FAILURES).fill(401), 429, 429],
      "a username is blocked after its failures on any instance",
    );
  } finally {
    for (const c of clients) c.close();
  }
});

/** Checks shared by both failovers; returns the failed outcomes. */
function assertFailover(what: string, run: Awaited<ReturnType<typeof load>>, failedShard: Set<number>, extra: string) {
  const { failed } = report(what, run, extra);
  for (const o of failed) {
    assert.equal(o.status, 503, `a failure is a 503, not a hang or a 500 (${o.status} ${o.code})`);
    assert.equal(o.code, "redis_unavailable", "and says Redis is unavailable");
    assert.ok(failedShard.has(o.user), `only sessions on the failed-over shard fail (user ${o.user})`);
    assert.ok(o.at >= run.eventAt - 50, "nothing failed before the failover");
  }
  const lastSeconds = run.outcomes.filter((o) => o.at > run.seconds * 1000 - 3000);
  assert.ok(lastSeconds.length > 0);
  assert.ok(
    lastSeconds.every((o) => o.status === 200),
    "the last 3 s of load all answered 200: service came back by itself",
  );
  return failed;
}

test(`CLUSTER FAILOVER on a replica under ${RATE} req/s: only its shard may fail, and it recovers`, {
  timeout: 120_000,
}, async () => {
  assert.ok(stack && users.length === USERS);
  const { nodes, owners } = await shardsOfUsers();
  const primary = owners[0] as ClusterNode;
  const replica = nodes.find((n) => n.primaryId === primary.id) as ClusterNode;
  const onShard = new Set(owners.flatMap((o, i) => (o?.id === primary.id ? [i] : [])));
  let promotedMs = 0;
  const run = await load(12_000, 3000, async () => {
    const t = performance.now();
    await redisCli(replica.port, ["CLUSTER", "FAILOVER"]);
    await waitFor(
      "the replica promoted",
      async () => (await clusterNodes(replica.port)).find((n) => n.id === replica.id)?.role === "primary",
    );
    promotedMs = performance.now() - t;
  });
  assertFailover(
    "cluster failover",
    run,
    onShard,
    `; ${onShard.size} of ${USERS} users on that shard; promoted in ${promotedMs.toFixed(0)} ms`,
  );
  const after = await clusterNodes(replica.port);
  assert.equal(after.find((n) => n.id === replica.id)?.role, "primary", "the replica is the primary now");
  assert.equal(after.find((n) => n.id === primary.id)?.primaryId, replica.id, "the old primary follows it");
});

test(`a primary killed under ${RATE} req/s: its replica takes over, only its shard fails meanwhile, service recovers`, {
  timeout: 180_000,
}, async () => {
  assert.ok(stack && users.length === USERS);
  const { nodes, owners } = await shardsOfUsers();
  const primary = owners[0] as ClusterNode;
  const replica = nodes.find((n) => n.primaryId === primary.id) as ClusterNode;
  const index = ports.indexOf(primary.port);
  const onShard = new Set(owners.flatMap((o, i) => (o?.id === primary.id ? [i] : [])));
  let promotedMs = 0;
  const run = await load(16_000, 3000, async () => {
    const t = performance.now();
    await stack?.stopRedisClusterNode(index, "SIGKILL");
    await waitFor(
      "the replica promoted",
      async () => (await clusterNodes(replica.port)).find((n) => n.id === replica.id)?.role === "primary",
      30_000,
    );
    promotedMs = performance.now() - t;
  });
  const failed = assertFailover(
    "primary killed",
    run,
    onShard,
    `; ${onShard.size} of ${USERS} users on that shard; replica promoted ${promotedMs.toFixed(0)} ms after the kill`,
  );
  assert.ok(
    failed.every((o) => o.at <= run.eventAt + promotedMs + 5000),
    "failures stop soon after the promotion",
  );

  // The killed node comes back as a replica of the one promoted in its place.
  await stack.startRedisClusterNode(index);
  await waitFor(
    "the old primary rejoined as a replica",
    async () =>
      (await clusterNodes(replica.port)).find((n) => n.id === primary.id && !n.failing)?.primaryId === replica.id,
    30_000,
  );
});

test(`slots holding live sessions migrated to another primary under ${RATE} req/s: no request fails`, {
  timeout: 120_000,
}, async () => {
  assert.ok(stack && users.length === USERS);
  const { nodes, owners } = await shardsOfUsers();
  const from = owners[0] as ClusterNode;
  const to = nodes.find((n) => n.role === "primary" && !n.failing && n.id !== from.id) as ClusterNode;
  const slots = [
    ...new Set(
      await Promise.all(
        users.filter((_, i) => owners[i]?.id === from.id).map((u) => keySlot(ports[0] as number, u.key)),
      ),
    ),
  ];
  let moved = 0;
  const run = await load(10_000, 2000, async () => {
    for (const slot of slots) {
      moved += await migrateSlot(slot, from, to);
      await sleep(200);
    }
  });
  const { failed } = report("slot migration", run, `; ${slots.length} slots, ${moved} keys moved`);
  const nowOwned = await shardsOfUsers();
  for (const slot of slots)
    assert.equal(ownerOf(nowOwned.nodes, slot)?.id, to.id, `slot ${slot} is served by the target now`);
  assert.ok(moved >= slots.length, "each slot's session key moved");
  assert.equal(failed.length, 0, "no request failed while its session's slot moved");
});
