// When each arrival of an open-loop shape is due: the inverse of arrivalsBy (shapes.ts).
// Latency is timed from this moment, so the runner needs it exactly, not "when the loop
// noticed": a stall of the client then shows as latency instead of vanishing.

import type { ArrivalShape } from "../shapes.ts";

/**
 * Seconds into the run at which the shape has asked for `k` requests in all (the k-th
 * arrival's due time); Infinity past the end. Within a stage the rate is linear in time,
 * so the count is quadratic: f*s + a*s^2 = r with a = (g - f) / (2 D), solved in the form
 * s = 2r / (f + sqrt(f^2 + 4ar)), which stays exact when a is 0 or tiny.
 */
export function arrivalTime(shape: ArrivalShape, k: number): number {
  if (k <= 0) return 0;
  let from = shape.startRate;
  let t = 0;
  let done = 0;
  for (const s of shape.stages) {
    const inStage = ((from + s.target) / 2) * s.durationS;
    if (done + inStage >= k) {
      const r = k - done;
      const a = (s.target - from) / (2 * s.durationS);
      const root = Math.sqrt(Math.max(0, from * from + 4 * a * r));
      const x = from + root === 0 ? 0 : (2 * r) / (from + root);
      return t + Math.min(s.durationS, x);
    }
    done += inStage;
    t += s.durationS;
    from = s.target;
  }
  return Number.POSITIVE_INFINITY;
}
