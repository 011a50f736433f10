// Issue 15, POST /api/work under attack, on the real local topology (one instance, one worker
// thread, no queue):
// - per client: past WORK_RATE_LIMIT_PER_MINUTE a client gets 429 too_many_requests with
//   retry-after; another client is not affected;
// - queue before parse: with the worker pool full, a request is refused 503 worker_queue_full
//   while its 3 MB body is still being sent, i.e. before the body is read, let alone parsed;
// - a bad body is parsed off the event loop and still answers 400 with the usual error shape.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { Client, jsonOf, startStack, stopStack, type Topology } from "./support.ts";

const LIMIT = 4;
const heavy = { text: "x".repeat(500_000), iterations: 1000 };

describe("POST /api/work limits", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let url = "";

  before(async () => {
    stack = await startStack("worklimits", {
      instances: 1,
      appEnv: { WORK_RATE_LIMIT_PER_MINUTE: String(LIMIT), WORKER_THREADS: "1", WORKER_QUEUE_MAX: "0" },
    });
    url = (stack.instances[0] as { url: string }).url;
  });

  after(async () => {
    await stopStack(stack);
  });

  test(`a client past ${LIMIT} requests a minute gets 429`, async () => {
    const client = new Client(url);
    const replies = [];
    for (let n = 0; n < LIMIT + 2; n++) {
      replies.push(
        await client.post(
          "/api/work",
          { text: "a b c", iterations: 1 },
          { headers: { "x-forwarded-for": "203.0.113.7" } },
        ),
      );
    }
    const other = await client.post("/api/work", { text: "a" }, { headers: { "x-forwarded-for": "203.0.113.8" } });
    client.close();
    assert.deepEqual(
      replies.map((r) => r.status),
      [...Array(LIMIT).fill(200), 429, 429],
    );
    const limited = replies.at(-1);
    assert.ok(limited);
    assert.equal((jsonOf(limited) as { error: { code: string } }).error.code, "too_many_requests");
    const retryAfter = Number(limited.headers["retry-after"]);
    assert.ok(retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter} s`);
    assert.equal(other.status, 200, "another client is not affected");
  });

  test("with the pool full, a 3 MB body is refused before it has been sent", async () => {
    const busy = new Client(url);
    const running = busy.post("/api/work", heavy, {
      headers: { "x-forwarded-for": "203.0.113.20" },
      timeoutMs: 60_000,
    });
    // Wait until the heavy task holds the pool's only place: a tiny probe is then refused. A
    // probe that gets in first runs in no time and leaves; each comes from an address of its
    // own, so the per-client limit never answers for the pool.
    for (let probe = 0; ; probe++) {
      assert.ok(probe < 2000, "the heavy task was admitted");
      const reply = await busy.post(
        "/api/work",
        { text: "probe", iterations: 1 },
        { headers: { "x-forwarded-for": `10.${Math.floor(probe / 250)}.0.${probe % 250}` } },
      );
      if (reply.status === 503) break;
      assert.equal(reply.status, 200, `a probe while the pool is free: ${reply.status} ${reply.text}`);
    }

    const total = 3 * 1024 * 1024 - 16;
    const first = Buffer.from(`{"text":"${"y".repeat(64 * 1024)}`);
    const req = http.request(`${url}/api/work`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": String(total),
        "x-forwarded-for": "203.0.113.21",
      },
    });
    req.on("error", () => undefined);
    req.write(first);
    // Only a part of the body is on its way; an answer now cannot come from a parsed body.
    const early = await new Promise<{ status: number; body: string } | "no answer">((resolve) => {
      const timer = setTimeout(() => resolve("no answer"), 10_000);
      req.on("response", (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
    });
    req.destroy();
    const done = await running;
    busy.close();
    console.log(`while the pool was busy: ${JSON.stringify(early).slice(0, 200)}; the busy task: ${done.status}`);
    if (early === "no answer") assert.fail("no refusal before the rest of the body was sent");
    assert.equal(early.status, 503);
    assert.equal((JSON.parse(early.body) as { error: { code: string } }).error.code, "worker_queue_full");
    assert.equal(done.status, 200);
  });

  test("bad bodies answer 400 with the usual error shape", async () => {
    const client = new Client(url);
    const bad = await client.request("/api/work", {
      method: "POST",
      body: `{"text": ${"[".repeat(10)}`,
      headers: { "content-type": "application/json", "x-forwarded-for": "203.0.113.30" },
    });
    const wrong = await client.post("/api/work", { text: 5 }, { headers: { "x-forwarded-for": "203.0.113.31" } });
    client.close();
    assert.equal(bad.status, 400);
    assert.equal((jsonOf(bad) as { error: { code: string } }).error.code, "invalid_json");
    assert.equal(wrong.status, 400);
    assert.equal((jsonOf(wrong) as { error: { code: string } }).error.code, "invalid_body");
  });
});
