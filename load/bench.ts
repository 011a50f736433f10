// `make bench`: one run, on this machine, of everything the load story claims.
//
//   1. brings the local topology up (nginx, 2 app instances, Redis, PostgreSQL primary +
//      replica) on free ports, plus two anchors as their own processes: a bare node:http
//      hello-world and an Express 5 hello-world;
//   2. measures the anchors and then every endpoint of the app with the same client and the
//      same settings (closed loop, fixed connections), straight to one process each: req/s,
//      CPU time per request (from /proc/<pid>/stat of the server), Redis commands per request
//      (INFO commandstats deltas) and PostgreSQL statements per request (counted on the wire
//      by proxies in front of the primary and the replica); every request carries a browser's
//      Accept-Encoding, and the routes that compress (the list, the export) run again with
//      identity, which prices compression (runner/compression.ts);
//   3. measures the anchors and endpoints again at the operating point: open loop at the rate
//      that keeps UTILIZATION of a core busy (the HPA's target), the cost capacity.ts uses;
//   4. runs every shape of load/shapes.ts through nginx, scaled to this machine: the
//      breakpoint BENCH_CLIMBS times to twice the estimate for the knee (runner/knee.ts),
//      then the others at 80 % of the knee;
//   every phase records the load generator's own CPU and is flagged where its numbers are
//   the client's, or not the server's, limit (runner/flags.ts);
//   then measures the anchors again (the machine is shared: the two passes show drift) and
//   writes bench/results/<timestamp>.json and .html, and stops what it started.
//
// Ratios, not absolute numbers, are the result: everything is measured in the same run.
// Settings (env): BENCH_TARGET_RPS (the local ramp target; default: derived from the
// endpoint measurements), BENCH_CONNECTIONS (32), BENCH_QUICK=1 (shorter phases, for trying
// the bench itself), BENCH_OUT (bench/results), BENCH_KEEP=1 (keep the stack's logs),
// BENCH_CLIMBS (breakpoint climbs, 3; QUICK 1), BENCH_USERS (64; QUICK 16),
// BENCH_UTILIZATION (the operating point, 0.6 of a core), PROFILE=1 (after the endpoints, a
// CPU profile of app-1 per endpoint: top self-time functions and a flame graph in the report,
// the .cpuprofile files in bench/results/<timestamp>-profiles/; runner/profile-inspector.ts),
// BENCH_PHASES (default all; runner/phases.ts): a comma-separated list of operating-point,
// fixed-rate, pm2, shapes to run after the setup, anchors and saturated endpoints, which always
// run (with PROFILE=1's pass and anchors pass 2). `BENCH_PHASES=endpoints` runs only those
// (about a minute with BENCH_QUICK=1): for iterating on the app's hot path. The JSON lists the
// phases run and not run, the report says which were not run, and capacity.ts skips such runs.
// BENCH_TOPOLOGY=plain|redis-cluster|pgbouncer (default plain; runner/backing.ts): the stack
// with one Redis and PostgreSQL straight behind the counting proxies, with a Redis Cluster
// (3 primaries + 3 replicas; Redis CPU summed over every node, commands over the primaries), or
// with PgBouncer in transaction mode between the app and the counting proxies (its CPU metered
// as a component). The JSON's `topology` and the report's title say which.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join, relative, resolve } from "node:path";
import { freePort, freePorts } from "../local/net.ts";
import { buildApp, startPm2Cluster } from "../local/pm2.ts";
import { APP_ROLE, DATABASE, pgUrl } from "../local/postgres.ts";
import { startTopology, stateDirFor, type Topology } from "../local/topology.ts";
import { LOAD_TEST_APP_ENV } from "./app-env.ts";
import { renderReport } from "./report.ts";
import {
  type Background,
  Backing,
  foldCpu,
  opsBetween,
  parseTopology,
  pgStatements,
  sumRedis,
  topologyTitle,
} from "./runner/backing.ts";
import { type CompressionCost, compressionCost, type WireSample, wireSample } from "./runner/compression.ts";
import {
  type ClosedResult,
  endpointRequest,
  type Fixture,
  type Job,
  type OpenResult,
  runClosed,
  runClosedThreads,
  runOpen,
  runShape,
  type ShapeResult,
  setupFixture,
} from "./runner/drive.ts";
import { coresOf, phaseFlags } from "./runner/flags.ts";
import { KNEE_WINDOW_S, kneeLabel, kneeSpread, MIN_SERVED_RATIO } from "./runner/knee.ts";
import { PgCounter, type PgCounts } from "./runner/pg-counter.ts";
import { type Phase, parsePhases, phasesNotRun } from "./runner/phases.ts";
import { CpuMeter, childrenMatching } from "./runner/procstat.ts";
import { type EndpointProfile, summarize } from "./runner/profile.ts";
import { type Inspector, openInspector, profileWhile } from "./runner/profile-inspector.ts";
import {
  API_MIX,
  type ArrivalShape,
  clusterShape,
  durationOf,
  type EndpointName,
  peakOf,
  type RequestSpec,
  requestFor,
  type Shape,
  type ShapeName,
  scale,
  scaleTo,
} from "./shapes.ts";

const REPO = resolve(import.meta.dirname, "..");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const log = (line: string) =>
  process.stdout.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);

const QUICK = process.env.BENCH_QUICK === "1";
/** PROFILE=1: one CPU profile of app-1 per endpoint, in a pass of its own (the profiler costs CPU). */
const PROFILE = process.env.PROFILE === "1";
/** The profiler's sampling interval in µs: 0.5 ms gives a few thousand samples per endpoint. */
const PROFILE_INTERVAL_US = 500;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MEASURE_S = QUICK ? 2 : 5;
/** The HPA's target utilization (capacity's TARGET_UTILIZATION): the operating point's load on one core. */
const UTILIZATION = Number(process.env.BENCH_UTILIZATION ?? 0.6);
/** The open-loop client keeps its schedule up to about this rate (higher: the client is the limit). */
const MAX_OPEN_RPS = 4000;
/** BENCH_FIXED_RPS: the one rate anchors and endpoints all run at (0: skip; default: the costliest endpoint's operating point). */
const FIXED_RPS = process.env.BENCH_FIXED_RPS ? Number(process.env.BENCH_FIXED_RPS) : undefined;
/**
 * Threads of the closed-loop load generator (anchors and endpoints at saturation). One where
 * the machine has 2 cores or fewer (another would take the server's core; the flags say where
 * the single client was the limit); else up to 4, leaving 2 cores to the server side.
 */
