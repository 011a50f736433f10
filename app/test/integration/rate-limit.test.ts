// The login and registration limits are counted in Redis, so they hold across instances.
// Over HTTP, 4 instances, each client IP given by X-Forwarded-For (the local stack trusts one
// proxy hop, its nginx):
// - of LIMIT + 6 parallel logins from one client IP spread over every instance, exactly LIMIT
//   succeed and the rest answer 429 with a retry-after equal to what is left of the window in
//   Redis; another client IP is not affected;
// - (issue 15) wrong passwords for one username, each from a new IP, are blocked after
//   LOGIN_FAILURES_PER_USERNAME, and then even the right password is refused until the block ends;
// - (issue 15) registrations from one client IP past REGISTER_RATE_LIMIT_PER_MINUTE answer 429.
// The limiters' windows and failures are tested against Redis alone (rate-limiter.test.ts);
// the default TRUST_PROXY with no proxy in front is spoofed-forwarded-for.test.ts.

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
// Above LIMIT: attempts in flight count as failures until they succeed, so the parallel logins
// of one user in the first test must meet the per-IP limit first.
const USERNAME_FAILURES = LIMIT + 1;
const REGISTRATIONS = 3;
const BLOCK_SECONDS = 300;

describe("login rate limit", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let redis: Redis;

  before(async () => {
    stack = await startStack("ratelimit", {
      instances: INSTANCES,
      appEnv: {
        LOGIN_RATE_LIMIT_PER_MINUTE: String(LIMIT),
        LOGIN_FAILURES_PER_USERNAME: String(USERNAME_FAILURES),
        LOGIN_BLOCK_SECONDS: String(BLOCK_SECONDS),
        REGISTER_RATE_LIMIT_PER_MINUTE: String(REGISTRATIONS),
      },
    });
    redis = new Redis(stack.redisUrl);
  });

  after(async () => {
    redis?.disconnect();
    await stopStack(stack);
  });

  test(`${ATTEMPTS} parallel logins over ${INSTANCES} instances: exactly ${LIMIT} succeed, the rest 429`, async () => {
    assert.ok(stack);
    const clientIp = `192.0.2.${1 + ((randomBytes(1)[0] ?? 0) % 250)}`;
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

  test(`wrong passwords for one username from many IPs are blocked after ${USERNAME_FAILURES}, the right one too`, async () => {
    assert.ok(stack);
    const setup = new Client(stack.lbUrl);
    const { username, password } = await registerAndLogin(setup, "guessed", { "x-forwarded-for": "198.51.100.3" });
    setup.close();

    const clients = stack.instances.map((i) => new Client(i.url));
    const guesses = [];
    // One at a time, each from an IP of its own and over every instance: no per-IP limit applies.
    for (let n = 0; n < USERNAME_FAILURES + 3; n++) {
      guesses.push(
        await (clients[n % clients.length] as Client).post(
          "/api/auth/login",
          { username, password: `${password}-wrong-${n}` },
          { headers: { "x-forwarded-for": `203.0.113.${10 + n}` }, timeoutMs: 30_000 },
        ),
      );
    }
    const rightOne = await (clients[0] as Client).post(
      "/api/auth/login",
      { username, password },
      { headers: { "x-forwarded-for": "203.0.113.99" } },
    );
    const ttl = await redis.ttl(`ratelimit:login-fail-user:${username.toLowerCase()}`);
    for (const c of clients) c.close();
    console.log(
      `guesses ${guesses.map((r) => r.status).join(",")}; right password then: ${rightOne.status}; TTL ${ttl} s`,
    );

    assert.deepEqual(
      guesses.map((r) => r.status),
      [...Array(USERNAME_FAILURES).fill(401), ...Array(3).fill(429)],
      `${USERNAME_FAILURES} wrong passwords answer 401, the rest 429`,
    );
    assert.equal(rightOne.status, 429, "while blocked, the right password is refused too");
    assert.equal((jsonOf(rightOne) as { error: { code: string } }).error.code, "too_many_login_attempts");
    const retryAfter = Number(rightOne.headers["retry-after"]);
    assert.ok(retryAfter > 0 && retryAfter <= BLOCK_SECONDS, `retry-after ${retryAfter} s is within the block`);
    assert.ok(ttl > 0 && ttl <= BLOCK_SECONDS, `the block lasts LOGIN_BLOCK_SECONDS (TTL ${ttl} s)`);
  });

  test(`registrations from one client IP past ${REGISTRATIONS} a minute answer 429`, async () => {
    assert.ok(stack);
    const clients = stack.instances.map((i) => new Client(i.url, { maxSockets: 8 }));
    const clientIp = `192.0.2.${1 + ((randomBytes(1)[0] ?? 0) % 250)}`;
    const register = (n: number, ip: string) =>
      (clients[n % clients.length] as Client).post(
        "/api/auth/register",
        { username: `reg_${randomBytes(5).toString("hex")}`, password: "long enough password" },
        { headers: { "x-forwarded-for": ip }, timeoutMs: 30_000 },
      );
    const replies = await Promise.all(Array.from({ length: REGISTRATIONS + 3 }, (_, n) => register(n, clientIp)));
    const other = await register(0, "192.0.2.251");
    for (const c of clients) c.close();
    const statuses = countBy(replies, (r) => String(r.status));
    console.log(`registrations ${JSON.stringify(statuses)}; another client IP: ${other.status}`);

    assert.deepEqual(statuses, { 201: REGISTRATIONS, 429: 3 }, `exactly ${REGISTRATIONS} registrations succeed`);
    for (const r of replies.filter((r) => r.status === 429)) {
      assert.equal((jsonOf(r) as { error: { code: string } }).error.code, "too_many_registrations");
      const retryAfter = Number(r.headers["retry-after"]);
      assert.ok(retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter} s`);
    }
    assert.equal(other.status, 201, "the limit is per client IP");
  });
});
