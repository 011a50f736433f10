import { Router } from "express";
import type { Redis } from "ioredis";
import type { Database } from "../../db/pools.ts";
import { pingPool } from "../../db/pools.ts";
import type { Lifecycle } from "../../lifecycle.ts";
import { pingRedis } from "../../redis.ts";

// Liveness answers for the process alone: a dependency outage must never make Kubernetes
// restart healthy pods. Readiness fails only while starting or draining. Dependencies are
// shared by every pod, so failing readiness on them would take the whole service out at once
// instead of answering 503 on the routes that need them; their status is reported in the body.

export function healthRouter(deps: { lifecycle: Lifecycle; redis: Redis; db: Database }) {
  const router = Router();

  router.get("/livez", (_req, res) => {
    res.json({ status: "ok" });
  });

  router.get("/readyz", async (_req, res) => {
    const [redis, primary, ...replicas] = await Promise.all([
      pingRedis(deps.redis),
      pingPool(deps.db.primary.pool),
      ...deps.db.replicas.map(({ pool }) => pingPool(pool)),
    ]);
    const ready = deps.lifecycle.isReady();
    res.status(ready ? 200 : 503).json({
      status: ready ? "ready" : deps.lifecycle.phase(),
      dependencies: {
        redis: redis ? "up" : "down",
        primary: primary ? "up" : "down",
        replicas: Object.fromEntries(deps.db.replicas.map(({ name }, i) => [name, replicas[i] ? "up" : "down"])),
      },
    });
  });

  return router;
}