const CLIENT_THREADS = Math.max(
  1,
  Number(process.env.BENCH_CLIENT_THREADS ?? (cpus().length > 2 ? Math.min(4, cpus().length - 2) : 1)),
);
/** One log level for every app process the bench starts (topology instances and PM2 alike). */
const LOG_LEVEL = "info";
/**
 * Logged-in users the requests are spread over. Read-your-writes pins a user's reads to the
 * primary for a while after each of their writes: with 8 users each wrote several times a
 * second and most reads were pinned. More users, each writing less, give the window that
 * capacity.ts scales to real users. Each costs a register and a login (scrypt).
 */
const USERS = Math.max(1, Number(process.env.BENCH_USERS ?? (QUICK ? 16 : 64)));
/** Breakpoint climbs: the knee is their median, their range its spread. */
const CLIMBS = Math.max(1, Number(process.env.BENCH_CLIMBS ?? (QUICK ? 1 : 3)));
const WARMUP_S = 1;
/** Cluster scale the local shapes are derived from: the k6 scripts' default TARGET_RPS. */
export const CLUSTER_TARGET_RPS = 1000;
let pgCounter: PgCounter | undefined;
/** The stack's Redis and PostgreSQL as the bench counts them (runner/backing.ts), once it is up. */
let backing: Backing | undefined;

/** Seconds each shape gets on this machine. */
const SHAPE_SECONDS: Record<ShapeName, number> = QUICK
  ? { smoke: 5, ramp: 20, spike: 10, soak: 10, sessions: 10, breakpoint: 20 }
  : { smoke: 10, ramp: 75, spike: 30, soak: 40, sessions: 30, breakpoint: 60 };

// ----- anchors -----

type Anchor = { name: string; child: ChildProcess; port: number };

async function startAnchor(name: string, file: string): Promise<Anchor> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(import.meta.dirname, "anchors", file)], {
    env: { ...process.env, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`anchor ${name} did not start`)), 15_000);
    child.stdout?.once("data", () => {
      clearTimeout(timer);
      ok();
    });
    child.once("exit", (code) => fail(new Error(`anchor ${name} exited (${code})`)));
  });
  return { name, child, port };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(timer);
      ok();
    });
    child.kill("SIGTERM");
  });
}

export type Measurement = {
  name: string;
  route: string;
  target: string;
  connections: number;
  rps: number;
  requests: number;
  errors: number;
  latency: ClosedResult["latency"];
  /** CPU milliseconds per request of the serving process (its threads included). */
  cpuMsPerRequest: number;
  /** CPU ms per request of Redis and of each PostgreSQL server during the phase. */
  redisCpuMsPerRequest?: number;
  pgPrimaryCpuMsPerRequest?: number;
  pgReplicaCpuMsPerRequest?: number;
  /** Of the replica's: its startup process, which replays the WAL (one process, one core at most). */
  pgReplayCpuMsPerRequest?: number;
  /** BENCH_TOPOLOGY=pgbouncer: PgBouncer's own CPU (both pools, one process). */
  pgbouncerCpuMsPerRequest?: number;
  redisCommandsPerRequest?: number;
  redisCommands?: Record<string, number>;
  /** Statements sent to each PostgreSQL server per request (replica lag polls excluded). */
  pgPrimaryStatementsPerRequest?: number;
  pgReplicaStatementsPerRequest?: number;
  /** Cores the server under test and the load generator used over the phase. */
  serverCores: number;
  clientCores: number;
  /** Where the numbers are the client's or not the server's limit (flags.ts). */
  flags: string[];
  /** Open loop only: the rate asked for, arrivals dropped, send lag p99 (ms). */
  offeredRps?: number;
  dropped?: number;
  sendLagP99Ms?: number;
  errorSamples: string[];
};

type Mode = { open?: undefined; connections: number } | { open: number; connections: number };

/** Runs `next` closed loop (saturation) or open loop at `mode.open` req/s. */
async function drive(
  base: string,
  next: (i: number) => { spec: RequestSpec; cookie?: string },
  mode: Mode,
  durationS: number,
  job?: Job,
): Promise<ClosedResult & Partial<OpenResult>> {
  if (mode.open !== undefined) return runOpen(base, next, { rps: mode.open, durationS, maxInFlight: mode.connections });
  if (job && CLIENT_THREADS > 1)
    return runClosedThreads(base, job, { connections: mode.connections, durationS, threads: CLIENT_THREADS });
  return runClosed(base, next, { connections: mode.connections, durationS });
}

