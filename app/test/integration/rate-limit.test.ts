// The login rate limit is counted in Redis, so it holds across instances.
// - Over HTTP, 4 instances, one client IP (X-Forwarded-For; the app trusts one proxy hop):
//   of LIMIT + 6 parallel attempts spread over every instance, exactly LIMIT succeed and the
//   rest answer 429 with a retry-after equal to what is left of the window in Redis; another
//   client IP is not affected.
// The limiter's window and its failures are tested against Redis alone (rate-limiter.test.ts).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import {
  Client,
  countBy,
  isErrorBody,
  jsonOf,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
} from "./support.ts";

const INSTANCES = 4;
const LIMIT = 5;
const ATTEMPTS = LIMIT + 6;

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
});
