// Unit tests of the shapes module and of the k6 import check (no services needed).

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { checkImports, problemWith, specifiers } from "../check.ts";
import {
  arrivalsBy,
  clusterShape,
  durationOf,
  k6Thresholds,
  peakOf,
  pick,
  rampStages,
  SHAPE_NAMES,
  scale,
  scaleTo,
  sidCookie,
  targetAt,
} from "../shapes.ts";

test("ramp goes from 100 req/s to the target in 1-2-5 steps, each ramped then held", () => {
  const stages = rampStages(100, 1000, 30, 90);
  assert.deepEqual(
    stages.map((s) => s.target),
    [100, 100, 200, 200, 500, 500, 1000, 1000],
  );
  assert.deepEqual(
    stages.map((s) => s.durationS),
    [30, 90, 30, 90, 30, 90, 30, 90],
  );
  assert.deepEqual(
    rampStages(100, 5000, 1, 1)
      .filter((_, i) => i % 2 === 1)
      .map((s) => s.target),
    [100, 200, 500, 1000, 2000, 5000],
  );
});

test("scale() keeps the structure, mix and thresholds; only rates and durations change", () => {
  for (const name of SHAPE_NAMES) {
    const cluster = clusterShape(name, 1000);
    const local = scale(cluster, { rate: 0.5, time: 0.1 });
    assert.equal(local.stages.length, cluster.stages.length, name);
    assert.deepEqual(local.mix, cluster.mix, name);
    assert.deepEqual(local.thresholds, cluster.thresholds, name);
    assert.equal(local.executor, cluster.executor, name);
    cluster.stages.forEach((s, i) => {
      assert.equal(local.stages[i]?.target, s.target === 0 ? 0 : Math.max(1, Math.round(s.target * 0.5)), name);
    });
  }
});

test("scaleTo() hits the requested peak and about the requested duration", () => {
  const local = scaleTo(clusterShape("ramp", 1000), { peak: 250, durationS: 60 });
  assert.equal(peakOf(local), 250);
  assert.ok(Math.abs(durationOf(local) - 60) <= local.stages.length, `duration ${durationOf(local)}`);
});

test("the arrival schedule integrates the stages", () => {
  const shape = clusterShape("smoke", 1000);
  if (shape.executor !== "ramping-arrival-rate") throw new Error("smoke is an arrival shape");
  const flat = { ...shape, startRate: 10, stages: [{ durationS: 5, target: 10 }] };
  assert.equal(arrivalsBy(flat, 5), 50);
  const ramp = { ...shape, startRate: 0, stages: [{ durationS: 10, target: 100 }] };
  assert.equal(arrivalsBy(ramp, 10), 500);
  assert.equal(targetAt(ramp, 5), 50);
  assert.equal(targetAt(ramp, 20), 100);
});

test("pick() follows the weights", () => {
  const mix = [
    { endpoint: "me" as const, weight: 1 },
    { endpoint: "livez" as const, weight: 3 },
  ];
  assert.equal(pick(mix, 0), "me");
  assert.equal(pick(mix, 0.24), "me");
  assert.equal(pick(mix, 0.26), "livez");
  assert.equal(pick(mix, 0.999), "livez");
});

test("k6 thresholds carry the shape's numbers; the breakpoint aborts on failure", () => {
  const t = k6Thresholds(clusterShape("ramp", 1000).thresholds);
  assert.deepEqual(t.http_req_failed, ["rate<=0.01"]);
  assert.deepEqual(t["http_req_duration{kind:api}"], ["p(95)<300", "p(99)<1000"]);
  const b = k6Thresholds(clusterShape("breakpoint", 1000).thresholds);
  assert.deepEqual(b.http_req_failed, [{ threshold: "rate<=0.01", abortOnFail: true, delayAbortEval: "10s" }]);
});

test("sidCookie() finds the session cookie", () => {
  assert.equal(sidCookie("sid=s%3Aabc.def; Path=/; HttpOnly; SameSite=Lax"), "sid=s%3Aabc.def");
  assert.equal(sidCookie(["other=1", "sid=x; Path=/"]), "sid=x");
  assert.equal(sidCookie(undefined), undefined);
});

test("the import check refuses Node builtins, remote URLs and bare packages", () => {
  assert.equal(problemWith("k6/http"), null);
  assert.equal(problemWith("k6"), null);
  assert.equal(problemWith("../shapes.ts"), null);
  assert.match(problemWith("node:fs") ?? "", /Node builtin/);
  assert.match(problemWith("fs") ?? "", /Node builtin/);
  assert.match(problemWith("http") ?? "", /Node builtin/);
  assert.match(problemWith("https://jslib.k6.io/k6-utils/1.4.0/index.js") ?? "", /remote/);
  assert.match(problemWith("lodash") ?? "", /bare package/);
  assert.deepEqual(
    specifiers(
      `import http from "k6/http";\nimport type { X } from './a.ts';\nconst m = await import("node:os");\n// import "fs";`,
    ),
    ["k6/http", "./a.ts", "node:os"],
  );
});

test("every k6 script in load/scenarios passes the import check", () => {
  const dir = join(import.meta.dirname, "..", "scenarios");
  const scripts = readdirSync(dir)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(dir, f));
  assert.deepEqual(checkImports(scripts), []);
});
