// The backing services of the bench's stack, as the bench counts them: which topology it runs
// (BENCH_TOPOLOGY), the processes whose CPU it meters, Redis commands (INFO commandstats) and
// PostgreSQL statements (the counting proxies, runner/pg-counter.ts) between two snapshots.
//
//   plain          one redis-server; the app reaches PostgreSQL through the counting proxies
//   redis-cluster  the Redis Cluster of local/redis-cluster.ts (3 primaries + 3 replicas): CPU
//                  summed over every node, commands over the primaries only (a replica runs
//                  its primary's writes again; they are not the app's commands)
//   pgbouncer      the app's pools go to PgBouncer (transaction pooling), whose upstreams are
//                  the counting proxies: app -> PgBouncer -> proxy -> PostgreSQL; PgBouncer's
//                  own CPU is metered as a component

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Topology } from "../../local/topology.ts";
import type { PgCounter, PgCounts } from "./pg-counter.ts";

const execFileP = promisify(execFile);

export const TOPOLOGIES = ["plain", "redis-cluster", "pgbouncer"] as const;
export type BenchTopology = (typeof TOPOLOGIES)[number];

/** BENCH_TOPOLOGY: unset or empty is plain; anything else must be one of TOPOLOGIES. */
export function parseTopology(raw: string | undefined): BenchTopology {
  const t = (raw ?? "").trim() || "plain";
  if (!(TOPOLOGIES as readonly string[]).includes(t))
    throw new Error(`BENCH_TOPOLOGY=${raw}: expected one of ${TOPOLOGIES.join(", ")}`);
  return t as BenchTopology;
}

/** A title for the report and the log. */
export function topologyTitle(t: BenchTopology, redisNodes = 6, redisPrimaries = 3): string {
  if (t === "redis-cluster")
    return `Redis Cluster (${redisPrimaries} primaries + ${redisNodes - redisPrimaries} replicas)`;
  if (t === "pgbouncer") return "PgBouncer (transaction pooling) in front of PostgreSQL";
  return "plain (one Redis, PostgreSQL directly)";
}

