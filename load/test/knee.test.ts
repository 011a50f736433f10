// The knee of a climb and the arrival schedule, on fixed inputs worked out by hand
// (2-second windows here to keep the arithmetic small; the bench uses 5).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kneeLabel, kneeOf, kneeSpread, windowVerdict } from "../runner/knee.ts";
import { arrivalTime } from "../runner/schedule.ts";
import type { RawSecond } from "../runner/stats.ts";
import { API_MIX, type ArrivalShape, arrivalsBy, type Thresholds } from "../shapes.ts";

const DROP = Number.POSITIVE_INFINITY;
const T: Thresholds = { maxErrorRate: 0.01, p95Ms: 300, p99Ms: 1000, authP95Ms: 3000, abortOnFail: true };
const fill = (n: number, ms: number) => Array<number>(n).fill(ms);
/** A second of `offered` arrivals: `dropped` drops, `errors` failed, the rest served in `ms`. */
const sec = (t: number, offered: number, o: { dropped?: number; errors?: number; ms?: number } = {}): RawSecond => {
  const dropped = o.dropped ?? 0;
  const errors = o.errors ?? 0;
  const sent = offered - dropped;
  return {
    t,
    offered,
    ok: sent - errors,
    errors,
    dropped,
    latencies: [...fill(sent, o.ms ?? 10), ...fill(dropped, DROP)],
  };
};

describe("windowVerdict", () => {
  it("fails on p99 alone: 98 at 10 ms and 2 at 1.5 s (p95 = index 94, p99 = index 98)", () => {
    const s: RawSecond = {
      t: 0,
      offered: 100,
      ok: 100,
      errors: 0,
      dropped: 0,
      latencies: [...fill(98, 10), 1500, 1500],
    };
    const v = windowVerdict([s], T);
    assert.equal(v?.p95, 10);
    assert.equal(v?.p99, 1500);
    assert.equal(v?.why, "p99 1500 ms >= 1000 ms");
  });

  it("fails on the failed share before the latencies", () => {
    const v = windowVerdict([sec(0, 1000, { errors: 8 })], { ...T, maxErrorRate: 0.005 });
    assert.equal(v?.servedRatio, 0.992);
    assert.equal(v?.why, "failed 0.80 % > 0.5 %");
  });

  it("says nothing of a window nobody offered anything in", () => {
    assert.equal(windowVerdict([{ t: 0, offered: 0, ok: 0, errors: 0, dropped: 0, latencies: [] }], T), null);
    assert.equal(windowVerdict([], T), null);
  });
});

