// Builds the real app in-process for tests that need no backing service: Redis and PostgreSQL
// point at a closed port, so their clients fail fast exactly as they would in an outage.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { createRateLimits } from "../src/auth/rate-limit.ts";
import { loadConfig } from "../src/config.ts";
import { createDatabase } from "../src/db/pools.ts";
import { createReadRouter } from "../src/db/replicas.ts";
import { createWatermarks } from "../src/db/watermarks.ts";
import { createDependencyHealth } from "../src/dependency-health.ts";
import { buildApp, internalApp } from "../src/http/app.ts";
import { createLifecycle } from "../src/lifecycle.ts";
import { createLogger } from "../src/logger.ts";
import { createMetrics } from "../src/metrics.ts";
import { closeRedis, createRedis } from "../src/redis.ts";
import { createSessionMiddleware } from "../src/sessions/middleware.ts";
import { RedisSessionStore } from "../src/sessions/store.ts";
import { createWorkerPool } from "../src/work/pool.ts";

export const closedPortEnv = {
  DATABASE_URL: "postgres://nobody@127.0.0.1:9/none",
  REDIS_URL: "redis://127.0.0.1:9/0",
  SESSION_SECRETS: "test-secret-0123456789abcdef",
  LOG_LEVEL: "silent",
  INSTANCE_NAME: "unit-1",
  WORKER_THREADS: "1",
  PG_CONNECT_TIMEOUT_MS: "200",
};

export async function startApp(env: Record<string, string> = {}) {
  const config = loadConfig({ ...closedPortEnv, ...env });
  const log = createLogger({ level: config.logLevel, instance: config.instanceName });
  const metrics = createMetrics();
  const redis = createRedis(config.redis, log, metrics);
  const db = createDatabase(config.database, log, metrics);
  const reads = createReadRouter(db, { maxLagMs: 1000, pollIntervalMs: 1000 }, log, metrics);
  const watermarks = createWatermarks(redis, { ttlMs: 60_000 }, metrics);
  const session = createSessionMiddleware(config.session, new RedisSessionStore({ redis, ttlSeconds: 60 }));
  const limits = createRateLimits(redis, config.rateLimits);
  const workers = createWorkerPool(config.workers, metrics);
  const lifecycle = createLifecycle();
  const health = createDependencyHealth({ redis, db }, { intervalMs: 60_000, timeoutMs: 500 });
  await health.refresh();
  const app = buildApp({
    config,
    log,
    metrics,
    lifecycle,
    redis,
    db,
    health,
    reads,
    watermarks,
    session,
    limits,
    workers,
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // With METRICS_PORT set, the internal port too (on a free port, whatever the number says).
  const internal: Server | undefined =
    config.metricsPort === undefined ? undefined : createServer(internalApp({ metrics, lifecycle, health }));
  if (internal) await new Promise<void>((resolve) => internal.listen(0, "127.0.0.1", resolve));
  lifecycle.markReady();
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    internalUrl: internal ? `http://127.0.0.1:${(internal.address() as AddressInfo).port}` : undefined,
    server,
    lifecycle,
    health,
    log,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      internal?.closeAllConnections();
      if (internal) await new Promise((resolve) => internal.close(resolve));
      reads.close();
      await Promise.all([workers.close(), db.close(), closeRedis(redis)]);
    },
  };
}

/** A logger at info whose JSON lines are parsed into `lines`, for tests that read what was logged. */
export function loggerInto<T>(lines: T[]) {
  return pino(
    { level: "info" },
    new Writable({
      write(chunk, _encoding, done) {
        for (const text of String(chunk).split("\n")) if (text !== "") lines.push(JSON.parse(text) as T);
        done();
      },
    }),
  );
}
