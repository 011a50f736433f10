import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";

// First middleware of every request: names the instance and the request, logs it, and times
// it under its route template.

/** The status recorded for a request whose connection closed before its response ended. */
export const CLIENT_CLOSED_REQUEST = 499;

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

    // Once per request: 'finish' when the response was handed over whole, 'close' without it
    // when the connection went first (the client or the load balancer gave up, or a shutdown
    // cut it off). Without the second, the slowest requests, the ones a client abandons,
    // would be missing from the latency histogram and the logs.
    let recorded = false;
    const record = (aborted: boolean) => {
      if (recorded) return;
      recorded = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeTemplate(req);
      // 499 is what nginx (the ingress) logs for the same event: the status_code label keeps
      // one meaning, "what the exchange ended as", and 5xx error ratios do not count it.
      const status = aborted ? CLIENT_CLOSED_REQUEST : res.statusCode;
      deps.metrics.httpRequestDuration.observe({ method: req.method, route, status_code: status }, seconds);
      const line = {
        method: req.method,
        route,
        url: req.originalUrl.slice(0, 512),
        status,
        ms: Math.round(seconds * 1000),
        // What the app had begun to answer, if anything, before the connection went.
        ...(aborted ? { aborted: true, statusSent: res.headersSent ? res.statusCode : null } : {}),
      };
      req.log.info(line, aborted ? "request aborted" : "request");
    };
    res.on("finish", () => record(false));
    res.on("close", () => record(!res.writableFinished));
    next();
  };
}
