import express, { type NextFunction, type Request, type Response, Router } from "express";
import { clientIp } from "../../auth/client-ip.ts";
import type { ClientLimiter } from "../../auth/rate-limit.ts";
import { AppError, unavailable } from "../../errors.ts";
import { MAX_BODY } from "../../work/input.ts";
import type { WorkerPool } from "../../work/pool.ts";
import { noQuery, requireJson } from "../validate.ts";

const MAX_BODY_BYTES = 3 * 1024 * 1024;

// POST /api/work in the order that keeps a flood cheap: the query and content type (headers
// only), the per-client limit (one Redis call), room in the worker pool (a counter), and only
// then the body, read as raw bytes and moved to a worker thread, which parses and checks it
// (work/input.ts). The event loop never parses a body: a 3 MB one is ~7 ms of JSON.parse.

/** UTF-8 only: the bytes go to JSON.parse as UTF-8, and the other routes accept nothing else. */
function requireUtf8(req: Request, _res: Response, next: NextFunction) {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers["content-type"] ?? "")?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    next(new AppError(415, "unsupported_charset", `unsupported charset "${charset.toUpperCase()}"`));
    return;
  }
  next();
}

export function workRouter(deps: { workers: WorkerPool; limits: { work: ClientLimiter } }) {
  const router = Router();
  const rawBody = express.raw({ type: () => true, limit: MAX_BODY });

  router.post(
    "/api/work",
    noQuery,
    requireJson,
    requireUtf8,
    async (req, res, next) => {
      await deps.limits.work.consume(clientIp(req));
      // What the body may hold: its declared length, or the limit when it is sent chunked.
      const declared = Number(req.headers["content-length"]);
      const release = deps.workers.admit(
        Number.isFinite(declared) && declared >= 0 ? Math.min(declared, MAX_BODY_BYTES) : MAX_BODY_BYTES,
      );
      if (release === undefined) throw unavailable("worker_queue_full", "The CPU work queue is full; retry shortly.");
      res.locals.releaseWork = release;
      // A request that ends before its task runs (a bad or aborted body) gives its room back here;
      // one that runs gives it back when the task settles, even if the client has gone.
      res.on("close", () => {
        if (res.locals.workStarted !== true) release();
      });
      next();
    },
    rawBody,
    async (req, res) => {
      const release = res.locals.releaseWork as () => void;
      res.locals.workStarted = true;
      try {
        const body: Uint8Array = Buffer.isBuffer(req.body) ? req.body : new Uint8Array(0);
        res.json(await deps.workers.runBody(body));
      } finally {
        release();
      }
    },
  );
  return router;
}
