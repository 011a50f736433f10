import type { Redis } from "ioredis";
import { AppError } from "../errors.ts";
import { redisUnavailable } from "../redis.ts";

// A fixed one-minute window per client, counted in Redis so the limit holds across every
// instance. INCR and EXPIRE NX run in one MULTI: the first attempt of a window starts its
// clock, and a crash between the two cannot leave a counter that never expires.

export type RateLimiter = { consume(client: string): Promise<void> };

/** `windowSeconds` is a seam for tests, which cannot wait out a minute. */
export function createLoginRateLimiter(redis: Redis, limitPerMinute: number, windowSeconds = 60): RateLimiter {
  return {
    async consume(client) {
      const key = `ratelimit:login:${client}`;
      let results: [error: Error | null, value: unknown][] | null;
      try {
        results = await redis.multi().incr(key).expire(key, windowSeconds, "NX").ttl(key).exec();
      } catch (error) {
        throw redisUnavailable(error);
      }
      // exec() answers null only when a WATCHed key changed, and nothing here WATCHes.
      if (results === null) throw redisUnavailable("transaction aborted");
      const failed = results.find(([error]) => error !== null);
      if (failed) throw redisUnavailable(failed[0]);
      // No command failed: INCR answered the count, TTL the seconds left.
      const [[, count], , [, ttl]] = results as [[null, number], unknown, [null, number]];
      if (count > limitPerMinute) {
        throw new AppError(429, "too_many_login_attempts", "Too many login attempts; wait before trying again.", {
          "retry-after": String(Math.max(1, ttl)),
        });
      }
    },
  };
}
