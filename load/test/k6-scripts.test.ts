// The k6 scripts' own behaviour, run in Node on the k6 stand-in (load/test/k6-fake.ts): a
// refused login backs off instead of storming, a non-JSON 5xx does not throw out of an
// iteration, and handleSummary keeps k6's own summary and writes no file of its own.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { clusterShape, type VuShape } from "../shapes.ts";
import { type Call, fake, loadScript } from "./k6-fake.ts";

type Common = {
  sessionIteration: (shape: VuShape, data: { run: string; itemIds: number[] }) => void;
  mixSetup: (shape: unknown) => unknown;
};

const shape = clusterShape("sessions", 100) as VuShape;
const data = { run: "t", itemIds: [1, 2, 3] };
const realRandom = Math.random;

afterEach(() => {
  Math.random = realRandom;
  fake.reset();
});

const isLogin = (c: Call) => c.url.endsWith("/api/auth/login");
const isRegister = (c: Call) => c.url.endsWith("/api/auth/register");

test("a sessions VU whose login is refused waits before it tries again, and registers once", async () => {
  const common = (await loadScript("common.ts", {}, "retry")) as unknown as Common;
  fake.respond = (c) =>
    isRegister(c)
      ? { status: 201, body: "{}", contentType: "application/json" }
      : { status: 429, body: "{}", contentType: "application/json" };
  for (let i = 0; i < 5; i++) common.sessionIteration(shape, data); // no throw: a throw would restart it at once
  assert.equal(fake.calls.filter(isLogin).length, 5, "one login try per iteration");
  assert.equal(fake.calls.filter(isRegister).length, 1, "registered once, not on every try");
  assert.equal(fake.sleeps.length, 5, "every refused try is followed by a pause");
  assert.ok(
    fake.sleeps.every((s) => s >= 1),
    `pauses ${fake.sleeps.join(", ")}`,
  );
  assert.ok((fake.sleeps.at(-1) ?? 0) > (fake.sleeps[0] ?? 0), "the pause grows while the refusals go on");
  assert.ok(
    fake.checks.some((c) => c.name === "the VU logged in" && !c.ok),
    "a refused login fails a check",
  );

  // once the limit lets it in, the VU logs in and goes on with its mix
  fake.reset();
  fake.respond = (c) =>
    isLogin(c)
      ? { status: 200, body: "{}", contentType: "application/json", sid: "s1" }
      : { status: 200, body: JSON.stringify({ username: "load_t_1_1" }), contentType: "application/json" };
  Math.random = () => 0.01; // the first action of the mix: GET /api/me
  common.sessionIteration(shape, data);
  assert.equal(fake.calls.filter(isRegister).length, 0);
  assert.deepEqual(
    fake.calls.map((c) => c.url.replace(/^https?:\/\/[^/]+/, "")),
    ["/api/auth/login", "/api/me"],
  );
});

test("a non-JSON 5xx (nginx's HTML error page) fails a check instead of throwing out of the iteration", async () => {
  const common = (await loadScript("common.ts", {}, "html-5xx")) as unknown as Common;
  fake.respond = (c) =>
    isLogin(c)
      ? { status: 200, body: "{}", contentType: "application/json", sid: "s1" }
      : isRegister(c)
        ? { status: 201, body: "{}", contentType: "application/json" }
        : { status: 502, body: "<html><body>502 Bad Gateway</body></html>", contentType: "text/html" };
  for (const u of [0.01, 0.45, 0.95]) {
    // GET /api/me, write-then-read, a list: each answered with an HTML 502
    Math.random = () => u;
    common.sessionIteration(shape, data);
  }
  assert.ok(fake.checks.length > 0 && fake.checks.every((c) => c.name === "the VU logged in" || !c.ok));
});

test("handleSummary keeps k6's own summary and writes no file; SUMMARY_TO_STDOUT=1 prints the JSON between markers", async () => {
  const script = await loadScript("smoke.ts", {}, "summary");
  assert.equal(typeof script.handleSummary, "function");
  const summaryData = { metrics: { http_reqs: { type: "counter", values: { count: 3 } } } };
  // k6 prints its own end-of-test summary for a falsy result, and no path means no folder to miss
  assert.equal(script.handleSummary?.(summaryData), undefined);
  const cluster = await loadScript("smoke.ts", { SUMMARY_TO_STDOUT: "1" }, "summary-cluster");
  const out = cluster.handleSummary?.(summaryData) as Record<string, string>;
  assert.deepEqual(Object.keys(out), ["stdout"]);
  const m = /----- nodescale k6 summary begin -----\n(.*)\n----- nodescale k6 summary end -----/.exec(out.stdout ?? "");
  assert.ok(m);
  assert.deepEqual(JSON.parse(m[1] as string), summaryData);
});
