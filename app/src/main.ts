#!/usr/bin/env node
// Composition root: reads the configuration, builds every client once and hands each to what
// needs it. Nothing else in the app creates a client.
//
//   node dist/main.js            serve HTTP (the default)
//   node dist/main.js migrate    apply database migrations, then exit

import { createServer, type Server } from "node:http";
import { createRateLimits } from "./auth/rate-limit.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { migrate, waitForSchema } from "./db/migrate.ts";
import { createDatabase } from "./db/pools.ts";
import { createReadRouter } from "./db/replicas.ts";
import { createWatermarks } from "./db/watermarks.ts";
import { createDependencyHealth } from "./dependency-health.ts";
import { buildApp, internalApp } from "./http/app.ts";
import { createLifecycle, installShutdown } from "./lifecycle.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createMetrics } from "./metrics.ts";
import { closeRedis, createRedis } from "./redis.ts";
import { createSessionMiddleware } from "./sessions/middleware.ts";
import { RedisSessionStore } from "./sessions/store.ts";
import { createWorkerPool } from "./work/pool.ts";

// sysexits.h: EX_USAGE and EX_CONFIG, so a supervisor can tell a bad setup from a crash.
const EXIT_USAGE = 64;
const EXIT_CONFIG = 78;

async function serve(config: Config, log: Logger): Promise<void> {
  const metrics = createMetrics();
  const redis = createRedis(config.redis, log, metrics);
  const db = createDatabase(config.database, log, metrics);
  const reads = createReadRouter(
    db,
    { maxLagMs: config.database.replicaMaxLagMs, pollIntervalMs: config.database.replicaPollIntervalMs },
    log,
    metrics,
  );
  // A position older than the lag bound routes nothing (see watermarks.ts); a minute of margin
  // covers the poll interval and clock steps.
  const watermarks = createWatermarks(redis, { ttlMs: config.database.replicaMaxLagMs + 60_000 }, metrics);
  const session = createSessionMiddleware(
    config.session,
    new RedisSessionStore({ redis, ttlSeconds: config.session.ttlSeconds }),
  );
  const limits = createRateLimits(redis, config.rateLimits);
  const workers = createWorkerPool(config.workers, metrics);
  const lifecycle = createLifecycle();
  // Sampled about as often as the readiness probe asks; a check may take at most a second.
  const health = createDependencyHealth({ redis, db }, { intervalMs: 2000, timeoutMs: 1000 });

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
  const server = createServer(app);
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  // Node requires headersTimeout above keepAliveTimeout, or it can drop a reused connection.
  server.headersTimeout = config.keepAliveTimeoutMs + 1000;

  const metricsServer =
    config.metricsPort === undefined ? undefined : createServer(internalApp({ metrics, lifecycle, health }));
  installShutdown({
    server,
    lifecycle,
    drainMs: config.shutdown.drainMs,
    timeoutMs: config.shutdown.timeoutMs,
    log,
    closers: [
      { name: "dependency health", close: async () => health.stop() },
      { name: "workers", close: () => workers.close() },
      { name: "replica monitor", close: async () => reads.close() },
      { name: "postgres", close: () => db.close() },
      { name: "redis", close: () => closeRedis(redis) },
      { name: "metrics server", close: async () => metricsServer?.close() },
    ],
  });

  await listen(server, config.port, config.host);
  if (metricsServer && config.metricsPort !== undefined) await listen(metricsServer, config.metricsPort, config.host);
  await waitForSchema(db.primary.pool, log);
  // The first ready answer already carries a real sample.
  await health.refresh();
  health.start();
  lifecycle.markReady();
  // A process manager that started us with an IPC channel (PM2's wait_ready) learns that this
  // worker can take traffic, so a reload replaces the old worker only after this one is up.
  process.send?.("ready");
  log.info({ port: config.port, workerThreads: config.workers.threads, replicas: db.replicas.length }, "listening");
}

function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
}

async function runMigrations(config: Config, log: Logger): Promise<void> {
  const db = createDatabase(
    // The primary itself (config.ts requires it when the other URLs lead to a pooler).
    { ...config.database, primaryUrl: config.database.migrateUrl, replicaUrls: [], transactionPooling: false },
    log,
    createMetrics(),
  );
  try {
    const applied = await migrate(db.primary.pool, log);
    log.info({ applied }, applied.length > 0 ? "migrations applied" : "schema already up to date");
  } finally {
    await db.close();
  }
}

async function main(args: string[]): Promise<void> {
  const command = args[0] ?? "serve";
  if (command !== "serve" && command !== "migrate") {
    process.stderr.write(`nodescale: unknown command "${command}" (expected "serve" or "migrate")\n`);
    process.exit(EXIT_USAGE);
  }

  let config: Config;
  try {
    config = loadConfig(process.env, command);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`nodescale: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }

  const log = createLogger({ level: config.logLevel, instance: config.instanceName });
  if (command === "migrate") {
    await runMigrations(config, log);
    return;
  }
  await serve(config, log);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`nodescale: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
