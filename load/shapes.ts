// The scenario shapes: stages, rates, request mix and thresholds, in one place.
//
// Imported by the k6 scripts (load/scenarios/*.ts, run by k6 against a cluster) and by the
// local runner (load/runner/*.ts, run by Node against the local topology), so that a local
// run and a cluster run are the same experiment at different scales. Plain data and small
// pure functions only: no Node API, no k6 API, no imports (`make load-check` enforces the
// first two for everything k6 loads).
//
// A shape is written at cluster scale for a target rate (`clusterShape(name, targetRps)`);
// `scale()` / `scaleTo()` derive the small version for one machine: every rate (and VU count)
// is multiplied by one factor and every duration by another; the stage structure, the
// request mix and the thresholds stay the same.

export type ShapeName = "smoke" | "ramp" | "spike" | "soak" | "sessions" | "breakpoint";
export const SHAPE_NAMES: readonly ShapeName[] = ["smoke", "ramp", "spike", "soak", "sessions", "breakpoint"];

/** One stage: move linearly to `target` over `durationS` (a hold is a stage with the same target). */
export type Stage = { durationS: number; target: number };

/** Pass/fail criteria, checked by k6 (thresholds) and by the local runner alike. */
export type Thresholds = {
  /** Highest share of failed requests (http_req_failed). */
  maxErrorRate: number;
  /** Latency of API requests (every request but register and login). */
  p95Ms: number;
  p99Ms: number;
  /** Latency of register and login, slow on purpose (scrypt, ~0.2 s of CPU each). */
  authP95Ms: number;
  /** breakpoint: stop the run as soon as a threshold fails (k6 abortOnFail). */
  abortOnFail: boolean;
  /**
   * Most arrivals the generator may drop for want of a free VU (k6 `dropped_iterations`, the
   * local runner's drops). A drop means the rate asked for was not sent, so the run no longer
   * measures what it says; for `breakpoint` it is the knee, and with abortOnFail it stops there.
   * Absent means 0.
   */
  maxDropped?: number;
};

/** The requests a shape sends. `auth`: needs a logged-in session. */
export type EndpointName =
  | "livez"
  | "me"
  | "item-read"
  | "item-list"
  | "item-export"
  | "item-write"
  | "work"
  | "login"
  | "register"
  | "write-read";

export type MixEntry = { endpoint: EndpointName; weight: number };

export type ArrivalShape = {
  name: ShapeName;
  description: string;
  /** k6 ramping-arrival-rate: stages in requests per second. */
  executor: "ramping-arrival-rate";
  startRate: number;
  stages: Stage[];
  /** k6 preAllocatedVUs / maxVUs; for the local runner maxVUs bounds requests in flight. */
  preAllocatedVUs: number;
  maxVUs: number;
  mix: MixEntry[];
  thresholds: Thresholds;
  /** Logged-in users shared by the VUs (each logs in once, in setup). */
  users: number;
};

export type VuShape = {
  name: ShapeName;
  description: string;
  /** k6 ramping-vus: stages in virtual users; each VU registers and logs in once, then loops. */
  executor: "ramping-vus";
  startVUs: number;
  stages: Stage[];
  /** Pause between two iterations of one VU (keeps the per-VU rate independent of scale). */
  thinkTimeMs: number;
  mix: MixEntry[];
  thresholds: Thresholds;
};

export type Shape = ArrivalShape | VuShape;

/** The request mix of the arrival-rate shapes: mostly reads, as a typical API sees. */
export const API_MIX: MixEntry[] = [
  { endpoint: "item-read", weight: 50 },
  { endpoint: "item-list", weight: 15 },
  { endpoint: "me", weight: 15 },
  { endpoint: "item-write", weight: 10 },
  { endpoint: "work", weight: 5 },
  { endpoint: "livez", weight: 5 },
];

/** What one iteration of a sessions VU does (after its one register + login). */
export const SESSION_MIX: MixEntry[] = [
  { endpoint: "me", weight: 30 },
  { endpoint: "item-read", weight: 30 },
  // write an item, then read it back at once with the same session: read-your-writes
  { endpoint: "write-read", weight: 30 },
  { endpoint: "item-list", weight: 10 },
];

const DEFAULT_THRESHOLDS: Thresholds = {
  maxErrorRate: 0.01,
  p95Ms: 300,
  p99Ms: 1000,
  authP95Ms: 3000,
  abortOnFail: false,
  maxDropped: 0,
};

/** Requests of these routes are tagged kind=auth (k6) and held to `authP95Ms`; all others are kind=api. */
export const AUTH_ROUTES: readonly string[] = ["POST /api/auth/register", "POST /api/auth/login"];

