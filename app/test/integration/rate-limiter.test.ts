// The rate limiters against a real Redis and nothing else (the limits across instances over
// HTTP are rate-limit.test.ts). Login, with a one-second attempt window (the window is a
// parameter for this): exactly the limit per client IP, then 429 with retry-after, then, once
// the window's key has expired, the full limit again; a counter that never expired would lock
// the client out for good. Separate clients count separately. Failed logins are counted per
// username across IPs and per IP, and past their limit block for the block duration; a
// successful login clears the username's count. A Redis that fails, or is away, is a 503 for
// login, never a silent pass; the register/work limiters keep limiting in memory instead.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { createClientLimiter, createLoginLimiter, type LoginLimits } from "../../src/auth/rate-limit.ts";
import { AppError } from "../../src/errors.ts";
import { redisForTests, type Service } from "./services.ts";
import { waitFor } from "./support.ts";

/** What a call did: "ok", or the status, code and retry-after of its error. */
async function attempt(call: () => Promise<void>): Promise<string> {
  try {
    await call();
    return "ok";
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return `${error.status} ${error.code} retry-after=${error.headers?.["retry-after"]}`;
  }
}

const roomy: LoginLimits = {
  attemptsPerMinute: 1000,
  failuresPerIp: 1000,
  failuresPerUsername: 1000,
  failureWindowSeconds: 60,
  blockSeconds: 60,
};
const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;
const LIMITED = "429 too_many_login_attempts";

