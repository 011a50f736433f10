// A Redis Cluster for the local topology: Debian's redis-server in cluster mode, by default
// 3 primaries and 3 replicas on loopback, formed with `redis-cli --cluster create`. What the
// app's REDIS_CLUSTER_NODES is tested against (issue 17).
//
// Each node keeps its cluster membership (nodes.conf) in its own folder, so a node stopped and
// started again rejoins the same cluster (a stopped primary comes back as a replica of the one
// promoted in its place). Data is not persisted, like the single Redis.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { freePorts, HOST, portIsFree, redisPing, waitUntil } from "./net.ts";
import { isRunning, type ProcessRecord, run, spawnDaemon, tail } from "./process.ts";
import { THROWAWAY_SERVER_ARGS } from "./redis.ts";

/**
 * A node's ports and process, as state.json records it. The cluster bus port is given, not
 * left to Redis's port + 10000, which from the leased range lands in the kernel's ephemeral
 * range where an outgoing connection may hold it.
 */
export interface ClusterNodeState {
  port: number;
  busPort: number;
  process: ProcessRecord | null;
}

export type ClusterNodePorts = Pick<ClusterNodeState, "port" | "busPort">;

export interface RedisClusterOptions {
  bin: string;
  /** One entry per node; a multiple of (1 + replicasPerPrimary), at least 3 primaries. */
  nodes: ClusterNodePorts[];
  /** Each node's folder is `<dir>/<port>`. */
  dir: string;
  /** Each node logs to `<logDir>/redis-cluster-<port>.log`. */
  logDir: string;
  /** Default 1. */
  replicasPerPrimary?: number;
  /** cluster-node-timeout: how long a primary may be unreachable before its replica takes over. Default 3000. */
  nodeTimeoutMs?: number;
}

/** The default shape: 3 primaries, 1 replica each. */
export const CLUSTER_NODES = 6;

/**
 * Ports for `count` nodes: leased ones (tests, `freePorts`), or `base + i` with the bus port
 * 10000 above. Throws naming every port already taken.
 */
export async function clusterPorts(base: number | null, count = CLUSTER_NODES): Promise<ClusterNodePorts[]> {
  if (base === null) {
    const ports = await freePorts(2 * count);
    return Array.from({ length: count }, (_, i) => ({ port: ports[i] as number, busPort: ports[count + i] as number }));
  }
  const nodes = Array.from({ length: count }, (_, i) => ({ port: base + i, busPort: base + i + 10_000 }));
  const busy: number[] = [];
  for (const port of nodes.flatMap((n) => [n.port, n.busPort])) if (!(await portIsFree(port))) busy.push(port);
  if (busy.length > 0)
    throw new Error(
      `redis cluster ports already in use on ${HOST}: ${busy.join(", ")} (set REDIS_PORT to another base)`,
    );
  return nodes;
}

/** redis-cli from beside redis-server (REDIS_CLI overrides), for `--cluster create` and checks. */
export function findRedisCli(env: NodeJS.ProcessEnv = process.env): string {
  return env.REDIS_CLI ?? "redis-cli";
}

/** Runs one redis-cli command against a node; its output, or throws with redis-cli's. */
export async function redisCli(port: number, args: string[], timeoutMs = 10_000): Promise<string> {
  const result = await run(findRedisCli(), ["-h", HOST, "-p", String(port), ...args], { timeoutMs });
  // redis-cli exits 0 on an error reply too; it prints "ERR ..." or "(error) ..." then.
  if (result.code !== 0 || /^(\(error\) )?(ERR|CLUSTERDOWN|MOVED|ASK)\b/.test(result.stdout)) {
    throw new Error(`redis-cli -p ${port} ${args.join(" ")}: ${(result.stderr || result.stdout).trim()}`);
  }
  return result.stdout;
}

/** The `host:port,...` list the app takes as REDIS_CLUSTER_NODES. */
export function clusterNodesEnv(ports: number[]): string {
  return ports.map((port) => `${HOST}:${port}`).join(",");
}

/** Starts one node (its cluster config kept in its folder) and waits until it answers PING. */
export async function startClusterNode(options: {
  bin: string;
  port: number;
  busPort: number;
  dir: string;
  logDir: string;
  nodeTimeoutMs?: number;
}): Promise<ProcessRecord> {
  const dir = join(options.dir, String(options.port));
  mkdirSync(dir, { recursive: true });
  const logFile = join(options.logDir, `redis-cluster-${options.port}.log`);
  const { record } = spawnDaemon({
    command: options.bin,
    args: [
      "--port",
      String(options.port),
      "--bind",
      HOST,
      "--dir",
      dir,
      "--cluster-enabled",
      "yes",
      "--cluster-port",
      String(options.busPort),
      "--cluster-config-file",
      join(dir, "nodes.conf"),
      "--cluster-node-timeout",
      String(options.nodeTimeoutMs ?? 3000),
      // The shards that still have a primary keep answering while one shard fails over: a
      // session or rate limit whose key is elsewhere has no reason to fail with it.
      "--cluster-require-full-coverage",
      "no",
      ...THROWAWAY_SERVER_ARGS,
    ],
    logFile,
  });
  await waitUntil(`redis cluster node on port ${options.port}`, () => redisPing(options.port), {
    timeoutMs: 15_000,
    abort: () => (isRunning(record) ? null : `exited during start-up; log ${logFile}:\n${tail(logFile)}`),
  });
  return record;
}

/** A node as CLUSTER NODES lists it. */
export interface ClusterNode {
  id: string;
  port: number;
  role: "primary" | "replica";
  /** The primary's id, for a replica. */
  primaryId: string | null;
  /** fail or fail? flags, or not connected. */
  failing: boolean;
  /** Slot ranges served, for a primary ("0-5460"). */
  slots: string[];
}