/** The numbers every measurement shares: cores, flags, and the open-loop extras. */
function phaseOf(r: ClosedResult & Partial<OpenResult>, serverCpuS: number, mode: Mode) {
  const serverCores = coresOf(serverCpuS, r.durationS);
  const clientCores = coresOf(r.clientCpuS, r.durationS);
  const sendLagP99Ms = r.sendLag?.p99;
  return {
    serverCores,
    clientCores,
    flags: phaseFlags({
      serverCores,
      clientCores,
      saturating: mode.open === undefined,
      sendLagP99Ms,
      dropped: r.dropped,
    }),
    ...(mode.open === undefined ? {} : { offeredRps: round(mode.open, 1), dropped: r.dropped, sendLagP99Ms }),
  };
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

async function measureAnchor(a: Anchor, pass: number, mode: Mode = { connections: CONNECTIONS }): Promise<Measurement> {
  const spec: RequestSpec = { method: "GET", path: "/", auth: false, ok: [200], route: "GET /" };
  const base = `http://127.0.0.1:${a.port}`;
  const job: Job = { kind: "fixed", spec };
  await drive(base, () => ({ spec }), mode, WARMUP_S, job);
  const meter = new CpuMeter({ server: a.child.pid as number });
  const r = await drive(base, () => ({ spec }), mode, MEASURE_S, job);
  const cpu = meter.delta();
  const m: Measurement = {
    name: a.name,
    route: "GET /",
    target: mode.open === undefined ? `anchor pass ${pass}` : `anchor, open loop at ${mode.open.toFixed(0)} req/s`,
    connections: mode.connections,
    rps: round(r.rps, 1),
    requests: r.requests,
    errors: r.errors,
    latency: r.latency,
    cpuMsPerRequest: round(((cpu.server ?? 0) * 1000) / Math.max(1, r.requests), 4),
    ...phaseOf(r, cpu.server ?? 0, mode),
    errorSamples: r.errorSamples,
  };
  logMeasurement(m);
  return m;
}

function logMeasurement(m: Measurement): void {
  log(
    `  ${m.name.padEnd(22)} ${m.rps.toFixed(0).padStart(6)} req/s  ${m.cpuMsPerRequest.toFixed(3)} CPU ms/req  p99 ${m.latency.p99} ms  ` +
      `cores: server ${m.serverCores}, client ${m.clientCores}` +
      (m.redisCommandsPerRequest === undefined
        ? ""
        : `  redis ${m.redisCommandsPerRequest}/req  pg ${m.pgPrimaryStatementsPerRequest}+${m.pgReplicaStatementsPerRequest}/req`) +
      `  errors ${m.errors}${m.dropped ? `  dropped ${m.dropped}` : ""}`,
  );
  for (const f of m.flags) log(`    flag: ${f}`);
}

type EndpointPlan = {
  name: string;
  endpoint: EndpointName;
  connections: number;
  durationS: number;
  /** Accept-Encoding other than a browser's (ACCEPT_ENCODING): "identity" prices compression. */
  acceptEncoding?: string;
  /**
   * Measured at saturation only, not at the operating point: scrypt costs the same at any
   * load; the exports and the identity twins only price compression.
   */
  saturationOnly?: true;
};

async function measureEndpoint(
  stack: Topology,
  fixture: Fixture,
  plan: EndpointPlan,
  bg: Background,
  seqStart: { n: number },
  open?: number,
): Promise<Measurement> {
  const app = stack.instances[0];
  if (!app?.pid) throw new Error("app-1 is not running");
  const state = stack.state;
  const next = () => endpointRequest(plan.endpoint, fixture, seqStart.n++, plan.acceptEncoding);
  // for client threads: each takes every CLIENT_THREADS-th number from here; then skip past them all
  const jobFrom = (): Job => {
    const job: Job = {
      kind: "endpoint",
      endpoint: plan.endpoint,
      fixture,
      seqStart: seqStart.n,
      acceptEncoding: plan.acceptEncoding,
    };
    seqStart.n += 10_000_000;
    return job;
  };
  const mode: Mode = open === undefined ? { connections: plan.connections } : { open, connections: 4 * CONNECTIONS };
  await drive(app.url, next, mode, WARMUP_S, jobFrom());
  const b = backing as Backing;
  const before = await b.counters();
  const replicaPid = state.pgReplica.process?.pid ?? 0;
  const meter = new CpuMeter({
    app: app.pid,
    ...b.pids(),
    // the replica's startup process: the one process that replays the WAL
    replay: childrenMatching(replicaPid, /startup/)[0] ?? 0,
  });
  const t0 = performance.now();
  const r = await drive(app.url, next, mode, plan.durationS, jobFrom());
  const raw = foldCpu(meter.delta());
  const wallS = (performance.now() - t0) / 1000;
  // what the backing servers do idle is not the requests' cost (the pollers are priced apart)
  const cpu = {
    app: raw.app,
    redis: Math.max(0, (raw.redis ?? 0) - bg.cpu.redis * wallS),
    primary: Math.max(0, (raw.primary ?? 0) - bg.cpu.primary * wallS),
    replica: Math.max(0, (raw.replica ?? 0) - bg.cpu.replica * wallS),
    replay: raw.replay ?? 0,
    pgbouncer: Math.max(0, (raw.pgbouncer ?? 0) - (bg.cpu.pgbouncer ?? 0) * wallS),
  };
  const ops = opsBetween(before, await b.counters(), bg);
  const n = Math.max(1, r.requests);
  const ms = (s: number | undefined) => round(((s ?? 0) * 1000) / n, 4);
  const m: Measurement = {
    name: plan.name,
    route: requestFor(plan.endpoint, { itemId: 1, seq: 0 }).route,
    target: open === undefined ? "app-1 directly" : `app-1 directly, open loop at ${open.toFixed(0)} req/s`,
    connections: mode.connections,
    rps: round(r.rps, 1),
    requests: r.requests,
    errors: r.errors,
    latency: r.latency,
    cpuMsPerRequest: ms(cpu.app),
    redisCpuMsPerRequest: ms(cpu.redis),
    pgPrimaryCpuMsPerRequest: ms(cpu.primary),
    pgReplicaCpuMsPerRequest: ms(cpu.replica),
    pgReplayCpuMsPerRequest: ms(cpu.replay),
    ...(b.hasPgBouncer ? { pgbouncerCpuMsPerRequest: ms(cpu.pgbouncer) } : {}),
    redisCommandsPerRequest: round(ops.redis / n, 2),
    redisCommands: Object.fromEntries(Object.entries(ops.redisByCommand).map(([k, v]) => [k, round(v / n, 2)])),
    pgPrimaryStatementsPerRequest: round(ops.primary / n, 2),
    pgReplicaStatementsPerRequest: round(ops.replica / n, 2),
    ...phaseOf(r, cpu.app ?? 0, mode),
    errorSamples: r.errorSamples,
  };
  logMeasurement(m);
  return m;
}

/** One endpoint against app-1 with the profiler on: its .cpuprofile written, its summary returned. */
/** The routes that compress, and the identity twins that price it (ENDPOINTS). */
const COMPRESSING = [
  { name: "item-list", route: "GET /api/items", path: "/api/items?after=0&limit=20" },
  { name: "item-export", route: "GET /api/items/export", path: "/api/items/export" },
] as const;

/**
 * One response of each compressing route, with a browser's Accept-Encoding and with identity,
 * for their sizes on the wire. Taken before the endpoints run: the exports are measured before
 * any write, on the same rows.
 */
async function sampleCompression(stack: Topology, fixture: Fixture) {
  const app = stack.instances[0]?.url as string;
  const cookie = fixture.cookies[0];
  const samples: { compressed: WireSample; identity: WireSample }[] = [];
  for (const c of COMPRESSING)
    samples.push({
      compressed: await wireSample(`${app}${c.path}`, undefined, cookie),
      identity: await wireSample(`${app}${c.path}`, "identity", cookie),
    });
  return samples;
}

/** COMPRESSING's routes priced: their samples (in the same order) and the CPU measured for each. */
function priceCompression(
  samples: Awaited<ReturnType<typeof sampleCompression>>,
  endpoints: Measurement[],
): CompressionCost[] {
  const cpu = (name: string) => (endpoints.find((e) => e.name === name) as Measurement).cpuMsPerRequest;
  return COMPRESSING.map((c, i) => {
    const { compressed, identity } = samples[i] as (typeof samples)[number];
    return compressionCost(
      c.route,
      { cpuMsPerRequest: cpu(c.name), sample: compressed },
      { cpuMsPerRequest: cpu(`${c.name}-identity`), sample: identity },
    );
  });
}

async function profileEndpoint(
  stack: Topology,
  fixture: Fixture,
  plan: EndpointPlan,
  seq: { n: number },
  inspector: Inspector,
  dir: string,
): Promise<EndpointProfile> {
  const url = stack.instances[0]?.url as string;
  const next = () => endpointRequest(plan.endpoint, fixture, seq.n++, plan.acceptEncoding);
  const mode: Mode = { connections: plan.connections };
  await drive(url, next, mode, WARMUP_S);
  const { profile, result } = await profileWhile(
    inspector,
    () => drive(url, next, mode, plan.durationS),
    PROFILE_INTERVAL_US,
  );
  const file = join(dir, `${plan.name}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const p = summarize(profile, {
    name: plan.name,
    route: requestFor(plan.endpoint, { itemId: 1, seq: 0 }).route,
    file: relative(REPO, file),
    requests: result.requests,
    rps: result.rps,
    root: REPO,
  });
  const head = p.top.slice(0, 3).map((t) => `${t.name} ${(100 * t.share).toFixed(0)} %`);
  log(`  ${plan.name.padEnd(12)} ${p.busyMsPerRequest} busy ms/req (main thread); top self: ${head.join(", ")}`);
  return p;
}

export type Pm2Run = {
  workers: number;
  rps: number;
  requests: number;
  errors: number;
  latency: ClosedResult["latency"];
};

/**
 * The one-machine path (PM2 cluster mode, app/ecosystem.config.cjs): item reads with one
 * worker, then with one per core, same client and settings as the endpoints.
 */
async function measurePm2(stack: Topology, fixture: Fixture, workers: number): Promise<Pm2Run> {
  const [port = 0, metricsPort = 0] = await freePorts(2);
  const cluster = await startPm2Cluster({ env: { ...stack.appEnv(0), LOG_LEVEL }, port, metricsPort, workers });
  try {
    let seq = 0;
    const next = () => {
      const itemId = fixture.itemIds[seq++ % fixture.itemIds.length] as number;
      return { spec: requestFor("item-read", { itemId, seq }) };
    };
    await runClosed(cluster.url, next, { connections: CONNECTIONS, durationS: WARMUP_S });
    const r = await runClosed(cluster.url, next, { connections: CONNECTIONS, durationS: MEASURE_S });
    log(
      `  PM2 ${String(workers).padStart(2)} worker(s)  ${r.rps.toFixed(0).padStart(6)} req/s  p99 ${r.latency.p99} ms  errors ${r.errors}`,
    );
    return { workers, rps: round(r.rps, 1), requests: r.requests, errors: r.errors, latency: r.latency };
  } finally {
    await cluster.stop();
  }
}

const ENDPOINTS: EndpointPlan[] = [
  { name: "livez", endpoint: "livez", connections: CONNECTIONS, durationS: MEASURE_S },
  { name: "me", endpoint: "me", connections: CONNECTIONS, durationS: MEASURE_S },
  { name: "item-read", endpoint: "item-read", connections: CONNECTIONS, durationS: MEASURE_S },
  { name: "item-list", endpoint: "item-list", connections: CONNECTIONS, durationS: MEASURE_S },
  // Compression's price: the same list and export without it. Exports run before any write, on
  // the seeded items, and no more at once than an instance admits (STREAMS_MAX: a third of
  // PG_POOL_MAX's 10).
  {
    name: "item-list-identity",
    endpoint: "item-list",
    connections: CONNECTIONS,
    durationS: MEASURE_S,
    acceptEncoding: "identity",
    saturationOnly: true,
  },
  { name: "item-export", endpoint: "item-export", connections: 3, durationS: MEASURE_S, saturationOnly: true },
  {
    name: "item-export-identity",
    endpoint: "item-export",
    connections: 3,
    durationS: MEASURE_S,
    acceptEncoding: "identity",
    saturationOnly: true,
  },
  { name: "item-write", endpoint: "item-write", connections: CONNECTIONS, durationS: MEASURE_S },
  { name: "work", endpoint: "work", connections: CONNECTIONS, durationS: MEASURE_S },
  // scrypt: ~0.2 s of CPU each; fewer connections keep the queue (and the tail) short
  { name: "login", endpoint: "login", connections: 4, durationS: MEASURE_S, saturationOnly: true },
  { name: "register", endpoint: "register", connections: 4, durationS: MEASURE_S, saturationOnly: true },
];

/** The rate the API mix sustains on one instance here: 1 / sum(weight_i / rps_i). */
export function mixCapacity(measured: Measurement[]): number {
  const total = API_MIX.reduce((s, m) => s + m.weight, 0);
  let secondsPerRequest = 0;
  for (const m of API_MIX) {
    const e = measured.find((x) => x.name === m.endpoint);
    if (!e || e.rps <= 0) continue;
    secondsPerRequest += m.weight / total / e.rps;
  }
  return secondsPerRequest > 0 ? 1 / secondsPerRequest : 100;
}

/** CPU ms per request of the API mix, weighted, from a set of endpoint measurements. */
export function mixCpu(measured: Measurement[]): number {
  const total = API_MIX.reduce((s, m) => s + m.weight, 0);
  return API_MIX.reduce(
    (s, m) => s + (m.weight / total) * (measured.find((x) => x.name === m.endpoint)?.cpuMsPerRequest ?? 0),
    0,
  );
}

/** Each shape at this machine's scale: rates times `rateFactor`, durations to SHAPE_SECONDS. */
export function localShapes(localTarget: number, seconds = SHAPE_SECONDS): Shape[] {
  const f = localTarget / CLUSTER_TARGET_RPS;
  return (["smoke", "ramp", "spike", "soak", "sessions", "breakpoint"] as ShapeName[]).map((name) => {
    const cluster = clusterShape(name, CLUSTER_TARGET_RPS);
    const time = seconds[name] / durationOf(cluster);
    if (name === "smoke") return scale(cluster, { rate: 1, time }); // a smoke test is a smoke test at any scale
    if (name === "sessions") {
      // Every VU registers and logs in once (~0.4 s of CPU): on two shared cores, at most 8 VUs.
      const peak = Math.min(8, Math.max(2, Math.round(f * Math.max(...cluster.stages.map((s) => s.target)))));
      return scaleTo(cluster, { peak, durationS: seconds[name] });
    }
    return scale(cluster, { rate: f, time });
  });
}

type ShapeRun = ShapeResult & {
  cpuS: Record<string, number>;
  /** Cores used over the phase: the busiest app instance, all instances, the load generator. */
  cores: { server: number; apps: number; client: number };
  flags: string[];
  cpuMsPerRequest: Record<string, number>;
  redisCommandsPerRequest: number;
  pgPrimaryStatementsPerRequest: number;
  pgReplicaStatementsPerRequest: number;
};

/**
 * The shapes phase after smoke: the breakpoint CLIMBS times (the knee is their median), then
 * ramp, spike, soak and sessions at 80 % of the knee (or at BENCH_TARGET_RPS, `fixed`).
 */
async function climbAndShapes(runOne: (shape: Shape) => Promise<ShapeRun>, estimate: number, fixed?: number) {
  const byName = (list: Shape[], name: ShapeName) => list.find((x) => x.name === name) as Shape;
  // The breakpoint climbs to twice the cluster target: here, from a tenth of the estimate to
  // twice the estimate, or until a window fails (knee.ts). Repeated: one climb on a shared
  // machine is one sample.
  const first = localShapes(estimate);
  await runOne(byName(first, "smoke"));
  const climbs: ShapeRun[] = [];
  for (let i = 0; i < CLIMBS; i++) {
    log(`breakpoint climb ${i + 1} of ${CLIMBS}`);
    climbs.push(await runOne(byName(first, "breakpoint")));
  }
  const knees = climbs.map((c) => c.knee ?? { rps: 0, reached: false });
  const spread = kneeSpread(knees);
  const knee = spread.median;
  // No window held even at the climb's start: the knee is below it, and the other shapes run
  // at 80 % of that start rather than at a meaningless 10 req/s.
  const climbStart = (byName(first, "breakpoint") as ArrivalShape).startRate;
  const below = knee === 0;
  if (below)
    log(`no climb held a ${KNEE_WINDOW_S} s window, even from its start at ${climbStart} req/s: the knee is below it`);
  const localTarget = fixed ?? Math.max(10, Math.round((0.8 * (below ? climbStart : knee)) / 10) * 10);
  log(
    `knee: ${knees.map(kneeLabel).join(", ")} -> median ${knee} req/s, range ${spread.low}-${spread.high} ` +
      `(spread ${(100 * spread.spread).toFixed(0)} %; ${spread.reached} of ${spread.runs} climbs reached it) ` +
      `[highest offered rate held for ${KNEE_WINDOW_S} s with served/offered >= ${MIN_SERVED_RATIO} and every threshold met]; ` +
      `ramp, spike and soak run the cluster shapes x${(localTarget / CLUSTER_TARGET_RPS).toFixed(3)} (ramp target ${localTarget} req/s)`,
  );
  const rest = localShapes(localTarget);
  for (const name of ["ramp", "spike", "soak", "sessions"] as ShapeName[]) await runOne(byName(rest, name));
  return { climbs, spread, knee, below, climbStart, localTarget };
}

async function main(): Promise<void> {
  const stamp = new Date()
    .toISOString()
    .replace(/[:]/g, "-")
    .replace(/\.\d+Z$/, "Z");
  const outDir = resolve(REPO, process.env.BENCH_OUT ?? "bench/results");
  // before anything starts: a misspelt phase stops the bench here
  const phases = parsePhases(process.env.BENCH_PHASES, FIXED_RPS !== undefined);
  const runs = (p: Phase) => phases.includes(p);
  const topology = parseTopology(process.env.BENCH_TOPOLOGY);
  mkdirSync(outDir, { recursive: true });
  log(
    `nodescale bench ${stamp}${QUICK ? " (quick)" : ""}: ${cpus().length} cores, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}; topology: ${topology}; phases: ${phases.join(", ")}`,
  );

  const anchors: Anchor[] = [];
  let stack: Topology | undefined;
  try {
    log(
      `starting the local topology (2 instances behind nginx; ${topologyTitle(topology)}), the PostgreSQL counters and the anchors`,
    );
    const name = `bench-${process.pid}`;
    const inspectPort = PROFILE ? await freePort() : undefined;
    const [pgPrimaryPort, pgReplicaPort, countPrimary, countReplica] = (await freePorts(4)) as [
      number,
      number,
      number,
      number,
    ];
    // The app reaches PostgreSQL through the counting proxies (with PgBouncer: PgBouncer does,
    // and the app reaches PgBouncer). The topology keeps the secrets it finds in
    // <state>/secrets.json, so writing them first tells the bench the app's password.
    const stateDir = stateDirFor(name);
    mkdirSync(stateDir, { recursive: true });
    const secrets = {
      superuserPassword: randomBytes(18).toString("hex"),
      appPassword: randomBytes(18).toString("hex"),
      replicationPassword: randomBytes(18).toString("hex"),
      sessionSecrets: [randomBytes(32).toString("hex")],
    };
    writeFileSync(join(stateDir, "secrets.json"), JSON.stringify(secrets), { mode: 0o600 });
    pgCounter = await PgCounter.start([
      { name: "primary", listenPort: countPrimary, upstreamPort: pgPrimaryPort },
      { name: "replica", listenPort: countReplica, upstreamPort: pgReplicaPort },
    ]);
    const pgbouncer = topology === "pgbouncer";
    stack = await startTopology({
      name,
      freePorts: true,
      pgPrimaryPort,
      pgReplicaPort,
      instances: 2,
      redisCluster: topology === "redis-cluster",
      pgbouncer,
      ...(pgbouncer ? { pgbouncerUpstream: { primaryPort: countPrimary, replicaPort: countReplica } } : {}),
      appEnv: {
        // with PgBouncer the topology points the pools at it (and migrations at the primary)
        ...(pgbouncer
          ? {}
          : {
              DATABASE_URL: pgUrl(APP_ROLE, secrets.appPassword, countPrimary, DATABASE),
              DATABASE_REPLICA_URLS: pgUrl(APP_ROLE, secrets.appPassword, countReplica, DATABASE),
            }),
        // Everything here comes from 127.0.0.1.
        ...LOAD_TEST_APP_ENV,
        LOG_LEVEL,
        // PROFILE=1: the inspector's port, left off until the bench sends app-1 SIGUSR1 (app-2
        // and the migration never open it); the topology's own NODE_OPTIONS is kept.
        ...(inspectPort === undefined
          ? {}
          : { NODE_OPTIONS: `--max-semi-space-size=16 --inspect-port=127.0.0.1:${inspectPort}` }),
      },
      log: (line) => log(line.trim()),
    });
    anchors.push(await startAnchor("node:http hello-world", "node-http.ts"));
    anchors.push(await startAnchor("Express 5 hello-world", "express.ts"));

    log(`setup: ${USERS} users logged in, 200 items seeded (through nginx)`);
    const fixture = await setupFixture(stack.lbUrl, USERS);

    if ((pgCounter.read().primary as PgCounts).statements === 0)
      throw new Error("the PostgreSQL counting proxy saw no statement: the app does not use it");
    backing = await Backing.of(topology, stack, pgCounter);
    if (stack.state.redisCluster)
      log(
        `  Redis Cluster: CPU of ${backing.redisNodes.length} nodes, commands of the primaries on ${backing.commandPorts.join(", ")}`,
      );
    log("idle background (replica lag polls) over 4 s");
    const idleMeter = new CpuMeter(backing.pids());
    const idle0 = await backing.counters();
    await sleep(4000);
    const idle1 = await backing.counters();
    const idleCpu = foldCpu(idleMeter.delta());
    const idleS = (idle1.at - idle0.at) / 1000;
    const bg: Background = {
      cpu: {
        redis: round((idleCpu.redis ?? 0) / idleS, 4),
        primary: round((idleCpu.primary ?? 0) / idleS, 4),
        replica: round((idleCpu.replica ?? 0) / idleS, 4),
        ...(backing.hasPgBouncer ? { pgbouncer: round((idleCpu.pgbouncer ?? 0) / idleS, 4) } : {}),
      },
      redisPerS: (sumRedis(idle1.redis) - sumRedis(idle0.redis)) / idleS,
      // all of the idle primary's statements are the poller's WAL-position queries
      primaryPerS: (pgStatements(idle1, "primary") - pgStatements(idle0, "primary")) / idleS,
      replicaPerS: (pgStatements(idle1, "replica") - pgStatements(idle0, "replica")) / idleS,
    };
    log(
      `  background: redis ${bg.redisPerS.toFixed(1)}/s, pg primary ${bg.primaryPerS.toFixed(1)}/s, replica ${bg.replicaPerS.toFixed(1)}/s; ` +
        `idle cores: redis ${bg.cpu.redis}, primary ${bg.cpu.primary}, replica ${bg.cpu.replica}` +
        `${bg.cpu.pgbouncer === undefined ? "" : `, pgbouncer ${bg.cpu.pgbouncer}`} (subtracted from each endpoint's)`,
    );

    log(`anchors, pass 1 (closed loop, ${CONNECTIONS} connections, ${MEASURE_S} s each)`);
    const anchorRuns: Measurement[] = [];
    for (const a of anchors) anchorRuns.push(await measureAnchor(a, 1));

    log("endpoints, one at a time, straight to app-1 (same client)");
    const seq = { n: 0 };
    const compressionSamples = await sampleCompression(stack, fixture);
    const endpoints: Measurement[] = [];
    for (const plan of ENDPOINTS) endpoints.push(await measureEndpoint(stack, fixture, plan, bg, seq));
    const compression = priceCompression(compressionSamples, endpoints);
    for (const c of compression)
      log(
        `  compression on ${c.route}: ${c.encoding} ${c.bytes} B for ${c.identityBytes} B, ${c.extraCpuMs >= 0 ? "+" : ""}${c.extraCpuMs} CPU ms/req`,
      );

    // After the measured runs, so that the profiler's own cost is in none of their numbers.
    let profiles: { method: string; samplingIntervalUs: number; dir: string; endpoints: EndpointProfile[] } | undefined;
    if (inspectPort !== undefined) {
      const dir = join(outDir, `${stamp}-profiles`);
      mkdirSync(dir, { recursive: true });
      log(`profiles: app-1's CPU, one endpoint at a time (closed loop, ${MEASURE_S} s each) -> ${relative(REPO, dir)}`);
      const inspector = await openInspector(stack.instances[0]?.pid ?? 0, inspectPort);
      const list: EndpointProfile[] = [];
      try {
        for (const plan of ENDPOINTS) list.push(await profileEndpoint(stack, fixture, plan, seq, inspector, dir));
      } finally {
        inspector.close();
      }
      profiles = {
        method: `V8 sampling profiler on app-1's main thread (inspector Profiler domain, ${PROFILE_INTERVAL_US} µs interval), started after a ${WARMUP_S} s warm-up and stopped after ${MEASURE_S} s of the endpoint alone, closed loop, one client thread; a pass of its own after the measured runs. Worker threads and libuv's pool (scrypt) are not in it.`,
        samplingIntervalUs: PROFILE_INTERVAL_US,
        dir: relative(REPO, dir),
        endpoints: list,
      };
    }

    // The cost at the load an HPA holds a pod at, not at saturation: each endpoint (and each
    // anchor) open loop at the rate that would keep one core UTILIZATION busy by its
    // saturated cost. Login and register (scrypt) cost the same at any load: not repeated.
    const opRate = (cpuMs: number) => Math.min(MAX_OPEN_RPS, Math.max(1, (UTILIZATION * 1000) / Math.max(1e-3, cpuMs)));
    const opMode = (cpuMs: number): Mode => ({ open: opRate(cpuMs), connections: 4 * CONNECTIONS });
    const opAnchors: Measurement[] = [];
    const opEndpoints: Measurement[] = [];
    if (runs("operating-point")) {
      log(
        `operating point: open loop straight to one process at ${UTILIZATION} of a core (the HPA target) by each one's saturated cost, at most ${MAX_OPEN_RPS} req/s`,
      );
      for (const a of anchors) {
        const sat = anchorRuns.find((x) => x.name === a.name) as Measurement;
        opAnchors.push(await measureAnchor(a, 1, opMode(sat.cpuMsPerRequest)));
      }
      for (const plan of ENDPOINTS.filter((p) => !p.saturationOnly)) {
        const sat = endpoints.find((x) => x.name === plan.name) as Measurement;
        opEndpoints.push(await measureEndpoint(stack, fixture, plan, bg, seq, opRate(sat.cpuMsPerRequest)));
      }
    }

    // One rate for all: the operating point of the costliest endpoint, so that none passes
    // UTILIZATION there; the anchors' and endpoints' CPU per request at the same offered load.
    const fixedRps = runs("fixed-rate")
      ? (FIXED_RPS ?? Math.round(Math.min(...opEndpoints.map((m) => m.offeredRps ?? MAX_OPEN_RPS))))
      : 0;
    const fixedAnchors: Measurement[] = [];
    const fixedEndpoints: Measurement[] = [];
    if (fixedRps > 0) {
      log(`one fixed rate for anchors and endpoints: open loop at ${fixedRps} req/s`);
      const fixedMode: Mode = { open: fixedRps, connections: 4 * CONNECTIONS };
      for (const a of anchors) fixedAnchors.push(await measureAnchor(a, 1, fixedMode));
      for (const plan of ENDPOINTS.filter((p) => !p.saturationOnly))
        fixedEndpoints.push(await measureEndpoint(stack, fixture, plan, bg, seq, fixedRps));
    }

    const pm2Runs: Pm2Run[] = [];
    if (runs("pm2")) {
      log(`PM2 cluster mode (item reads): 1 worker, then ${cpus().length} (one per core)`);
      await buildApp();
      for (const workers of [1, cpus().length]) pm2Runs.push(await measurePm2(stack, fixture, workers));
    }

    const estimate = Math.max(20, Math.round(mixCapacity(endpoints) / 10) * 10);
    const fixed = process.env.BENCH_TARGET_RPS ? Number(process.env.BENCH_TARGET_RPS) : undefined;
    if (runs("shapes"))
      log(
        `shapes through nginx, scaled to this machine: first smoke, then ${CLIMBS} breakpoint climb(s) up to ${2 * estimate} req/s ` +
          `(twice ${estimate}, the API mix's cost on one instance) to find the knee; the other shapes then run at 80 % of it`,
      );
    const shapes: ShapeRun[] = [];
    const state = stack.state;
    const runOne = async (shape: Shape) => {
      log(
        `shape ${shape.name}: here ${durationOf(shape)} s, peak ${peakOf(shape)} ${shape.executor === "ramping-vus" ? "VUs" : "req/s"} (cluster form: ${shape.description})`,
      );
      const meter = new CpuMeter({ nginx: state.nginx.process?.pid ?? 0, ...(backing as Backing).pids() });
      const appMeter = new CpuMeter(Object.fromEntries(stack?.instances.map((i) => [i.name, i.pid ?? 0]) ?? []));
      const before = await (backing as Backing).counters();
      const r = await runShape(shape, (stack as Topology).lbUrl, fixture, log);
      // the servers as one name each (Redis summed over a cluster's nodes); PostgreSQL as pg-*
      const { primary, replica, ...rest } = foldCpu(meter.delta());
      const cpu: Record<string, number> = {
        ...appMeter.delta(),
        ...rest,
        "pg-primary": primary ?? 0,
        "pg-replica": replica ?? 0,
        runner: r.runnerCpuS,
      };
      const ops = opsBetween(before, await (backing as Backing).counters(), bg);
      const n = Math.max(1, r.requests);
      const appCpu = (stack as Topology).instances.reduce((sum, i) => sum + (cpu[i.name] ?? 0), 0);
      const busiest = Math.max(...(stack as Topology).instances.map((i) => cpu[i.name] ?? 0));
      const cores = {
        server: coresOf(busiest, r.durationS),
        apps: coresOf(appCpu, r.durationS),
        client: coresOf(r.runnerCpuS, r.durationS),
      };
      const flags = phaseFlags({
        serverCores: cores.server,
        clientCores: cores.client,
        saturating: shape.thresholds.abortOnFail,
        sendLagP99Ms: typeof r.sendLag?.p99 === "number" ? r.sendLag.p99 : undefined,
      });
      const perReq: Record<string, number> = { apps: round((appCpu * 1000) / n, 4) };
      for (const [k, v] of Object.entries(cpu)) perReq[k] = round((v * 1000) / n, 4);
      const run: ShapeRun = {
        ...r,
        cpuS: cpu,
        cores,
        flags,
        cpuMsPerRequest: perReq,
        redisCommandsPerRequest: round(ops.redis / n, 2),
        pgPrimaryStatementsPerRequest: round(ops.primary / n, 2),
        pgReplicaStatementsPerRequest: round(ops.replica / n, 2),
      };
      shapes.push(run);
      const verdict = r.aborted
        ? `stopped at ${r.aborted.atS} s: ${r.aborted.reason} (asked ${r.aborted.targetRps}/s, served ${r.aborted.achievedRps}/s)`
        : r.passed
          ? "thresholds passed"
          : `thresholds FAILED: ${r.thresholdResults
              .filter((t) => !t.ok)
              .map((t) => t.rule)
              .join(", ")}`;
      for (const e of r.errorSamples.slice(0, 3)) log(`    error: ${e}`);
      log(
        `  ${shape.name}: ${r.offered} offered, ${r.requests} sent, ${r.errors} errors, ${r.dropped} dropped; p95 ${r.latency.p95} ms, p99 ${r.latency.p99} ms (drops included)` +
          `${r.sendLag ? `; send lag p99 ${r.sendLag.p99} ms` : ""}${r.knee ? `; knee ${kneeLabel(r.knee)}` : ""}; ` +
          `CPU: busiest instance ${cores.server}, client ${cores.client} of a core; ${verdict}`,
      );
      for (const f of flags) log(`    flag: ${f}`);
      await sleep(2000);
      return run;
    };
    const climbed = runs("shapes") ? await climbAndShapes(runOne, estimate, fixed) : undefined;

    log("anchors, pass 2 (drift check)");
    for (const a of anchors) anchorRuns.push(await measureAnchor(a, 2));

    // The ratios use pass 1, the one right before the endpoints; pass 2 only says how far the
    // machine drifted over the run.
    const anchor = (name: string) => {
      const runs = anchorRuns.filter((a) => a.name === name);
      const pass1 = runs[0] as Measurement;
      return {
        name,
        pass: 1,
        rps: pass1.rps,
        cpuMsPerRequest: pass1.cpuMsPerRequest,
        serverCores: pass1.serverCores,
        clientCores: pass1.clientCores,
        flags: pass1.flags,
        drift: runs.length === 2 ? round((runs[1] as Measurement).rps / pass1.rps, 3) : 1,
      };
    };
    const nodeAnchor = anchor("node:http hello-world");
    const expressAnchor = anchor("Express 5 hello-world");
    const ratios = endpoints.map((e) => ({
      name: e.name,
      route: e.route,
      rpsVsNodeHttp: round(e.rps / nodeAnchor.rps, 4),
      rpsVsExpress: round(e.rps / expressAnchor.rps, 4),
      cpuVsNodeHttp: round(e.cpuMsPerRequest / nodeAnchor.cpuMsPerRequest, 2),
      cpuVsExpress: round(e.cpuMsPerRequest / expressAnchor.cpuMsPerRequest, 2),
    }));

    const result = {
      kind: "nodescale-bench",
      version: 1,
      startedAt: new Date(started).toISOString(),
      durationS: round((Date.now() - started) / 1000, 1),
      quick: QUICK,
      /** BENCH_TOPOLOGY: what the app's Redis and PostgreSQL clients went through. */
      topology: {
        name: topology,
        title: topologyTitle(topology, backing.redisNodes.length, backing.commandPorts.length),
        redisNodes: backing.redisNodes.length,
        redisPrimaries: backing.commandPorts.length,
        ...(backing.hasPgBouncer
          ? {
              pgbouncer: {
                poolMode: "transaction",
                poolSize: Number(stack.state.appEnv.PGBOUNCER_POOL_SIZE ?? 20),
                upstream: "the counting proxies, in front of the primary and the replica",
              },
            }
          : {}),
      },
      machine: {
        cores: cpus().length,
        cpuModel: cpus()[0]?.model ?? "unknown",
        memoryGiB: round(totalmem() / 1024 ** 3, 1),
        node: process.version,
        loadAverageAtEnd: loadavg().map((x) => round(x, 2)),
        note: "shared machine: compare ratios within this run, not absolute numbers across runs",
      },
      method: {
        client: `one Node process: undici Pool, keep-alive, closed loop with ${CONNECTIONS} connections for anchors and endpoints at saturation (4 for login/register); open loop (latency from each arrival's scheduled time, drops as failures of infinite latency) for the operating point and the arrival shapes; its own CPU recorded in every phase`,
        logLevel: LOG_LEVEL,
        clientThreads: CLIENT_THREADS,
        cpu: "utime+stime (+ reaped children) of each server's process tree from /proc/<pid>/stat; for Redis and PostgreSQL in the endpoint runs, minus their idle rate (measured with the background)",
        redis: `INFO commandstats deltas, minus the idle background${stack.state.redisCluster ? "; summed over the cluster's primaries (a replica re-runs its primary's writes); CPU summed over every node, replicas included; CLUSTER commands (the client's slot discovery) not counted" : ""}`,
        postgres:
          "statements on the wire (simple Query + Execute messages) counted by a TCP proxy in front of the primary and of the replica; the replica lag polls are told apart by their SQL and removed, the primary's idle rate (the poller's WAL-position query) subtracted; pg_stat_statements is not loaded and pg_stat_database publishes late",
        app: `2 instances, WORKER_THREADS=1, ${Object.entries(LOAD_TEST_APP_ENV)
          .map(([k, v]) => `${k}=${v}`)
          .join(
            ", ",
          )}, ${backing.hasPgBouncer ? "PostgreSQL through PgBouncer (transaction pooling), PgBouncer through the counting proxies" : "PostgreSQL through the counting proxies"}${stack.state.redisCluster ? ", Redis through the cluster client (REDIS_CLUSTER_NODES)" : ""}`,
        measureSeconds: MEASURE_S,
        warmupSeconds: WARMUP_S,
      },
      background: bg,
      /** App instances in the topology (the background's pollers are theirs). */
      instances: stack.instances.length,
      /** Logged-in users the arrival shapes spread their requests over. */
      users: fixture.cookies.length,
      anchors: { runs: anchorRuns, nodeHttp: nodeAnchor, express: expressAnchor },
      endpoints,
      ratios,
      /** Compression's price on the routes that compress: a browser's Accept-Encoding against identity. */
      compression,
      /** BENCH_PHASES: what ran; a part not run is absent from the JSON (shapes: empty). */
      phases,
      phasesNotRun: phasesNotRun(phases),
      ...(runs("operating-point")
        ? {
            operatingPoint: {
              utilization: UTILIZATION,
              method: `open loop straight to one process at the rate that keeps ${UTILIZATION} of a core busy by the saturated cost (capped at ${MAX_OPEN_RPS} req/s, the client's own limit); latency from the scheduled time`,
              anchors: opAnchors,
              endpoints: opEndpoints,
              mixCpuMs: round(mixCpu(opEndpoints), 4),
              saturatedMixCpuMs: round(mixCpu(endpoints), 4),
            },
          }
        : {}),
      ...(runs("fixed-rate") ? { fixedRate: { rps: fixedRps, anchors: fixedAnchors, endpoints: fixedEndpoints } } : {}),
      ...(profiles ? { profiles } : {}),
      mix: API_MIX,
      mixCapacityRps: round(mixCapacity(endpoints), 1),
      ...(runs("pm2")
        ? {
            pm2: {
              runs: pm2Runs,
              speedup: round((pm2Runs[1]?.rps ?? 0) / Math.max(1, pm2Runs[0]?.rps ?? 1), 2),
            },
          }
        : {}),
      ...(climbed
        ? {
            kneeRps: climbed.knee,
            knee: {
              definition: `the highest offered rate held for a ${KNEE_WINDOW_S} s window with served/offered >= ${MIN_SERVED_RATIO} and every threshold met (p95, p99, failed share; drops count as failures of infinite latency); "not reached (> X)" when no window above X failed`,
              ...climbed.spread,
              climbs: climbed.climbs.map((c) => ({ ...c.knee, aborted: c.aborted, peakTarget: c.peakTarget })),
              /** Every climb failed from its first window: the knee is below this start rate. */
              belowRps: climbed.below ? climbed.climbStart : undefined,
              estimateRps: estimate,
            },
            localTargetRps: climbed.localTarget,
          }
        : {}),
      clusterTargetRps: CLUSTER_TARGET_RPS,
      shapes,
    };
    const jsonFile = join(outDir, `${stamp}.json`);
    // a dropped arrival's latency is infinite; JSON has no Infinity, so it is written as a string
    const json = JSON.stringify(result, (_k, v) => (v === Number.POSITIVE_INFINITY ? "Infinity" : v), 1);
    writeFileSync(jsonFile, `${json}\n`);
    const htmlFile = join(outDir, `${stamp}.html`);
    writeFileSync(htmlFile, renderReport(result));

    log("anchor ratios (endpoint / anchor):");
    log(
      `  anchors: node:http ${nodeAnchor.rps} req/s ${nodeAnchor.cpuMsPerRequest} CPU ms/req (drift ${nodeAnchor.drift}); Express ${expressAnchor.rps} req/s ${expressAnchor.cpuMsPerRequest} CPU ms/req (drift ${expressAnchor.drift})`,
    );
    for (const r of ratios)
      log(
        `  ${r.name.padEnd(12)} req/s x${r.rpsVsNodeHttp} of node:http, x${r.rpsVsExpress} of Express; CPU/req x${r.cpuVsNodeHttp} node:http, x${r.cpuVsExpress} Express`,
      );
    log(`wrote ${relative(REPO, jsonFile)} and ${relative(REPO, htmlFile)}`);
  } finally {
    for (const a of anchors) await stopChild(a.child);
    await pgCounter?.stop();
    // BENCH_KEEP=1 keeps the stack's files (logs under .local/bench-<pid>/logs) for a post-mortem.
    const keep = process.env.BENCH_KEEP === "1";
    if (stack)
      await (keep ? stack.stop() : stack.destroy()).catch((err: unknown) => log(`stopping the stack: ${String(err)}`));
    if (stack && keep) log(`kept ${relative(REPO, stack.stateDir)}`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
