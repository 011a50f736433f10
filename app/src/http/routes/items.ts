import { once } from "node:events";
import { finished } from "node:stream/promises";
import { type Request, type RequestHandler, type Response, Router } from "express";
import type pg from "pg";
import { z } from "zod";
import { isDatabaseUnavailable } from "../../db/errors.ts";
import type { ReadRoute, ReadRouter } from "../../db/replicas.ts";
import type { ReadNeed, Watermarks } from "../../db/watermarks.ts";
import { AppError, badRequest, notFound } from "../../errors.ts";
import { readNdjson } from "../../items/ndjson.ts";
import { copyItemsIn, copyRow, currentLsn, findItem, insertItem, listItems, streamItems } from "../../items/store.ts";
import type { Metrics } from "../../metrics.ts";
import {
  currentUser,
  optionalSession,
  requireUser,
  sessionFromCookie,
  sessionUnknown,
} from "../../sessions/middleware.ts";
import { compressed, sendJson } from "../compress.ts";
import { drained, streamSlots, withStallDeadline } from "../streams.ts";
import { jsonBody, noNul, noQuery, parse } from "../validate.ts";

const withoutNul = { error: "must not contain NUL characters" };
const newItem = z.strictObject({
  title: z.string().trim().min(1).max(200).refine(noNul, withoutNul),
  body: z.string().max(10_000).refine(noNul, withoutNul).default(""),
});

// Ids are bigint in PostgreSQL and numbers in JSON. Past 2^53 a Number no longer holds every
// whole number, so a larger id would be rounded to a different row's: refuse it instead.
const safeWholeNumber = (min: number) => {
  const error = `expected a whole number from ${min} to ${Number.MAX_SAFE_INTEGER}`;
  return z
    .string()
    .regex(/^\d{1,16}$/, { error })
    .transform(Number)
    .pipe(z.number().min(min, { error }).max(Number.MAX_SAFE_INTEGER, { error }));
};

const itemId = z.strictObject({ id: safeWholeNumber(1) });

const listQuery = z.strictObject({
  after: safeWholeNumber(0).default(0),
  limit: z
    .string()
    .regex(/^\d{1,3}$/)
    .transform(Number)
    .pipe(z.number().min(1).max(100))
    .default(20),
  mine: z.enum(["true", "false"]).default("false"),
});

// Rows per cursor read. Each batch is alive (as pg rows, then items) while it is turned into
// text, so it survives young-generation GCs and makes V8 grow the heap: a million-row export
// grew the process by 50-190 MB with 1,000-row batches and by ~12 MB with 100-row ones.
const EXPORT_BATCH_ROWS = 100;

export type ItemsDeps = {
  primary: pg.Pool;
  reads: ReadRouter;
  watermarks: Watermarks;
  session: RequestHandler;
  metrics: Metrics;
  importMaxBytes: number;
  streams: { max: number; stallTimeoutMs: number };
};

