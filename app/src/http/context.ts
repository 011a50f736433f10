import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";

// First middleware of every request: names the instance and the request, logs it, and times
// it under its route template.

const acceptableRequestId = /^[\w.:-]{1,128}$/;

export function routeTemplate(req: Request): string {
  // Routers declare full paths (they are mounted at the root), so a matched route's path is
  // its whole template. Anything unmatched is one label, never the raw path.
  return req.route ? String(req.route.path) : "unmatched";
}

export function requestContext(deps: { instance: string; log: Logger; metrics: Metrics; lifecycle: Lifecycle }) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const incoming = req.get("x-request-id");
    const id = incoming !== undefined && acceptableRequestId.test(incoming) ? incoming : randomUUID();
    req.id = id;
    req.log = deps.log.child({ reqId: id });
    res.setHeader("x-instance", deps.instance);
    res.setHeader("x-request-id", id);
    // While draining, ask keep-alive clients (the load balancer) to reconnect elsewhere.
    if (deps.lifecycle.isDraining()) res.setHeader("connection", "close");

    res.on("finish", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeTemplate(req);
      deps.metrics.httpRequestDuration.observe({ method: req.method, route, status_code: res.statusCode }, seconds);
      req.log.info(
        {
          method: req.method,
          route,
          url: req.originalUrl.slice(0, 512),
          status: res.statusCode,
          ms: Math.round(seconds * 1000),
        },
        "request",
      );
    });
    next();
  };
}
