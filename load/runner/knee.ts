// The knee of an open-loop climb, and the window check the climb aborts on: one definition
// for both, so that the run stops exactly where the knee statistic says it failed.
//
// A window is `windowS` whole seconds of arrivals (by their scheduled second). It holds when
// served/offered >= 0.99 and every threshold is met: failed share (errors and drops) within
// maxErrorRate, API latency p95 and p99 below their limits, with each dropped arrival an
// infinite latency. The knee is the highest offered rate (offered / windowS) of a window
// that holds. It is "reached" only when a window offered more than that and failed;
// otherwise the climb never found the limit and the knee is only a lower bound ("> X").

import type { Thresholds } from "../shapes.ts";
import { percentiles, type RawSecond } from "./stats.ts";

/** Served over offered a window must keep. */
export const MIN_SERVED_RATIO = 0.99;
/** Seconds of the window the knee is held for. */
export const KNEE_WINDOW_S = 5;

export type WindowVerdict = {
  fromS: number;
  toS: number;
  offeredRps: number;
  servedRatio: number;
  failedRate: number;
  p95: number;
  p99: number;
  /** Why the window fails; null when it holds. */
  why: string | null;
};

export function windowVerdict(secs: readonly RawSecond[], t: Thresholds): WindowVerdict | null {
  let offered = 0;
  let ok = 0;
  let failed = 0;
  const lat: number[] = [];
  for (const s of secs) {
    offered += s.offered;
    ok += s.ok;
    failed += s.errors + s.dropped;
    for (const x of s.latencies) lat.push(x);
  }
  if (offered === 0 || secs.length === 0) return null;
  const p = percentiles(lat);
  const servedRatio = ok / offered;
  const failedRate = failed / offered;
  const fmt = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(0)} ms` : "infinite (drops)");
  const why =
    servedRatio < MIN_SERVED_RATIO
      ? `served ${(100 * servedRatio).toFixed(1)} % of ${offered} offered (< ${MIN_SERVED_RATIO * 100} %)`
      : failedRate > t.maxErrorRate
        ? `failed ${(100 * failedRate).toFixed(2)} % > ${t.maxErrorRate * 100} %`
        : p.p95 >= t.p95Ms
          ? `p95 ${fmt(p.p95)} >= ${t.p95Ms} ms`
          : p.p99 >= t.p99Ms
            ? `p99 ${fmt(p.p99)} >= ${t.p99Ms} ms`
            : null;
  const first = secs[0] as RawSecond;
  const last = secs[secs.length - 1] as RawSecond;
  return {
    fromS: first.t,
    toS: last.t + 1,
    offeredRps: offered / secs.length,
    servedRatio,
    failedRate,
    p95: p.p95,
    p99: p.p99,
    why,
  };
}

export type Knee = {
  /** The highest offered rate held for a window (0 when no window held). */
  rps: number;
  /** false: no window above `rps` failed, so the knee is somewhere above it. */
  reached: boolean;
  windowS: number;
  /** The window that held at `rps`, and the first failing window above it. */
  held: WindowVerdict | null;
  failed: WindowVerdict | null;
};

/** Slides a `windowS`-second window one second at a time over `secs` (whole seconds only). */
export function kneeOf(secs: readonly RawSecond[], t: Thresholds, windowS = KNEE_WINDOW_S): Knee {
  let held: WindowVerdict | null = null;
  const failures: WindowVerdict[] = [];
  for (let i = 0; i + windowS <= secs.length; i++) {
    const v = windowVerdict(secs.slice(i, i + windowS), t);
    if (!v) continue;
    if (v.why) failures.push(v);
    else if (!held || v.offeredRps > held.offeredRps) held = v;
  }
  const above = failures.find((f) => f.offeredRps > (held?.offeredRps ?? 0)) ?? null;
  return { rps: held ? Math.round(held.offeredRps) : 0, reached: above !== null, windowS, held, failed: above };
}

/** "3,140 req/s", or "not reached (> 3,140 req/s)". */
export function kneeLabel(k: Pick<Knee, "rps" | "reached">): string {
  const r = `${k.rps.toLocaleString("en-US")} req/s`;
  return k.reached ? r : `not reached (> ${r})`;
}

/** Median, low and high of several climbs' knees (the spread says how far one run is to be trusted). */
export function kneeSpread(knees: readonly Pick<Knee, "rps" | "reached">[]) {
  const sorted = knees.map((k) => k.rps).sort((a, b) => a - b);
  const n = sorted.length;
  const median =
    n === 0
      ? 0
      : n % 2
        ? (sorted[(n - 1) / 2] as number)
        : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
  const low = sorted[0] ?? 0;
  const high = sorted[n - 1] ?? 0;
  return {
    runs: n,
    median,
    low,
    high,
    /** (high - low) / median */
    spread: median > 0 ? (high - low) / median : 0,
    reached: knees.filter((k) => k.reached).length,
  };
}