export async function redisCommands(port: number): Promise<Record<string, number>> {
  const { stdout } = await execFileP("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "INFO", "commandstats"]);
  const out: Record<string, number> = {};
  for (const m of stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/**
 * Not the app's work: what the bench itself sends (INFO), the cluster client's slot discovery
 * (CLUSTER, `cluster|slots` in Redis 7's per-subcommand stats), a replica's replication
 * handshake on its primary (REPLCONF ACK, every second).
 */
const notWork = (cmd: string) =>
  cmd === "info" || cmd === "replconf" || cmd === "cluster" || cmd.startsWith("cluster|");

/** Per-command sums over several servers' commandstats. */
export function sumCommandStats(stats: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of stats) for (const [cmd, n] of Object.entries(s)) out[cmd] = (out[cmd] ?? 0) + n;
  return out;
}

export const sumRedis = (r: Record<string, number>) =>
  Object.entries(r).reduce((s, [cmd, n]) => (notWork(cmd) ? s : s + n), 0);

export type Counters = { at: number; redis: Record<string, number>; pg: Record<string, PgCounts> };

export type Background = {
  redisPerS: number;
  primaryPerS: number;
  replicaPerS: number;
  /** Cores each backing server uses idle (the pollers, checkpoints, WAL receiver...). */
  cpu: { redis: number; primary: number; replica: number; pgbouncer?: number };
};

/** The meter's component names: `redis` (one server) or `redis:<port>` (each cluster node). */
const isRedis = (name: string) => name === "redis" || name.startsWith("redis:");

/**
 * One CPU delta of the backing processes, folded: Redis summed over its servers, the rest as
 * they are (primary, replica, pgbouncer, and whatever else was metered).
 */
export function foldCpu(delta: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(delta)) {
    const key = isRedis(name) ? "redis" : name;
    out[key] = Math.round(((out[key] ?? 0) + s) * 1000) / 1000;
  }
  return out;
}

/** The stack's backing services as the bench counts them. */
export class Backing {
  readonly topology: BenchTopology;
  readonly #stack: Topology;
  readonly #pg: PgCounter;
  /** Ports whose commandstats count: the one server, or the cluster's primaries. */
  readonly commandPorts: number[];
  /** Every Redis server process (the cluster's replicas included). */
  readonly redisNodes: { port: number; pid: number }[];

  private constructor(
    topology: BenchTopology,
    stack: Topology,
    pg: PgCounter,
    commandPorts: number[],
    redisNodes: { port: number; pid: number }[],
  ) {
    this.topology = topology;
    this.#stack = stack;
    this.#pg = pg;
    this.commandPorts = commandPorts;
    this.redisNodes = redisNodes;
  }

  /** Reads the stack's Redis servers, and for a cluster which nodes are primaries now. */
  static async of(topology: BenchTopology, stack: Topology, pg: PgCounter): Promise<Backing> {
    const state = stack.state;
    const nodes = stack.redisServers.map((c) => ({ port: c.port, pid: c.process?.pid ?? 0 }));
    let commandPorts = [state.redis.port];
    if (state.redisCluster) {
      // imported here: the plain bench never loads the cluster helpers
      const { clusterNodes } = await import("../../local/redis-cluster.ts");
      const listed = await clusterNodes(nodes[0]?.port as number);
      commandPorts = listed.filter((n) => n.role === "primary" && n.slots.length > 0).map((n) => n.port);
      if (commandPorts.length === 0) throw new Error("the Redis Cluster lists no primary serving slots");
    }
    return new Backing(topology, stack, pg, commandPorts, nodes);
  }

  /** Process trees to meter: Redis (each node), the PostgreSQL servers, PgBouncer when there is one. */
  pids(): Record<string, number> {
    const s = this.#stack.state;
    const redis =
      this.redisNodes.length === 1 && !s.redisCluster
        ? { redis: this.redisNodes[0]?.pid ?? 0 }
        : Object.fromEntries(this.redisNodes.map((n) => [`redis:${n.port}`, n.pid]));
    return {
      ...redis,
      primary: s.pgPrimary.process?.pid ?? 0,
      replica: s.pgReplica.process?.pid ?? 0,
      ...(s.pgbouncer ? { pgbouncer: s.pgbouncer.process?.pid ?? 0 } : {}),
    };
  }

  get hasPgBouncer(): boolean {
    return this.#stack.state.pgbouncer !== undefined;
  }

  async counters(): Promise<Counters> {
    const stats = await Promise.all(this.commandPorts.map((p) => redisCommands(p)));
    return { at: Date.now(), redis: sumCommandStats(stats), pg: this.#pg.read() };
  }
}

/** Statements on a server, without the replica lag polls (told apart by their SQL). */
export function pgStatements(c: Counters, server: "primary" | "replica"): number {
  const x = c.pg[server] as PgCounts;
  return server === "replica" ? x.statements - x.lagPolls : x.statements;
}

/**
 * Operations between two snapshots that the requests caused. Redis: minus its idle rate.
 * Replica: lag polls removed exactly. Primary: the poller's WAL-position query has the same
 * SQL as the one a write sends, so WAL-position queries count only beyond the poller's idle
 * rate, and only when clearly beyond it (3 polls of jitter), so that a slow endpoint's few
 * requests are not charged for a poll that landed early.
 */
export function opsBetween(a: Counters, b: Counters, bg: Background) {
  const s = (b.at - a.at) / 1000;
  const byCommand: Record<string, number> = {};
  for (const [cmd, n] of Object.entries(b.redis)) {
    const d = n - (a.redis[cmd] ?? 0);
    if (d > 0 && !notWork(cmd)) byCommand[cmd] = d;
  }
  const pa = a.pg.primary as PgCounts;
  const pb = b.pg.primary as PgCounts;
  const walQueries = pb.walPositionQueries - pa.walPositionQueries;
  const walBeyondPolls = walQueries - bg.primaryPerS * s;
  return {
    redis: Math.max(0, sumRedis(b.redis) - sumRedis(a.redis) - bg.redisPerS * s),
    redisByCommand: byCommand,
    primary: pb.statements - pa.statements - walQueries + (walBeyondPolls > 3 ? walBeyondPolls : 0),
    replica: Math.max(0, pgStatements(b, "replica") - pgStatements(a, "replica") - bg.replicaPerS * s),
  };
}
