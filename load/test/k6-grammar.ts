// What k6 accepts in a script's `options`, written down so that a test can check the options
// every scenario computes without k6 (the nearest thing to `k6 inspect` on this machine).
//
// Where the rules come from (read, then written anew here; nothing copied): the k6 docs
// (grafana.com/docs/k6: "Options reference", "Scenarios" > "ramping-arrival-rate" and
// "ramping-vus", "Thresholds") and the k6 source at v2.x (github.com/grafana/k6):
// - lib/types/types.go, ParseExtendedDuration: a duration string is either a bare number
//   (milliseconds) or Go's time.ParseDuration syntax (a sequence of decimal numbers, each with
//   a unit ns, us, µs, ms, s, m, h), optionally after a whole number of days `<n>d`;
// - lib/executor/ramping_arrival_rate.go, ramping_vus.go, base_config.go: the option names of
//   each executor; startRate, preAllocatedVUs, maxVUs, startVUs and stage targets are int64
//   (a fraction stops the run: "cannot unmarshal number 62.5 into Go value of type int64");
//   lib/helpers.go decodes them strictly, so an unknown name is an error too;
// - metrics/thresholds_parser.go: a threshold is `<aggregation> <operator> <number>`; the
//   operator is the first of <=, <, >=, >, ===, ==, != found with something on its right; the
//   aggregation is one of value, count, rate, avg, min, med, max or p(N) with 0 <= N <= 100, and
//   which of them a metric allows depends on its type (docs: counter count|rate, gauge value,
//   rate rate, trend avg|min|med|max|p(N)).

const UNIT = "(?:ns|us|µs|μs|ms|s|m|h)";
const DEC = "(?:\\d+(?:\\.\\d*)?|\\.\\d+)";
const GO_DURATION = new RegExp(`^(?:0|(?:${DEC}${UNIT})+)$`);
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A non-negative duration k6 parses; why not, else null. */
export function durationProblem(value: unknown): string | null {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? null : `duration ${value}`;
  if (typeof value !== "string") return `duration of type ${typeof value}`;
  if (NUMBER.test(value)) return Number(value) >= 0 ? null : `negative duration "${value}"`;
  const m = /^(\d+)d(.*)$/.exec(value);
  const rest = m ? (m[2] as string) : value;
  if (m && rest === "") return null;
  return GO_DURATION.test(rest) ? null : `"${value}" is not a k6 duration`;
}

export type MetricType = "counter" | "gauge" | "rate" | "trend";

const AGGREGATIONS: Record<MetricType, readonly string[]> = {
  counter: ["count", "rate"],
  gauge: ["value"],
  rate: ["rate"],
  trend: ["avg", "min", "med", "max", "p"],
};
const OPERATORS = ["<=", "<", ">=", ">", "===", "==", "!="] as const;

/** A parsed threshold expression, or a reason. */
export function parseThreshold(
  expr: string,
  type: MetricType,
): { aggregation: string; percentile?: number; operator: string; value: number } | { problem: string } {
  for (const op of OPERATORS) {
    const at = expr.indexOf(op);
    if (at < 0) continue;
    const right = expr.slice(at + op.length);
    if (right === "") continue;
    const left = expr.slice(0, at).trim();
    const rhs = right.trim();
    if (!NUMBER.test(rhs)) return { problem: `"${expr}": right-hand side "${rhs}" is not a number` };
    let aggregation = left;
    let percentile: number | undefined;
    const p = /^p\((.*)\)$/.exec(left);
    if (p) {
      aggregation = "p";
      percentile = NUMBER.test(p[1] as string) ? Number(p[1]) : Number.NaN;
      if (!(percentile >= 0 && percentile <= 100)) return { problem: `"${expr}": percentile not in 0..100` };
    }
    if (!AGGREGATIONS[type].includes(aggregation))
      return { problem: `"${expr}": ${left || "<nothing>"} is not an aggregation of a ${type} metric` };
    return { aggregation, ...(percentile === undefined ? {} : { percentile }), operator: op, value: Number(rhs) };
  }
  return { problem: `"${expr}": no operator` };
}

