// What the k6 scripts share: options from a shape, setup (users, seeded items), one iteration
// of the API mix, one iteration of a sessions VU, and handleSummary. k6 APIs only: this file
// runs inside k6, never in Node (`make load-check` enforces it).

import { check, fail, sleep } from "k6";
import exec from "k6/execution";
import http, { type RefinedResponse, type ResponseType } from "k6/http";
import { Rate, Trend } from "k6/metrics";
import type { Options } from "k6/options";
import {
  type ArrivalShape,
  AUTH_ROUTES,
  clusterShape,
  k6Stages,
  k6Thresholds,
  pick,
  type RequestContext,
  type RequestSpec,
  requestFor,
  SEED_ITEMS,
  type Shape,
  type ShapeName,
  USER_PASSWORD,
  username,
  type VuShape,
} from "../shapes.ts";

export const BASE_URL = (__ENV.BASE_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");

/** TARGET_RPS from the environment (default 1000): the rate the shape is written for. */
export function targetRps(): number {
  const raw = __ENV.TARGET_RPS || "1000";
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 1) fail(`TARGET_RPS=${raw}: expected a number >= 1`);
  return n;
}

/** The cluster shape for TARGET_RPS; `SHAPE_TIME_SCALE=0.1` shortens every stage (try-outs). */
export function shapeFor(name: ShapeName): Shape {
  const shape = clusterShape(name, targetRps());
  const time = Number(__ENV.SHAPE_TIME_SCALE || "1");
  if (time === 1) return shape;
  return {
    ...shape,
    stages: shape.stages.map((s) => ({ ...s, durationS: Math.max(1, Math.round(s.durationS * time)) })),
  } as Shape;
}

const readYourWrites = new Rate("read_your_writes");
const replicaReads = new Rate("reads_from_replica");
const loginDuration = new Trend("login_duration", true);

export function options(shape: Shape): Options {
  const scenario =
    shape.executor === "ramping-arrival-rate"
      ? {
          executor: "ramping-arrival-rate" as const,
          startRate: shape.startRate,
          timeUnit: "1s",
          preAllocatedVUs: shape.preAllocatedVUs,
          maxVUs: shape.maxVUs,
          stages: k6Stages(shape.stages),
        }
      : {
          executor: "ramping-vus" as const,
          startVUs: shape.startVUs,
          stages: k6Stages(shape.stages),
          gracefulRampDown: "10s",
        };
  const thresholds: Options["thresholds"] = k6Thresholds(shape.thresholds);
  if (shape.executor === "ramping-vus") thresholds.read_your_writes = ["rate==1"];
  return {
    scenarios: { [shape.name]: scenario },
    thresholds,
    // p99 is not in k6's default trend columns
    summaryTrendStats: ["avg", "min", "med", "p(90)", "p(95)", "p(99)", "max"],
    setupTimeout: "300s",
    tags: { shape: shape.name },
  };
}

function send(spec: RequestSpec, sid?: string): RefinedResponse<ResponseType | undefined> {
  const headers: Record<string, string> = {};
  if (spec.contentType) headers["content-type"] = spec.contentType;
  const cookies: Record<string, { value: string; replace: boolean }> = {};
  if (sid) cookies.sid = { value: sid, replace: true };
  const params = {
    headers,
    cookies,
    tags: { name: spec.route, kind: AUTH_ROUTES.includes(spec.route) ? "auth" : "api" },
    responseCallback: http.expectedStatuses(...spec.ok),
  };
  return spec.method === "GET"
    ? http.get(`${BASE_URL}${spec.path}`, params)
    : http.post(`${BASE_URL}${spec.path}`, spec.body ?? null, params);
}

function sidOf(res: RefinedResponse<ResponseType | undefined>): string | undefined {
  return res.cookies.sid?.[0]?.value;
}

/** Register (ignoring "already taken") and log in; returns the sid cookie value. */
function registerAndLogin(name: string): string {
  const ctx: RequestContext = { itemId: 1, seq: 0, username: name, password: USER_PASSWORD };
  const reg = send(requestFor("register", ctx));
  if (reg.status !== 201 && reg.status !== 409) fail(`register ${name}: HTTP ${reg.status} ${reg.body}`);
  const login = send(requestFor("login", ctx));
  loginDuration.add(login.timings.duration);
  const sid = sidOf(login);
  if (login.status !== 200 || !sid)
    fail(`login ${name}: HTTP ${login.status} (raise LOGIN_RATE_LIMIT_PER_MINUTE on the app for load tests)`);
  return sid;
}

export type MixData = { run: string; sids: string[]; itemIds: number[] };

