// The local runner's drivers: the same shapes k6 runs (load/shapes.ts), driven from Node.
//
//   runArrival  open loop (k6 ramping-arrival-rate): requests are issued on the shape's
//               schedule whether or not earlier ones finished; with `maxVUs` in flight, an
//               arrival is dropped and counted (k6: dropped_iterations).
//   runVUs      closed loop per virtual user (k6 ramping-vus): the sessions shape.
//   runClosed   N connections each sending back to back for a fixed time: the most a target
//               serves with this client (anchors and per-endpoint cost).
//
// Every driver is bounded in time and in requests, and targets loopback only.

import {
  type ArrivalShape,
  AUTH_ROUTES,
  arrivalsBy,
  durationOf,
  type EndpointName,
  pick,
  type RequestContext,
  type RequestSpec,
  requestFor,
  SEED_ITEMS,
  type Shape,
  sidCookie,
  type Thresholds,
  targetAt,
  USER_PASSWORD,
  username,
  type VuShape,
} from "../shapes.ts";
import { Client, type Reply } from "./http.ts";
import { Recorder, type RouteStats, type SecondStats } from "./stats.ts";

export type ShapeResult = {
  shape: string;
  description: string;
  executor: Shape["executor"];
  stages: Shape["stages"];
  thresholds: Thresholds;
  durationS: number;
  requests: number;
  errors: number;
  dropped: number;
  errorRate: number;
  rps: number;
  /** Every request but register and login (those are in authLatency). */
  latency: { p50: number; p95: number; p99: number; max: number };
  authLatency: { p50: number; p95: number; p99: number; max: number };
  seconds: SecondStats[];
  routes: RouteStats[];
  instances: Record<string, number>;
  errorSamples: string[];
  thresholdResults: { rule: string; value: number; ok: boolean }[];
  passed: boolean;
  /** breakpoint: why and where the run stopped. */
  aborted?: { atS: number; reason: string; targetRps: number; achievedRps: number };
  readYourWrites?: { checked: number; held: number; fromReplica: number };
  runnerCpuS: number;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomOf = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;

export type Fixture = { run: string; cookies: string[]; itemIds: number[] };

/** Register (409 is fine) and log in; returns the `sid=...` cookie. */
export async function registerAndLogin(client: Client, name: string): Promise<string> {
  const ctx: RequestContext = { itemId: 1, seq: 0, username: name, password: USER_PASSWORD };
  const reg = await client.send(requestFor("register", ctx), undefined, true);
  if (reg.status !== 201 && reg.status !== 409) throw new Error(`register ${name}: ${reg.status} ${reg.body}`);
  const login = await client.send(requestFor("login", ctx), undefined, true);
  const cookie = sidCookie(login.setCookie);
  if (login.status !== 200 || !cookie)
    throw new Error(`login ${name}: ${login.status} ${login.body} (is LOGIN_RATE_LIMIT_PER_MINUTE raised?)`);
  return cookie;
}

/** What k6's setup() does: log `users` users in and seed items to read. */
export async function setupFixture(base: string, users: number, items = SEED_ITEMS): Promise<Fixture> {
  const client = new Client(base, { connections: 8 });
  try {
    const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
    const cookies: string[] = [];
    for (let u = 0; u < users; u += 4) {
      const batch = Array.from({ length: Math.min(4, users - u) }, (_, i) =>
        registerAndLogin(client, username(run, u + i)),
      );
      cookies.push(...(await Promise.all(batch)));
    }
    const itemIds: number[] = [];
    for (let i = 0; i < items; i += 8) {
      const batch = Array.from({ length: Math.min(8, items - i) }, (_, k) =>
        client.send(requestFor("item-write", { itemId: 1, seq: i + k }), cookies[(i + k) % cookies.length], true),
      );
      for (const r of await Promise.all(batch)) {
        if (r.status !== 201) throw new Error(`seeding items: ${r.status} ${r.body}`);
        itemIds.push((JSON.parse(r.body) as { id: number }).id);
      }
    }
    return { run, cookies, itemIds };
  } finally {
    await client.close();
  }
}

export type Progress = (line: string) => void;

function evaluate(t: Thresholds, rec: Recorder): ShapeResult["thresholdResults"] {
  const rate = rec.requests === 0 ? 0 : rec.errors / rec.requests;
  const lat = rec.overall();
  const auth = rec.auth();
  const rules = [
    { rule: `http_req_failed rate<=${t.maxErrorRate}`, value: rate, ok: rate <= t.maxErrorRate },
    { rule: `http_req_duration{kind:api} p(95)<${t.p95Ms}`, value: lat.p95, ok: lat.p95 < t.p95Ms },
    { rule: `http_req_duration{kind:api} p(99)<${t.p99Ms}`, value: lat.p99, ok: lat.p99 < t.p99Ms },
  ];
  if (auth.max > 0)
    rules.push({
      rule: `http_req_duration{kind:auth} p(95)<${t.authP95Ms}`,
      value: auth.p95,
      ok: auth.p95 < t.authP95Ms,
    });
  return rules;
}

function result(shape: Shape, rec: Recorder, extra: Partial<ShapeResult>, cpuStart: NodeJS.CpuUsage): ShapeResult {
  const seconds = rec.seconds();
  const durationS = rec.elapsedS();
  const instances: Record<string, number> = {};
  for (const s of seconds) for (const [k, v] of Object.entries(s.instances)) instances[k] = (instances[k] ?? 0) + v;
  const thresholdResults = evaluate(shape.thresholds, rec);
  if (extra.readYourWrites) {
    const r = extra.readYourWrites;
    thresholdResults.push({
      rule: "read_your_writes rate==1",
      value: r.checked ? r.held / r.checked : 1,
      ok: r.held === r.checked,
    });
  }
  const cpu = process.cpuUsage(cpuStart);
  return {
    shape: shape.name,
    description: shape.description,
    executor: shape.executor,
    stages: shape.stages,
    thresholds: shape.thresholds,
    durationS: Math.round(durationS * 10) / 10,
    requests: rec.requests,
    errors: rec.errors,
    dropped: rec.dropped,
    errorRate: rec.requests ? rec.errors / rec.requests : 0,
    rps: Math.round((rec.requests / durationS) * 10) / 10,
    latency: rec.overall(),
    authLatency: rec.auth(),
    seconds,
    routes: rec.routes(),
    instances,
    errorSamples: rec.errorSamples,
    thresholdResults,
    passed: thresholdResults.every((r) => r.ok) && !extra.aborted,
    runnerCpuS: Math.round(((cpu.user + cpu.system) / 1e6) * 1000) / 1000,
    ...extra,
  };
}

/** The highest rate served in one second that still met the thresholds (no drops, errors and p95 within). */
export function kneeOf(seconds: SecondStats[], t: Thresholds): number {
  let best = 0;
  for (const s of seconds) {
    if (s.requests === 0 || s.dropped > 0) continue;
    if (s.errors / s.requests > t.maxErrorRate || s.latency.p95 >= t.p95Ms) continue;
    best = Math.max(best, s.requests);
  }
  return best;
}

/** Open-loop run of an arrival shape through `base` (the load balancer). */
export async function runArrival(
  shape: ArrivalShape,
  base: string,
  fixture: Fixture,
  options: { maxRequests?: number; progress?: Progress; abortWindowS?: number; abortDelayS?: number } = {},
): Promise<ShapeResult> {
  const client = new Client(base, { connections: shape.maxVUs });
  const rec = new Recorder(AUTH_ROUTES);
  const cpuStart = process.cpuUsage();
  const total = durationOf(shape);
  const maxRequests = options.maxRequests ?? Math.ceil(arrivalsBy(shape, total)) + 10;
  const inFlight = new Set<Promise<void>>();
  let issued = 0;
  let seq = 0;
  let aborted: ShapeResult["aborted"];
  let lastReport = 0;
  const window = options.abortWindowS ?? 5;
  const delay = options.abortDelayS ?? 10;

  const fire = (endpoint: EndpointName) => {
    const spec = requestFor(endpoint, { itemId: randomOf(fixture.itemIds), seq: seq++ });
    const p = client.send(spec, spec.auth ? randomOf(fixture.cookies) : undefined).then((o) => {
      rec.record(o);
      inFlight.delete(p);
    });
    inFlight.add(p);
  };

  while (true) {
    const at = rec.elapsedS();
    if (at >= total || issued >= maxRequests) break;
    rec.setTarget(targetAt(shape, at));
    const due = Math.min(maxRequests, Math.floor(arrivalsBy(shape, at)));
    while (issued < due) {
      issued++;
      if (inFlight.size >= shape.maxVUs) rec.drop();
      else fire(pick(shape.mix, Math.random()));
    }
    const whole = Math.floor(at);
    if (whole > lastReport) {
      lastReport = whole;
      const w = rec.window(whole - 1, whole);
      if (whole % 5 === 0)
        options.progress?.(
          `  ${shape.name} ${whole}/${Math.round(total)} s  target ${targetAt(shape, at).toFixed(0)}/s  done ${w.requests}/s  p95 ${w.latency.p95.toFixed(1)} ms  errors ${w.errors}  dropped ${w.dropped}`,
        );
      if (shape.thresholds.abortOnFail && whole >= delay) {
        const r = rec.window(whole - window, whole);
        const sent = r.requests + r.dropped;
        const t = shape.thresholds;
        const why =
          r.requests > 0 && r.errors / r.requests > t.maxErrorRate
            ? `error rate ${((100 * r.errors) / r.requests).toFixed(2)} % > ${t.maxErrorRate * 100} %`
            : r.latency.p95 >= t.p95Ms
              ? `p95 ${r.latency.p95.toFixed(0)} ms >= ${t.p95Ms} ms`
              : r.latency.p99 >= t.p99Ms
                ? `p99 ${r.latency.p99.toFixed(0)} ms >= ${t.p99Ms} ms`
                : sent > 0 && r.dropped / sent > 0.01
                  ? `${r.dropped} of ${sent} arrivals dropped (${shape.maxVUs} requests in flight)`
                  : null;
        if (why) {
          aborted = {
            atS: whole,
            reason: why,
            targetRps: Math.round(targetAt(shape, at)),
            achievedRps: kneeOf(rec.seconds(), shape.thresholds),
          };
          options.progress?.(`  ${shape.name}: threshold failed at ${whole} s (${why}); stopping`);
          break;
        }
      }
    }
    await sleep(1);
  }
  await Promise.all(inFlight);
  await client.close();
  return result(shape, rec, { aborted }, cpuStart);
}

/** Closed loop per virtual user: the sessions shape. */
export async function runVUs(
  shape: VuShape,
  base: string,
  fixture: Fixture,
  options: { progress?: Progress } = {},
): Promise<ShapeResult> {
  const peak = Math.max(shape.startVUs, ...shape.stages.map((s) => s.target));
  const client = new Client(base, { connections: Math.max(4, peak) });
  const rec = new Recorder(AUTH_ROUTES);
  const cpuStart = process.cpuUsage();
  const total = durationOf(shape);
  const ryw = { checked: 0, held: 0, fromReplica: 0 };
  let wanted = 0;
  const running: Promise<void>[] = [];
  let active = 0;

  const record = (o: Reply, spec: RequestSpec) => rec.record({ ...o, route: spec.route });

  const vu = async (id: number) => {
    active++;
    try {
      const name = username(fixture.run, id, 1);
      const ctx: RequestContext = { itemId: 1, seq: 0, username: name, password: USER_PASSWORD };
      const regSpec = requestFor("register", ctx);
      const reg = await client.send(regSpec, undefined, true);
      record(reg, regSpec);
      const loginSpec = requestFor("login", ctx);
      const login = await client.send(loginSpec, undefined, true);
      record(login, loginSpec);
      const cookie = sidCookie(login.setCookie);
      if (!cookie) return;
      let seq = 0;
      while (id < wanted && rec.elapsedS() < total) {
        const action = pick(shape.mix, Math.random());
        const c: RequestContext = { itemId: randomOf(fixture.itemIds), seq: seq++ };
        if (action === "write-read") {
          const wSpec = requestFor("write-read", c);
          const w = await client.send(wSpec, cookie, true);
          record(w, wSpec);
          if (w.status === 201) {
            const item = JSON.parse(w.body) as { id: number; title: string };
            const rSpec = { ...requestFor("item-read", c), path: `/api/items/${item.id}` };
            const r = await client.send(rSpec, cookie, true);
            const held = r.status === 200 && (JSON.parse(r.body) as { title?: string }).title === item.title;
            ryw.checked++;
            if (held) ryw.held++;
            if (r.dbRoute === "replica") ryw.fromReplica++;
            record(
              {
                ...r,
                ok: held,
                error: held ? undefined : `read-your-writes failed: ${r.status} ${r.body.slice(0, 100)}`,
              },
              rSpec,
            );
          }
        } else {
          const spec = requestFor(action, c);
          const o = await client.send(spec, cookie, action === "me");
          if (action === "me" && o.ok && (JSON.parse(o.body) as { username?: string }).username !== name) {
            record({ ...o, ok: false, error: "GET /api/me answered for another user" }, spec);
          } else record(o, spec);
        }
        await sleep(shape.thinkTimeMs);
      }
    } finally {
      active--;
    }
  };

  let lastReport = 0;
  while (rec.elapsedS() < total) {
    const at = rec.elapsedS();
    wanted = Math.round(targetAt(shape, at));
    rec.setTarget(wanted);
    while (running.length < wanted) running.push(vu(running.length));
    const whole = Math.floor(at);
    if (whole > lastReport && whole % 5 === 0) {
      lastReport = whole;
      const w = rec.window(whole - 1, whole);
      options.progress?.(
        `  ${shape.name} ${whole}/${Math.round(total)} s  VUs ${active}/${wanted}  done ${w.requests}/s  p95 ${w.latency.p95.toFixed(1)} ms  errors ${w.errors}`,
      );
    }
    await sleep(20);
  }
  wanted = 0;
  await Promise.all(running);
  await client.close();
  return result(shape, rec, { readYourWrites: ryw }, cpuStart);
}

export type ClosedResult = {
  requests: number;
  errors: number;
  rps: number;
  latency: { p50: number; p95: number; p99: number; max: number };
  durationS: number;
  errorSamples: string[];
  instances: Record<string, number>;
};

/** `connections` loops sending `next()` back to back for `durationS` (at most `maxRequests`). */
export async function runClosed(
  base: string,
  next: (i: number) => { spec: RequestSpec; cookie?: string },
  options: { connections: number; durationS: number; maxRequests?: number },
): Promise<ClosedResult> {
  const client = new Client(base, { connections: options.connections });
  const rec = new Recorder();
  const max = options.maxRequests ?? 10_000_000;
  let sent = 0;
  const deadline = performance.now() + options.durationS * 1000;
  const loop = async () => {
    while (performance.now() < deadline && sent < max) {
      const { spec, cookie } = next(sent++);
      rec.record(await client.send(spec, cookie));
    }
  };
  await Promise.all(Array.from({ length: options.connections }, loop));
  const durationS = rec.elapsedS();
  await client.close();
  const instances: Record<string, number> = {};
  for (const s of rec.seconds())
    for (const [k, v] of Object.entries(s.instances)) instances[k] = (instances[k] ?? 0) + v;
  return {
    requests: rec.requests,
    errors: rec.errors,
    rps: rec.requests / durationS,
    latency: rec.overall(),
    durationS,
    errorSamples: rec.errorSamples,
    instances,
  };
}

/** Run any shape with the right driver. */
export function runShape(shape: Shape, base: string, fixture: Fixture, progress?: Progress): Promise<ShapeResult> {
  return shape.executor === "ramping-arrival-rate"
    ? runArrival(shape, base, fixture, { progress })
    : runVUs(shape, base, fixture, { progress });
}
