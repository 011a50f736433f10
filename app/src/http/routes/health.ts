import { Router } from "express";
import type { DependencyHealth } from "../../dependency-health.ts";
import type { Lifecycle } from "../../lifecycle.ts";

// Liveness answers for the process alone: a dependency outage must never make Kubernetes
// restart healthy pods. Readiness fails only while starting or draining. Dependencies are
// shared by every pod, so failing readiness on them would take the whole service out at once
// instead of answering 503 on the routes that need them; their status is reported in the body.
// Both answer from memory: the dependency status is the background sample's, so a slow
// database or a busy pool can never make the probe itself time out. `detail: false` leaves
// the dependency status out, for a port that load balancers route to the public.

export function healthRouter(deps: { lifecycle: Lifecycle; health: DependencyHealth; detail: boolean }) {
  const router = Router();

  router.get("/livez", (_req, res) => {
    res.json({ status: "ok" });
  });

  router.get("/readyz", (_req, res) => {
    const ready = deps.lifecycle.isReady();
    const status = ready ? "ready" : deps.lifecycle.phase();
    res.status(ready ? 200 : 503).json(deps.detail ? { status, dependencies: deps.health.snapshot() } : { status });
  });

  return router;
}
