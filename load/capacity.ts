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
//   BENCH_JSON=bench/results/<ts>.json ...    a given bench run instead of the latest

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
  redisCommandsPerRequest?: number;
  pgPrimaryStatementsPerRequest?: number;
  pgReplicaStatementsPerRequest?: number;
};
type Bench = {
  startedAt: string;
  quick: boolean;
  durationS: number;
  endpoints: Endpoint[];
  mix?: MixEntry[];
  kneeRps?: number;
  shapes: { shape: string; cpuMsPerRequest: Record<string, number>; requests: number }[];
  anchors: { express: { cpuMsPerRequest: number }; nodeHttp: { cpuMsPerRequest: number } };
};

export function latestBench(dir = join(REPO, "bench", "results")): string | null {
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort();
  const full = files.filter((f) => !(JSON.parse(readFileSync(join(dir, f), "utf8")) as Bench).quick);
  const pick = full.at(-1) ?? files.at(-1);
  return pick ? join(dir, pick) : null;
}

type Assumption = { key: string; value: number; unit: string; why: string };

export function assumptions(env: NodeJS.ProcessEnv = process.env): Record<string, Assumption> {
  const a = (key: string, value: number, unit: string, why: string): Assumption => {
    const raw = env[key];
    const v = raw === undefined || raw === "" ? value : Number(raw);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${key}=${raw}: expected a positive number`);
    return { key, value: v, unit, why };
  };
  const list = [
    a("POD_CPU", 1, "cores", "CPU request (and limit) per app pod: one event loop per pod, scale out by pods"),
    a("TARGET_UTILIZATION", 0.6, "of POD_CPU", "HPA averageUtilization: room for bursts while new pods start"),
    a("HEADROOM", 1.3, "x", "HPA maxReplicas over the steady need: a zone lost, a rollout's surge, a spike"),
    a(
      "MIN_FRACTION",
      0.1,
      "of target",
      "traffic at the quietest hour; sets HPA minReplicas (never below 2, for the PDB)",
    ),
    a("CPU_SPEED", 1, "x this machine", "how much faster a cluster core is than one core of the bench machine"),
    a("LOGIN_FRACTION", 0.001, "logins per request", "one login per 1,000 requests (a session of ~17 min at 1 req/s)"),
    a("INGRESS_POD_CPU", 2, "cores", "CPU per ingress controller pod"),
    a(
      "REDIS_OPS_PER_CORE",
      100_000,
      "ops/s",
      "what one Redis shard (single-threaded) serves with small values, no pipelining",
    ),
    a("REDIS_UTILIZATION", 0.5, "of a shard", "keep Redis at half its capacity: latency and failover room"),
    a("PG_READS_PER_CORE", 10_000, "statements/s", "indexed point reads per replica core (hot data in shared_buffers)"),
    a(
      "PG_WRITES_PER_CORE",
      4_000,
      "statements/s",
      "single-row inserts + WAL-position reads per primary core, synchronous_commit on",
    ),
    a("PG_UTILIZATION", 0.6, "of a server", "PostgreSQL CPU kept below this"),
    a("PG_REPLICA_CORES", 8, "cores", "cores per read replica"),
    a("PG_PRIMARY_MAX_CORES", 64, "cores", "the largest primary you are willing to run"),
    a("PG_POOL_MAX", 10, "connections", "PG_POOL_MAX: per pool per pod (one pool to the primary, one per replica)"),
    a("PG_MAX_CONNECTIONS", 500, "connections", "max_connections per PostgreSQL server"),
  ];
  return Object.fromEntries(list.map((x) => [x.key, x]));
}

/** Per-request costs of the API mix, weighted, from the bench endpoints (and login separately). */
export function mixCosts(bench: Bench, mix: MixEntry[] = bench.mix ?? API_MIX) {
  const total = mix.reduce((s, m) => s + m.weight, 0);
  const sum = (f: (e: Endpoint) => number | undefined) =>
    mix.reduce((s, m) => {
      const e = bench.endpoints.find((x) => x.name === m.endpoint);
      if (!e) throw new Error(`the bench has no measurement of ${m.endpoint}`);
      return s + (m.weight / total) * (f(e) ?? 0);
    }, 0);
  const login = bench.endpoints.find((x) => x.name === "login");
  const ramp = bench.shapes.find((s) => s.shape === "ramp");
  return {
    appCpuMs: sum((e) => e.cpuMsPerRequest),
    redisCmds: sum((e) => e.redisCommandsPerRequest),
    redisCpuMs: sum((e) => e.redisCpuMsPerRequest),
    pgPrimary: sum((e) => e.pgPrimaryStatementsPerRequest),
    pgReplica: sum((e) => e.pgReplicaStatementsPerRequest),
    pgPrimaryCpuMs: sum((e) => e.pgPrimaryCpuMsPerRequest),
    pgReplicaCpuMs: sum((e) => e.pgReplicaCpuMsPerRequest),
    login: {
      appCpuMs: login?.cpuMsPerRequest ?? 200,
      redisCmds: login?.redisCommandsPerRequest ?? 8,
      pgPrimary: login?.pgPrimaryStatementsPerRequest ?? 1,
    },
    nginxCpuMs: ramp?.cpuMsPerRequest.nginx ?? 0.1,
  };
}

export type Plan = ReturnType<typeof plan>;

export function plan(bench: Bench, targetRps: number, A = assumptions()) {
  const c = mixCosts(bench);
  const v = (k: string) => (A[k] as Assumption).value;
  const logins = targetRps * v("LOGIN_FRACTION");
  // app CPU: the mix plus the logins, in cluster cores
  const appCores = (targetRps * c.appCpuMs + logins * c.login.appCpuMs) / 1000 / v("CPU_SPEED");
  const podCapacity = v("POD_CPU") * v("TARGET_UTILIZATION");
  const pods = Math.max(1, Math.ceil(appCores / podCapacity));
  const rpsPerPod = Math.round(targetRps / (appCores / podCapacity));
  const minPods = Math.max(2, Math.ceil((appCores * v("MIN_FRACTION")) / podCapacity));
  const maxPods = Math.max(minPods, Math.ceil(pods * v("HEADROOM")));
  const ingressCores = (targetRps * c.nginxCpuMs) / 1000 / v("CPU_SPEED") / v("TARGET_UTILIZATION");
  const ingressPods = Math.max(2, Math.ceil(ingressCores / v("INGRESS_POD_CPU")));
  const redisOps = targetRps * c.redisCmds + logins * c.login.redisCmds;
  const redisShardOps = v("REDIS_OPS_PER_CORE") * v("REDIS_UTILIZATION");
  const redisShards = Math.max(1, Math.ceil(redisOps / redisShardOps));
  const readsPerS = targetRps * c.pgReplica;
  const readCores = readsPerS / (v("PG_READS_PER_CORE") * v("PG_UTILIZATION"));
  const replicas = Math.max(1, Math.ceil(readCores / v("PG_REPLICA_CORES")));
  const writesPerS = targetRps * c.pgPrimary + logins * c.login.pgPrimary;
  const primaryCores = writesPerS / (v("PG_WRITES_PER_CORE") * v("PG_UTILIZATION"));
  const connectionsPerServer = maxPods * v("PG_POOL_MAX");
  const load = {
    "app pods (HPA)": pods / 1, // scaled out by design; never the wall
    "ingress controller": ingressCores / v("INGRESS_POD_CPU"),
    "Redis (one shard)": redisOps / redisShardOps,
    "PostgreSQL replica reads": readCores / v("PG_REPLICA_CORES"),
    "PostgreSQL primary writes": primaryCores / v("PG_PRIMARY_MAX_CORES"),
    "PostgreSQL connections": connectionsPerServer / v("PG_MAX_CONNECTIONS"),
  };
  return {
    targetRps,
    costs: c,
    logins,
    app: { cores: appCores, pods, rpsPerPod, minPods, maxPods, coresAtMax: maxPods * v("POD_CPU") },
    ingress: { cores: ingressCores, pods: ingressPods },
    redis: { opsPerS: redisOps, shards: redisShards, shardOps: redisShardOps },
    pg: {
      readsPerS,
      readCores,
      replicas,
      writesPerS,
      primaryCores,
      primaryFits: primaryCores <= v("PG_PRIMARY_MAX_CORES"),
      connectionsPerServer,
      needsPooler: connectionsPerServer > v("PG_MAX_CONNECTIONS"),
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
  if (p.redis.shards > 1)
    out.push({
      name: "Redis",
      action: `${p.redis.shards} shards: Redis Cluster (the chart's Redis is one primary + replicas, Sentinel for failover)`,
      severity: p.redis.opsPerS / p.redis.shardOps,
    });
  if (p.pg.needsPooler)
    out.push({
      name: "PostgreSQL connections",
      action: `${n(p.pg.connectionsPerServer)} per server: PgBouncer (transaction pooling) in front of PostgreSQL, or a lower PG_POOL_MAX`,
      severity: p.pg.connectionsPerServer / v("PG_MAX_CONNECTIONS"),
    });
  if (p.pg.replicas > 1)
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
  out(
    `target: ${n(p.targetRps)} req/s of the API mix (${(API_MIX as MixEntry[]).map((m) => `${m.endpoint} ${m.weight}`).join(", ")}) plus ${n(p.logins, 1)} logins/s`,
  );
  out("");
  out("measured per request (bench, weighted by the mix):");
  out(`  app CPU           ${c.appCpuMs.toFixed(3)} ms      (login: ${c.login.appCpuMs.toFixed(0)} ms: scrypt)`);
  out(`  ingress CPU       ${c.nginxCpuMs.toFixed(3)} ms      (nginx, from the ramp shape)`);
  out(
    `  Redis             ${c.redisCmds.toFixed(2)} commands  (login: ${c.login.redisCmds})  Redis CPU ${c.redisCpuMs.toFixed(3)} ms -> ${n(c.redisCmds / (c.redisCpuMs / 1000 || 1))} commands per core-second measured`,
  );
  out(
    `  PostgreSQL        ${c.pgReplica.toFixed(2)} replica + ${c.pgPrimary.toFixed(2)} primary statements; CPU ${c.pgReplicaCpuMs.toFixed(3)} + ${c.pgPrimaryCpuMs.toFixed(3)} ms`,
  );
  out("");
  out("assumptions (override with the variable):");
  for (const a of Object.values(A))
    out(`  ${a.key.padEnd(22)} ${String(a.value).padStart(8)} ${a.unit.padEnd(18)} ${a.why}`);
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
  out(
    `  PostgreSQL reads  ${n(p.pg.readsPerS)} statements/s -> ${n(p.pg.readCores, 1)} cores -> ${p.pg.replicas} replica(s) of ${A.PG_REPLICA_CORES?.value} cores`,
  );
  out(
    `  PostgreSQL writes ${n(p.pg.writesPerS)} statements/s -> ${n(p.pg.primaryCores, 1)} primary cores${p.pg.primaryFits ? "" : ` (over PG_PRIMARY_MAX_CORES=${A.PG_PRIMARY_MAX_CORES?.value})`}`,
  );
  out(
    `  connections       ${n(p.pg.connectionsPerServer)} per PostgreSQL server at maxReplicas${p.pg.needsPooler ? ` (over max_connections ${A.PG_MAX_CONNECTIONS?.value}: PgBouncer)` : ""}`,
  );
  out("");
  const all = walls(p, A);
  if (all.length === 0) out(`bottleneck: ${bottleneck(p).name}: ${bottleneck(p).action}`);
  else {
    out("walls, hardest to fix first (x = demand over what one unit takes); the first is the bottleneck:");
    for (const w of all) out(`  ${w.name.padEnd(28)} x${w.severity.toFixed(1).padEnd(6)} ${w.action}`);
  }
}

