import type { RequestHandler } from "express";
import express from "express";
import type { RateLimits } from "../auth/rate-limit.ts";
import type { Config } from "../config.ts";
import type { Database } from "../db/pools.ts";
import type { ReadRouter } from "../db/replicas.ts";
import type { Watermarks } from "../db/watermarks.ts";
import type { DependencyHealth } from "../dependency-health.ts";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import type { RedisClient } from "../redis.ts";
import type { WorkerPool } from "../work/pool.ts";
import { requestContext } from "./context.ts";
import { errorHandler, notFoundHandler } from "./errors.ts";
import { authRouter } from "./routes/auth.ts";
import { healthRouter } from "./routes/health.ts";
import { itemsRouter } from "./routes/items.ts";
import { metricsRouter } from "./routes/metrics.ts";
import { workRouter } from "./routes/work.ts";

export type AppDeps = {
  config: Config;
  log: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  redis: RedisClient;
  db: Database;
  health: DependencyHealth;
  reads: ReadRouter;
  watermarks: Watermarks;
  session: RequestHandler;
  limits: RateLimits;
  workers: WorkerPool;
};

// What a JSON API's answers need from a browser's point of view: never sniffed into HTML or
// script, never framed, never a document that loads or runs anything. The rest of helmet's
// dozen headers govern HTML pages, which this app does not serve. HSTS belongs to the TLS
// terminator (the ingress or the gateway), the one place that knows TLS is in use.
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("content-security-policy", "default-src 'none'; frame-ancestors 'none'");
  next();
};

export function buildApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // A weak ETag is a SHA-1 of every body, and no client of this API revalidates with one.
  app.set("etag", false);
  // Client IPs (rate limits, logs) and the TLS flag come from the load balancer's headers.
  app.set("trust proxy", deps.config.trustProxy);

  app.use(
    requestContext({
      instance: deps.config.instanceName,
      log: deps.log,
      metrics: deps.metrics,
      lifecycle: deps.lifecycle,
      accessLog: deps.config.accessLog,
    }),
  );
  app.use(securityHeaders);

  // With an internal port (METRICS_PORT), /metrics and the dependency detail live only there:
  // whatever routes this port to the public (an Ingress's `/` prefix) never exposes them.
  const internalPort = deps.config.metricsPort !== undefined;
  app.use(healthRouter({ lifecycle: deps.lifecycle, health: deps.health, detail: !internalPort }));
  if (!internalPort) app.use(metricsRouter(deps.metrics));

  const primary = deps.db.primary.pool;
  app.use(authRouter({ primary, session: deps.session, limits: deps.limits }));
  app.use(
    itemsRouter({
      primary,
      reads: deps.reads,
      watermarks: deps.watermarks,
      session: deps.session,
      metrics: deps.metrics,
      importMaxBytes: deps.config.importMaxBytes,
      streams: deps.config.streams,
    }),
  );
  app.use(workRouter(deps));

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}

/**
 * The internal port (METRICS_PORT): /metrics, and /readyz and /livez with the dependency
 * detail. For Prometheus and operators; no load balancer routes to it. Each PM2 worker has its
 * own (METRICS_PORT + NODE_APP_INSTANCE), so each is scraped on its own.
 */
export function internalApp(deps: Pick<AppDeps, "metrics" | "lifecycle" | "health">): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(healthRouter({ lifecycle: deps.lifecycle, health: deps.health, detail: true }));
  app.use(metricsRouter(deps.metrics));
  return app;
}