/** `name{tag:value,...}` as k6 reads a threshold's key. */
export function parseThresholdKey(key: string): { metric: string; tags: Record<string, string> } | { problem: string } {
  const m = /^([A-Za-z_][A-Za-z0-9_]{0,127})(?:\{(.*)\})?$/.exec(key);
  if (!m) return { problem: `threshold key "${key}" is not a metric name with optional {tags}` };
  const tags: Record<string, string> = {};
  if (m[2] !== undefined) {
    for (const pair of (m[2] as string).split(",")) {
      const [k, ...v] = pair.split(":");
      const name = (k ?? "").trim();
      const value = v.join(":").trim();
      if (!name || v.length === 0) return { problem: `threshold key "${key}": tag "${pair}" is not name:value` };
      tags[name] = value;
    }
  }
  return { metric: m[1] as string, tags };
}

const COMMON_FIELDS = ["executor", "startTime", "gracefulStop", "env", "exec", "tags", "options"];
export const EXECUTOR_FIELDS: Record<string, readonly string[]> = {
  "ramping-arrival-rate": [...COMMON_FIELDS, "startRate", "timeUnit", "stages", "preAllocatedVUs", "maxVUs"],
  "ramping-vus": [...COMMON_FIELDS, "startVUs", "stages", "gracefulRampDown"],
};
const DURATION_FIELDS = ["startTime", "gracefulStop", "timeUnit", "gracefulRampDown"];
/** Fields k6 reads as int64; the VU counts among them must also be at least 1 here. */
const INTEGER_FIELDS = ["startRate", "startVUs"];
const VU_FIELDS = ["preAllocatedVUs", "maxVUs"];

const isWhole = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

/** Every problem k6 would have with one scenario. */
export function scenarioProblems(name: string, s: Record<string, unknown>): string[] {
  const where = `scenario ${name}`;
  const problems: string[] = [];
  if (!/^[0-9A-Za-z_-]+$/.test(name)) problems.push(`${where}: name has characters k6 refuses`);
  const fields = EXECUTOR_FIELDS[String(s.executor)];
  if (!fields) return [...problems, `${where}: unknown executor ${String(s.executor)}`];
  for (const k of Object.keys(s))
    if (!fields.includes(k)) problems.push(`${where}: ${s.executor} has no option "${k}"`);
  for (const k of DURATION_FIELDS) {
    if (s[k] === undefined) continue;
    const p = durationProblem(s[k]);
    if (p) problems.push(`${where}.${k}: ${p}`);
  }
  if (s.timeUnit !== undefined && durationProblem(s.timeUnit) === null && /^0+(?:\D|$)/.test(String(s.timeUnit)))
    problems.push(`${where}.timeUnit must be more than 0`);
  for (const k of INTEGER_FIELDS) {
    if (s[k] !== undefined && !(isWhole(s[k]) && (s[k] as number) >= 0))
      problems.push(`${where}.${k}=${String(s[k])}: not a whole number >= 0`);
  }
  if (s.executor === "ramping-arrival-rate") {
    for (const k of VU_FIELDS) {
      if (!(isWhole(s[k]) && (s[k] as number) >= 1))
        problems.push(`${where}.${k}=${String(s[k])}: not a whole number >= 1`);
    }
    if (isWhole(s.maxVUs) && isWhole(s.preAllocatedVUs) && s.maxVUs < s.preAllocatedVUs)
      problems.push(`${where}: maxVUs ${s.maxVUs} < preAllocatedVUs ${s.preAllocatedVUs}`);
  }
  const stages = s.stages;
  if (!Array.isArray(stages) || stages.length === 0) return [...problems, `${where}: no stages`];
  stages.forEach((st: Record<string, unknown>, i) => {
    for (const k of Object.keys(st))
      if (k !== "duration" && k !== "target") problems.push(`${where}.stages[${i}] has "${k}"`);
    const p = durationProblem(st.duration);
    if (p) problems.push(`${where}.stages[${i}].duration: ${p}`);
    if (!(isWhole(st.target) && st.target >= 0))
      problems.push(`${where}.stages[${i}].target=${String(st.target)}: not a whole number >= 0`);
  });
  if (s.executor === "ramping-vus" && !(Number(s.startVUs) > 0 || stages.some((st) => Number(st.target) > 0)))
    problems.push(`${where}: no VU ever (startVUs and every target are 0)`);
  return problems;
}

