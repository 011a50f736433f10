// The runners' summaries, read from their logs and combined into one.
//
// Each runner prints k6's handleSummary data (SUMMARY_TO_STDOUT=1, load/scenarios/common.ts)
// between two marker lines. Combining, per metric type:
//   counter  count and rate summed (the runners run side by side over the same time);
//   rate     passes and fails summed, rate = passes / (passes + fails);
//   gauge    value summed (vus, vus_max: the runners' VUs add up), min of mins, max of maxes;
//   trend    count summed; min of mins, max of maxes; avg weighted by count (exact); every
//            percentile (med, p(x)) from the merged distribution, never the max or the mean
//            of the runners' percentiles. The max of N p95s is the p95 of the worst runner,
//            an upper bound, not the p95 of all requests. Each runner reports a grid of
//            percentiles (SUMMARY_TREND_STATS in manifests.ts) with min, max and count, which
//            is its distribution function at those points; the combined distribution is
//            the count-weighted sum of the runners', F(x) = sum_i (n_i / n) F_i(x), each F_i
//            linear between its known points, and p(q) is the x where F(x) = q. Exact at the
//            grid points when the runners agree; between them the error is at most the gap
//            between neighbouring grid points. Always reported with the bracket
//            [min_i p_i(q), max_i p_i(q)], which holds exactly: if every runner has at least
//            q of its requests at or below x, so do all requests together.
// A threshold is evaluated again on the combined numbers (its expression's aggregate against
// the combined value); the runners' own verdicts (and k6's exit code 99) are on their shares.

export const SUMMARY_BEGIN = "----- nodescale k6 summary begin -----";
export const SUMMARY_END = "----- nodescale k6 summary end -----";

export type MetricSummary = {
  type: "counter" | "gauge" | "rate" | "trend";
  contains?: string;
  values: Record<string, number>;
  thresholds?: Record<string, { ok: boolean }>;
};
export type Summary = {
  metrics: Record<string, MetricSummary>;
  state?: { testRunDurationMs?: number };
  [k: string]: unknown;
};

/** The summary a runner printed in its log; null when there is none (the runner died first). */
export function summaryFromLog(log: string): Summary | null {
  const lines = log.split("\n");
  const begin = lines.lastIndexOf(SUMMARY_BEGIN);
  if (begin < 0) return null;
  const end = lines.indexOf(SUMMARY_END, begin + 1);
  if (end < 0) return null;
  try {
    const s = JSON.parse(lines.slice(begin + 1, end).join("\n")) as Summary;
    if (typeof s !== "object" || s === null || typeof s.metrics !== "object") return null;
    // setup()'s data carries the load users' session cookies: not kept in the results
    delete s.setup_data;
    return s;
  } catch {
    return null;
  }
}

/** `p(95)` -> 0.95, `med` -> 0.5; undefined for other statistics. */
export function quantileOf(stat: string): number | undefined {
  if (stat === "med") return 0.5;
  const m = /^p\((\d+(?:\.\d+)?)\)$/.exec(stat);
  return m ? Number(m[1]) / 100 : undefined;
}

/** A runner's known distribution: (value, fraction at or below) points, increasing in both. */
function knots(values: Record<string, number>): { x: number; q: number }[] {
  const pts: { x: number; q: number }[] = [];
  if (Number.isFinite(values.min)) pts.push({ x: values.min as number, q: 0 });
  for (const [stat, x] of Object.entries(values)) {
    const q = quantileOf(stat);
    if (q !== undefined && Number.isFinite(x)) pts.push({ x, q });
  }
  if (Number.isFinite(values.max)) pts.push({ x: values.max as number, q: 1 });
  pts.sort((a, b) => a.x - b.x || a.q - b.q);
  // keep it monotone in q (k6 interpolates percentiles, so a tie in x may come with two qs)
  const out: { x: number; q: number }[] = [];
  for (const p of pts) {
    const last = out[out.length - 1];
    if (last && p.q < last.q) continue;
    out.push(p);
  }
  return out;
}

