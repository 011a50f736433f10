// The local runner's drivers: the same shapes k6 runs (load/shapes.ts), driven from Node.
//
//   runArrival  open loop (k6 ramping-arrival-rate): requests are issued on the shape's
//               schedule whether or not earlier ones finished; with `maxVUs` in flight, an
//               arrival is dropped and counted (k6: dropped_iterations). Latency runs from
//               each arrival's scheduled time; a drop is a failure of infinite latency.
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
  peakOf,
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
import { type Knee, kneeOf, windowVerdict } from "./knee.ts";
import { arrivalTime } from "./schedule.ts";
import { type Percentiles, percentiles, Recorder, type RouteStats, type SecondStats } from "./stats.ts";

export type ShapeResult = {
  shape: string;
  description: string;
  executor: Shape["executor"];
  stages: Shape["stages"];
  thresholds: Thresholds;
  /** The run's own plan on this machine: its length and its peak (req/s, or VUs). */
  plannedS: number;
  peakTarget: number;
  durationS: number;
  /** Open loop: arrivals the shape asked for (sent + dropped). */
  offered: number;
  requests: number;
  errors: number;
  dropped: number;
  /** Errors and drops over everything offered (or sent, closed loop). */
  errorRate: number;
  rps: number;
  /** Every request but register and login (those are in authLatency); drops count as infinite. */
  latency: Percentiles;
  authLatency: Percentiles;
  /** Open loop: how late requests left the client after their scheduled time. */
  sendLag?: Percentiles;
  /** Open loop: the highest offered rate a window held (see knee.ts). */
  knee?: Knee;
  seconds: SecondStats[];
  routes: RouteStats[];
  instances: Record<string, number>;
  errorSamples: string[];
  thresholdResults: { rule: string; value: number; ok: boolean }[];
  passed: boolean;
  /** breakpoint: why and where the run stopped. */
  aborted?: { atS: number; reason: string; targetRps: number; achievedRps: number };
  readYourWrites?: { checked: number; held: number; fromReplica: number };
  /** CPU seconds of this process (the load generator) during the run. */
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

/**
 * Request number `seq` of a one-endpoint run against a fixture: each register a new user,
 * each login one of the fixture's users, anything else with a session where it needs one.
 */
export function endpointRequest(
  endpoint: EndpointName,
  fixture: Fixture,
  seq: number,
  acceptEncoding?: string,
): { spec: RequestSpec; cookie?: string } {
  const itemId = fixture.itemIds[seq % fixture.itemIds.length] as number;
  if (endpoint === "register")
    return {
      spec: requestFor("register", {
        itemId,
        seq,
        username: username(fixture.run, 9999, seq),
        password: USER_PASSWORD,
      }),
    };
  if (endpoint === "login")
    return {
      spec: requestFor("login", {
        itemId,
        seq,
        username: username(fixture.run, seq % fixture.cookies.length),
        password: USER_PASSWORD,
      }),
    };
  const spec = { ...requestFor(endpoint, { itemId, seq }), ...(acceptEncoding ? { acceptEncoding } : {}) };
  return { spec, cookie: spec.auth ? fixture.cookies[seq % fixture.cookies.length] : undefined };
}

/** What a closed-loop run sends, in a form a worker thread can rebuild (no closures). */
export type Job =
  | { kind: "fixed"; spec: RequestSpec }
  | { kind: "endpoint"; endpoint: EndpointName; fixture: Fixture; seqStart: number; acceptEncoding?: string };

export function jobRequest(job: Job, seq: number): { spec: RequestSpec; cookie?: string } {
  return job.kind === "fixed"
    ? { spec: job.spec }
    : endpointRequest(job.endpoint, job.fixture, job.seqStart + seq, job.acceptEncoding);
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

/**
 * The shape's thresholds over the whole run. Drops count as failed requests and as infinite
 * latencies; `dropped_iterations` is held to the shape's limit (none allowed by default).
 */
export function evaluate(t: Thresholds, rec: Recorder): ShapeResult["thresholdResults"] {
  const offered = rec.requests + rec.dropped;
  const rate = offered === 0 ? 0 : (rec.errors + rec.dropped) / offered;
  const lat = rec.overall();
  const auth = rec.auth();
  // shared with k6 (shapes.ts: dropped_iterations)
  const maxDropped = t.maxDropped ?? 0;
  const rules = [
    { rule: `http_req_failed (drops included) rate<=${t.maxErrorRate}`, value: rate, ok: rate <= t.maxErrorRate },
    { rule: `http_req_duration{kind:api} p(95)<${t.p95Ms}`, value: lat.p95, ok: lat.p95 < t.p95Ms },
    { rule: `http_req_duration{kind:api} p(99)<${t.p99Ms}`, value: lat.p99, ok: lat.p99 < t.p99Ms },
    { rule: `dropped_iterations count<=${maxDropped}`, value: rec.dropped, ok: rec.dropped <= maxDropped },
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
    plannedS: durationOf(shape),
    peakTarget: peakOf(shape),
    durationS: Math.round(durationS * 10) / 10,
    offered: rec.requests + rec.dropped,
    requests: rec.requests,
    errors: rec.errors,
    dropped: rec.dropped,
    errorRate: rec.requests + rec.dropped ? (rec.errors + rec.dropped) / (rec.requests + rec.dropped) : 0,
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

/**
 * Open-loop run of an arrival shape through `base` (the load balancer). Arrival k is due at
 * arrivalTime(shape, k); the loop sends every arrival that is due, timed from when it was
 * due. With `abortOnFail`, the run stops at the first window (knee.ts) that fails, checked
 * one second behind the clock; requests of that window still in flight count with the age
 * they have reached, so that a stalled server cannot hide its tail by not answering.
 */
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
  const inFlight = new Set<{ scheduledS: number }>();
  const pending = new Set<Promise<void>>();
  let issued = 0;
  let seq = 0;
  let aborted: ShapeResult["aborted"];
  let lastReport = 0;
  const window = options.abortWindowS ?? 5;
  const delay = options.abortDelayS ?? 10;
  const t0 = rec.startedAt;

  const fire = (endpoint: EndpointName, scheduledS: number) => {
    const spec = requestFor(endpoint, { itemId: randomOf(fixture.itemIds), seq: seq++ });
    const entry = { scheduledS };
    inFlight.add(entry);
    const p = client
      .send(spec, spec.auth ? randomOf(fixture.cookies) : undefined, false, t0 + scheduledS * 1000)
      .then((o) => {
        rec.record({ ...o, scheduledS });
        inFlight.delete(entry);
        pending.delete(p);
      });
    pending.add(p);
  };

  while (true) {
    const at = rec.elapsedS();
    if (at >= total || issued >= maxRequests) break;
    rec.setTarget(targetAt(shape, at));
    while (issued < maxRequests) {
      const due = arrivalTime(shape, issued + 1);
      if (due > at || due >= total) break;
      issued++;
      rec.offer(due);
      if (inFlight.size >= shape.maxVUs) rec.drop(due);
      else fire(pick(shape.mix, Math.random()), due);
    }
    const whole = Math.floor(at);
    if (whole > lastReport) {
      lastReport = whole;
      if (whole % 5 === 0) {
        const w = rec.window(whole - 1, whole);
        options.progress?.(
          `  ${shape.name} ${whole}/${Math.round(total)} s  target ${targetAt(shape, at).toFixed(0)}/s  done ${w.requests}/s  p95 ${w.latency.p95.toFixed(1)} ms  errors ${w.errors}  dropped ${w.dropped}`,
        );
      }
      if (shape.thresholds.abortOnFail && whole >= delay) {
        const to = whole - 1;
        const secs = rec.rawSeconds(to).slice(Math.max(0, to - window));
        const late = new Map<number, number[]>();
        for (const e of inFlight) {
          const sec = Math.floor(e.scheduledS);
          if (sec < to - window || sec >= to) continue;
          late.set(sec, [...(late.get(sec) ?? []), (at - e.scheduledS) * 1000]);
        }
        const v = windowVerdict(
          secs.map((x) => ({ ...x, latencies: [...x.latencies, ...(late.get(x.t) ?? [])] })),
          shape.thresholds,
        );
        if (v?.why) {
          aborted = {
            atS: whole,
            reason: `${v.why} in ${v.fromS}-${v.toS} s (offered ${v.offeredRps.toFixed(0)}/s)`,
            targetRps: Math.round(targetAt(shape, at)),
            achievedRps: 0,
          };
          options.progress?.(`  ${shape.name}: threshold failed at ${whole} s (${aborted.reason}); stopping`);
          break;
        }
      }
    }
    await sleep(1);
  }
  await Promise.all(pending);
  await client.close();
  // whole seconds only: the last one was cut off by the end of the run (or the abort)
  const knee = kneeOf(rec.rawSeconds(Math.floor(aborted?.atS ?? total)), shape.thresholds);
  if (aborted) aborted.achievedRps = knee.rps;
  return result(shape, rec, { aborted, knee, sendLag: rec.sendLag() }, cpuStart);
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
  /** CPU seconds of this process (the load generator) during the run. */
  clientCpuS: number;
};

export type OpenResult = ClosedResult & { offered: number; dropped: number; sendLag: Percentiles };

/** `connections` loops sending `next()` back to back for `durationS` (at most `maxRequests`). */
export async function runClosed(
  base: string,
  next: (i: number) => { spec: RequestSpec; cookie?: string },
  options: { connections: number; durationS: number; maxRequests?: number },
): Promise<ClosedResult> {
  const client = new Client(base, { connections: options.connections });
  const rec = new Recorder();
  const cpuStart = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpuStart);
  await client.close();
  return summary(rec, durationS, cpu);
}

/** One thread's closed-loop run, raw: what runClosedThreads merges. */
export type ClosedPart = {
  requests: number;
  errors: number;
  durationS: number;
  latencies: number[];
  errorSamples: string[];
  instances: Record<string, number>;
};

/** `connections` loops back to back, returning the raw latencies (for a worker thread to post). */
export async function runClosedPart(
  base: string,
  next: (i: number) => { spec: RequestSpec; cookie?: string },
  options: { connections: number; durationS: number },
): Promise<ClosedPart> {
  const client = new Client(base, { connections: options.connections });
  const rec = new Recorder();
  const deadline = performance.now() + options.durationS * 1000;
  let sent = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const { spec, cookie } = next(sent++);
      rec.record(await client.send(spec, cookie));
    }
  };
  await Promise.all(Array.from({ length: options.connections }, loop));
  const durationS = rec.elapsedS();
  await client.close();
  const instances: Record<string, number> = {};
  for (const x of rec.seconds())
    for (const [k, v] of Object.entries(x.instances)) instances[k] = (instances[k] ?? 0) + v;
  return {
    requests: rec.requests,
    errors: rec.errors,
    durationS,
    latencies: rec.allLatencies(),
    errorSamples: rec.errorSamples,
    instances,
  };
}