/** Options keys k6 knows (docs, "Options reference": the names a script's `options` may use). */
export const OPTION_NAMES = [
  "scenarios",
  "thresholds",
  "summaryTrendStats",
  "summaryTimeUnit",
  "setupTimeout",
  "teardownTimeout",
  "tags",
  "noConnectionReuse",
  "userAgent",
  "discardResponseBodies",
];

/** Every problem k6 would have with a script's `options`, given its metrics' types. */
export function optionsProblems(options: Record<string, unknown>, metricTypes: Record<string, MetricType>): string[] {
  const problems: string[] = [];
  for (const k of Object.keys(options)) if (!OPTION_NAMES.includes(k)) problems.push(`unknown option "${k}"`);
  for (const k of ["setupTimeout", "teardownTimeout"]) {
    if (options[k] === undefined) continue;
    const p = durationProblem(options[k]);
    if (p) problems.push(`${k}: ${p}`);
  }
  const scenarios = (options.scenarios ?? {}) as Record<string, Record<string, unknown>>;
  if (Object.keys(scenarios).length === 0) problems.push("no scenario");
  for (const [name, s] of Object.entries(scenarios)) problems.push(...scenarioProblems(name, s));
  for (const stat of (options.summaryTrendStats ?? []) as string[]) {
    if (!["avg", "min", "med", "max", "count"].includes(stat) && "problem" in parseThreshold(`${stat}<1`, "trend"))
      problems.push(`summaryTrendStats: "${stat}"`);
  }
  const thresholds = (options.thresholds ?? {}) as Record<string, unknown[]>;
  for (const [key, rules] of Object.entries(thresholds)) {
    const k = parseThresholdKey(key);
    if ("problem" in k) {
      problems.push(k.problem);
      continue;
    }
    const type = metricTypes[k.metric];
    if (!type) problems.push(`threshold on "${k.metric}", a metric this script does not have`);
    for (const tag of Object.keys(k.tags)) {
      if (tag === "scenario" && !((k.tags.scenario as string) in scenarios))
        problems.push(`threshold "${key}": no scenario "${k.tags.scenario}"`);
    }
    if (!Array.isArray(rules) || rules.length === 0) problems.push(`threshold "${key}": no rule`);
    for (const rule of Array.isArray(rules) ? rules : []) {
      let expr: unknown = rule;
      if (typeof rule === "object" && rule !== null) {
        const r = rule as Record<string, unknown>;
        for (const f of Object.keys(r)) {
          if (!["threshold", "abortOnFail", "delayAbortEval"].includes(f))
            problems.push(`threshold "${key}": field "${f}"`);
        }
        if (r.abortOnFail !== undefined && typeof r.abortOnFail !== "boolean")
          problems.push(`threshold "${key}": abortOnFail not a boolean`);
        if (r.delayAbortEval !== undefined) {
          const p = durationProblem(r.delayAbortEval);
          if (p) problems.push(`threshold "${key}".delayAbortEval: ${p}`);
        }
        expr = r.threshold;
      }
      if (typeof expr !== "string") {
        problems.push(`threshold "${key}": rule is not a string`);
        continue;
      }
      if (type) {
        const parsed = parseThreshold(expr, type);
        if ("problem" in parsed) problems.push(`threshold "${key}": ${parsed.problem}`);
      }
    }
  }
  return problems;
}

/** The types of the metrics the scripts use: k6's built-in ones and load/scenarios/common.ts's own. */
export const METRIC_TYPES: Record<string, MetricType> = {
  http_reqs: "counter",
  http_req_failed: "rate",
  http_req_duration: "trend",
  checks: "rate",
  iterations: "counter",
  dropped_iterations: "counter",
  vus: "gauge",
  read_your_writes: "rate",
  reads_from_replica: "rate",
  login_duration: "trend",
  session_login_failed: "rate",
};
