// The session Store over ioredis, against a real Redis: what it writes, for how long, and
// that a request which leaves its session alone writes nothing at all.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import type { SessionData } from "express-session";
import { Redis } from "ioredis";
import { RedisSessionStore } from "../../src/sessions/store.ts";
import { Client, type Instance, registerAndLogin, startStack, stopStack, type Topology } from "./support.ts";

const call = <T>(run: (done: (error?: unknown, value?: T) => void) => void) =>
  new Promise<T | undefined>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value))));

function commandCalls(port: number): Record<string, number> {
  const info = execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "INFO", "commandstats"], {
    encoding: "utf8",
  });
  return Object.fromEntries([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
}

describe("RedisSessionStore", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let redis: Redis;
  let store: RedisSessionStore;

  before(async () => {
    stack = await startStack("store", { instances: 1 });
    redis = new Redis(stack.redisUrl);
    store = new RedisSessionStore({ redis, ttlSeconds: 600, prefix: "test:" });
  });

  after(async () => {
    redis?.disconnect();
    await stopStack(stack);
  });

  test("stores a session as JSON that expires with its cookie, reads it back, destroys it", async () => {
    const expires = new Date(Date.now() + 120_000);
    const session = {
      cookie: { originalMaxAge: 120_000, expires },
      userId: 7,
      username: "ada",
    } as unknown as SessionData;
    await call((done) => store.set("abc", session, done));
    const ttl = await redis.ttl("test:abc");
    assert.ok(ttl > 100 && ttl <= 120, `TTL follows the cookie's expiry (got ${ttl} s)`);
    const read = await call<SessionData | null>((done) => store.get("abc", done));
    assert.equal(read?.userId, 7);
    assert.equal(read?.username, "ada");
    await call((done) => store.destroy("abc", done));
    assert.equal(await redis.exists("test:abc"), 0);
    assert.equal(await call<SessionData | null>((done) => store.get("abc", done)), null);
  });

  test("falls back to the configured TTL without a cookie expiry", async () => {
    await call((done) => store.set("plain", { cookie: {} } as unknown as SessionData, done));
    const ttl = await redis.ttl("test:plain");
    assert.ok(ttl > 590 && ttl <= 600, `TTL is ttlSeconds (got ${ttl} s)`);
  });

  test("reads a value that is not a session as no session", async () => {
    await redis.set("test:garbage", "{not json");
    assert.equal(await call<SessionData | null>((done) => store.get("garbage", done)), null);
  });

  test("a request that does not change its session writes nothing to Redis", async () => {
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
});