/** The cluster as the node on `port` sees it. */
export async function clusterNodes(port: number): Promise<ClusterNode[]> {
  const text = await redisCli(port, ["CLUSTER", "NODES"]);
  return text
    .trim()
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [id = "", address = "", flags = "", primaryId = "-", , , , link = "", ...slots] = line.trim().split(" ");
      const flagList = flags.split(",");
      return {
        id,
        port: Number(/:(\d+)/.exec(address)?.[1]),
        role: flagList.includes("master") ? "primary" : "replica",
        primaryId: primaryId === "-" ? null : primaryId,
        failing: flagList.includes("fail") || flagList.includes("fail?") || link !== "connected",
        slots: slots.filter((s) => /^\d/.test(s)),
      };
    });
}

/** cluster_state, cluster_known_nodes... of one node's CLUSTER INFO. */
export async function clusterInfo(port: number): Promise<Record<string, string>> {
  const text = await redisCli(port, ["CLUSTER", "INFO"]);
  return Object.fromEntries(
    text
      .split(/\r?\n/)
      .map((line) => line.split(":"))
      .filter((parts) => parts.length === 2)
      .map(([k, v]) => [k as string, (v as string).trim()]),
  );
}

/**
 * True when every listed node answers, reports cluster_state:ok, knows all of them, and they
 * agree on `primaries` primaries each with a live replica count of at least `replicasPerPrimary`.
 */
export async function clusterSettled(ports: number[], primaries: number, replicasPerPrimary: number): Promise<boolean> {
  for (const port of ports) {
    const info = await clusterInfo(port);
    if (info.cluster_state !== "ok" || Number(info.cluster_known_nodes) !== ports.length) return false;
  }
  const nodes = await clusterNodes(ports[0] as number);
  const live = nodes.filter((n) => !n.failing);
  const primaryIds = live.filter((n) => n.role === "primary" && n.slots.length > 0).map((n) => n.id);
  if (primaryIds.length !== primaries) return false;
  return primaryIds.every(
    (id) => live.filter((n) => n.role === "replica" && n.primaryId === id).length >= replicasPerPrimary,
  );
}

/**
 * Starts every node; when they are fresh (no cluster yet), forms the cluster with
 * `redis-cli --cluster create`. Resolves once every node reports every slot served. On
 * failure the nodes started so far are in `started` for the caller to stop.
 */
export async function startRedisCluster(
  options: RedisClusterOptions,
  started: (record: ProcessRecord, index: number) => void = () => {},
): Promise<ProcessRecord[]> {
  const replicas = options.replicasPerPrimary ?? 1;
  const ports = options.nodes.map((node) => node.port);
  const primaries = ports.length / (1 + replicas);
  if (!Number.isInteger(primaries) || primaries < 3)
    throw new Error(`a Redis Cluster of ${ports.length} nodes cannot have 3+ primaries with ${replicas} replicas each`);
  mkdirSync(options.logDir, { recursive: true });
  const records = await Promise.all(
    options.nodes.map(async (node, index) => {
      const record = await startClusterNode({ ...options, ...node });
      started(record, index);
      return record;
    }),
  );
  const first = ports[0] as number;
  if (Number((await clusterInfo(first)).cluster_known_nodes) <= 1) {
    const create = await run(
      findRedisCli(),
      [
        "--cluster",
        "create",
        ...ports.map((port) => `${HOST}:${port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ],
      { timeoutMs: 60_000 },
    );
    if (create.code !== 0 || !create.stdout.includes("[OK] All 16384 slots covered"))
      throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`.trim());
  }
  await waitUntil(`redis cluster on ports ${ports.join(",")}`, () => clusterSettled(ports, primaries, replicas), {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  return records;
}

/** The hash slot of a key (CLUSTER KEYSLOT, asked of any node). */
export async function keySlot(port: number, key: string): Promise<number> {
  return Number((await redisCli(port, ["CLUSTER", "KEYSLOT", key])).trim());
}

/** The primary that serves `slot`, in a CLUSTER NODES listing. */
export function ownerOf(nodes: ClusterNode[], slot: number): ClusterNode | undefined {
  return nodes.find(
    (n) =>
      n.role === "primary" &&
      !n.failing &&
      n.slots.some((range) => {
        const [low, high = low] = range.split("-").map(Number);
        return slot >= (low as number) && slot <= (high as number);
      }),
  );
}

/**
 * Moves one slot and its keys from one primary to another while clients keep using it, the
 * way `redis-cli --cluster reshard` does per slot: the target IMPORTING, the source MIGRATING
 * (a key already moved is then answered with ASK), MIGRATE in batches, then both told the new
 * owner (the other nodes learn it by gossip).
 */
export async function migrateSlot(slot: number, from: ClusterNode, to: ClusterNode): Promise<number> {
  const s = String(slot);
  await redisCli(to.port, ["CLUSTER", "SETSLOT", s, "IMPORTING", from.id]);
  await redisCli(from.port, ["CLUSTER", "SETSLOT", s, "MIGRATING", to.id]);
  let moved = 0;
  for (;;) {
    const keys = (await redisCli(from.port, ["CLUSTER", "GETKEYSINSLOT", s, "10"]))
      .split("\n")
      .map((k) => k.trim())
      .filter((k) => k !== "");
    if (keys.length === 0) break;
    await redisCli(from.port, ["MIGRATE", HOST, String(to.port), "", "0", "5000", "KEYS", ...keys]);
    moved += keys.length;
  }
  await redisCli(to.port, ["CLUSTER", "SETSLOT", s, "NODE", to.id]);
  await redisCli(from.port, ["CLUSTER", "SETSLOT", s, "NODE", to.id]);
  return moved;
}
