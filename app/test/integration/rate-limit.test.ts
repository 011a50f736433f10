// The login rate limit is counted in Redis, so it holds across instances: with 4 instances and
// 10 logins per minute per client, 40 parallel attempts from one client IP, spread over every
// instance directly (X-Forwarded-For names the client; the app trusts one proxy hop), let at
// most 10 through and answer the rest 429 with retry-after.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, countBy, isErrorBody, registerAndLogin, startStack, stopStack, type Topology } from "./support.ts";

const INSTANCES = 4;
const LIMIT = 10;
const ATTEMPTS = 40;
const CLIENT_IP = "203.0.113.7";

let stack: Topology | undefined;

before(async () => {
  stack = await startStack("ratelimit", {
    instances: INSTANCES,
    appEnv: { LOGIN_RATE_LIMIT_PER_MINUTE: String(LIMIT) },
  });
});

after(async () => {
  await stopStack(stack);
});

test(`${ATTEMPTS} parallel logins over ${INSTANCES} instances: at most ${LIMIT} succeed`, {
  timeout: 60_000,
}, async () => {
  assert.ok(stack);
  const instances = stack.instances;
  // Register from another client IP, so registration and its login do not count against CLIENT_IP.
  const setup = new Client(stack.lbUrl);
  const { username, password } = await registerAndLogin(setup, "limited", { "x-forwarded-for": "198.51.100.1" });
  setup.close();

  const clients = instances.map((i) => new Client(i.url, { maxSockets: ATTEMPTS }));
  const started = performance.now();
  const replies = await Promise.all(
    Array.from({ length: ATTEMPTS }, (_, n) =>
      (clients[n % clients.length] as Client).post(
        "/api/auth/login",
        { username, password },
        { headers: { "x-forwarded-for": CLIENT_IP }, timeoutMs: 30_000 },
      ),
    ),
  );
  const ms = performance.now() - started;
  // Another client is not affected by CLIENT_IP's limit.
  const other = await (clients[0] as Client).post(
    "/api/auth/login",
    { username, password },
    { headers: { "x-forwarded-for": "198.51.100.2" } },
  );
  for (const c of clients) c.close();

  const statuses = countBy(replies, (r) => String(r.status));
  const okPerInstance = countBy(
    replies.filter((r) => r.status === 200),
    (r) => r.instance ?? "(none)",
  );
  const perInstance = countBy(replies, (r) => r.instance ?? "(none)");
  const limited = replies.filter((r) => r.status === 429);
  const retryAfter = limited.map((r) => Number(r.headers["retry-after"]));
  console.log(
    `${ATTEMPTS} logins in ${ms.toFixed(0)} ms: statuses ${JSON.stringify(statuses)}; per instance ${JSON.stringify(perInstance)}; ` +
      `successes per instance ${JSON.stringify(okPerInstance)}; retry-after ${Math.min(...retryAfter)}..${Math.max(...retryAfter)} s; ` +
      `another client IP: ${other.status}`,
  );

  assert.equal(Object.keys(perInstance).length, INSTANCES, "the attempts reached every instance");
  assert.ok((statuses["200"] ?? 0) <= LIMIT, `at most ${LIMIT} logins succeed (got ${statuses["200"] ?? 0})`);
  assert.ok((statuses["200"] ?? 0) >= 1, "the limit lets the first logins through");
  assert.equal((statuses["200"] ?? 0) + limited.length, ATTEMPTS, "every other attempt answers 429");
  assert.ok(
    limited.every((r) => isErrorBody(r)),
    "429s are JSON errors",
  );
  assert.ok(
    retryAfter.every((s) => Number.isInteger(s) && s >= 1 && s <= 60),
    `retry-after is 1..60 s (${retryAfter.join(",")})`,
  );
  assert.equal(other.status, 200, "the limit is per client IP");
});
