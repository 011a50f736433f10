// The options sweep: every k6 script's `options`, for every shape across TARGET_RPS from 1 to
// 100,000 (log scale, plus the values issue 16 names), checked against what k6 accepts
// (load/test/k6-grammar.ts): whole VU counts >= 1, durations in k6's grammar, the executor's
// own option names, and threshold expressions that parse for their metric's type.

import assert from "node:assert/strict";
import { test } from "node:test";
import { SHAPE_NAMES } from "../shapes.ts";
// k6-fake.ts installs its module hooks when imported; the scripts are loaded later, dynamically
import { loadScript } from "./k6-fake.ts";
import { durationProblem, METRIC_TYPES, optionsProblems, parseThreshold, parseThresholdKey } from "./k6-grammar.ts";

/** 1 to 100,000 on a log scale (10 points a decade), the issue's examples, and neighbours of the step edges. */
const SWEEP: number[] = [
  ...new Set([
    ...Array.from({ length: 51 }, (_, i) => Math.round(10 ** (i / 10))),
    ...[
      1.5, 2.4, 99, 100, 101, 109, 110, 111, 150, 199, 250, 750, 923, 999, 1000, 1001, 1250, 9950, 19_999, 20_000,
      99_999,
    ],
  ]),
].sort((a, b) => a - b);

const TIME_SCALES = ["", "0.1", "0.01", "2.5"];

test("the grammar itself: durations, threshold expressions and keys as k6 reads them", () => {
  for (const ok of ["90s", "1m30s", "1.5h", "300ms", "0", "10", "2d", "1d12h", "500us", "0.5s"])
    assert.equal(durationProblem(ok), null, ok);
  for (const bad of ["NaNs", "s", "10 s", "-5s", "1y", "Infinitys", "", "1d-2h", "abc"])
    assert.notEqual(durationProblem(bad), null, bad);
  assert.deepEqual(parseThreshold("p(95)<300", "trend"), {
    aggregation: "p",
    percentile: 95,
    operator: "<",
    value: 300,
  });
  assert.deepEqual(parseThreshold("rate<=0.01", "rate"), { aggregation: "rate", operator: "<=", value: 0.01 });
  assert.deepEqual(parseThreshold("count == 0", "counter"), { aggregation: "count", operator: "==", value: 0 });
  for (const [expr, type] of [
    ["p(95)<300", "rate"],
    ["p(101)<1", "trend"],
    ["avg<abc", "trend"],
    ["rate", "rate"],
    ["value<1", "counter"],
    ["count<=NaN", "counter"],
  ] as const)
    assert.ok("problem" in parseThreshold(expr, type), `${expr} on a ${type}`);
  assert.deepEqual(parseThresholdKey("http_req_duration{scenario:ramp,kind:api}"), {
    metric: "http_req_duration",
    tags: { scenario: "ramp", kind: "api" },
  });
  assert.ok("problem" in parseThresholdKey("http_req_duration{kind}"));
  assert.deepEqual(
    optionsProblems(
      {
        scenarios: {
          r: {
            executor: "ramping-arrival-rate",
            startRate: 1,
            timeUnit: "1s",
            preAllocatedVUs: 62.5,
            maxVUs: 250,
            stages: [{ duration: "NaNs", target: 1 }],
            rate: 5,
          },
        },
        thresholds: { "http_req_failed{scenario:x}": ["p(95)<1"] },
      },
      METRIC_TYPES,
    ).length,
    5,
  );
});

test(`every scenario's options are valid k6 options for TARGET_RPS across ${SWEEP.length} values from 1 to 100,000`, async () => {
  const problems: string[] = [];
  let evaluated = 0;
  for (const name of SHAPE_NAMES) {
    for (const rps of SWEEP) {
      for (const scale of TIME_SCALES) {
        const env: Record<string, string> = { TARGET_RPS: String(rps), ...(scale ? { SHAPE_TIME_SCALE: scale } : {}) };
        const script = await loadScript(`${name}.ts`, env, `${name}-${rps}-${scale}`);
        evaluated++;
        for (const p of optionsProblems(script.options, METRIC_TYPES))
          problems.push(`${name}.ts TARGET_RPS=${rps}${scale ? ` SHAPE_TIME_SCALE=${scale}` : ""}: ${p}`);
        const scenarios = Object.keys(script.options.scenarios as object);
        assert.deepEqual(scenarios, [name], `${name}.ts runs the ${name} scenario`);
      }
    }
  }
  assert.equal(evaluated, SHAPE_NAMES.length * SWEEP.length * TIME_SCALES.length);
  // the first few are enough to see what is wrong
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
});

test("every threshold but the auth one is held to the scenario, so setup() traffic is left out", async () => {
  for (const name of SHAPE_NAMES) {
    const script = await loadScript(`${name}.ts`, { TARGET_RPS: "1000" }, `${name}-tags`);
    const keys = Object.keys(script.options.thresholds as object);
    assert.ok(keys.length > 0, name);
    for (const key of keys) {
      if (key === "http_req_duration{kind:auth}") continue;
      const k = parseThresholdKey(key);
      assert.ok(!("problem" in k) && k.tags.scenario === name, `${name}: ${key} is not filtered on scenario:${name}`);
    }
  }
});

test("breakpoint stops at its first dropped arrival; the others fail on one", async () => {
  for (const name of SHAPE_NAMES) {
    const script = await loadScript(`${name}.ts`, { TARGET_RPS: "1000" }, `${name}-drop`);
    const rules = (script.options.thresholds as Record<string, unknown[]>)[`dropped_iterations{scenario:${name}}`];
    assert.ok(rules, `${name}: no dropped_iterations threshold`);
    const [rule] = rules;
    if (name === "breakpoint")
      assert.deepEqual(rule, { threshold: "count<=0", abortOnFail: true, delayAbortEval: "10s" });
    else assert.equal(rule, "count<=0", name);
  }
});

test("SHAPE_TIME_SCALE or TARGET_RPS that is not a positive number stops the script before k6 gets NaN", async () => {
  const bad: Record<string, string>[] = [
    { SHAPE_TIME_SCALE: "abc" },
    { SHAPE_TIME_SCALE: "0" },
    { SHAPE_TIME_SCALE: "-1" },
    { TARGET_RPS: "abc" },
    { TARGET_RPS: "0.5" },
  ];
  for (const [i, env] of bad.entries()) {
    await assert.rejects(loadScript("ramp.ts", env, `bad-${i}`), /expected a number/, JSON.stringify(env));
  }
});