/** F(x) of one runner: linear between its knots, 0 below min, 1 above max. */
function cdf(k: { x: number; q: number }[], x: number): number {
  if (k.length === 0) return 0;
  const first = k[0] as { x: number; q: number };
  if (x < first.x) return 0;
  let best = 0;
  for (let i = 0; i < k.length; i++) {
    const a = k[i] as { x: number; q: number };
    const b = k[i + 1];
    if (x >= a.x) best = Math.max(best, a.q);
    if (b && x >= a.x && x < b.x) return b.x === a.x ? best : a.q + ((b.q - a.q) * (x - a.x)) / (b.x - a.x);
  }
  return Math.max(best, 1);
}

/** The q-quantile of the count-weighted mixture of the runners' distributions. */
export function mergedQuantile(runners: { count: number; values: Record<string, number> }[], q: number): number {
  const parts = runners.filter((r) => r.count > 0).map((r) => ({ w: r.count, k: knots(r.values) }));
  const total = parts.reduce((s, p) => s + p.w, 0);
  if (total === 0 || parts.length === 0) return Number.NaN;
  const F = (x: number) => parts.reduce((s, p) => s + p.w * cdf(p.k, x), 0) / total;
  // F is linear between the union of all knots: find the segment where it crosses q
  const xs = [...new Set(parts.flatMap((p) => p.k.map((k) => k.x)))].sort((a, b) => a - b);
  let prevX = xs[0] as number;
  let prevF = F(prevX);
  if (prevF >= q) return prevX;
  for (const x of xs.slice(1)) {
    const f = F(x);
    if (f >= q) return f === prevF ? x : prevX + ((q - prevF) * (x - prevX)) / (f - prevF);
    prevX = x;
    prevF = f;
  }
  return xs[xs.length - 1] as number;
}

export type Combined = {
  runners: number;
  metrics: Record<string, MetricSummary & { bracket?: Record<string, [number, number]> }>;
  /** Per threshold: the runners whose own verdict failed, and the verdict on the combined numbers. */
  thresholds: { metric: string; expression: string; failedOnRunners: number[]; combined: boolean | null }[];
};

function combineMetric(parts: MetricSummary[]): MetricSummary & { bracket?: Record<string, [number, number]> } {
  const first = parts[0] as MetricSummary;
  const sum = (k: string) => parts.reduce((s, p) => s + (p.values[k] ?? 0), 0);
  const min = (k: string) => Math.min(...parts.map((p) => p.values[k] ?? Number.POSITIVE_INFINITY));
  const max = (k: string) => Math.max(...parts.map((p) => p.values[k] ?? Number.NEGATIVE_INFINITY));
  const base = { type: first.type, ...(first.contains ? { contains: first.contains } : {}) };
  switch (first.type) {
    case "counter":
      return { ...base, values: { count: sum("count"), rate: sum("rate") } };
    case "rate": {
      const passes = sum("passes");
      const fails = sum("fails");
      return { ...base, values: { rate: passes + fails === 0 ? 0 : passes / (passes + fails), passes, fails } };
    }
    case "gauge":
      return { ...base, values: { value: sum("value"), min: min("min"), max: max("max") } };
    case "trend": {
      const count = sum("count");
      const values: Record<string, number> = { count, min: min("min"), max: max("max") };
      const weight = parts.reduce((s, p) => s + (p.values.count ?? 1), 0);
      values.avg =
        weight === 0 ? 0 : parts.reduce((s, p) => s + (p.values.avg ?? 0) * (p.values.count ?? 1), 0) / weight;
      const bracket: Record<string, [number, number]> = {};
      // without `count` (an archive made without SUMMARY_TREND_STATS) the runners weigh the same
      const runners = parts.map((p) => ({ count: p.values.count ?? 1, values: p.values }));
      for (const stat of Object.keys(first.values)) {
        const q = quantileOf(stat);
        if (q === undefined) continue;
        values[stat] = mergedQuantile(runners, q);
        const own = parts.filter((p) => (p.values.count ?? 1) > 0).map((p) => p.values[stat] as number);
        if (own.length > 0) bracket[stat] = [Math.min(...own), Math.max(...own)];
      }
      return { ...base, values, bracket };
    }
  }
}

