// redis-outage: Redis (the host's, from local/) stops under the running release. The pods
// must stay live and Ready (Redis is shared by every pod: failing readiness on it would take
// the whole Service out at once), the session routes answer 503 JSON, and when Redis is back
// the same pods serve logins again, without a restart.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Client } from "../lib/http.ts";
import { appPods, backingServices, eventually, isReady, type Json, realCluster, serviceUrl, sleep } from "./lib.ts";

const c = await realCluster();
const stack = backingServices(c);
const base = await serviceUrl(c);
const clients: Client[] = [];
after(async () => {
  for (const x of clients) x.close();
  // Never leave the cluster without Redis, whatever failed.
  await stack.startRedis().catch(() => {});
});
function client(): Client {
  const x = new Client(base);
  clients.push(x);
  return x;
}

const restarts = (pods: Json[]) =>
  Object.fromEntries(
    pods.map((p) => [
      p.metadata.name,
      (p.status.containerStatuses ?? []).reduce((n: number, s: Json) => n + s.restartCount, 0),
    ]),
  );

test("redis-outage: pods stay live and Ready, session routes answer 503 JSON, and recover without a restart", async () => {
  const user = client();
  await user.login("real-redis-outage");
  assert.equal((await user.request("GET", "/api/me")).status, 200, "logged in before the outage");
  const before = await appPods(c);
  assert.ok(before.length >= 2 && before.every(isReady), "every app pod Ready before the outage");
  const restartsBefore = restarts(before);

  await stack.stopRedis();
  const me = await eventually("GET /api/me answers 503 while Redis is down", 60_000, async () => {
    const r = await user.request("GET", "/api/me");
    return r.status === 503 ? r : undefined;
  });
  const error = JSON.parse(me.body).error;
  assert.ok(error?.code && error?.message, `a JSON error with a code (${me.body})`);
  console.log(`GET /api/me with Redis down: HTTP 503 ${me.body}`);

  // Three readiness periods (the chart probes every 2 s, failing after 2): every pod stays
  // Ready and live throughout, and the probes' own routes answer.
  const anonymous = client();
  for (let i = 0; i < 6; i++) {
    const pods = await appPods(c);
    assert.deepEqual(
      pods.filter((p: Json) => !isReady(p)).map((p: Json) => p.metadata.name),
      [],
      "no pod left the Service while Redis was down",
    );
    assert.equal((await anonymous.request("GET", "/livez")).status, 200, "/livez 200 while Redis is down");
    const ready = await anonymous.request("GET", "/readyz");
    assert.equal(ready.status, 200, `/readyz 200 while Redis is down (${ready.body})`);
    await sleep(2000);
  }

  await stack.startRedis();
  const back = client();
  await eventually("a login works again once Redis is back", 60_000, async () => {
    try {
      await back.login("real-redis-back");
      return true;
    } catch {
      return false;
    }
  });
  assert.equal((await back.request("GET", "/api/me")).status, 200, "the new session is served");
  const after = await appPods(c);
  assert.deepEqual(restarts(after), restartsBefore, "no container restarted");
  assert.deepEqual(
    after.map((p: Json) => p.metadata.name).sort(),
    before.map((p: Json) => p.metadata.name).sort(),
    "the same pods served before, during and after",
  );
});
