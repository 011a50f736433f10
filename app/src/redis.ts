import { Redis, type RedisOptions } from "ioredis";
import { Gauge } from "prom-client";
import type { RedisConfig } from "./config.ts";
import { unavailable } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

// Request paths must fail fast while Redis is away: no offline queue (a command issued while
// disconnected fails at once), a per-command timeout, and one retry at most. The client keeps
// reconnecting in the background, so service resumes by itself when Redis returns.
const failFast: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
};

export function createRedis(config: RedisConfig, log: Logger, metrics: Metrics): Redis {
  const options: RedisOptions = { ...failFast, commandTimeout: config.commandTimeoutMs, password: config.password };
  const client =
    config.kind === "sentinel"
      ? new Redis({
          ...options,
          sentinels: config.sentinels,
          name: config.masterName,
          sentinelPassword: config.password,
        })
      : new Redis(config.url, options);

  let lastError = "";
  client.on("error", (error: Error) => {
    metrics.dependencyErrors.inc({ service: "redis", kind: "connection" });
    // A down Redis emits an error per reconnect attempt; log each distinct one once.
    if (error.message !== lastError) log.warn({ err: error }, "redis connection error");
    lastError = error.message;
  });
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

/** Sends QUIT when connected (pending replies arrive first); otherwise just stops reconnecting. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === "ready") {
    await client.quit();
    return;
  }
  client.disconnect();
}

/** What a request path raises when Redis fails: 503 with retry-after, the cause kept for logs. */
export function redisUnavailable(cause: unknown) {
  const failure = unavailable("redis_unavailable", "Sessions are unavailable right now; retry shortly.");
  failure.cause = cause;
  return failure;
}