/**
 * A closed-loop run split over `threads` worker threads, `connections` in all: the load
 * generator on more than one core, where the machine has cores to spare for it. Each thread
 * takes every threads-th request number of the job.
 */
export async function runClosedThreads(
  base: string,
  job: Job,
  options: { connections: number; durationS: number; threads: number },
): Promise<ClosedResult> {
  const { Worker } = await import("node:worker_threads");
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const parts = await Promise.all(
    Array.from({ length: options.threads }, (_, index) => {
      const connections = Math.max(1, Math.round(options.connections / options.threads));
      const worker = new Worker(new URL("./closed-worker.ts", import.meta.url), {
        workerData: { base, job, index, threads: options.threads, connections, durationS: options.durationS },
      });
      return new Promise<ClosedPart>((resolve, reject) => {
        worker.once("message", (m: ClosedPart) => resolve(m));
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`client thread ${index} exited (${code}) before reporting`)));
      }).finally(() => worker.terminate());
    }),
  );
  const cpu = process.cpuUsage(cpuStart);
  const durationS = Math.max((performance.now() - started) / 1000, ...parts.map((x) => x.durationS));
  const instances: Record<string, number> = {};
  for (const x of parts) for (const [k, v] of Object.entries(x.instances)) instances[k] = (instances[k] ?? 0) + v;
  const requests = parts.reduce((n, x) => n + x.requests, 0);
  return {
    requests,
    errors: parts.reduce((n, x) => n + x.errors, 0),
    rps: requests / Math.max(...parts.map((x) => x.durationS)),
    latency: percentiles(parts.flatMap((x) => x.latencies)),
    durationS,
    errorSamples: parts.flatMap((x) => x.errorSamples).slice(0, 20),
    instances,
    clientCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

function summary(rec: Recorder, durationS: number, cpu: NodeJS.CpuUsage): ClosedResult {
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
    clientCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

/**
 * Open loop at a constant `rps` for `durationS`: arrival k is due at k / rps, timed from then;
 * with `maxInFlight` requests outstanding an arrival is dropped. The cost of a request at a
 * given load (the HPA's target utilization) rather than at saturation.
 */
export async function runOpen(
  base: string,
  next: (i: number) => { spec: RequestSpec; cookie?: string },
  options: { rps: number; durationS: number; maxInFlight: number },
): Promise<OpenResult> {
  const client = new Client(base, { connections: options.maxInFlight });
  const rec = new Recorder();
  const cpuStart = process.cpuUsage();
  const pending = new Set<Promise<void>>();
  const t0 = rec.startedAt;
  const total = Math.floor(options.rps * options.durationS);
  let issued = 0;
  while (issued < total) {
    const at = rec.elapsedS();
    while (issued < total && (issued + 1) / options.rps <= at) {
      const due = (issued + 1) / options.rps;
      const { spec, cookie } = next(issued++);
      rec.offer(due);
      if (pending.size >= options.maxInFlight) {
        rec.drop(due);
        continue;
      }
      const p = client.send(spec, cookie, false, t0 + due * 1000).then((o) => {
        rec.record({ ...o, scheduledS: due });
        pending.delete(p);
      });
      pending.add(p);
    }
    await sleep(1);
  }
  await Promise.all(pending);
  const durationS = rec.elapsedS();
  const cpu = process.cpuUsage(cpuStart);
  await client.close();
  return {
    ...summary(rec, durationS, cpu),
    offered: issued,
    dropped: rec.dropped,
    sendLag: rec.sendLag(),
  };
}

/** Run any shape with the right driver. */
export function runShape(shape: Shape, base: string, fixture: Fixture, progress?: Progress): Promise<ShapeResult> {
  return shape.executor === "ramping-arrival-rate"
    ? runArrival(shape, base, fixture, { progress })
    : runVUs(shape, base, fixture, { progress });
}
