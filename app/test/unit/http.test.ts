import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startApp } from "../support.ts";

type Running = Awaited<ReturnType<typeof startApp>>;

describe("HTTP surface without backing services", () => {
  let app: Running;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  it("answers liveness and readiness, with dependency status in the body", async () => {
    const live = await fetch(`${app.url}/livez`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${app.url}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { status: string; dependencies: { checkedAt: unknown } };
    assert.match(String(body.dependencies.checkedAt), /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(body, {
      status: "ready",
      dependencies: { redis: "down", primary: "down", replicas: {}, checkedAt: body.dependencies.checkedAt },
    });
  });

  it("names the instance and the request on every response, errors included", async () => {
    const response = await fetch(`${app.url}/no/such/route`, { headers: { "x-request-id": "req-42" } });
    assert.equal(response.status, 404);
    assert.equal(response.headers.get("x-instance"), "unit-1");
    assert.equal(response.headers.get("x-request-id"), "req-42");
    assert.deepEqual(await response.json(), {
      error: { code: "not_found", message: "No route for GET /no/such/route" },
    });
  });

  it("replaces a malformed request id with a generated one", async () => {
    const response = await fetch(`${app.url}/livez`, { headers: { "x-request-id": "bad id\twith spaces" } });
    assert.match(response.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });

  it("runs CPU work on the pool and answers its result", async () => {
    const response = await fetch(`${app.url}/api/work`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "a b a", iterations: 3 }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { iterations: number; words: number };
    assert.equal(body.iterations, 3);
    assert.equal(body.words, 3);
  });

  const badWork: [string, RequestInit, number, string][] = [
    ["no content type", { body: "text" }, 415, "unsupported_media_type"],
    ["malformed JSON", { body: "{", headers: { "content-type": "application/json" } }, 400, "invalid_json"],
    [
      "an unknown field",
      { body: '{"text":"a","extra":1}', headers: { "content-type": "application/json" } },
      400,
      "invalid_body",
    ],
    [
      "a wrong type",
      { body: '{"text":"a","iterations":"9"}', headers: { "content-type": "application/json" } },
      400,
      "invalid_body",
    ],
    [
      "too many iterations",
      { body: '{"text":"a","iterations":1001}', headers: { "content-type": "application/json" } },
      400,
      "invalid_body",
    ],
    [
      "an oversized body",
      { body: `{"text":"${"x".repeat(4 * 1024 * 1024)}"}`, headers: { "content-type": "application/json" } },
      413,
      "payload_too_large",
    ],
  ];
  for (const [name, init, status, code] of badWork) {
    it(`rejects ${name} with ${status} JSON`, async () => {
      const response = await fetch(`${app.url}/api/work`, { method: "POST", ...init });
      assert.equal(response.status, status);
      const body = (await response.json()) as { error: { code: string } };
      assert.equal(body.error.code, code);
    });
  }

  it("labels request metrics by route template, never by raw path", async () => {
    // Counts are read before and after this test's own requests, so no other test's requests
    // (or their order) matter.
    const workCount = (text: string) =>
      Number(
        /http_request_duration_seconds_count\{method="POST",route="\/api\/work",status_code="200"\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
    const before = workCount(await (await fetch(`${app.url}/metrics`)).text());
    const work = await fetch(`${app.url}/api/work`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "counted", iterations: 1 }),
    });
    assert.equal(work.status, 200);
    await fetch(`${app.url}/nothing-here-${Date.now()}`);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    assert.equal(workCount(text), before + 1, "the request is counted once under /api/work");
    assert.match(text, /http_request_duration_seconds_count\{method="GET",route="unmatched",status_code="404"\}/);
    assert.doesNotMatch(text, /route="\/nothing-here/);
    assert.match(text, /nodejs_eventloop_utilization_ratio \d/);
    assert.match(text, /nodescale_redis_connected 0/);
  });

  it("compresses /metrics (over 1 KiB) with brotli or gzip, and leaves a small answer alone", async () => {
    for (const encoding of ["br", "gzip"]) {
      const metrics = await fetch(`${app.url}/metrics`, { headers: { "accept-encoding": encoding } });
      await metrics.arrayBuffer();
      assert.equal(metrics.headers.get("content-encoding"), encoding);
    }
    const small = await fetch(`${app.url}/livez`, { headers: { "accept-encoding": "br" } });
    await small.arrayBuffer();
    assert.equal(small.headers.get("content-encoding"), null);
  });
});

// Issue 13, chart item 5: an Ingress routes every path of the app's port to the public, so
// with METRICS_PORT set the scrape and the dependency detail move to that port only.
describe("an internal port (METRICS_PORT)", () => {
  let app: Running;
  before(async () => {
    app = await startApp({ METRICS_PORT: "9464" });
  });
  after(() => app.close());

  it("serves /metrics and the dependency detail only on the internal port", async () => {
    assert.ok(app.internalUrl, "the internal port listens");
    const publicMetrics = await fetch(`${app.url}/metrics`);
    assert.equal(publicMetrics.status, 404, "no /metrics on the public port");
    await publicMetrics.arrayBuffer();
    const publicReady = await fetch(`${app.url}/readyz`);
    assert.equal(publicReady.status, 200, "readiness still answers on the public port (the probes use it)");
    assert.deepEqual(await publicReady.json(), { status: "ready" }, "no dependency detail on the public port");

    const metrics = await fetch(`${app.internalUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /http_request_duration_seconds_count\{method="GET",route="\/readyz"/);
    const ready = await fetch(`${app.internalUrl}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { dependencies?: { redis?: string; primary?: string } };
    assert.deepEqual([body.dependencies?.redis, body.dependencies?.primary], ["down", "down"]);
    assert.equal((await fetch(`${app.internalUrl}/livez`)).status, 200);
  });
});

describe("a database outage", () => {
  let app: Running;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  it("answers 503 with retry-after, not 500, when the primary cannot be reached", async () => {
    const response = await fetch(`${app.url}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "nobody", password: "long enough password" }),
    });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "1");
    assert.deepEqual(await response.json(), {
      error: { code: "database_unavailable", message: "The database is unavailable; retry shortly." },
    });
  });
});
