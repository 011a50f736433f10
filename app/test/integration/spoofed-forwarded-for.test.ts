// Issue 15: the login limit could be walked around wherever no proxy stands in front of an
// instance (PM2 on a VM, a port-forward): TRUST_PROXY defaulted to 1, so a client's own
// X-Forwarded-For became its IP. An instance on the app's default TRUST_PROXY (the variable
// left empty, which the config reads as unset) is sent 30 wrong passwords straight, each with a
// new X-Forwarded-For: at most LOGIN_RATE_LIMIT_PER_MINUTE are answered before 429, and the
// count is kept under the connection's own address.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { Client, countBy, jsonOf, registerAndLogin, startStack, stopStack, type Topology } from "./support.ts";

const LIMIT = 5;
const ATTEMPTS = 30;

describe("spoofed X-Forwarded-For straight to an instance", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let redis: Redis;

  before(async () => {
    stack = await startStack("spoofxff", {
      instances: 1,
      appEnv: {
        // Empty means unset: the app's own default, as on a VM with nothing in front.
        TRUST_PROXY: "",
        LOGIN_RATE_LIMIT_PER_MINUTE: String(LIMIT),
        // Only the per-IP limit is under test here.
        LOGIN_FAILURES_PER_USERNAME: "1000",
      },
    });
    redis = new Redis(stack.redisUrl);
  });

  after(async () => {
    redis?.disconnect();
    await stopStack(stack);
  });

  test(`${ATTEMPTS} wrong passwords, each with a new X-Forwarded-For: at most ${LIMIT} answered, then 429`, async () => {
    assert.ok(stack);
    const instance = stack.instances[0];
    assert.ok(instance);
    const client = new Client(instance.url);
    const setup = new Client(instance.url);
    const { username, password } = await registerAndLogin(setup, "spoofed");
    setup.close();
    // The registration's own login counted too: start from a fresh window.
    await redis.del("ratelimit:login:127.0.0.1");

    const replies = [];
    for (let n = 0; n < ATTEMPTS; n++) {
      const spoofed = `10.${randomBytes(1)[0]}.${randomBytes(1)[0]}.${1 + n}`;
      replies.push(
        await client.post(
          "/api/auth/login",
          { username, password: `${password}-wrong-${n}` },
          { headers: { "x-forwarded-for": spoofed }, timeoutMs: 30_000 },
        ),
      );
    }
    client.close();
    const statuses = countBy(replies, (r) => String(r.status));
    const counted = await redis.get("ratelimit:login:127.0.0.1");
    console.log(`statuses ${JSON.stringify(statuses)}; attempts counted for 127.0.0.1: ${counted}`);

    assert.deepEqual(statuses, { 401: LIMIT, 429: ATTEMPTS - LIMIT }, `at most ${LIMIT} attempts get an answer`);
    const limited = replies.filter((r) => r.status === 429);
    assert.ok(
      limited.every((r) => (jsonOf(r) as { error: { code: string } }).error.code === "too_many_login_attempts"),
      "429s say why",
    );
    assert.equal(counted, String(ATTEMPTS), "every attempt counted against the connection's address");
  });
});