export function itemsRouter(deps: ItemsDeps) {
  const router = Router();
  const anyoneWithOptionalSession = optionalSession(deps.session);
  const sessionIfAny = sessionFromCookie(deps.session);
  const oneOfTheStreams = streamSlots(deps.streams.max);

  /**
   * What this request's read must see. A request whose session could not be loaded (Redis
   * down) may be the writer's own, so its position is unknown, and that means the primary.
   */
  async function readNeed(req: Request): Promise<ReadNeed> {
    if (sessionUnknown(req)) return { kind: "unknown" };
    const user = currentUser(req);
    return user === undefined ? { kind: "any" } : deps.watermarks.need(user.id);
  }

  /**
   * Keeps the position of a committed write for the writer's next reads. The write stands
   * whatever happens here: a failure is counted and logged, and the answer is still a success,
   * since a client that saw an error would retry and write twice.
   */
  async function rememberWrite(req: Request, userId: number, position: () => Promise<string>): Promise<void> {
    try {
      await deps.watermarks.raise(userId, await position());
    } catch (error) {
      const reason = isDatabaseUnavailable(error) ? "database" : "redis";
      deps.watermarks.lost(reason);
      req.log.warn(
        { err: error, reason },
        "write committed, but its position was not kept: read-your-writes is off for it",
      );
    }
  }

  /**
   * Runs a read where the router sends it. A replica that cannot be reached leaves the rotation
   * and the read moves to the primary; a query that failed on a reachable replica (a timeout,
   * a conflict with recovery) is this query's failure, not the replica's, and is not rerun.
   */
  async function read<T>(req: Request, res: Response, query: (pool: pg.Pool) => Promise<T>): Promise<T> {
    const route = deps.reads.choose(await readNeed(req));
    try {
      return await respondFrom(res, route, query);
    } catch (error) {
      if (route.route !== "replica" || !isDatabaseUnavailable(error)) throw error;
      deps.reads.markDown(route.name, error);
      req.log.warn({ err: error, replica: route.name }, "replica read failed; retrying on the primary");
      return respondFrom(
        res,
        { route: "primary", pool: deps.primary, name: "primary", reason: "replica-failed" },
        query,
      );
    }
  }

  router.post("/api/items", noQuery, ...jsonBody("64kb"), sessionIfAny, async (req, res) => {
    const user = requireUser(req);
    const input = parse(newItem, req.body);
    const item = await insertItem(deps.primary, user.id, input);
    await rememberWrite(req, user.id, () => currentLsn(deps.primary));
    res.status(201).set("x-db-route", "primary").json(item);
  });

  router.get("/api/items", anyoneWithOptionalSession, async (req, res) => {
    const query = parse(listQuery, req.query, "query");
    const ownerId = query.mine === "true" ? requireUser(req).id : undefined;
    const items = await read(req, res, (pool) =>
      listItems(pool, { afterId: query.after, limit: query.limit, ownerId }),
    );
    await sendJson(req, res, { items, next: items.length === query.limit ? items.at(-1)?.id : null });
  });

  router.get("/api/items/export", oneOfTheStreams, compressed, anyoneWithOptionalSession, async (req, res) => {
    const mine = parse(z.strictObject({ mine: z.enum(["true", "false"]).default("false") }), req.query, "query");
    const ownerId = mine.mine === "true" ? requireUser(req).id : undefined;
    const route = deps.reads.choose(await readNeed(req));
    res.status(200).type("application/x-ndjson").set("x-db-route", route.route);
    let aborted = false;
    res.on("close", () => {
      aborted = !res.writableFinished;
    });
    for await (const batch of streamItems(route.pool, { ownerId, batchSize: EXPORT_BATCH_ROWS })) {
      if (aborted) break;
      const text = batch.map((item) => JSON.stringify(item)).join("\n");
      // Backpressure: wait for the socket to take what was written before reading more rows.
      if (!res.write(`${text}\n`) && (await drained(res, deps.streams.stallTimeoutMs)) === "stalled") {
        deps.metrics.streamsCut.inc({ stream: "export" });
        req.log.warn({ stallTimeoutMs: deps.streams.stallTimeoutMs }, "export cut off: the client stopped reading");
        res.destroy();
        break;
      }
    }
    res.end();
  });

  // Checked before a stream slot is taken: a request refused for these never holds one.
  const importable = (req: Request, _res: Response, next: (error?: unknown) => void) => {
    requireUser(req);
    if (!req.is("application/x-ndjson")) {
      throw new AppError(415, "unsupported_media_type", "Send the body as application/x-ndjson, one item per line.");
    }
    next();
  };

  router.post("/api/items/import", noQuery, sessionIfAny, importable, oneOfTheStreams, async (req, res) => {
    const user = requireUser(req);
    const client = await deps.primary.connect();
    let imported = 0;
    const copy = copyItemsIn(client);
    const copyFailed = once(copy, "error").then(([error]) => Promise.reject(error));
    copyFailed.catch(() => undefined);
    try {
      const limits = { maxLineBytes: 64 * 1024, maxTotalBytes: deps.importMaxBytes };
      for await (const lines of readNdjson(withStallDeadline(req, deps.streams.stallTimeoutMs), limits)) {
        let rows = "";
        for (const { line, value } of lines) {
          const result = newItem.safeParse(value);
          if (!result.success) {
            const issue = result.error.issues[0];
            throw badRequest("invalid_item", `line ${line}: ${issue?.path.join(".") || "item"}: ${issue?.message}`);
          }
          rows += copyRow(user.id, result.data);
        }
        imported += lines.length;
        // Backpressure: read more of the body only once PostgreSQL has taken what we sent.
        if (!copy.write(rows)) await Promise.race([once(copy, "drain"), copyFailed]);
      }
      copy.end();
      await Promise.race([finished(copy), copyFailed]);
    } catch (error) {
      // Abandoning the COPY (or a failed one) leaves the connection mid-protocol: close it
      // rather than hand it back, which also discards every row sent so far.
      copy.destroy();
      client.release(true);
      // A failure part-way leaves the rest of the body unread; on a kept-alive connection it
      // would stall the next request, so the error answer closes the connection.
      if (!req.complete) res.set("connection", "close");
      if (error instanceof AppError && error.code === "request_stalled") {
        deps.metrics.streamsCut.inc({ stream: "import" });
        req.log.warn({ stallTimeoutMs: deps.streams.stallTimeoutMs }, "import cut off: the client stopped sending");
      }
      throw error;
    }
    await rememberWrite(req, user.id, () => currentLsn(client)).finally(() => client.release());
    res.status(201).set("x-db-route", "primary").json({ imported });
  });

  router.get("/api/items/:id", noQuery, anyoneWithOptionalSession, async (req, res) => {
    const { id } = parse(itemId, req.params, "path");
    const item = await read(req, res, (pool) => findItem(pool, id));
    if (item === undefined) throw notFound("item_not_found", `No item ${id}.`);
    res.json(item);
  });

  return router;
}

async function respondFrom<T>(res: Response, route: ReadRoute, query: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const result = await query(route.pool);
  res.set("x-db-route", route.route);
  return result;
}
