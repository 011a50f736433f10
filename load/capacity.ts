// `make capacity TARGET_RPS=1000000`: what a target rate needs, from the latest bench JSON.
//
// The bench measured, on one machine, the CPU each endpoint costs the app, Redis and
// PostgreSQL, and how many Redis commands and PostgreSQL statements it sends. Weighted by the
// API mix of load/shapes.ts, that is a cost per request; times the target rate, divided by
// what one pod / shard / replica may use, it is a size. Every assumption is printed, and each
// can be overridden from the environment (the names in CAPS below).
//
//   node load/capacity.ts                     TARGET_RPS from env (default 1,000,000)
//   node load/capacity.ts --walk              100 -> 1M req/s in decades, the bottleneck at each
//   BENCH_JSON=bench/results/<ts>.json ...    a given bench run (or a comma-separated list) instead of the latest
//   BENCH_RUNS=3 (default)                    the newest N full runs: the median and range of each size
//   PGBOUNCER_BENCH_JSON, REDIS_CLUSTER_BENCH_JSON   a run of that BENCH_TOPOLOGY (default without
//                                             BENCH_JSON: the newest full one in bench/results)
//
// Past one Redis shard the plan turns on Redis Cluster (redisClusterSize: the chart values);
// past max_connections it turns on PgBouncer and sizes it (pgBouncerSize). From the other
// topologies' runs it takes PgBouncer's CPU per statement (into the PgBouncer pods) and a
// cluster client's app CPU (printed beside the plan with the pods it would take, not folded into
// the app pods: two runs on a shared machine differ by noise of the same order).

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { API_MIX, type MixEntry } from "./shapes.ts";

const REPO = resolve(import.meta.dirname, "..");

type Endpoint = {
  name: string;
  cpuMsPerRequest: number;
  redisCpuMsPerRequest?: number;
  pgPrimaryCpuMsPerRequest?: number;
  pgReplicaCpuMsPerRequest?: number;
  /** The replica's startup process alone: WAL replay, one process. */
  pgReplayCpuMsPerRequest?: number;
  /** BENCH_TOPOLOGY=pgbouncer: PgBouncer's own CPU. */
  pgbouncerCpuMsPerRequest?: number;
  redisCommandsPerRequest?: number;
  pgPrimaryStatementsPerRequest?: number;
  pgReplicaStatementsPerRequest?: number;
  /** Open loop: the rate it ran at and the cores the app used there. */
  offeredRps?: number;
  serverCores?: number;
};
type Bench = {
  startedAt: string;
  quick: boolean;
  /** BENCH_PHASES: the phases this run left out (absent: it ran everything). */
  phasesNotRun?: string[];
  /** BENCH_TOPOLOGY (absent: plain). */
  topology?: { name: string };
  durationS: number;
  endpoints: Endpoint[];
  /** The same endpoints open loop at the HPA's target utilization (bench.ts). */
  operatingPoint?: {
    utilization: number;
    endpoints: Endpoint[];
    anchors?: { name: string; cpuMsPerRequest: number }[];
  };
  /** Idle statements per second the replica-lag pollers of `instances` app instances send. */
  background?: { primaryPerS: number; replicaPerS: number };
  instances?: number;
  mix?: MixEntry[];
  kneeRps?: number;
  /** Logged-in users the arrival shapes spread their requests over. */
  users?: number;
  shapes: {
    shape: string;
    cpuMsPerRequest: Record<string, number>;
    requests: number;
    durationS?: number;
    routes?: { route: string; requests?: number; dbRoutes: Record<string, number> }[];
  }[];
  anchors: { express: { cpuMsPerRequest: number }; nodeHttp: { cpuMsPerRequest: number } };
};

/**
 * The newest `n` full runs in `dir` (oldest first); the newest quick one only when there is no
 * full run. A run that left phases out (BENCH_PHASES) is never taken: it has no operating point
 * or ramp to size from. Only runs of `topology` (BENCH_TOPOLOGY; default plain, the stack the
 * plan starts from) are taken.
 */
export function latestBenches(dir = join(REPO, "bench", "results"), n = 1, topology = "plain"): string[] {
  if (!existsSync(dir)) return [];
  const benches = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => ({ f, b: JSON.parse(readFileSync(join(dir, f), "utf8")) as Bench }))
    .filter(({ b }) => (b.phasesNotRun ?? []).length === 0 && (b.topology?.name ?? "plain") === topology);
  const files = benches.map(({ f }) => f);
  const full = benches.filter(({ b }) => !b.quick).map(({ f }) => f);
  const pick = full.length > 0 ? full.slice(-n) : files.slice(-1);
  return pick.map((f) => join(dir, f));
}

export function latestBench(dir = join(REPO, "bench", "results"), topology = "plain"): string | null {
  return latestBenches(dir, 1, topology)[0] ?? null;
}

export type Spread = { median: number; low: number; high: number };

/** Median (mean of the middle two for an even count), lowest and highest. */
export function spreadOf(values: readonly number[]): Spread {
  const v = [...values].sort((a, b) => (a === b ? 0 : a - b));
  const n = v.length;
  if (n === 0) return { median: 0, low: 0, high: 0 };
  const median = n % 2 ? (v[(n - 1) / 2] as number) : ((v[n / 2 - 1] as number) + (v[n / 2] as number)) / 2;
  return { median, low: v[0] as number, high: v[n - 1] as number };
}

/**
 * The same target sized from several bench runs: how far one run's plan is to be trusted on
 * a noisy machine. `median` is the run whose app pods are the median (the lower one of the
 * middle two), the one to print in full.
 */
export function acrossRuns(benches: Bench[], targetRps: number, A = assumptions(), others: Others = {}) {
  const plans = benches.map((b) => plan(b, targetRps, A, others));
  const byPods = plans.map((p, i) => [p.app.pods, i] as const).sort((a, b) => a[0] - b[0]);
  return {
    runs: plans.length,
    appCpuMs: spreadOf(plans.map((p) => p.costs.appCpuMs)),
    pods: spreadOf(plans.map((p) => p.app.pods)),
    primaryCores: spreadOf(plans.map((p) => p.pg.primaryCores)),
    replicas: spreadOf(plans.map((p) => p.pg.replicas)),
    knee: spreadOf(benches.map((b) => b.kneeRps ?? 0)),
    bottlenecks: plans.map((p) => bottleneck(p).name),
    median: (byPods[Math.floor((byPods.length - 1) / 2)] as readonly [number, number])[1],
  };
}

/**
 * `basis`: "policy" (a choice, not a fact), "assumed" (a fact the bench does not measure),
 * or what the bench measured that bears on it.
 */