describe("login rate limiter", { timeout: 60_000 }, () => {
  let service: Service;
  let redis: Redis;

  before(async () => {
    service = await redisForTests();
    redis = new Redis(service.url);
  });

  after(async () => {
    redis?.disconnect();
    await service?.stop();
  });

  test("the limiter allows exactly the limit per window, and the full limit again after it", async () => {
    const windowSeconds = 1;
    const limiter = createLoginLimiter(redis, { ...roomy, attemptsPerMinute: 3 }, windowSeconds);
    const client = unique("window");
    const first = [];
    for (let i = 0; i < 5; i++) first.push(await attempt(() => limiter.begin(client, unique("user"))));
    assert.deepEqual(first, ["ok", "ok", "ok", `${LIMITED} retry-after=1`, `${LIMITED} retry-after=1`]);
    await assert.rejects(limiter.begin(client, "someone"), {
      status: 429,
      message: "Too many login attempts; wait before trying again.",
    });
    const ttl = await redis.pttl(`ratelimit:login:${client}`);
    assert.ok(ttl > 0 && ttl <= windowSeconds * 1000, `the counter expires with the window (PTTL ${ttl} ms)`);

    // Refused attempts do not push the window out: it ends when its first attempt's key expires.
    await waitFor(
      "the window's counter expires",
      async () => (await redis.exists(`ratelimit:login:${client}`)) === 0,
      10_000,
    );
    const second = [];
    for (let i = 0; i < 4; i++) second.push(await attempt(() => limiter.begin(client, unique("user"))));
    assert.deepEqual(second, ["ok", "ok", "ok", `${LIMITED} retry-after=1`]);
  });

  test("a Redis that fails the call makes the login limiter answer 503, not let the login through", async () => {
    const limiter = createLoginLimiter(redis, { ...roomy, attemptsPerMinute: 3 }, 60);
    const client = unique("broken");
    await redis.set(`ratelimit:login:${client}`, "not a number");
    assert.equal(await attempt(() => limiter.begin(client, "someone")), "503 redis_unavailable retry-after=1");

    const away = new Redis({ port: 9, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    away.on("error", () => undefined);
    const offline = createLoginLimiter(away, { ...roomy, attemptsPerMinute: 3 }, 60);
    assert.equal(await attempt(() => offline.begin(client, "someone")), "503 redis_unavailable retry-after=1");
    assert.equal(await attempt(() => offline.failed(client)), "503 redis_unavailable retry-after=1");
    assert.equal(await attempt(() => offline.succeeded("someone")), "503 redis_unavailable retry-after=1");
    away.disconnect();
  });

  test("counts each client on its own, and defaults to a one-minute window", async () => {
    const limiter = createLoginLimiter(redis, { ...roomy, attemptsPerMinute: 2 });
    const a = unique("a");
    const b = unique("b");
    assert.deepEqual(
      [
        await attempt(() => limiter.begin(a, unique("user"))),
        await attempt(() => limiter.begin(a, unique("user"))),
        await attempt(() => limiter.begin(b, unique("user"))),
        await attempt(() => limiter.begin(a, unique("user"))),
      ],
      ["ok", "ok", "ok", `${LIMITED} retry-after=60`],
    );
    const ttl = await redis.ttl(`ratelimit:login:${a}`);
    assert.ok(ttl > 55 && ttl <= 60, `a minute (TTL ${ttl} s)`);
    assert.equal(await redis.get(`ratelimit:login:${a}`), "3");
  });

  test("failures of one username from many IPs block it for the block duration; a success clears them", async () => {
    const limiter = createLoginLimiter(redis, { ...roomy, failuresPerUsername: 3, blockSeconds: 120 });
    const victim = unique("victim");
    const replies = [];
    // Each attempt from its own IP: only the per-username count can stop them.
    for (let i = 0; i < 5; i++) replies.push(await attempt(() => limiter.begin(unique("ip"), victim)));
    assert.deepEqual(replies, ["ok", "ok", "ok", `${LIMITED} retry-after=120`, `${LIMITED} retry-after=120`]);
    const ttl = await redis.ttl(`ratelimit:login-fail-user:${victim}`);
    assert.ok(ttl > 110 && ttl <= 120, `blocked for the block duration (TTL ${ttl} s)`);
    // Another spelling is the same account.
    assert.match(await attempt(() => limiter.begin(unique("ip"), victim.toUpperCase())), /^429 /);

    const user = unique("user");
    for (let i = 0; i < 2; i++) assert.equal(await attempt(() => limiter.begin(unique("ip"), user)), "ok");
    await limiter.succeeded(user);
    assert.equal(await redis.exists(`ratelimit:login-fail-user:${user}`), 0, "a success forgets the failures");
    const after = [];
    for (let i = 0; i < 4; i++) after.push(await attempt(() => limiter.begin(unique("ip"), user)));
    assert.deepEqual(after, ["ok", "ok", "ok", `${LIMITED} retry-after=120`], "the full count again");
  });

  test("failures from one IP block that IP for the block duration, whatever the username", async () => {
    const limiter = createLoginLimiter(redis, { ...roomy, failuresPerIp: 2, blockSeconds: 90 });
    const ip = unique("ip");
    assert.equal(await attempt(() => limiter.begin(ip, unique("user"))), "ok");
    await limiter.failed(ip);
    assert.equal(await attempt(() => limiter.begin(ip, unique("user"))), "ok");
    await limiter.failed(ip);
    // The third failure crosses the limit: that attempt already has its answer (401).
    assert.equal(await attempt(() => limiter.begin(ip, unique("user"))), "ok");
    await limiter.failed(ip);
    assert.equal(await attempt(() => limiter.begin(ip, unique("user"))), `${LIMITED} retry-after=90`);
    assert.equal(await attempt(() => limiter.begin(unique("ip"), unique("user"))), "ok", "other IPs are not blocked");
    const ttl = await redis.ttl(`ratelimit:login-fail-ip:${ip}`);
    assert.ok(ttl > 80 && ttl <= 90, `blocked for the block duration (TTL ${ttl} s)`);
  });
});

describe("client rate limiter (register, work)", { timeout: 30_000 }, () => {
  let service: Service;
  let redis: Redis;

  before(async () => {
    service = await redisForTests();
    redis = new Redis(service.url);
  });

  after(async () => {
    redis?.disconnect();
    await service?.stop();
  });

  const options = { name: "test", points: 2, durationSeconds: 30, code: "too_many_tests", message: "Slow down." };

  test("allows the limit per client in Redis, then 429 with the code and retry-after", async () => {
    const limiter = createClientLimiter(redis, options);
    const a = unique("a");
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await attempt(() => limiter.consume(a)));
    replies.push(await attempt(() => limiter.consume(unique("b"))));
    assert.deepEqual(replies, ["ok", "ok", "429 too_many_tests retry-after=30", "ok"]);
    // Counted in Redis: another instance's limiter sees the same count.
    assert.equal(
      await attempt(() => createClientLimiter(redis, options).consume(a)),
      "429 too_many_tests retry-after=30",
    );
    assert.equal(await redis.get(`ratelimit:test:${a}`), "4");
  });

  test("while Redis is away, limits in this process instead of failing or letting all through", async () => {
    const away = new Redis({ port: 9, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    away.on("error", () => undefined);
    const limiter = createClientLimiter(away, options);
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await attempt(() => limiter.consume("anyone")));
    assert.deepEqual(replies, ["ok", "ok", "429 too_many_tests retry-after=30"]);
    away.disconnect();
  });
});