/** setup() of the arrival shapes: log `shape.users` users in and seed items to read. */
export function mixSetup(shape: ArrivalShape): MixData {
  const run = String(Date.now());
  const sids: string[] = [];
  for (let u = 0; u < shape.users; u++) sids.push(registerAndLogin(username(run, u)));
  const itemIds: number[] = [];
  for (let i = 0; i < SEED_ITEMS; i++) {
    const res = send(requestFor("item-write", { itemId: 1, seq: i }), sids[i % sids.length]);
    if (res.status !== 201) fail(`seeding items: HTTP ${res.status} ${res.body}`);
    itemIds.push((res.json() as { id: number }).id);
  }
  return { run, sids, itemIds };
}

function randomOf<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T;
}

/** One arrival of the API mix: one request, chosen by weight. */
export function mixIteration(shape: ArrivalShape, data: MixData): void {
  const endpoint = pick(shape.mix, Math.random());
  const spec = requestFor(endpoint, { itemId: randomOf(data.itemIds), seq: exec.scenario.iterationInTest });
  const res = send(spec, spec.auth ? randomOf(data.sids) : undefined);
  check(res, { [`${spec.route} ${spec.ok.join("|")}`]: (r) => spec.ok.includes(r.status) });
  if (res.headers["X-Db-Route"]) replicaReads.add(res.headers["X-Db-Route"] === "replica");
}

export type SessionData = { run: string; itemIds: number[] };

/** setup() of the sessions shape: a few items for the random reads. */
export function sessionSetup(): SessionData {
  const run = String(Date.now());
  const sid = registerAndLogin(username(run, 0, 0));
  const itemIds: number[] = [];
  for (let i = 0; i < 20; i++) {
    const res = send(requestFor("item-write", { itemId: 1, seq: i }), sid);
    if (res.status !== 201) fail(`seeding items: HTTP ${res.status} ${res.body}`);
    itemIds.push((res.json() as { id: number }).id);
  }
  return { run, itemIds };
}

// Per-VU state (each VU has its own copy of this module).
let mySid: string | undefined;
let myName = "";
let seq = 0;

/** One iteration of a sessions VU: log in on the first, then one action of the mix, then think. */
export function sessionIteration(shape: VuShape, data: SessionData): void {
  if (!mySid) {
    myName = username(data.run, exec.vu.idInTest, 1);
    mySid = registerAndLogin(myName);
  }
  const action = pick(shape.mix, Math.random());
  const ctx: RequestContext = { itemId: randomOf(data.itemIds), seq: seq++ };
  if (action === "write-read") {
    const write = send(requestFor("write-read", ctx), mySid);
    const ok = check(write, { "POST /api/items 201": (r) => r.status === 201 });
    if (ok) {
      const item = write.json() as { id: number; title: string };
      const read = send({ ...requestFor("item-read", ctx), path: `/api/items/${item.id}` }, mySid);
      const same = read.status === 200 && (read.json() as { title?: string }).title === item.title;
      readYourWrites.add(same);
      check(read, { "read-your-writes: the item just written reads back": () => same });
    }
  } else {
    const spec = requestFor(action, ctx);
    const res = send(spec, mySid);
    check(res, { [`${spec.route} ${spec.ok.join("|")}`]: (r) => spec.ok.includes(r.status) });
    if (action === "me") {
      check(res, { "GET /api/me is this user": (r) => (r.json() as { username?: string }).username === myName });
    }
  }
  sleep(shape.thinkTimeMs / 1000);
}

type SummaryData = {
  metrics: Record<string, { values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> }>;
};

/**
 * handleSummary: the whole summary as JSON in SUMMARY_DIR (default load/results) and a short
 * text on stdout. The HTML dashboard comes from k6 itself:
 * K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_EXPORT=load/results/<name>.html.
 */
export function summary(name: ShapeName) {
  return (data: SummaryData): Record<string, string> => {
    const dir = (__ENV.SUMMARY_DIR || "load/results").replace(/\/+$/, "");
    const m = data.metrics;
    const d = m.http_req_duration?.values ?? {};
    const lines = [
      `${name}: ${m.http_reqs?.values.count ?? 0} requests, ${(m.http_reqs?.values.rate ?? 0).toFixed(1)}/s, ` +
        `failed ${((m.http_req_failed?.values.rate ?? 0) * 100).toFixed(2)} %, ` +
        `p95 ${(d["p(95)"] ?? 0).toFixed(1)} ms, p99 ${(d["p(99)"] ?? 0).toFixed(1)} ms`,
    ];
    for (const [metric, v] of Object.entries(m)) {
      for (const [rule, t] of Object.entries(v.thresholds ?? {})) {
        lines.push(`  ${t.ok ? "ok  " : "FAIL"} ${metric} ${rule}`);
      }
    }
    return {
      stdout: `${lines.join("\n")}\n`,
      [`${dir}/${name}-summary.json`]: JSON.stringify(data, null, 2),
    };
  };
}
