// The login rate limiter against a real Redis and nothing else (the limit across instances
// over HTTP is rate-limit.test.ts). With a one-second window (the window is a parameter for
// this): exactly the limit, then 429 with retry-after, then, once the window's key has
// expired, the full limit again; a counter that never expired would lock the client out for
// good. Separate clients count separately. A Redis that fails the transaction, or is away,
// is a 503, never a silent pass.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { createLoginRateLimiter } from "../../src/auth/rate-limit.ts";
import { AppError } from "../../src/errors.ts";
import { redisForTests, type Service } from "./services.ts";
import { waitFor } from "./support.ts";

/** What consume() did: "ok", or the status, code and retry-after of its error. */
async function attempt(consume: () => Promise<void>): Promise<string> {
  try {
    await consume();
    return "ok";
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return `${error.status} ${error.code} retry-after=${error.headers?.["retry-after"]}`;
  }
}

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
    const limiter = createLoginRateLimiter(redis, 3, windowSeconds);
    const client = `window-${randomBytes(4).toString("hex")}`;
    const first = [];
    for (let i = 0; i < 5; i++) first.push(await attempt(() => limiter.consume(client)));
    assert.deepEqual(first, [
      "ok",
      "ok",
      "ok",
      "429 too_many_login_attempts retry-after=1",
      "429 too_many_login_attempts retry-after=1",
    ]);
    await assert.rejects(limiter.consume(client), {
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
    for (let i = 0; i < 4; i++) second.push(await attempt(() => limiter.consume(client)));
    assert.deepEqual(second, ["ok", "ok", "ok", "429 too_many_login_attempts retry-after=1"]);
  });

  test("a Redis that fails the transaction makes the limiter answer 503, not let the login through", async () => {
    const limiter = createLoginRateLimiter(redis, 3, 60);
    const client = `broken-${randomBytes(4).toString("hex")}`;
    await redis.set(`ratelimit:login:${client}`, "not a number");
    assert.equal(await attempt(() => limiter.consume(client)), "503 redis_unavailable retry-after=1");

    const away = new Redis({ port: 9, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    away.on("error", () => undefined);
    const offline = createLoginRateLimiter(away, 3, 60);
    assert.equal(await attempt(() => offline.consume(client)), "503 redis_unavailable retry-after=1");
    away.disconnect();
  });

  test("counts each client on its own, and defaults to a one-minute window", async () => {
    const limiter = createLoginRateLimiter(redis, 2);
    const a = `a-${randomBytes(4).toString("hex")}`;
    const b = `b-${randomBytes(4).toString("hex")}`;
    assert.deepEqual(
      [
        await attempt(() => limiter.consume(a)),
        await attempt(() => limiter.consume(a)),
        await attempt(() => limiter.consume(b)),
        await attempt(() => limiter.consume(a)),
      ],
      ["ok", "ok", "ok", "429 too_many_login_attempts retry-after=60"],
    );
    const ttl = await redis.ttl(`ratelimit:login:${a}`);
    assert.ok(ttl > 55 && ttl <= 60, `a minute (TTL ${ttl} s)`);
    assert.equal(await redis.get(`ratelimit:login:${a}`), "3");
  });
});
