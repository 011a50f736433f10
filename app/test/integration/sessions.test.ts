// Sessions live in Redis, so any instance serves any user: register and log in through nginx,
// then 200 requests to /api/me all answer 200 as that user, and every instance serves some.
// A request that leaves its session alone writes nothing to Redis (Redis's own command counts).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";
import {
  Client,
  countBy,
  type Instance,
  jsonOf,
  mapLimit,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
} from "./support.ts";

const INSTANCES = 3;
const REQUESTS = 200;

let stack: Topology | undefined;

before(async () => {
  stack = await startStack("sessions", { instances: INSTANCES });
});

after(async () => {
  await stopStack(stack);
});

test(`a login through nginx holds for ${REQUESTS} /api/me requests on every instance`, {
  timeout: 60_000,
}, async () => {
  assert.ok(stack);
  const client = new Client(stack.lbUrl, { maxSockets: 8 });
  try {
    const user = await registerAndLogin(client, "sess");
    const sid = client.cookies.get("sid");

    const started = performance.now();
    const replies = await mapLimit(Array.from({ length: REQUESTS }), 8, () => client.get("/api/me"));
    const ms = performance.now() - started;

    const statuses = countBy(replies, (r) => String(r.status));
    const perInstance = countBy(replies, (r) => r.instance ?? "(none)");
    const asUser = replies.filter((r) => {
      const body = jsonOf(r) as { id?: number; username?: string } | undefined;
      return r.status === 200 && body?.id === user.id && body.username === user.username;
    }).length;
    const newCookies = replies.filter((r) => r.headers["set-cookie"] !== undefined).length;
    console.log(
      `${REQUESTS} GET /api/me in ${ms.toFixed(0)} ms: statuses ${JSON.stringify(statuses)}, ` +
        `as ${user.username}: ${asUser}, per instance ${JSON.stringify(perInstance)}, set-cookie on ${newCookies}`,
    );

    assert.deepEqual(statuses, { 200: REQUESTS }, "every /api/me answers 200");
    assert.equal(asUser, REQUESTS, "every answer names the logged-in user");
    const names = stack.instances.map((i) => i.name).sort();
    assert.deepEqual(Object.keys(perInstance).sort(), names, "every instance served some requests, nothing else did");
    // A request that does not change its session writes nothing, so no new cookie either.
    assert.equal(newCookies, 0, "/api/me never re-issues the session cookie");
    assert.equal(client.cookies.get("sid"), sid, "the session id stayed the same");
  } finally {
    client.close();
  }
});

function commandCalls(port: number): Record<string, number> {
  const info = execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "INFO", "commandstats"], {
    encoding: "utf8",
  });
  return Object.fromEntries([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
}

test("a request that does not change its session writes nothing to Redis", { timeout: 60_000 }, async () => {
  assert.ok(stack);
  const instance = stack.instances[0] as Instance;
  const client = new Client(instance.url);
  await registerAndLogin(client, "quiet");
  const port = stack.ports.redis;
  const before = commandCalls(port);
  for (let i = 0; i < 50; i++) assert.equal((await client.get("/api/me")).status, 200);
  const after = commandCalls(port);
  client.close();
  const delta = (command: string) => (after[command] ?? 0) - (before[command] ?? 0);
  const writes = ["set", "setex", "expire", "pexpire", "del", "getex", "hset"].map((c) => [c, delta(c)] as const);
  console.log(`50 GET /api/me: redis get ${delta("get")}, writes ${JSON.stringify(Object.fromEntries(writes))}`);
  assert.equal(delta("get"), 50, "each request read its session once");
  for (const [command, count] of writes) assert.equal(count, 0, `${command} calls during unchanged-session requests`);
});