/** 100 RPS up to `target` in 1-2-5 steps (100, 200, 500, 1000, 2000, ...), each ramped then held. */
export function rampStages(startRps: number, targetRps: number, rampS: number, holdS: number): Stage[] {
  const levels: number[] = [];
  for (let decade = startRps; decade < targetRps; decade *= 10) {
    for (const m of [1, 2, 5]) if (decade * m < targetRps) levels.push(decade * m);
  }
  levels.push(targetRps);
  return levels.flatMap((level) => [
    { durationS: rampS, target: level },
    { durationS: holdS, target: level },
  ]);
}

/** Virtual users of the sessions shape for a target rate: one request per VU per think time. */
export function sessionVUs(targetRps: number, thinkTimeMs: number): number {
  return Math.max(1, Math.round((targetRps * thinkTimeMs) / 1000));
}

/**
 * Seconds a sessions VU waits after its `failures`-th refused register or login before it
 * tries again: its think time doubled per failure, 1 s at least and 60 s at most (a login
 * limit counts per minute, so a minute always clears it).
 */
export function authBackoffS(failures: number, thinkTimeMs: number): number {
  const s = (thinkTimeMs / 1000) * 2 ** Math.max(0, failures);
  return Math.min(60, Math.max(1, s));
}

/** A shape at cluster scale (the default TARGET_RPS of the k6 scripts is 1000). */
export function clusterShape(name: ShapeName, targetRps: number): Shape {
  const t = Math.max(1, Math.round(targetRps));
  // k6 reads every VU count as an integer (`cannot unmarshal number 62.5 ... int64`, exit 104):
  // each count below goes through vus(), which always gives a whole number >= 10.
  const vus = (rate: number) => Math.max(10, Math.ceil(rate / 10));
  const arrival = (s: Omit<ArrivalShape, "executor" | "mix" | "users"> & { mix?: MixEntry[] }): ArrivalShape => ({
    executor: "ramping-arrival-rate",
    mix: API_MIX,
    users: 20,
    ...s,
  });
  switch (name) {
    case "smoke":
      return arrival({
        name,
        description: "A few requests a second of the API mix for 30 s: does every route answer?",
        startRate: 5,
        stages: [{ durationS: 30, target: 5 }],
        preAllocatedVUs: 5,
        maxVUs: 20,
        thresholds: { ...DEFAULT_THRESHOLDS, maxErrorRate: 0 },
      });
    case "ramp":
      return arrival({
        name,
        description: "100 RPS up to the target in 1-2-5 steps, each ramped over 30 s and held 90 s.",
        startRate: Math.min(100, t),
        stages: rampStages(Math.min(100, t), t, 30, 90),
        preAllocatedVUs: vus(t / 2),
        maxVUs: vus(t) * 2,
        thresholds: DEFAULT_THRESHOLDS,
      });
    case "spike":
      return arrival({
        name,
        description: "10 % of the target, a jump to the target in 10 s, held, then back: does it absorb and recover?",
        startRate: Math.ceil(t / 10),
        stages: [
          { durationS: 60, target: Math.ceil(t / 10) },
          { durationS: 10, target: t },
          { durationS: 60, target: t },
          { durationS: 10, target: Math.ceil(t / 10) },
          { durationS: 60, target: Math.ceil(t / 10) },
        ],
        preAllocatedVUs: vus(t),
        maxVUs: vus(t) * 3,
        thresholds: { ...DEFAULT_THRESHOLDS, maxErrorRate: 0.02, p99Ms: 2000 },
      });
    case "soak":
      return arrival({
        name,
        description: "60 % of the target for an hour: leaks, pool exhaustion, creeping latency.",
        startRate: Math.ceil(t / 10),
        stages: [
          { durationS: 120, target: Math.ceil(t * 0.6) },
          { durationS: 3600, target: Math.ceil(t * 0.6) },
        ],
        preAllocatedVUs: vus(t * 0.6),
        maxVUs: vus(t) * 2,
        thresholds: DEFAULT_THRESHOLDS,
      });
    case "breakpoint":
      return arrival({
        name,
        description: "A steady climb from 100 RPS to twice the target; stops at the first failed threshold (the knee).",
        startRate: Math.min(100, t),
        stages: [{ durationS: 1200, target: t * 2 }],
        preAllocatedVUs: vus(t),
        maxVUs: vus(t * 2) * 3,
        thresholds: { ...DEFAULT_THRESHOLDS, abortOnFail: true },
      });
    case "sessions": {
      const thinkTimeMs = 500;
      const peak = sessionVUs(t / 2, thinkTimeMs);
      return {
        name,
        description:
          "Users register and log in once, then loop over /api/me, item reads and write-then-read (read-your-writes).",
        executor: "ramping-vus",
        startVUs: 0,
        stages: [
          { durationS: 60, target: peak },
          { durationS: 300, target: peak },
          { durationS: 30, target: 0 },
        ],
        thinkTimeMs,
        mix: SESSION_MIX,
        thresholds: { ...DEFAULT_THRESHOLDS, maxErrorRate: 0 },
      };
    }
  }
}

