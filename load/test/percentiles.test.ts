// Percentiles and the recorder with dropped arrivals, on fixed inputs worked out by hand:
// nearest rank, rank = ceil(p/100 * n) - 1 on the sorted values, a drop an infinite latency.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { evaluate } from "../runner/drive.ts";
import { percentile, percentiles, Recorder } from "../runner/stats.ts";
import type { Thresholds } from "../shapes.ts";

const DROP = Number.POSITIVE_INFINITY;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("percentiles", () => {
  it("takes the nearest rank", () => {
    const v = range(1, 100);
    assert.equal(percentile(v, 50), 50);
    assert.equal(percentile(v, 95), 95);
    assert.equal(percentile(v, 99), 99);
    assert.equal(percentile([], 99), 0);
    assert.equal(percentile([7], 1), 7);
  });

  it("puts one drop in 100 above p99, and two drops in 100 at p99", () => {
    // 99 served (1..99 ms) + 1 drop: rank of p99 = ceil(99) - 1 = 98 -> the 99th value, 99 ms
    assert.deepEqual(percentiles([...range(1, 99), DROP]), { p50: 50, p95: 95, p99: 99, max: DROP });
    // 98 served + 2 drops: index 98 is the first drop
    assert.deepEqual(percentiles([DROP, ...range(1, 98), DROP]), { p50: 50, p95: 95, p99: DROP, max: DROP });
    // 94 served + 6 drops: index 94 (p95) is a drop, p50 still a served request
    assert.deepEqual(percentiles([...range(1, 94), ...Array(6).fill(DROP)]), {
      p50: 50,
      p95: DROP,
      p99: DROP,
      max: DROP,
    });
  });

  it("rounds to hundredths of a millisecond", () => {
    assert.deepEqual(percentiles([1.234, 5.678]), { p50: 1.23, p95: 5.68, p99: 5.68, max: 5.68 });
  });
});

describe("Recorder (open loop)", () => {
  const run = () => {
    const rec = new Recorder(["POST /api/auth/login"]);
    rec.offer(0.2);
    rec.record({ route: "GET /a", ok: true, status: 200, latencyMs: 40, scheduledS: 0.2, sendLagMs: 5 });
    rec.offer(0.5);
    rec.drop(0.5);
    rec.offer(1.1);
    rec.record({ route: "GET /a", ok: false, status: 500, latencyMs: 700, scheduledS: 1.1, sendLagMs: 15 });
    rec.offer(1.3);
    rec.record({ route: "POST /api/auth/login", ok: true, status: 200, latencyMs: 2000, scheduledS: 1.3 });
    return rec;
  };

  it("files each request under the second it was scheduled in, drops as infinite latencies", () => {
    const secs = run().seconds();
    assert.equal(secs.length, 2);
    assert.deepEqual(
      secs.map((s) => [s.t, s.offered, s.requests, s.errors, s.dropped, s.sendLagMaxMs]),
      [
        [0, 2, 1, 0, 1, 5],
        [1, 2, 2, 1, 0, 15],
      ],
    );
    // second 0: [40, drop]: p50 = index ceil(1) - 1 = 0 -> 40, p95 = index 1 -> the drop
    assert.deepEqual(secs[0]?.latency, { p50: 40, p95: DROP, p99: DROP, max: DROP });
    // second 1: the login is kept apart; the API latency is the failed request's 700 ms
    assert.deepEqual(secs[1]?.latency, { p50: 700, p95: 700, p99: 700, max: 700 });
  });

  it("keeps the raw seconds, the overall, auth and send-lag percentiles", () => {
    const rec = run();
    assert.deepEqual(rec.rawSeconds(), [
      { t: 0, offered: 2, ok: 1, errors: 0, dropped: 1, latencies: [40, DROP] },
      { t: 1, offered: 2, ok: 1, errors: 1, dropped: 0, latencies: [700] },
    ]);
    assert.deepEqual(
      rec.rawSeconds(1).map((s) => s.t),
      [0],
    );
    // [40, 700, drop]: p50 = index ceil(1.5) - 1 = 1 -> 700
    assert.deepEqual(rec.overall(), { p50: 700, p95: DROP, p99: DROP, max: DROP });
    assert.deepEqual(rec.auth(), { p50: 2000, p95: 2000, p99: 2000, max: 2000 });
    assert.deepEqual(rec.sendLag(), { p50: 5, p95: 15, p99: 15, max: 15 });
    assert.deepEqual([rec.requests, rec.errors, rec.dropped], [3, 1, 1]);
  });

  it("fails every threshold a drop touches: failed share, p95, p99 and dropped_iterations", () => {
    const t: Thresholds = { maxErrorRate: 0.01, p95Ms: 300, p99Ms: 1000, authP95Ms: 3000, abortOnFail: false };
    const r = evaluate(t, run());
    assert.deepEqual(
      r.map((x) => [x.rule, x.value, x.ok]),
      [
        // (1 error + 1 drop) / (3 sent + 1 dropped)
        ["http_req_failed (drops included) rate<=0.01", 0.5, false],
        ["http_req_duration{kind:api} p(95)<300", DROP, false],
        ["http_req_duration{kind:api} p(99)<1000", DROP, false],
        ["dropped_iterations count<=0", 1, false],
        ["http_req_duration{kind:auth} p(95)<3000", 2000, true],
      ],
    );
  });

  it("passes a clean run", () => {
    const rec = new Recorder();
    for (let i = 0; i < 100; i++) {
      rec.offer(i / 100);
      rec.record({ route: "GET /a", ok: true, status: 200, latencyMs: 10 + (i % 10), scheduledS: i / 100 });
    }
    const t: Thresholds = { maxErrorRate: 0, p95Ms: 20, p99Ms: 20, authP95Ms: 3000, abortOnFail: false };
    assert.ok(evaluate(t, rec).every((x) => x.ok));
    const strict = evaluate({ ...t, p95Ms: 19 }, rec);
    assert.deepEqual(
      strict.filter((x) => !x.ok).map((x) => [x.rule, x.value]),
      [["http_req_duration{kind:api} p(95)<19", 19]],
    );
  });
});
