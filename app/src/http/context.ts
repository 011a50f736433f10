import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";

// First middleware of every request: names the instance and the request, times it under its
// route template, and logs the requests worth a line (worthALine).

/** The status recorded for a request whose connection closed before its response ended. */
export const CLIENT_CLOSED_REQUEST = 499;

const acceptableRequestId = /^[\w.:-]{1,128}$/;

export function routeTemplate(req: Request): string {
  // Routers declare full paths (they are mounted at the root), so a matched route's path is
  // its whole template. Anything unmatched is one label, never the raw path.
  return req.route ? String(req.route.path) : "unmatched";
}

export type AccessLogPolicy = {
  /** Share of ordinary requests logged (0 to 1). */
  sampleRate: number;
  /** At least this long: always logged. */
  slowMs: number;
};

/**
 * Every request is timed in the histogram; a line is written for what someone will look for in
 * the logs: our failures (5xx), requests the client gave up on (499), slow ones, and a sample of
 * the rest. A line per request was the largest cost of the cheapest routes, and the ingress
 * logs every request anyway.
 */
export function worthALine(policy: AccessLogPolicy, status: number, ms: number, random = Math.random): boolean {
  return status >= 500 || status === CLIENT_CLOSED_REQUEST || ms >= policy.slowMs || random() < policy.sampleRate;
}

const childLog = Symbol("child logger");

/**
 * req.log: a child logger bound to the request id, built on first use (most requests never
 * log, and a child serializes its bindings). A getter on the app's request prototype, defined
 * once: an accessor defined on every request object would turn each into a slow dictionary
 * object.
 */
function installRequestLog(req: Request, log: Logger): void {
  const prototype: object = Object.getPrototypeOf(req);
  if (Object.hasOwn(prototype, "log")) return;
  Object.defineProperty(prototype, "log", {
    configurable: true,
    get(this: Request & { [childLog]?: Logger }) {
      this[childLog] ??= log.child({ reqId: this.id });
      return this[childLog];
    },
  });
}

export function requestContext(deps: {
  instance: string;
  log: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  accessLog: AccessLogPolicy;
}) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const incoming = req.headers["x-request-id"];
    const id = typeof incoming === "string" && acceptableRequestId.test(incoming) ? incoming : randomUUID();
    req.id = id;
    installRequestLog(req, deps.log);
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
      const ms = Math.round(seconds * 1000);
      if (!worthALine(deps.accessLog, status, ms)) return;
      const line = {
        method: req.method,
        route,
        url: req.originalUrl.slice(0, 512),
        status,
        ms,
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
