// The login rate limit is counted in Redis, so it holds across instances.
// - Over HTTP, 4 instances, one client IP (X-Forwarded-For; the app trusts one proxy hop):
//   of LIMIT + 6 parallel attempts spread over every instance, exactly LIMIT succeed and the
//   rest answer 429 with a retry-after equal to what is left of the window in Redis; another
//   client IP is not affected.
// - The limiter against the same Redis with a one-second window (the window is a parameter
//   for this): exactly the limit, then 429, then, once the window's key has expired, the full
//   limit again. A counter that never expires would lock the client out for good.
// - A Redis that fails the transaction is a 503, never a silent pass.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { createLoginRateLimiter } from "../../src/auth/rate-limit.ts";
import { AppError } from "../../src/errors.ts";
import {
  Client,
  countBy,
  isErrorBody,
  jsonOf,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

const INSTANCES = 4;
const LIMIT = 5;
const ATTEMPTS = LIMIT + 6;

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

describe("login rate limit", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let redis: Redis;

  before(async () => {
    stack = await startStack("ratelimit", {
      instances: INSTANCES,
      appEnv: { LOGIN_RATE_LIMIT_PER_MINUTE: String(LIMIT) },
    });
    redis = new Redis(stack.redisUrl);
  });

  after(async () => {
    redis?.disconnect();
    await stopStack(stack);
  });

  test(`${ATTEMPTS} parallel logins over ${INSTANCES} instances: exactly ${LIMIT} succeed, the rest 429`, async () => {
    assert.ok(stack);
    const clientIp = `203.0.113.${1 + ((randomBytes(1)[0] ?? 0) % 250)}`;
    // Registered from another client IP, so its login does not count against clientIp.
    const setup = new Client(stack.lbUrl);
    const { username, password } = await registerAndLogin(setup, "limited", { "x-forwarded-for": "198.51.100.1" });
    setup.close();

    const clients = stack.instances.map((i) => new Client(i.url, { maxSockets: ATTEMPTS }));
    const replies = await Promise.all(
      Array.from({ length: ATTEMPTS }, (_, n) =>
        (clients[n % clients.length] as Client).post(
          "/api/auth/login",
          { username, password },
          { headers: { "x-forwarded-for": clientIp }, timeoutMs: 30_000 },
        ),
      ),
    );
    const ttl = await redis.ttl(`ratelimit:login:${clientIp}`);
    const other = await (clients[0] as Client).post(
      "/api/auth/login",
      { username, password },
      { headers: { "x-forwarded-for": "198.51.100.2" } },
    );
    for (const c of clients) c.close();

    const statuses = countBy(replies, (r) => String(r.status));
    const limited = replies.filter((r) => r.status === 429);
    const retryAfter = limited.map((r) => Number(r.headers["retry-after"]));
    console.log(
      `statuses ${JSON.stringify(statuses)}; per instance ${JSON.stringify(countBy(replies, (r) => r.instance ?? "-"))}; ` +
        `retry-after ${retryAfter.join(",")} s; key TTL ${ttl} s; another client IP: ${other.status}`,
    );

    assert.equal(new Set(replies.map((r) => r.instance)).size, INSTANCES, "the attempts reached every instance");
    assert.deepEqual(statuses, { 200: LIMIT, 429: ATTEMPTS - LIMIT }, `exactly ${LIMIT} logins succeed`);
    assert.ok(
      limited.every(
        (r) => isErrorBody(r) && (jsonOf(r) as { error: { code: string } }).error.code === "too_many_login_attempts",
      ),
      "429s are JSON errors that say why",
    );
    assert.ok(ttl > 0 && ttl <= 60, `the window's counter expires within a minute (TTL ${ttl} s)`);
    // Each retry-after was what was left when that attempt was refused; the TTL is read after.
    for (const s of retryAfter)
      assert.ok(s >= ttl && s <= 60, `retry-after ${s} s is what was left of the window (TTL ${ttl} s after)`);
    assert.equal(other.status, 200, "the limit is per client IP");
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

    const away = new Redis(stack?.redisUrl as string, { lazyConnect: true, enableOfflineQueue: false });
    const offline = createLoginRateLimiter(away, 3, 60);
    assert.equal(await attempt(() => offline.consume(client)), "503 redis_unavailable retry-after=1");
    away.disconnect();
  });
});
