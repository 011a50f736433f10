// SIGTERM on a real instance (straight to it, not through nginx) with 20 requests in flight.
// In flight means uploads the test keeps half-sent, so they are in flight for as long as the
// test says, whatever the machine's speed. What must happen, in this order:
// 1. readiness fails (503) while the instance still accepts and serves new requests (drain);
// 2. then it refuses new connections;
// 3. the 20 uploads, finished only now, all complete with 200 and their result;
// 4. the process exits 0 by itself (0 means it finished inside SHUTDOWN_TIMEOUT_MS; no SIGKILL).

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { waitUntil } from "../net.ts";
import type { Topology } from "../topology.ts";
import { countBy, type Reply, request, startTestStack, teardown } from "./helpers.ts";

const IN_FLIGHT = 20;
// Long enough for the checks made during the drain; nothing asserts how long anything took.
const DRAIN_MS = 3000;

let stack: Topology | undefined;

before(async () => {
  stack = await startTestStack("sigterm", { instances: 1, shutdownDrainMs: DRAIN_MS, appEnv: { WORKER_THREADS: "1" } });
});

after(async () => {
  await teardown(stack);
});

/** A POST /api/work whose body is half sent until finish(). */
async function heldUpload(url: string): Promise<{ reply: Promise<Reply>; finish: () => void }> {
  const body = JSON.stringify({ text: "in flight at SIGTERM ".repeat(200), iterations: 50 });
  const half = Math.floor(body.length / 2);
  const req = http.request(`${url}/api/work`, {
    method: "POST",
    agent: false,
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
  });
  const reply = new Promise<Reply>((resolve) => {
    req.on("response", (res) => {
      let text = "";
      res.on("data", (d) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, instance: undefined, body: text }));
      res.on("error", (e) => resolve({ status: 0, instance: undefined, body: "", error: e.message }));
    });
    req.on("error", (e) => resolve({ status: 0, instance: undefined, body: "", error: e.message }));
  });
  await new Promise<void>((resolve) => req.write(body.slice(0, half), () => resolve()));
  return { reply, finish: () => req.end(body.slice(half)) };
}

test(`SIGTERM with ${IN_FLIGHT} requests in flight: drain, stop accepting, finish them all, exit 0`, {
  timeout: 120_000,
}, async (t) => {
  assert.ok(stack);
  const instance = stack.instances[0];
  assert.ok(instance?.pid, "the instance is running");
  const url = instance.url;

  const held = await Promise.all(Array.from({ length: IN_FLIGHT }, () => heldUpload(url)));
  // Accepted in order: once a later connection is answered, every held one has been accepted.
  assert.equal((await request(`${url}/livez`)).status, 200);

  const exit = stack.stopInstance(0);
  const events: string[] = [];
  await waitUntil("readiness fails after SIGTERM", async () => (await request(`${url}/readyz`)).status === 503, {
    timeoutMs: 30_000,
    intervalMs: 20,
  });
  events.push("readyz 503");
  const duringDrain = await request(`${url}/api/work`, {
    method: "POST",
    body: JSON.stringify({ text: "arrives during the drain", iterations: 1 }),
  });
  events.push(`new request during the drain: ${duringDrain.status}`);
  await waitUntil(
    "new connections refused",
    async () => (await request(`${url}/livez`)).error?.includes("ECONNREFUSED") === true,
    {
      timeoutMs: 60_000,
      intervalMs: 20,
    },
  );
  events.push("new connections refused");

  for (const h of held) h.finish();
  const replies = await Promise.all(held.map((h) => h.reply));
  const exitInfo = await exit;
  const statuses = countBy(replies, (r) => (r.status === 0 ? `error: ${r.error}` : String(r.status)));
  const summary = `${events.join(" -> ")} -> held uploads finished: ${JSON.stringify(statuses)}; exit ${exitInfo?.code}${exitInfo?.killed ? " (SIGKILLed)" : ""}`;
  t.diagnostic(summary);
  console.log(`observed: ${summary}`);

  assert.equal(duringDrain.status, 200, "a request arriving during the drain is served");
  assert.deepEqual(statuses, { 200: IN_FLIGHT }, "every request in flight at the stop completed with 200");
  for (const r of replies) assert.match(r.body, /"digest":"[0-9a-f]{64}"/, "each reply carries the work result");
  assert.ok(exitInfo, "the instance was running at SIGTERM");
  assert.equal(exitInfo.killed, false, "the instance exited by itself (no SIGKILL)");
  assert.equal(exitInfo.code, 0, `the instance exited 0 (code ${exitInfo.code}, signal ${exitInfo.signal})`);
});