type Assumption = { key: string; value: number; unit: string; why: string; basis: string };

export function assumptions(env: NodeJS.ProcessEnv = process.env): Record<string, Assumption> {
  const a = (key: string, value: number, unit: string, why: string, basis = "assumed"): Assumption => {
    const raw = env[key];
    const v = raw === undefined || raw === "" ? value : Number(raw);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${key}=${raw}: expected a positive number`);
    return { key, value: v, unit, why, basis: raw === undefined || raw === "" ? basis : "set" };
  };
  const list = [
    a(
      "POD_CPU",
      1,
      "cores",
      "CPU request (and limit) per app pod: one event loop per pod, scale out by pods",
      "policy",
    ),
    a(
      "TARGET_UTILIZATION",
      0.6,
      "of POD_CPU",
      "HPA averageUtilization: room for bursts while new pods start; the bench's operating point",
      "policy",
    ),
    a("HEADROOM", 1.3, "x", "HPA maxReplicas over the steady need: a zone lost, a rollout's surge, a spike", "policy"),
    a(
      "MIN_FRACTION",
      0.1,
      "of target",
      "traffic at the quietest hour; sets HPA minReplicas (never below 2, for the PDB)",
      "policy",
    ),
    a("CPU_SPEED", 1, "x this machine", "how much faster a cluster core is than one core of the bench machine"),
    a("LOGIN_FRACTION", 0.001, "logins per request", "one login per 1,000 requests (a session of ~17 min at 1 req/s)"),
    a("INGRESS_POD_CPU", 2, "cores", "CPU per ingress controller pod", "policy"),
    a(
      "REDIS_OPS_PER_CORE",
      100_000,
      "ops/s",
      "what one Redis shard (single-threaded) serves with small values, no pipelining",
    ),
    a("REDIS_UTILIZATION", 0.5, "of a shard", "keep Redis at half its capacity: latency and failover room", "policy"),
    a(
      "PG_READS_PER_CORE",
      10_000,
      "statements/s",
      "replica reads per core, used only for an endpoint whose replica CPU the bench did not measure",
    ),
    a(
      "PG_WRITES_PER_CORE",
      4_000,
      "statements/s",
      "primary statements per core, used only for an endpoint whose primary CPU the bench did not measure",
    ),
    a("PG_UTILIZATION", 0.6, "of a server", "PostgreSQL CPU kept below this", "policy"),
    a("PG_REPLICA_CORES", 8, "cores", "cores per read replica", "policy"),
    a("PG_PRIMARY_MAX_CORES", 64, "cores", "the largest primary you are willing to run", "policy"),
    a(
      "PG_POOL_MAX",
      10,
      "connections",
      "PG_POOL_MAX: per pool per pod (one pool to the primary, one per replica)",
      "policy",
    ),
    a("PG_MAX_CONNECTIONS", 500, "connections", "max_connections per PostgreSQL server", "policy"),
    a(
      "MAX_SURGE",
      0.25,
      "of maxReplicas",
      "pods a rollout adds (the chart's updateStrategy.rollingUpdate.maxSurge 25%): their pools count too",
      "policy",
    ),
    a(
      "REDIS_CLUSTER_REPLICAS",
      1,
      "per primary",
      "replicas of each Redis Cluster primary (redisCluster.cluster.replicas): one to fail over to",
      "policy",
    ),
    a(
      "PGBOUNCER_STATEMENTS_PER_CORE",
      30_000,
      "statements/s",
      "what one PgBouncer process (single-threaded) forwards per core; used only without a pgbouncer bench",
    ),
    a(
      "PGBOUNCER_UTILIZATION",
      0.5,
      "of a core",
      "PgBouncer pods kept at half a core: a pod must take another's clients",
      "policy",
    ),
    a(
      "PG_CONNECTIONS_PER_CORE",
      2,
      "connections",
      "server connections that keep one PostgreSQL core busy (each waits on the network between statements)",
    ),
    a(
      "USER_WRITES_PER_S",
      0.01,
      "writes/s per user",
      "how often one active user writes (one item every 100 s): sets the share of reads read-your-writes pins to the primary",
    ),
  ];
  return Object.fromEntries(list.map((x) => [x.key, x]));
}

const READ_ROUTES = ["GET /api/items/:id", "GET /api/items"];
/** Statements per request below which an endpoint does not use that server (stray polls, rounding). */
const NO_STATEMENTS = 0.05;
const WRITE_ROUTE = "POST /api/items";

/**
 * Read-your-writes: a read goes to the primary while its user's last write is newer than what
 * the replica poll last saw. The ramp measures the share of item reads that did, with the
 * bench's `users` writing `writesPerUserS` each. With writes as a Poisson process, a share p
 * means a read stays pinned for a window T = -ln(1 - p) / rate after its user's write; at
 * cluster scale, where a user writes USER_WRITES_PER_S (assumed), the share is
 * 1 - exp(-USER_WRITES_PER_S * T). Null when the bench has no ramp reads.
 */
export function pinnedReads(bench: Bench, A = assumptions({})) {
  const ramp = bench.shapes.find((s) => s.shape === "ramp");
  let primary = 0;
  let all = 0;
  for (const r of ramp?.routes ?? []) {
    if (!READ_ROUTES.includes(r.route)) continue;
    primary += r.dbRoutes.primary ?? 0;
    all += (r.dbRoutes.primary ?? 0) + (r.dbRoutes.replica ?? 0);
  }
  if (!ramp || all === 0) return null;
  const measured = primary / all;
  const writes = ramp.routes?.find((r) => r.route === WRITE_ROUTE)?.requests ?? 0;
  const users = bench.users ?? 8;
  const writesPerUserS = ramp.durationS ? writes / ramp.durationS / users : 0;
  // a share of 1 says only that the window is longer than the gap between writes
  const windowS = writesPerUserS > 0 ? -Math.log(1 - Math.min(measured, 0.999)) / writesPerUserS : 0;
  const atScale = 1 - Math.exp(-(A.USER_WRITES_PER_S as Assumption).value * windowS);
  return { measured, users, writesPerUserS, windowS, atScale };
}

/**
 * Per-request costs of the API mix, weighted, from the bench endpoints (and login
 * separately). Each endpoint's costs come from the operating point (open loop at the HPA
 * target) when the bench has it there, else from saturation. PostgreSQL is priced by the CPU
 * each statement class cost where it ran: replica CPU of reads (point read, list), primary
 * CPU of writes (insert + WAL-position read), and replica CPU during writes (WAL replay,
 * paid on every replica). An endpoint without a CPU measurement is priced by statements at
 * the PG_*_PER_CORE assumptions, and the result says so.
 */
export function mixCosts(bench: Bench, mix: MixEntry[] = bench.mix ?? API_MIX, A = assumptions({})) {
  const total = mix.reduce((s, m) => s + m.weight, 0);
  const v = (k: string) => (A[k] as Assumption).value;
  const opEndpoints = bench.operatingPoint?.endpoints ?? [];
  const assumedPg: string[] = [];
  const endpointOf = (name: string) => {
    const e = opEndpoints.find((x) => x.name === name) ?? bench.endpoints.find((x) => x.name === name);
    if (!e) throw new Error(`the bench has no measurement of ${name}`);
    return e;
  };
  const sum = (f: (e: Endpoint) => number | undefined) =>
    mix.reduce((s, m) => s + (m.weight / total) * (f(endpointOf(m.endpoint)) ?? 0), 0);
  const isRead = (e: Endpoint) => (e.pgReplicaStatementsPerRequest ?? 0) >= 0.5;
  const isWrite = (e: Endpoint) => (e.pgPrimaryStatementsPerRequest ?? 0) >= 0.5;
  // An endpoint that sends the primary (next to) nothing is charged nothing there: what the
  // primary did meanwhile (autovacuum after the write phase, checkpoints) is not its cost.
  // One that does, but whose CPU was too small to see (a few logins), is priced by statements.
  const primaryCpu = (e: Endpoint) => {
    const statements = e.pgPrimaryStatementsPerRequest ?? 0;
    if (statements < NO_STATEMENTS) return 0;
    if (e.pgPrimaryCpuMsPerRequest) return e.pgPrimaryCpuMsPerRequest;
    assumedPg.push(`${e.name} primary`);
    return (statements * 1000) / v("PG_WRITES_PER_CORE");
  };
  const replicaReadCpu = (e: Endpoint) => {
    if (!isRead(e)) return 0;
    if (e.pgReplicaCpuMsPerRequest) return e.pgReplicaCpuMsPerRequest;
    assumedPg.push(`${e.name} replica`);
    return ((e.pgReplicaStatementsPerRequest ?? 0) * 1000) / v("PG_READS_PER_CORE");
  };
  const login = bench.endpoints.find((x) => x.name === "login");
  const ramp = bench.shapes.find((s) => s.shape === "ramp");
  // one statement of each class, from the endpoint that is nothing but that class
  const perStatement = (name: string, cpu: keyof Endpoint, statements: keyof Endpoint) => {
    const e = opEndpoints.find((x) => x.name === name) ?? bench.endpoints.find((x) => x.name === name);
    const c = e?.[cpu] as number | undefined;
    const n = e?.[statements] as number | undefined;
    return c !== undefined && n ? c / n : null;
  };
  const pointReadMs = perStatement("item-read", "pgReplicaCpuMsPerRequest", "pgReplicaStatementsPerRequest");
  const instances = bench.instances ?? 2;
  return {
    source: opEndpoints.length
      ? `operating point: open loop at ${bench.operatingPoint?.utilization} of a core`
      : "saturation (closed loop): no operating point in this bench, an underestimate of the cost at the HPA target",
    appCpuMs: sum((e) => e.cpuMsPerRequest),
    redisCmds: sum((e) => e.redisCommandsPerRequest),
    redisCpuMs: sum((e) => e.redisCpuMsPerRequest),
    pgPrimary: sum((e) => e.pgPrimaryStatementsPerRequest),
    pgReplica: sum((e) => e.pgReplicaStatementsPerRequest),
    /** Primary CPU per request: the writes, priced by their measured CPU. */
    pgPrimaryCpuMs: sum(primaryCpu),
    /** Replica CPU per request of the reads (split over the replicas). */
    pgReplicaCpuMs: sum(replicaReadCpu),
    /** Replica CPU per request of WAL replay (paid on every replica, by one process each). */
    pgReplayCpuMs: sum((e) =>
      isWrite(e) && !isRead(e) ? (e.pgReplayCpuMsPerRequest ?? e.pgReplicaCpuMsPerRequest ?? 0) : 0,
    ),
    /** Replica CPU per request while writes arrive (WAL receiver and replay), on every replica. */
    pgReplicaWriteCpuMs: sum((e) => (isWrite(e) && !isRead(e) ? (e.pgReplicaCpuMsPerRequest ?? 0) : 0)),
    /** PgBouncer's CPU per request (BENCH_TOPOLOGY=pgbouncer), and whether any endpoint measured it. */
    pgbouncerCpuMs: sum((e) => e.pgbouncerCpuMsPerRequest),
    pgbouncerMeasured: [...opEndpoints, ...bench.endpoints].some((e) => e.pgbouncerCpuMsPerRequest !== undefined),
    /** Read-your-writes: the share of reads measured on the primary, and that share at cluster scale. */
    pinned: pinnedReads(bench, A),
    assumedPg,
    statementClasses: {
      pointReadMs,
      listMs: perStatement("item-list", "pgReplicaCpuMsPerRequest", "pgReplicaStatementsPerRequest"),
      writeMs: perStatement("item-write", "pgPrimaryCpuMsPerRequest", "pgPrimaryStatementsPerRequest"),
      replayMsPerWrite: (() => {
        const e =
          opEndpoints.find((x) => x.name === "item-write") ?? bench.endpoints.find((x) => x.name === "item-write");
        return e?.pgReplayCpuMsPerRequest ?? e?.pgReplicaCpuMsPerRequest ?? null;
      })(),
    },
    /** The replica-lag poller of one pod: statements/s on the primary and on each replica. */
    poller: {
      primaryPerS: (bench.background?.primaryPerS ?? 0) / instances,
      replicaPerS: (bench.background?.replicaPerS ?? 0) / instances,
      measured: bench.background !== undefined,
      /** Priced like a point read (assumed: the poll is one tiny function call). */
      msPerStatement: pointReadMs ?? 1000 / v("PG_READS_PER_CORE"),
    },
    login: {
      appCpuMs: login?.cpuMsPerRequest ?? 200,
      redisCmds: login?.redisCommandsPerRequest ?? 8,
      pgPrimary: login?.pgPrimaryStatementsPerRequest ?? 1,
      // a few logins a second cost too little primary CPU to see in ticks: priced by statements then
      pgPrimaryCpuMs:
        login?.pgPrimaryCpuMsPerRequest ||
        ((login?.pgPrimaryStatementsPerRequest ?? 1) * 1000) / v("PG_WRITES_PER_CORE"),
      pgPrimaryCpuMeasured: Boolean(login?.pgPrimaryCpuMsPerRequest),
      measured: login !== undefined,
    },
    nginxCpuMs: ramp?.cpuMsPerRequest.nginx ?? 0.1,
    nginxMeasured: ramp?.cpuMsPerRequest.nginx !== undefined,
  };
}

export type Plan = ReturnType<typeof plan>;

/** Connections of max_connections the chart keeps for superuser, replication and monitoring. */
export const PG_RESERVED_CONNECTIONS = 10;

/**
 * The Redis Cluster for `shards` shards (null while one Redis does): each shard a primary with
 * REDIS_CLUSTER_REPLICAS replicas, at least 3 primaries (Redis Cluster's own minimum), and the
 * chart values that make it (Bitnami redis-cluster's `cluster.nodes` counts every node).
 */
export function redisClusterSize(shards: number, A: Record<string, Assumption> = assumptions({})) {
  if (shards <= 1) return null;
  const primaries = Math.max(3, shards);
  const replicas = Math.round((A.REDIS_CLUSTER_REPLICAS as Assumption).value);
  const nodes = primaries * (1 + replicas);
  return {
    primaries,
    replicasPerPrimary: replicas,
    nodes,
    values: [
      "redis.enabled=false",
      "redisCluster.enabled=true",
      `redisCluster.cluster.nodes=${nodes}`,
      `redisCluster.cluster.replicas=${replicas}`,
    ],
  };
}

/**
 * PgBouncer in front of PostgreSQL, sized so that each server sees a bounded count:
 * - clients: every app pod at full scale plus a rollout's surge holds a pool of PG_POOL_MAX to
 *   the primary and to each replica, and one PgBouncer pod must accept them all (the Service
 *   may send every client to one pod while another restarts): max_client_conn;
 * - pods: PgBouncer is one process, one core: the statements it forwards, at its CPU per
 *   statement (measured by a pgbouncer bench, else PGBOUNCER_STATEMENTS_PER_CORE), kept at
 *   PGBOUNCER_UTILIZATION of a core, at least 2;
 * - default_pool_size: the server connections that keep the busiest server's cores busy
 *   (PG_CONNECTIONS_PER_CORE each), shared by the pods; during a rollout one pod more opens its
 *   pools, so PostgreSQL sees at most (pods + 1) x default_pool_size per server, which must fit
 *   in max_connections less the reserved 10 (the chart's render checks the same two rules).
 */
export function pgBouncerSize(
  o: {
    maxPods: number;
    replicas: number;
    statementsPerS: number;
    msPerStatement: number;
    /** Cores of the busiest server (the primary or a replica). */
    serverCores: number;
  },
  A: Record<string, Assumption> = assumptions({}),
) {
  const v = (k: string) => (A[k] as Assumption).value;
  const pools = 1 + o.replicas;
  const clientPods = o.maxPods + Math.ceil(o.maxPods * v("MAX_SURGE"));
  const maxClientConn = clientPods * v("PG_POOL_MAX") * pools;
  const cores = (o.statementsPerS * o.msPerStatement) / 1000 / v("CPU_SPEED");
  const pods = Math.max(2, Math.ceil(cores / v("PGBOUNCER_UTILIZATION")));
  const serverConnections = Math.ceil(v("PG_CONNECTIONS_PER_CORE") * o.serverCores);
  const poolSize = Math.max(1, Math.ceil(serverConnections / pods));
  const perServer = (pods + 1) * poolSize;
  const limit = v("PG_MAX_CONNECTIONS") - PG_RESERVED_CONNECTIONS;
  return {
    pods,
    cores,
    poolSize,
    maxClientConn,
    /** What each PostgreSQL server sees at most: every pod's pool, and a rollout's extra pod. */
    perServer,
    fits: perServer <= limit,
    values: [
      "pgbouncer.enabled=true",
      `pgbouncer.replicaCount=${pods}`,
      `pgbouncer.defaultPoolSize=${poolSize}`,
      `pgbouncer.maxClientConnections=${maxClientConn}`,
    ],
  };
}

/** Runs of the other topologies (BENCH_TOPOLOGY) whose measured costs the plan may use. */
export type Others = { pgbouncer?: Bench; redisCluster?: Bench };

/** The Express anchor's CPU per request on the basis mixCosts priced the endpoints on. */
function expressMs(bench: Bench): number {
  const op = bench.operatingPoint?.anchors?.find((a) => a.name.startsWith("Express"));
  return (bench.operatingPoint?.endpoints ?? []).length > 0 && op
    ? op.cpuMsPerRequest
    : bench.anchors.express.cpuMsPerRequest;
}

/**
 * What a cluster client costs the app, from a redis-cluster bench against this one: the mix's
 * app CPU in Express units (each run over its own Express anchor, which takes the machine's
 * drift between the runs out), the difference back in this run's ms; and the Redis commands
 * a core of the cluster served (its CPU summed over every node, replicas included).
 */
export function clusterClientCost(bench: Bench, cluster: Bench, A = assumptions({})) {
  // both at the operating point, or both at saturation: a ratio on one basis means nothing on the other
  const hasOp = (b: Bench) => (b.operatingPoint?.endpoints ?? []).length > 0;
  const same = (b: Bench): Bench => (hasOp(bench) && hasOp(cluster) ? b : { ...b, operatingPoint: undefined });
  const [a, b] = [same(bench), same(cluster)];
  const here = mixCosts(a, undefined, A);
  const there = mixCosts(b, undefined, A);
  const xHere = here.appCpuMs / expressMs(a);
  const xThere = there.appCpuMs / expressMs(b);
  return {
    startedAt: cluster.startedAt,
    basis: hasOp(a) ? "operating point" : "saturation",
    xExpress: { plain: xHere, cluster: xThere },
    appMsDelta: (xThere - xHere) * expressMs(a),
    redisCmdsPerCoreS: there.redisCpuMs > 0 ? there.redisCmds / (there.redisCpuMs / 1000) : null,
  };
}

export function plan(bench: Bench, targetRps: number, A = assumptions(), others: Others = {}) {
  const c = mixCosts(bench, undefined, A);
  const v = (k: string) => (A[k] as Assumption).value;
  const speed = v("CPU_SPEED");
  const logins = targetRps * v("LOGIN_FRACTION");
  // app CPU: the mix plus the logins, in cluster cores
  const appCores = (targetRps * c.appCpuMs + logins * c.login.appCpuMs) / 1000 / speed;
  const podCapacity = v("POD_CPU") * v("TARGET_UTILIZATION");
  const pods = Math.max(1, Math.ceil(appCores / podCapacity));
  const rpsPerPod = Math.round(targetRps / (appCores / podCapacity));
  const minPods = Math.max(2, Math.ceil((appCores * v("MIN_FRACTION")) / podCapacity));
  const maxPods = Math.max(minPods, Math.ceil(pods * v("HEADROOM")));
  const ingressCores = (targetRps * c.nginxCpuMs) / 1000 / speed / v("TARGET_UTILIZATION");
  const ingressPods = Math.max(2, Math.ceil(ingressCores / v("INGRESS_POD_CPU")));
  const redisOps = targetRps * c.redisCmds + logins * c.login.redisCmds;
  const redisShardOps = v("REDIS_OPS_PER_CORE") * v("REDIS_UTILIZATION");
  const redisShards = Math.max(1, Math.ceil(redisOps / redisShardOps));
  const pinned = c.pinned?.atScale ?? 0;
  // busy cores of PostgreSQL, before PG_UTILIZATION; the pollers run on every pod at maxReplicas
  const busy = (msPerS: number) => msPerS / 1000 / speed;
  const pollPrimary = busy(maxPods * c.poller.primaryPerS * c.poller.msPerStatement);
  const pollReplica = busy(maxPods * c.poller.replicaPerS * c.poller.msPerStatement);
  const readBusy = busy(targetRps * c.pgReplicaCpuMs * (1 - pinned));
  const replayBusy = busy(targetRps * c.pgReplayCpuMs);
  const replicaWriteBusy = busy(targetRps * c.pgReplicaWriteCpuMs);
  const primaryBusy =
    busy(targetRps * c.pgPrimaryCpuMs + logins * c.login.pgPrimaryCpuMs + targetRps * c.pgReplicaCpuMs * pinned) +
    pollPrimary;
  const readsPerS = targetRps * c.pgReplica;
  // each replica replays every write and answers every pod's poller before it serves a read
  const perReplica = v("PG_REPLICA_CORES") * v("PG_UTILIZATION") - replicaWriteBusy - pollReplica;
  const readCores = readBusy / v("PG_UTILIZATION");
  // Replay is one process per replica: past one core no replica keeps up, however many there are.
  const replicas =
    perReplica > 0 && replayBusy <= 1 ? Math.max(1, Math.ceil(readBusy / perReplica)) : Number.POSITIVE_INFINITY;
  const writesPerS = targetRps * c.pgPrimary + logins * c.login.pgPrimary;
  const primaryCores = primaryBusy / v("PG_UTILIZATION");
  const connectionsPerServer = maxPods * v("PG_POOL_MAX");
  const needsPooler = connectionsPerServer > v("PG_MAX_CONNECTIONS");
  // PgBouncer's CPU per statement: from a pgbouncer bench when there is one (its PgBouncer CPU
  // per request over the statements per request of the same mix), else assumed
  const b = others.pgbouncer ? mixCosts(others.pgbouncer, undefined, A) : null;
  const pgbStatements = b ? b.pgPrimary + b.pgReplica : 0;
  const pgbMeasured = b?.pgbouncerMeasured === true && pgbStatements > 0;
  const pgbMsPerStatement =
    b && pgbMeasured ? b.pgbouncerCpuMs / pgbStatements : 1000 / v("PGBOUNCER_STATEMENTS_PER_CORE");
  const finiteReplicas = Number.isFinite(replicas) ? replicas : 1;
  const pooler = needsPooler
    ? {
        ...pgBouncerSize(
          {
            maxPods,
            replicas: finiteReplicas,
            statementsPerS:
              readsPerS + writesPerS + maxPods * (c.poller.primaryPerS + c.poller.replicaPerS * finiteReplicas),
            msPerStatement: pgbMsPerStatement,
            serverCores: Math.max(Math.min(primaryCores, v("PG_PRIMARY_MAX_CORES")), v("PG_REPLICA_CORES")),
          },
          A,
        ),
        msPerStatement: pgbMsPerStatement,
        measuredBy: pgbMeasured ? (others.pgbouncer as Bench).startedAt : null,
      }
    : null;
  const load = {
    "app pods (HPA)": pods / 1, // scaled out by design; never the wall
    "ingress controller": ingressCores / v("INGRESS_POD_CPU"),
    "Redis (one shard)": redisOps / redisShardOps,
    "PostgreSQL replica reads": readCores / v("PG_REPLICA_CORES"),
    "PostgreSQL primary writes": primaryCores / v("PG_PRIMARY_MAX_CORES"),
    "PostgreSQL replay (one process per replica)": replayBusy,
    "PostgreSQL connections": connectionsPerServer / v("PG_MAX_CONNECTIONS"),
  };
  return {
    targetRps,
    costs: c,
    logins,
    app: { cores: appCores, pods, rpsPerPod, minPods, maxPods, coresAtMax: maxPods * v("POD_CPU") },
    ingress: { cores: ingressCores, pods: ingressPods },
    redis: {
      opsPerS: redisOps,
      shards: redisShards,
      shardOps: redisShardOps,
      /** Past one shard: the Redis Cluster to turn on. */
      cluster: redisClusterSize(redisShards, A),
      /**
       * With a redis-cluster bench, past one shard: the cluster client's app CPU, reported
       * beside the plan (pods as they would be with it), not folded into the app pods above:
       * two runs on a shared machine differ by noise of the same order.
       */
      clusterClient:
        redisShards > 1 && others.redisCluster
          ? (() => {
              const k = clusterClientCost(bench, others.redisCluster, A);
              const cores = appCores + (targetRps * Math.max(0, k.appMsDelta)) / 1000 / speed;
              return { ...k, pods: Math.max(1, Math.ceil(cores / podCapacity)) };
            })()
          : null,
    },
    pg: {
      readsPerS,
      readCores,
      replicas,
      writesPerS,
      primaryCores,
      primaryFits: primaryCores <= v("PG_PRIMARY_MAX_CORES"),
      /** Cores of WAL replay on each replica: one process, so past 1 no replica keeps up. */
      replayCores: replayBusy,
      /** Cores each replica spends taking the writes in (WAL receiver and replay). */
      replicaWriteCores: replicaWriteBusy,
      replayFits: replayBusy <= 1,
      pollerStatementsPerS: { primary: maxPods * c.poller.primaryPerS, eachReplica: maxPods * c.poller.replicaPerS },
      pinnedReads: pinned,
      connectionsPerServer,
      needsPooler,
      /** Past max_connections: PgBouncer to turn on, sized. */
      pooler,
    },
    load,
  };
}

export type Wall = { name: string; action: string; severity: number };

/**
 * Every component past what one unit of it can do (two app pods, two ingress pods, one Redis
 * shard, one replica, the largest primary, max_connections), hardest to fix first, with what
 * to do about it. `severity` is demand over what one unit takes.
 */
export function walls(p: Plan, A: Record<string, Assumption> = assumptions()): Wall[] {
  const v = (k: string) => (A[k] as Assumption).value;
  const out: Wall[] = [];
  if (!p.pg.primaryFits)
    out.push({
      name: "PostgreSQL primary (writes)",
      action: `${n(p.pg.primaryCores)} cores of writes: more than one primary; shard writes (Citus) or batch them through a queue`,
      severity: p.pg.primaryCores / v("PG_PRIMARY_MAX_CORES"),
    });
  if (!p.pg.replayFits)
    out.push({
      name: "PostgreSQL WAL replay",
      action: `${n(p.pg.replayCores, 1)} cores of replay on every replica, done by one process: no replica keeps up; fewer or smaller writes, or shard them`,
      severity: p.pg.replayCores,
    });
  const cluster = p.redis.cluster ?? redisClusterSize(p.redis.shards, A);
  if (cluster)
    out.push({
      name: "Redis",
      action: `${p.redis.shards} shards: turn on Redis Cluster, ${cluster.primaries} primaries with ${cluster.replicasPerPrimary} replica(s) each, ${cluster.nodes} nodes (${cluster.values.join(" ")}); one Redis primary, with Sentinel, only fails over`,
      severity: p.redis.opsPerS / p.redis.shardOps,
    });
  const pooler = p.pg.pooler;
  if (p.pg.needsPooler)
    out.push({
      name: "PostgreSQL connections",
      action: pooler
        ? `${n(p.pg.connectionsPerServer)} per server: turn on PgBouncer (transaction pooling), ${pooler.values.join(" ")}: ` +
          `PostgreSQL then sees at most ${n(pooler.perServer)} per server (${pooler.pods} pods + 1 in a rollout, x ${pooler.poolSize})` +
          (pooler.fits
            ? ""
            : `, over the ${n(v("PG_MAX_CONNECTIONS") - PG_RESERVED_CONNECTIONS)} that max_connections leaves: raise max_connections`)
        : `${n(p.pg.connectionsPerServer)} per server: turn on PgBouncer (transaction pooling, pgbouncer.enabled=true)`,
      severity: p.pg.connectionsPerServer / v("PG_MAX_CONNECTIONS"),
    });
  if (!Number.isFinite(p.pg.replicas))
    out.push({
      name: "PostgreSQL reads",
      action: `a replica of ${v("PG_REPLICA_CORES")} cores has no room for reads after replay and polls: bigger replicas (PG_REPLICA_CORES)`,
      severity: Number.POSITIVE_INFINITY,
    });
  else if (p.pg.replicas > 1)
    out.push({
      name: "PostgreSQL reads",
      action: `postgresql.readReplicas.replicaCount=${p.pg.replicas}; the app spreads reads over DATABASE_REPLICA_URLS`,
      severity: p.pg.readCores / v("PG_REPLICA_CORES"),
    });
  if (p.ingress.pods > 2)
    out.push({
      name: "ingress",
      action: `${p.ingress.pods} controller replicas`,
      severity: p.ingress.cores / (2 * v("INGRESS_POD_CPU")),
    });
  if (p.app.pods > 2)
    out.push({
      name: "app CPU",
      action: `HPA ${p.app.minPods}..${p.app.maxPods} pods (stateless: sessions in Redis)`,
      severity: p.app.pods / 2,
    });
  // Pushed in order of how hard the fix is (an architecture change before a replica count
  // before a bigger HPA range): the first one is the bottleneck.
  return out;
}

export function bottleneck(p: Plan): Wall {
  return (
    walls(p)[0] ?? {
      name: "nothing yet",
      action: "the HPA minimum (2 pods, for the PodDisruptionBudget) idles; one Redis, one primary, one replica",
      severity: 0,
    }
  );
}

const n = (x: number, digits = 0) =>
  x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function printPlan(p: Plan, A: Record<string, Assumption>, out: (s: string) => void) {
  const c = p.costs;
  const k = c.statementClasses;
  const ms = (x: number | null, digits = 3) => (x === null ? "not measured" : `${x.toFixed(digits)} ms`);
  out(
    `target: ${n(p.targetRps)} req/s of the API mix (${(API_MIX as MixEntry[]).map((m) => `${m.endpoint} ${m.weight}`).join(", ")}) plus ${n(p.logins, 1)} logins/s`,
  );
  out("");
  out(`measured per request (bench, weighted by the mix; from the ${c.source}):`);
  out(
    `  app CPU           ${c.appCpuMs.toFixed(3)} ms      (login: ${c.login.appCpuMs.toFixed(0)} ms: scrypt, ${c.login.measured ? "measured at saturation (the same at any load)" : "assumed"})`,
  );
  out(
    `  ingress CPU       ${c.nginxCpuMs.toFixed(3)} ms      (${c.nginxMeasured ? "nginx, measured in the ramp shape" : "assumed: the bench has no ramp"})`,
  );
  const redisPerCoreS =
    c.redisCpuMs > 0 ? `${n(c.redisCmds / (c.redisCpuMs / 1000))} commands per core-second measured` : null;
  out(
    `  Redis             ${c.redisCmds.toFixed(2)} commands  (login: ${c.login.redisCmds})  ${redisPerCoreS ? `Redis CPU ${c.redisCpuMs.toFixed(3)} ms -> ${redisPerCoreS}` : "Redis CPU not measured"}`,
  );
  out(
    `  PostgreSQL        ${c.pgReplica.toFixed(2)} replica + ${c.pgPrimary.toFixed(2)} primary statements; CPU: reads ${c.pgReplicaCpuMs.toFixed(3)} ms, writes ${c.pgPrimaryCpuMs.toFixed(3)} ms (primary), ${c.pgReplicaWriteCpuMs.toFixed(3)} ms on each replica for the writes, ${c.pgReplayCpuMs.toFixed(3)} ms of it replay (one process)` +
      (c.assumedPg.length ? `; priced by PG_*_PER_CORE (assumed): ${c.assumedPg.join(", ")}` : "") +
      `; login ${c.login.pgPrimaryCpuMs.toFixed(3)} ms on the primary (${c.login.pgPrimaryCpuMeasured ? "measured" : "assumed: PG_WRITES_PER_CORE x its statements"})`,
  );
  out(
    `  per statement     point read ${ms(k.pointReadMs)}, list ${ms(k.listMs)} (replica CPU); write ${ms(k.writeMs)} per statement (insert + WAL-position read, primary CPU); replay ${ms(k.replayMsPerWrite)} per item write (the startup process of each replica)`,
  );
  out(
    `  replica poller    ${c.poller.primaryPerS.toFixed(1)} statements/s per pod on the primary, ${c.poller.replicaPerS.toFixed(1)} on each replica (${c.poller.measured ? "measured idle" : "assumed 0: not in this bench"}), priced like a point read (assumed)`,
  );
  out(
    `  pinned reads      ${
      c.pinned === null
        ? "0 (assumed: the bench has no ramp reads)"
        : `${(100 * c.pinned.measured).toFixed(1)} % of item reads went to the primary (read-your-writes) in the ramp, ${c.pinned.users} users writing ${c.pinned.writesPerUserS.toFixed(2)}/s each: pinned ${c.pinned.windowS.toFixed(2)} s after a write -> ${(100 * c.pinned.atScale).toFixed(2)} % at USER_WRITES_PER_S (assumed)`
    }`,
  );
  out("");
  out(
    "assumptions (override with the variable; basis: policy = a choice, assumed = not measured, set = from the environment):",
  );
  const basis = (a: Assumption) =>
    a.key === "REDIS_OPS_PER_CORE" && a.basis === "assumed"
      ? `assumed; ${redisPerCoreS ?? "Redis CPU not measured"}`
      : a.basis;
  for (const a of Object.values(A))
    out(`  ${a.key.padEnd(22)} ${String(a.value).padStart(8)} ${a.unit.padEnd(18)} [${basis(a)}] ${a.why}`);
  out("");
  out("needs:");
  out(
    `  app               ${n(p.app.cores, 1)} cores busy -> ${n(p.app.pods)} pods of ${A.POD_CPU?.value} core at ${(A.TARGET_UTILIZATION?.value ?? 0) * 100} % (${n(p.app.rpsPerPod)} req/s per pod)`,
  );
  out(
    `  HPA               minReplicas ${p.app.minPods}, maxReplicas ${p.app.maxPods} (${n(p.app.coresAtMax)} cores at max)`,
  );
  out(`  ingress           ${n(p.ingress.cores, 1)} cores -> ${p.ingress.pods} controller pods`);
  out(
    `  Redis             ${n(p.redis.opsPerS)} ops/s -> ${p.redis.shards} shard(s) at ${n(p.redis.shardOps)} ops/s each`,
  );
  const cluster = p.redis.cluster;
  if (cluster)
    out(
      `  Redis Cluster     ${cluster.primaries} primaries x (1 + ${cluster.replicasPerPrimary} replica) = ${cluster.nodes} nodes: ${cluster.values.join(" ")}`,
    );
  const client = p.redis.clusterClient;
  if (client)
    out(
      `  cluster client    app CPU x${client.xExpress.cluster.toFixed(2)} Express in the redis-cluster bench of ${client.startedAt} against x${client.xExpress.plain.toFixed(2)} here (both at ${client.basis}): ${client.appMsDelta >= 0 ? "+" : ""}${client.appMsDelta.toFixed(3)} ms/req -> ${n(client.pods)} pods with it (${client.pods - p.app.pods >= 0 ? "+" : ""}${client.pods - p.app.pods}; not in the sizing above)` +
        (client.redisCmdsPerCoreS === null
          ? ""
          : `; the cluster served ${n(client.redisCmdsPerCoreS)} commands per core-second over all its nodes`),
    );
  out(
    `  PostgreSQL reads  ${n(p.pg.readsPerS)} statements/s -> ${n(p.pg.readCores, 1)} cores -> ${Number.isFinite(p.pg.replicas) ? p.pg.replicas : "no number of"} replica(s) of ${A.PG_REPLICA_CORES?.value} cores (each also spends ${n(p.pg.replicaWriteCores, 2)} cores taking the WAL in, ${n(p.pg.replayCores, 2)} of them replaying it in one process, and answers ${n(p.pg.pollerStatementsPerS.eachReplica)} polls/s)`,
  );
  out(
    `  PostgreSQL writes ${n(p.pg.writesPerS)} statements/s + ${n(p.pg.pollerStatementsPerS.primary)} polls/s -> ${n(p.pg.primaryCores, 1)} primary cores${p.pg.primaryFits ? "" : ` (over PG_PRIMARY_MAX_CORES=${A.PG_PRIMARY_MAX_CORES?.value})`}`,
  );
  out(
    `  connections       ${n(p.pg.connectionsPerServer)} per PostgreSQL server at maxReplicas${p.pg.needsPooler ? ` (over max_connections ${A.PG_MAX_CONNECTIONS?.value}: PgBouncer)` : ""}`,
  );
  const pooler = p.pg.pooler;
  if (pooler)
    out(
      `  PgBouncer         ${pooler.values.join(" ")}: ${n(pooler.cores, 1)} cores of PgBouncer (${pooler.msPerStatement.toFixed(4)} ms per statement, ${pooler.measuredBy ? `measured by the pgbouncer bench of ${pooler.measuredBy}` : "assumed: PGBOUNCER_STATEMENTS_PER_CORE"}) at ${A.PGBOUNCER_UTILIZATION?.value} of a core per pod; PostgreSQL sees at most ${n(pooler.perServer)} connections per server (${pooler.pods} pods + 1 in a rollout, x default_pool_size ${pooler.poolSize})${pooler.fits ? "" : ": over max_connections less 10, raise it"}`,
    );
  out("");
  const all = walls(p, A);
  if (all.length === 0) out(`bottleneck: ${bottleneck(p).name}: ${bottleneck(p).action}`);
  else {
    out("walls, hardest to fix first (x = demand over what one unit takes); the first is the bottleneck:");
    for (const w of all)
      out(
        `  ${w.name.padEnd(28)} x${(Number.isFinite(w.severity) ? w.severity.toFixed(1) : "∞").padEnd(6)} ${w.action}`,
      );
  }
}

/**
 * The lowest rate at which each switch of issue 17 turns on: Redis Cluster when Redis needs a
 * second shard, PgBouncer when the pools at maxReplicas pass max_connections (null: not below
 * 10M req/s). Both grow with the rate, so a bisection finds the first rate exactly.
 */
export function switchRates(bench: Bench, A: Record<string, Assumption> = assumptions({}), others: Others = {}) {
  const first = (needs: (p: Plan) => boolean): number | null => {
    let lo = 0;
    let hi = 10_000_000;
    if (!needs(plan(bench, hi, A, others))) return null;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (needs(plan(bench, mid, A, others))) hi = mid;
      else lo = mid;
    }
    return hi;
  };
  return { redisCluster: first((p) => p.redis.shards > 1), pgbouncer: first((p) => p.pg.needsPooler) };
}

/** A replica count, or why there is none: Infinity means no replica keeps up with the writes. */
export const replicasText = (x: number) => (Number.isFinite(x) ? String(x) : "none keeps up");

export function walk(bench: Bench, A: Record<string, Assumption>, out: (s: string) => void, others: Others = {}) {
  out(
    "| req/s | app pods (HPA min..max) | app cores | ingress pods | Redis ops/s (shards) | PG reads/s (replicas) | PG writes/s (primary cores) | PG connections per server | bottleneck (hardest wall) | what to do; other walls |",
  );
  out("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
  for (const rps of [100, 1_000, 10_000, 100_000, 1_000_000]) {
    const p = plan(bench, rps, A, others);
    const b = bottleneck(p);
    const more = walls(p, A)
      .slice(1)
      .map((w) => w.name);
    out(
      `| ${n(rps)} | ${p.app.pods} (${p.app.minPods}..${p.app.maxPods}) | ${n(p.app.cores, 1)} | ${p.ingress.pods} | ${n(p.redis.opsPerS)} (${p.redis.cluster ? `${p.redis.shards}: Redis Cluster of ${p.redis.cluster.nodes} nodes` : p.redis.shards}) | ${n(p.pg.readsPerS)} (${replicasText(p.pg.replicas)}) | ${n(p.pg.writesPerS)} (${n(p.pg.primaryCores, 1)}) | ${n(p.pg.connectionsPerServer)}${p.pg.pooler ? ` (PgBouncer: ${n(p.pg.pooler.perServer)})` : ""} | ${b.name} | ${b.action}${more.length ? `; also: ${more.join(", ")}` : ""} |`,
    );
  }
  const on = switchRates(bench, A, others);
  const at = (x: number | null) => (x === null ? "not below 10M req/s" : `from ${n(x)} req/s`);
  out("");
  out(
    `The switches: Redis Cluster ${at(on.redisCluster)} (Redis past one shard: ${n((A.REDIS_OPS_PER_CORE as Assumption).value * (A.REDIS_UTILIZATION as Assumption).value)} ops/s); ` +
      `PgBouncer ${at(on.pgbouncer)} (the pools at maxReplicas past max_connections ${n((A.PG_MAX_CONNECTIONS as Assumption).value)}).`,
  );
}

/**
 * `make capacity`: the plan for TARGET_RPS (default 1,000,000), or with --walk one row per
 * decade from 100 to 1,000,000, from BENCH_JSON or the latest bench. Returns the exit code;
 * everything it says goes through out and err, so the tests run it in process.
 */
export function main(
  argv: string[],
  env: NodeJS.ProcessEnv,
  out: (s: string) => void,
  err: (s: string) => void,
): number {
  // BENCH_JSON: one file or a comma-separated list; else the newest BENCH_RUNS full runs
  const runs = Number(env.BENCH_RUNS || "3");
  if (!Number.isInteger(runs) || runs < 1) {
    err(`capacity: BENCH_RUNS=${env.BENCH_RUNS}: expected a whole number >= 1`);
    return 2;
  }
  const files = env.BENCH_JSON
    ? env.BENCH_JSON.split(",").map((f) => resolve(f.trim()))
    : latestBenches(undefined, runs);
  if (files.length === 0) {
    err("capacity: no bench result in bench/results/: run `make bench` first");
    return 1;
  }
  const benches = files.map((f) => JSON.parse(readFileSync(f, "utf8")) as Bench);
  const A = assumptions(env);
  // The other topologies' runs: given, or (only when BENCH_JSON is not) the newest full one of each
  const other = (key: string, topology: string): Bench | undefined => {
    const file = env[key]
      ? resolve(env[key] as string)
      : env.BENCH_JSON
        ? undefined
        : latestBenches(undefined, 1, topology)[0];
    return file && existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Bench) : undefined;
  };
  const others: Others = {
    pgbouncer: other("PGBOUNCER_BENCH_JSON", "pgbouncer"),
    redisCluster: other("REDIS_CLUSTER_BENCH_JSON", "redis-cluster"),
  };
  let target = 0;
  if (!argv.includes("--walk")) {
    const raw = env.TARGET_RPS || "1000000";
    target = Number(raw);
    if (!Number.isFinite(target) || target < 1) {
      err(`capacity: TARGET_RPS=${raw}: expected a number >= 1`);
      return 2;
    }
  }
  const across = acrossRuns(benches, target || 1_000_000, A, others);
  const i = across.median;
  const bench = benches[i] as Bench;
  const file = files[i] as string;
  if (benches.length > 1) {
    const f = (s: Spread, digits = 0) => `${n(s.median, digits)} (${n(s.low, digits)}-${n(s.high, digits)})`;
    out(
      `over ${across.runs} bench runs (${files.map((x) => relative(REPO, x)).join(", ")}), at ${n(target || 1_000_000)} req/s, median (low-high):`,
    );
    const replicas = Number.isFinite(across.replicas.high)
      ? f(across.replicas)
      : `${Number.isFinite(across.replicas.low) ? `${across.replicas.low} or ` : ""}${replicasText(Number.POSITIVE_INFINITY)}`;
    out(
      `  app CPU ${f(across.appCpuMs, 3)} ms/req; app pods ${f(across.pods)}; primary cores ${f(across.primaryCores, 1)}; replicas ${replicas}; knee ${f(across.knee)} req/s`,
    );
    out(`  bottleneck in each run: ${across.bottlenecks.join(", ")}`);
    out("the plan below is from the median run by app pods:");
  }
  out(`capacity from ${relative(REPO, file)} (bench of ${bench.startedAt}${bench.quick ? ", QUICK run" : ""})`);
  for (const [what, b] of [
    ["PgBouncer's CPU per statement", others.pgbouncer],
    ["a cluster client's cost", others.redisCluster],
  ] as const)
    if (b) out(`${what} from the ${b.topology?.name} bench of ${b.startedAt}${b.quick ? " (QUICK)" : ""}`);
  if (target === 0) walk(bench, A, out, others);
  else printPlan(plan(bench, target, A, others), A, out);
  return 0;
}

if (import.meta.main) {
  process.exitCode = main(
    process.argv.slice(2),
    process.env,
    (s) => process.stdout.write(`${s}\n`),
    (s) => process.stderr.write(`${s}\n`),
  );
}