/** Highest rate (arrival shapes) or VU count (VU shapes) the shape reaches. */
export function peakOf(shape: Shape): number {
  const start = shape.executor === "ramping-arrival-rate" ? shape.startRate : shape.startVUs;
  return Math.max(start, ...shape.stages.map((s) => s.target));
}

export function durationOf(shape: Shape): number {
  return shape.stages.reduce((sum, s) => sum + s.durationS, 0);
}

const roundRate = (x: number) => (x === 0 ? 0 : Math.max(1, Math.round(x)));

/** The same shape with every rate/VU count times `rate` and every duration times `time`. */
export function scale(shape: Shape, factors: { rate: number; time: number }): Shape {
  const stages = shape.stages.map((s) => ({
    durationS: Math.max(1, Math.round(s.durationS * factors.time)),
    target: roundRate(s.target * factors.rate),
  }));
  if (shape.executor === "ramping-arrival-rate") {
    return {
      ...shape,
      startRate: roundRate(shape.startRate * factors.rate),
      stages,
      preAllocatedVUs: Math.max(1, Math.ceil(shape.preAllocatedVUs * factors.rate)),
      maxVUs: Math.max(4, Math.ceil(shape.maxVUs * factors.rate)),
      users: Math.max(1, Math.min(shape.users, Math.ceil(shape.users * factors.rate))),
    };
  }
  return { ...shape, startVUs: roundRate(shape.startVUs * factors.rate), stages };
}

/**
 * The version of a cluster shape for one machine: its peak becomes `peak` (requests per
 * second for arrival shapes, VUs for the sessions shape) and it lasts about `durationS`.
 */
export function scaleTo(shape: Shape, target: { peak: number; durationS: number }): Shape {
  return scale(shape, { rate: target.peak / peakOf(shape), time: target.durationS / durationOf(shape) });
}

/** The rate (or VU count) the stages ask for `atS` seconds into the run. */
export function targetAt(shape: Shape, atS: number): number {
  let from = shape.executor === "ramping-arrival-rate" ? shape.startRate : shape.startVUs;
  let t = 0;
  for (const s of shape.stages) {
    if (atS <= t + s.durationS) return from + ((s.target - from) * (atS - t)) / s.durationS;
    t += s.durationS;
    from = s.target;
  }
  return from;
}

/** Requests the stages ask for between 0 and `atS` (the integral of the arrival rate). */
export function arrivalsBy(shape: ArrivalShape, atS: number): number {
  let from = shape.startRate;
  let t = 0;
  let total = 0;
  for (const s of shape.stages) {
    const span = Math.min(s.durationS, Math.max(0, atS - t));
    if (span <= 0) break;
    const rateAtEnd = from + ((s.target - from) * span) / s.durationS;
    total += ((from + rateAtEnd) / 2) * span;
    t += s.durationS;
    from = s.target;
  }
  return total;
}

/** Deterministic pick from a weighted mix; `u` is uniform in [0, 1). */
export function pick(mix: readonly MixEntry[], u: number): EndpointName {
  const total = mix.reduce((sum, m) => sum + m.weight, 0);
  let x = u * total;
  for (const m of mix) {
    x -= m.weight;
    if (x < 0) return m.endpoint;
  }
  return (mix[mix.length - 1] as MixEntry).endpoint;
}

/**
 * The k6 form of the thresholds (the runner checks the same numbers). `scenario` filters each
 * rule on k6's `scenario` tag, so that setup() (its registrations, logins and seeded items)
 * does not count toward them. The auth rule is not filtered: it is about register and login
 * wherever they happen, and the arrival shapes only log in during setup().
 */