function walk(bench: Bench, A: Record<string, Assumption>, out: (s: string) => void) {
  out(
    "| req/s | app pods (HPA min..max) | app cores | ingress pods | Redis ops/s (shards) | PG reads/s (replicas) | PG writes/s (primary cores) | PG connections per server | bottleneck (hardest wall) | what to do; other walls |",
  );
  out("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
  for (const rps of [100, 1_000, 10_000, 100_000, 1_000_000]) {
    const p = plan(bench, rps, A);
    const b = bottleneck(p);
    const others = walls(p, A)
      .slice(1)
      .map((w) => w.name);
    out(
      `| ${n(rps)} | ${p.app.pods} (${p.app.minPods}..${p.app.maxPods}) | ${n(p.app.cores, 1)} | ${p.ingress.pods} | ${n(p.redis.opsPerS)} (${p.redis.shards}) | ${n(p.pg.readsPerS)} (${p.pg.replicas}) | ${n(p.pg.writesPerS)} (${n(p.pg.primaryCores, 1)}) | ${n(p.pg.connectionsPerServer)} | ${b.name} | ${b.action}${others.length ? `; also: ${others.join(", ")}` : ""} |`,
    );
  }
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
  const file = env.BENCH_JSON ? resolve(env.BENCH_JSON) : latestBench();
  if (!file) {
    err("capacity: no bench result in bench/results/: run `make bench` first");
    return 1;
  }
  const bench = JSON.parse(readFileSync(file, "utf8")) as Bench;
  const A = assumptions(env);
  let target = 0;
  if (!argv.includes("--walk")) {
    const raw = env.TARGET_RPS || "1000000";
    target = Number(raw);
    if (!Number.isFinite(target) || target < 1) {
      err(`capacity: TARGET_RPS=${raw}: expected a number >= 1`);
      return 2;
    }
  }
  out(`capacity from ${relative(REPO, file)} (bench of ${bench.startedAt}${bench.quick ? ", QUICK run" : ""})`);
  if (target === 0) walk(bench, A, out);
  else printPlan(plan(bench, target, A), A, out);
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