/** Evaluate a k6 threshold expression (`p(95)<300`, `rate<=0.01`, `count<=0`) on values. */
export function evaluate(expression: string, values: Record<string, number>): boolean | null {
  const m = /^\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|==|===|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expression);
  if (!m) return null;
  const v = values[m[1] as string];
  if (v === undefined || Number.isNaN(v)) return null;
  const limit = Number(m[3]);
  switch (m[2]) {
    case "<":
      return v < limit;
    case "<=":
      return v <= limit;
    case ">":
      return v > limit;
    case ">=":
      return v >= limit;
    case "!=":
      return v !== limit;
    default:
      return v === limit;
  }
}

export function combine(summaries: Summary[]): Combined {
  const names = [...new Set(summaries.flatMap((s) => Object.keys(s.metrics)))].sort();
  const metrics: Combined["metrics"] = {};
  const thresholds: Combined["thresholds"] = [];
  for (const name of names) {
    const parts = summaries.map((s) => s.metrics[name]).filter((m): m is MetricSummary => m !== undefined);
    const combined = combineMetric(parts);
    metrics[name] = combined;
    const expressions = [...new Set(parts.flatMap((p) => Object.keys(p.thresholds ?? {})))];
    for (const expression of expressions) {
      const failedOnRunners = summaries
        .map((s, i) => (s.metrics[name]?.thresholds?.[expression]?.ok === false ? i + 1 : 0))
        .filter((i) => i > 0);
      thresholds.push({ metric: name, expression, failedOnRunners, combined: evaluate(expression, combined.values) });
    }
  }
  return { runners: summaries.length, metrics, thresholds };
}

const fmt = (v: number) =>
  Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 2 });

/** The combined result as lines for the terminal. */
export function report(c: Combined): string[] {
  const lines = [`combined over ${c.runners} runners:`];
  for (const [name, m] of Object.entries(c.metrics)) {
    const v = m.values;
    if (m.type === "trend") {
      const pct = ["med", "p(90)", "p(95)", "p(99)"]
        .filter((s) => v[s] !== undefined)
        .map((s) => {
          const b = m.bracket?.[s];
          return `${s}=${fmt(v[s] as number)}${b ? ` [${fmt(b[0])}..${fmt(b[1])}]` : ""}`;
        });
      lines.push(
        `  ${name}: count=${fmt(v.count ?? 0)} avg=${fmt(v.avg ?? 0)} min=${fmt(v.min ?? 0)} ${pct.join(" ")} max=${fmt(v.max ?? 0)}`,
      );
    } else if (m.type === "rate") {
      lines.push(`  ${name}: rate=${fmt(v.rate ?? 0)} (${fmt(v.passes ?? 0)} true, ${fmt(v.fails ?? 0)} false)`);
    } else if (m.type === "counter") {
      lines.push(`  ${name}: count=${fmt(v.count ?? 0)} rate=${fmt(v.rate ?? 0)}/s`);
    } else {
      lines.push(`  ${name}: value=${fmt(v.value ?? 0)} min=${fmt(v.min ?? 0)} max=${fmt(v.max ?? 0)}`);
    }
  }
  lines.push("thresholds (runners' own verdicts, on their shares; then the verdict on the combined numbers):");
  for (const t of c.thresholds) {
    const own =
      t.failedOnRunners.length === 0 ? "passed on every runner" : `FAILED on runners ${t.failedOnRunners.join(", ")}`;
    const all = t.combined === null ? "not evaluable here" : t.combined ? "passes combined" : "FAILS combined";
    lines.push(`  ${t.metric} ${t.expression}: ${own}; ${all}`);
  }
  lines.push(
    "percentiles: from the runners' merged distributions; [a..b] is the exact bracket (lowest and highest runner)",
  );
  return lines;
}
