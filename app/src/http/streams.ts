import { once } from "node:events";
import type { NextFunction, Request, Response } from "express";
import { AppError } from "../errors.ts";

// Exports and imports hold a database connection for as long as their client takes. These
// bound how many run at once on an instance, and how long one may wait on its client.

/**
 * Admits at most `max` streams at once. The next one gets 503 before it touches the database,
 * so that point reads keep the rest of the pool.
 */
export function streamSlots(max: number) {
  let inUse = 0;
  return (req: Request, res: Response, next: NextFunction) => {
    if (inUse >= max) {
      // An import's body is left unread; the connection cannot carry another request.
      if (!req.complete) res.set("connection", "close");
      next(
        new AppError(503, "too_many_streams", `This instance is serving ${max} exports or imports; retry shortly.`, {
          "retry-after": "1",
        }),
      );
      return;
    }
    inUse++;
    res.once("close", () => {
      inUse--;
    });
    next();
  };
}

/** Waits until the client has taken what was written. "stalled": it took nothing for `ms`. */
export async function drained(res: Response, ms: number): Promise<"drained" | "closed" | "stalled"> {
  const timeout = new AbortController();
  try {
    return await Promise.race([
      once(res, "drain", { signal: timeout.signal }).then(() => "drained" as const),
      once(res, "close", { signal: timeout.signal }).then(() => "closed" as const),
      new Promise<"stalled">((resolve) => setTimeout(resolve, ms, "stalled").unref()),
    ]);
  } finally {
    timeout.abort();
  }
}

/**
 * The chunks of `source`, failing with 408 when the client sends nothing for `ms`. Only the
 * wait for the client is timed, never the time the caller spends on a chunk. A stalled source
 * is left as it is (its pending read cannot be cancelled); the caller answers and closes the
 * connection, which ends it.
 */
export async function* withStallDeadline<T>(source: AsyncIterable<T>, ms: number): AsyncGenerator<T> {
  const chunks = source[Symbol.asyncIterator]();
  let stalled = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          stalled = true;
          reject(new AppError(408, "request_stalled", `No part of the body arrived for ${ms} ms.`));
        }, ms);
      });
      const next = await Promise.race([chunks.next(), deadline]).finally(() => clearTimeout(timer));
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // return() would wait behind the read that never settles.
    if (!stalled) await chunks.return?.();
  }
}