describe("kneeOf", () => {
  it("finds the highest offered rate a window held, with drops counted in p99 and served/offered", () => {
    const secs = [
      sec(0, 100),
      sec(1, 200),
      sec(2, 300),
      sec(3, 400, { dropped: 4 }),
      sec(4, 500),
      sec(5, 600, { ms: 500 }),
    ];
    // windows: 0-2 150/s; 1-3 250/s; 2-4 350/s (696 of 700 served, p99 = index 692 -> 10 ms);
    // 3-5 450/s (896 of 900, p99 = index 890 -> 10 ms); 4-6 550/s p95 500 ms: fails
    const k = kneeOf(secs, T, 2);
    assert.equal(k.rps, 450);
    assert.equal(k.reached, true);
    assert.deepEqual([k.held?.fromS, k.held?.toS], [3, 5]);
    assert.deepEqual([k.failed?.fromS, k.failed?.toS, k.failed?.offeredRps], [4, 6, 550]);
    assert.equal(k.failed?.why, "p95 500 ms >= 300 ms");
    assert.equal(kneeLabel(k), "450 req/s");
  });

  it("is not decided by a failure below the best window", () => {
    // 8 drops in second 3: window 2-4 serves 692 of 700 (98.9 %) and fails; 3-5 serves
    // 892 of 900 (99.1 %) with p99 = index 890 -> 10 ms and holds; 4-6 fails on p95
    const secs = [
      sec(0, 100),
      sec(1, 200),
      sec(2, 300),
      sec(3, 400, { dropped: 8 }),
      sec(4, 500),
      sec(5, 600, { ms: 500 }),
    ];
    const k = kneeOf(secs, T, 2);
    assert.equal(k.rps, 450);
    assert.equal(k.reached, true);
    assert.equal(k.failed?.offeredRps, 550);
    assert.equal(windowVerdict(secs.slice(2, 4), T)?.why, "served 98.9 % of 700 offered (< 99 %)");
  });

  it("says 'not reached' when nothing above the best window failed", () => {
    // window 0-2 (15/s) fails on errors; 1-3 (25/s) and 2-4 (35/s) hold
    const k = kneeOf([sec(0, 10, { errors: 5 }), sec(1, 20), sec(2, 30), sec(3, 40)], T, 2);
    assert.deepEqual([k.rps, k.reached, k.failed], [35, false, null]);
    assert.equal(kneeLabel(k), "not reached (> 35 req/s)");
  });

  it("is 0 when no window held, reached when one failed", () => {
    const k = kneeOf([sec(0, 10, { dropped: 10 }), sec(1, 10, { dropped: 10 })], T, 2);
    assert.deepEqual([k.rps, k.reached, k.held], [0, true, null]);
    assert.deepEqual([kneeOf([sec(0, 10)], T, 2).rps, kneeOf([sec(0, 10)], T, 2).reached], [0, false]);
  });
});

describe("kneeSpread", () => {
  it("gives the median, the range and how many climbs reached a knee", () => {
    assert.deepEqual(
      kneeSpread([
        { rps: 1200, reached: false },
        { rps: 900, reached: true },
        { rps: 1000, reached: true },
      ]),
      { runs: 3, median: 1000, low: 900, high: 1200, spread: 0.3, reached: 2 },
    );
    assert.equal(
      kneeSpread([
        { rps: 300, reached: true },
        { rps: 100, reached: true },
      ]).median,
      200,
    );
    assert.deepEqual(kneeSpread([]), { runs: 0, median: 0, low: 0, high: 0, spread: 0, reached: 0 });
  });
});

describe("arrivalTime", () => {
  const shape = (startRate: number, stages: { durationS: number; target: number }[]): ArrivalShape => ({
    name: "ramp",
    description: "",
    executor: "ramping-arrival-rate",
    startRate,
    stages,
    preAllocatedVUs: 1,
    maxVUs: 1,
    mix: API_MIX,
    thresholds: T,
    users: 1,
  });

  it("inverts a climb from 0: 5 s^2 arrivals by s seconds", () => {
    const climb = shape(0, [{ durationS: 10, target: 100 }]);
    assert.equal(arrivalTime(climb, 5), 1);
    assert.equal(arrivalTime(climb, 125), 5);
    assert.equal(arrivalTime(climb, 500), 10);
    assert.equal(arrivalTime(climb, 501), DROP);
    assert.equal(arrivalTime(climb, 0), 0);
  });

  it("inverts a constant rate and a second stage", () => {
    const two = shape(10, [
      { durationS: 2, target: 10 },
      { durationS: 2, target: 30 },
    ]);
    assert.ok(Math.abs(arrivalTime(two, 1) - 0.1) < 1e-12);
    assert.equal(arrivalTime(two, 20), 2);
    // 10 s + 5 s^2 = 1 -> s = 2 / (10 + sqrt(120))
    assert.ok(Math.abs(arrivalTime(two, 21) - (2 + 2 / (10 + Math.sqrt(120)))) < 1e-12);
    for (const k of [1, 7, 20, 33, 59, 60])
      assert.ok(Math.abs(arrivalsBy(two, arrivalTime(two, k)) - k) < 1e-9, `arrival ${k}`);
  });
});