export function k6Thresholds(
  t: Thresholds,
  scenario?: string,
): Record<string, (string | { threshold: string; abortOnFail: boolean; delayAbortEval: string })[]> {
  const rule = (threshold: string) =>
    t.abortOnFail ? { threshold, abortOnFail: true, delayAbortEval: "10s" } : threshold;
  const only = (metric: string, ...tags: string[]) => {
    const all = [...(scenario ? [`scenario:${scenario}`] : []), ...tags];
    return all.length > 0 ? `${metric}{${all.join(",")}}` : metric;
  };
  return {
    [only("http_req_failed")]: [rule(`rate<=${t.maxErrorRate}`)],
    [only("http_req_duration", "kind:api")]: [rule(`p(95)<${t.p95Ms}`), rule(`p(99)<${t.p99Ms}`)],
    "http_req_duration{kind:auth}": [`p(95)<${t.authP95Ms}`],
    [only("checks")]: [rule(`rate>=${1 - t.maxErrorRate}`)],
    // an arrival the executor could not start for want of a VU: the knee of `breakpoint`
    [only("dropped_iterations")]: [rule(`count<=${t.maxDropped ?? 0}`)],
  };
}

/** k6 duration strings ("90s"). */
export function k6Stages(stages: readonly Stage[]): { duration: string; target: number }[] {
  return stages.map((s) => ({ duration: `${s.durationS}s`, target: s.target }));
}

// ----- the requests themselves -----

export type RequestSpec = {
  method: "GET" | "POST";
  path: string;
  body?: string;
  contentType?: string;
  /** Needs the session cookie. */
  auth: boolean;
  /** Statuses that count as success. */
  ok: readonly number[];
  /** Route label for reports (the Express route template). */
  route: string;
  /** Accept-Encoding; unset: ACCEPT_ENCODING, what browsers send. */
  acceptEncoding?: string;
};

/**
 * What current browsers send (Chrome and Firefox, 2026), and every load client here with them
 * (the local runner and the k6 scripts): compression is measured as users meet it. k6 decodes
 * all four.
 */
export const ACCEPT_ENCODING = "gzip, deflate, br, zstd";

/** Per-request inputs: a random item id among those seeded, a unique sequence number. */
export type RequestContext = { itemId: number; seq: number; username?: string; password?: string };

export const WORK_TEXT =
  "The quick brown fox jumps over the lazy dog while the load balancer spreads the requests evenly. ".repeat(16);
export const WORK_ITERATIONS = 50;
export const SEED_ITEMS = 200;
export const USER_PASSWORD = "load-test-password";

/** The request one endpoint name stands for. `write-read` is two requests: the write is given here. */
export function requestFor(endpoint: EndpointName, ctx: RequestContext): RequestSpec {
  const json = "application/json";
  switch (endpoint) {
    case "livez":
      return { method: "GET", path: "/livez", auth: false, ok: [200], route: "GET /livez" };
    case "me":
      return { method: "GET", path: "/api/me", auth: true, ok: [200], route: "GET /api/me" };
    case "item-read":
      return { method: "GET", path: `/api/items/${ctx.itemId}`, auth: true, ok: [200], route: "GET /api/items/:id" };
    case "item-list":
      return {
        method: "GET",
        path: `/api/items?after=${Math.max(0, ctx.itemId - 20)}&limit=20`,
        auth: true,
        ok: [200],
        route: "GET /api/items",
      };
    case "item-export":
      return { method: "GET", path: "/api/items/export", auth: false, ok: [200], route: "GET /api/items/export" };
    case "item-write":
    case "write-read":
      return {
        method: "POST",
        path: "/api/items",
        body: JSON.stringify({ title: `load item ${ctx.seq}`, body: "written by the load test" }),
        contentType: json,
        auth: true,
        ok: [201],
        route: "POST /api/items",
      };
    case "work":
      return {
        method: "POST",
        path: "/api/work",
        body: JSON.stringify({ text: WORK_TEXT, iterations: WORK_ITERATIONS }),
        contentType: json,
        auth: false,
        ok: [200],
        route: "POST /api/work",
      };
    case "login":
    case "register":
      return {
        method: "POST",
        path: endpoint === "login" ? "/api/auth/login" : "/api/auth/register",
        body: JSON.stringify({ username: ctx.username, password: ctx.password ?? USER_PASSWORD }),
        contentType: json,
        auth: false,
        ok: endpoint === "login" ? [200] : [201],
        route: endpoint === "login" ? "POST /api/auth/login" : "POST /api/auth/register",
      };
  }
}

/** A username valid for the app (3-64 of [A-Za-z0-9_.-]) and unique per run, VU and sequence. */
export function username(run: string, vu: number, seq = 0): string {
  return `load_${run}_${vu}_${seq}`.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64);
}

/** The `sid` cookie from a Set-Cookie header value (or list of them); undefined when absent. */
export function sidCookie(setCookie: string | readonly string[] | undefined): string | undefined {
  const all = typeof setCookie === "string" ? [setCookie] : (setCookie ?? []);
  for (const line of all) {
    const m = /(?:^|,\s*)sid=([^;]+)/.exec(line);
    if (m) return `sid=${m[1]}`;
  }
  return undefined;
}
