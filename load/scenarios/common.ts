// What the k6 scripts share: options from a shape, setup (users, seeded items), one iteration
// of the API mix, one iteration of a sessions VU, and handleSummary. k6 APIs only: this file
// runs inside k6, never in Node (`make load-check` enforces it).

import { check, fail, sleep } from "k6";
import exec from "k6/execution";
import http, { type RefinedResponse, type ResponseType } from "k6/http";
import { Rate, Trend } from "k6/metrics";
import type { Options } from "k6/options";
import {
  ACCEPT_ENCODING,
  type ArrivalShape,
  AUTH_ROUTES,
  authBackoffS,
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

// k6 has a console (its log goes to stderr), which @types/k6 leaves to the DOM lib.
declare const console: { warn(...args: unknown[]): void };

export const BASE_URL = (__ENV.BASE_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");

/** TARGET_RPS from the environment (default 1000): the rate the shape is written for. */
export function targetRps(): number {
  const raw = __ENV.TARGET_RPS || "1000";
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 1) fail(`TARGET_RPS=${raw}: expected a number >= 1`);
  return n;
}

/** SHAPE_TIME_SCALE from the environment (default 1); anything but a positive number stops k6. */
export function timeScale(): number {
  const raw = __ENV.SHAPE_TIME_SCALE || "1";
  const n = Number(raw);
  // NaN would reach k6 as the duration "NaNs"; 0 or less as a stage k6 refuses
  if (!Number.isFinite(n) || n <= 0) fail(`SHAPE_TIME_SCALE=${raw}: expected a number > 0`);
  return n;
}

/** The cluster shape for TARGET_RPS; `SHAPE_TIME_SCALE=0.1` shortens every stage (try-outs). */
export function shapeFor(name: ShapeName): Shape {
  const shape = clusterShape(name, targetRps());
  const time = timeScale();
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
  const thresholds: Options["thresholds"] = k6Thresholds(shape.thresholds, shape.name);
  if (shape.executor === "ramping-vus") thresholds[`read_your_writes{scenario:${shape.name}}`] = ["rate==1"];
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
  const headers: Record<string, string> = { "accept-encoding": spec.acceptEncoding ?? ACCEPT_ENCODING };
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

/**
 * The body as JSON when the response says it is JSON and parses, else undefined: a 5xx from
 * nginx or a proxy is HTML, and r.json() would throw out of the iteration (or the check).
 */
export function jsonOf<T>(res: RefinedResponse<ResponseType | undefined>): T | undefined {
  const type = res.headers["Content-Type"] ?? "";
  if (!/\bjson\b/i.test(type) || typeof res.body !== "string") return undefined;
  try {
    return JSON.parse(res.body) as T;
  } catch {
    return undefined;
  }
}

const LIMITS_HINT =
  "raise LOGIN_RATE_LIMIT_PER_MINUTE and REGISTER_RATE_LIMIT_PER_MINUTE on the app for load tests (load/README.md)";

/** Register (201, or 409: taken by an earlier try); an error line when it did neither. */
function register(name: string): string | undefined {
  const reg = send(requestFor("register", { itemId: 1, seq: 0, username: name, password: USER_PASSWORD }));
  return reg.status === 201 || reg.status === 409 ? undefined : `register ${name}: HTTP ${reg.status} (${LIMITS_HINT})`;
}

/** Log in; the sid cookie value, or an error line. */
function login(name: string): { sid: string } | { error: string } {
  const res = send(requestFor("login", { itemId: 1, seq: 0, username: name, password: USER_PASSWORD }));
  loginDuration.add(res.timings.duration);
  const sid = sidOf(res);
  return res.status === 200 && sid ? { sid } : { error: `login ${name}: HTTP ${res.status} (${LIMITS_HINT})` };
}

/** setup(): register and log in, or stop the test (without users there is nothing to measure). */
function registerAndLogin(name: string): string {
  const regError = register(name);
  if (regError) fail(regError);
  const r = login(name);
  if ("error" in r) fail(r.error);
  return r.sid;
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
    const id = res.status === 201 ? jsonOf<{ id: number }>(res)?.id : undefined;
    if (id === undefined) fail(`seeding items: HTTP ${res.status} ${String(res.body).slice(0, 200)}`);
    itemIds.push(id);
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
    const id = res.status === 201 ? jsonOf<{ id: number }>(res)?.id : undefined;
    if (id === undefined) fail(`seeding items: HTTP ${res.status} ${String(res.body).slice(0, 200)}`);
    itemIds.push(id);
  }
  return { run, itemIds };
}

// Per-VU state (each VU has its own copy of this module).
let mySid: string | undefined;
let myName = "";
let registered = false;
let authFailures = 0;
let seq = 0;

const authFailed = new Rate("session_login_failed");

/**
 * Log this VU in once: register (once) and log in. A refusal (a 429 from the login or
 * registration limit, a 5xx) waits `authBackoffS` before the next iteration tries again,
 * rather than throwing: a thrown iteration starts the next one at once, and every try costs
 * the server a password hash, so one 429 would turn into a storm of them.
 */
function ensureSession(shape: VuShape, data: SessionData): boolean {
  if (mySid) return true;
  myName = username(data.run, exec.vu.idInTest, 1);
  let error = registered ? undefined : register(myName);
  if (!error) {
    registered = true;
    const r = login(myName);
    if ("sid" in r) mySid = r.sid;
    else error = r.error;
  }
  authFailed.add(!mySid);
  check(null, { "the VU logged in": () => mySid !== undefined });
  if (mySid) {
    authFailures = 0;
    return true;
  }
  authFailures++;
  console.warn(`${error}; trying again in ${authBackoffS(authFailures, shape.thinkTimeMs)} s`);
  sleep(authBackoffS(authFailures, shape.thinkTimeMs));
  return false;
}

/** One iteration of a sessions VU: log in on the first, then one action of the mix, then think. */
export function sessionIteration(shape: VuShape, data: SessionData): void {
  if (!ensureSession(shape, data)) return;
  // narrowed for the type checker: ensureSession() returned true
  const sid = mySid as string;
  const action = pick(shape.mix, Math.random());
  const ctx: RequestContext = { itemId: randomOf(data.itemIds), seq: seq++ };
  if (action === "write-read") {
    const write = send(requestFor("write-read", ctx), sid);
    const item = write.status === 201 ? jsonOf<{ id: number; title: string }>(write) : undefined;
    check(write, { "POST /api/items 201": () => item !== undefined });
    if (item) {
      const read = send({ ...requestFor("item-read", ctx), path: `/api/items/${item.id}` }, sid);
      const same = read.status === 200 && jsonOf<{ title?: string }>(read)?.title === item.title;
      readYourWrites.add(same);
      check(read, { "read-your-writes: the item just written reads back": () => same });
    }
  } else {
    const spec = requestFor(action, ctx);
    const res = send(spec, sid);
    check(res, { [`${spec.route} ${spec.ok.join("|")}`]: (r) => spec.ok.includes(r.status) });
    if (action === "me") {
      check(res, { "GET /api/me is this user": (r) => jsonOf<{ username?: string }>(r)?.username === myName });
    }
  }
  sleep(shape.thinkTimeMs / 1000);
}

/** Around each runner's summary JSON on stdout when SUMMARY_TO_STDOUT=1 (`make load-cluster`). */
export const SUMMARY_BEGIN = "----- nodescale k6 summary begin -----";
export const SUMMARY_END = "----- nodescale k6 summary end -----";

/**
 * handleSummary. By default it returns nothing, which keeps k6's own end-of-test summary on
 * stdout (k6 substitutes its text summary for a falsy result: internal/js/summary-wrapper.js
 * in the k6 source) and writes no file here: k6 creates no folders for handleSummary paths, so
 * a path under a folder a fresh clone lacks would lose the summary. The JSON file comes from
 * k6's `--summary-export` / K6_SUMMARY_EXPORT, which `make load` points into a folder it has
 * created. With SUMMARY_TO_STDOUT=1 (the k6-operator runners, whose only output is their
 * log) the whole summary goes to stdout between two marker lines, for `make load-cluster` to
 * collect and combine.
 */
export function summary(_name: ShapeName) {
  return (data: unknown): Record<string, string> | undefined =>
    __ENV.SUMMARY_TO_STDOUT === "1"
      ? { stdout: `\n${SUMMARY_BEGIN}\n${JSON.stringify(data)}\n${SUMMARY_END}\n` }
      : undefined;
}
