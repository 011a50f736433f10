import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { Gauge } from "prom-client";
import type { RedisConfig } from "./config.ts";
import { unavailable } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

// Request paths must fail fast while Redis is away: no offline queue (a command issued while
// disconnected fails at once), a per-command timeout, and one retry at most. The client keeps
// reconnecting in the background, so service resumes by itself when Redis returns.
const failFast: RedisOptions = {
  // Commands issued in one turn of the event loop (by every request whose reply came in the
  // same read) go out in one write: on a busy instance, one syscall for many requests.
  enableAutoPipelining: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
};

/**
 * The client the rest of the app holds: one Redis (direct or found through Sentinel) or a
 * Redis Cluster. A union of the two ioredis classes rather than an interface of our own: both
 * are ioredis Commanders with the same command signatures, so every command the app sends
 * types the same on either, and each keeps what Commander lacks (status, quit, disconnect,
 * events). Callers that need to tell them apart (closing, health) narrow with `instanceof`.
 * Nothing in the type stops a command over keys of two slots on a Cluster; the app sends none
 * (every session, rate-limit and watermark operation names one key), and a Cluster answers
 * CROSSSLOT at once rather than doing the wrong thing.
 */
export type RedisClient = Redis | Cluster;

// On a Cluster the same fail-fast rules hold per node. Beyond them: a command answered MOVED
// or ASK (a slot that moved, a replica promoted) is re-sent to the node named at once, which
// is what keeps a failover or a slot migration invisible to requests; CLUSTERDOWN and
// TRYAGAIN are retried briefly, since a failover takes that state for about a node timeout.
function clusterOptions(config: Extract<RedisConfig, { kind: "cluster" }>): ClusterOptions {
  const { enableOfflineQueue, enableAutoPipelining: _, retryStrategy, ...perNode } = failFast;
  return {
    enableOfflineQueue,
    // No auto-pipelining on a Cluster: during a slot migration a command of an auto-pipeline
    // that is answered ASK failed instead of following the redirect (redis-cluster.test.ts's
    // migration under load lost a request with it on, none with it off).
    enableAutoPipelining: false,
    clusterRetryStrategy: retryStrategy,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    // Slots are re-read on MOVED anyway; a periodic refresh also finds a promoted replica
    // before a command has to bounce off the old primary.
    slotsRefreshInterval: 2000,
    redisOptions: { ...perNode, commandTimeout: config.commandTimeoutMs, password: config.password },
  };
}

export function createRedis(config: RedisConfig, log: Logger, metrics: Metrics): RedisClient {
  const options: RedisOptions = { ...failFast, commandTimeout: config.commandTimeoutMs, password: config.password };
  const client =
    config.kind === "cluster"
      ? new Cluster(config.nodes, clusterOptions(config))
      : config.kind === "sentinel"
        ? new Redis({
            ...options,
            sentinels: config.sentinels,
            name: config.masterName,
            sentinelPassword: config.password,
          })
        : new Redis(config.url, options);

  let lastError = "";
  const onError = (error: Error, node?: string) => {
    metrics.dependencyErrors.inc({ service: "redis", kind: "connection" });
    // A down Redis emits an error per reconnect attempt; log each distinct one once.
    if (error.message !== lastError) log.warn({ err: error, node }, "redis connection error");
    lastError = error.message;
  };
  client.on("error", onError);
  // A Cluster reports a failing node apart from itself (the cluster may still serve every slot).
  if (client instanceof Cluster) client.on("node error", onError);
  client.on("ready", () => {
    if (lastError !== "") log.info("redis connection restored");
    lastError = "";
  });

  new Gauge({
    name: "nodescale_redis_connected",
    help: "1 while the Redis client is connected and ready, else 0.",
    registers: [metrics.registry],
    collect() {
      this.set(client.status === "ready" ? 1 : 0);
    },
  });
  return client;
}

/**
 * Sends QUIT when connected (pending replies arrive first); otherwise just stops reconnecting.
 * A Cluster sends QUIT to every node it knows, and one of them may be down right now (a
 * primary being failed over): then the rest are disconnected without waiting for it.
 */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === "ready") {
    try {
      await client.quit();
      return;
    } catch (error) {
      if (!(client instanceof Cluster)) throw error;
    }
  }
  client.disconnect();
}

/**
 * True when Redis answers for every key. One Redis: it answers PING. A Cluster: the node asked
 * answers PING and reports every slot served (cluster_state:ok); a node that answers while its
 * cluster has slots without a primary is not healthy for the app.
 */
export async function pingRedis(client: RedisClient): Promise<boolean> {
  if (!(client instanceof Cluster)) return (await client.ping()) === "PONG";
  const info = String(await client.cluster("INFO"));
  return /^cluster_state:ok\r?$/m.test(info);
}

/** What a request path raises when Redis fails: 503 with retry-after, the cause kept for logs. */
export function redisUnavailable(cause: unknown) {
  const failure = unavailable("redis_unavailable", "Sessions are unavailable right now; retry shortly.");
  failure.cause = cause;
  return failure;
}
