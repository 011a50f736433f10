import { Router } from "express";
import type { Metrics } from "../../metrics.ts";
import { compressed } from "../compress.ts";

export function metricsRouter(metrics: Metrics) {
  const router = Router();
  router.get("/metrics", compressed, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
