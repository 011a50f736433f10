import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { AppError } from "../errors.ts";
import { type RedisClient, redisUnavailable } from "../redis.ts";

// Rate limits counted in Redis (rate-limiter-flexible: one Lua INCR + PEXPIRE per call), so each
// limit holds across every instance. Clients are told when to come back: 429 JSON with a code
// and retry-after. Keys: `ratelimit:<name>:<client or username>`.
//
// On a Redis Cluster: rate-limiter-flexible (RateLimiterRedis, 11.x) touches one key per call
// (the Lua INCR script with one KEYS entry, MULTI GET+PTTL or SET+PTTL of that same key, DEL),
// so each call stays in one slot without a hash tag; the limits of one client or username
// being in different slots is fine, since no call reads two of them.
//
// When Redis fails, login answers 503 (it cannot keep a session without Redis anyway, and
// letting guesses through unlimited is what an attacker who can disturb Redis would want).
// Registration and /api/work do not otherwise need Redis, so they fall back to the same limit
// counted in this process's memory: looser by the number of instances, but never unlimited and
// never an outage of a route that does not depend on Redis.

export type LoginLimits = {
  /** Login attempts (right or wrong) per client IP per minute: each costs a password hash. */
  attemptsPerMinute: number;
  /** Failed logins from one client IP within `failureWindowSeconds` before it is blocked. */
  failuresPerIp: number;
  /** Failed logins of one username, from any IP, within the window before it is blocked. */
  failuresPerUsername: number;
  failureWindowSeconds: number;
  blockSeconds: number;
};

export type LoginLimiter = {
  /**
   * Before the password is checked: refuses a blocked client IP or username, or a client IP
   * past its attempts for the minute. Counts the attempt as a failure of the username up front,
   * so that parallel guesses cannot all slip in before the first one is counted.
   */
  begin(ip: string, username: string): Promise<void>;
  /** A right password: the username's failures are forgiven. */
  succeeded(username: string): Promise<void>;
  /** A wrong password (or unknown user): counts against the client IP. */
  failed(ip: string): Promise<void>;
};

export type ClientLimiter = { consume(client: string): Promise<void> };

export type RateLimits = { login: LoginLimiter; register: ClientLimiter; work: ClientLimiter };

/** What a refusal says: status 429, a stable code, and retry-after in whole seconds (at least 1). */
export function tooMany(code: string, message: string, msBeforeNext: number): AppError {
  return new AppError(429, code, message, { "retry-after": String(Math.max(1, Math.ceil(msBeforeNext / 1000))) });
}

const LOGIN_REFUSED = ["too_many_login_attempts", "Too many login attempts; wait before trying again."] as const;

/**
 * Runs a limiter call; a refusal (RateLimiterRes) becomes a 429 with `code`, a store failure
 * becomes 503 redis_unavailable (only limiters without an in-memory fallback fail that way).
 */
async function limited<T>(call: () => Promise<T>, code: string, message: string): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof RateLimiterRes) throw tooMany(code, message, error.msBeforeNext);
    throw redisUnavailable(error);
  }
}

/** `windowSeconds` is a seam for tests, which cannot wait out a minute. */
export function createLoginLimiter(redis: RedisClient, limits: LoginLimits, windowSeconds = 60): LoginLimiter {
  const attempts = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: "ratelimit:login",
    points: limits.attemptsPerMinute,
    duration: windowSeconds,
  });
  const ipFailures = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: "ratelimit:login-fail-ip",
    points: limits.failuresPerIp,
    duration: limits.failureWindowSeconds,
    blockDuration: limits.blockSeconds,
  });
  const userFailures = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: "ratelimit:login-fail-user",
    points: limits.failuresPerUsername,
    duration: limits.failureWindowSeconds,
    blockDuration: limits.blockSeconds,
  });
  // Usernames are case-sensitive in the users table, but one lock per spelling would let
  // "Alice" and "alice" be guessed at separately if that ever changed; lower case costs nothing.
  const userKey = (username: string) => username.toLowerCase();

  return {
    async begin(ip, username) {
      const blocked = await limited(() => ipFailures.get(ip), ...LOGIN_REFUSED);
      if (blocked !== null && blocked.consumedPoints > limits.failuresPerIp) {
        throw tooMany(...LOGIN_REFUSED, blocked.msBeforeNext);
      }
      await limited(() => attempts.consume(ip), ...LOGIN_REFUSED);
      await limited(() => userFailures.consume(userKey(username)), ...LOGIN_REFUSED);
    },
    async succeeded(username) {
      await limited(() => userFailures.delete(userKey(username)), ...LOGIN_REFUSED);
    },
    async failed(ip) {
      try {
        await ipFailures.consume(ip);
      } catch (error) {
        // Past the limit: the block is now in Redis and the next attempt is refused; this one
        // already has its answer (401).
        if (error instanceof RateLimiterRes) return;
        throw redisUnavailable(error);
      }
    },
  };
}

/**
 * `points` requests per client per `durationSeconds`, counted in Redis; while Redis fails,
 * counted in this process instead (see the top of this file).
 */
export function createClientLimiter(
  redis: RedisClient,
  options: { name: string; points: number; durationSeconds: number; code: string; message: string },
): ClientLimiter {
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `ratelimit:${options.name}`,
    points: options.points,
    duration: options.durationSeconds,
    insuranceLimiter: new RateLimiterMemory({ points: options.points, duration: options.durationSeconds }),
  });
  return {
    async consume(client) {
      await limited(() => limiter.consume(client), options.code, options.message);
    },
  };
}

export function createRateLimits(
  redis: RedisClient,
  config: { login: LoginLimits; registerPerMinute: number; workPerMinute: number },
): RateLimits {
  return {
    login: createLoginLimiter(redis, config.login),
    register: createClientLimiter(redis, {
      name: "register",
      points: config.registerPerMinute,
      durationSeconds: 60,
      code: "too_many_registrations",
      message: "Too many registrations from this address; wait before trying again.",
    }),
    work: createClientLimiter(redis, {
      name: "work",
      points: config.workPerMinute,
      durationSeconds: 60,
      code: "too_many_requests",
      message: "Too many work requests from this address; wait before trying again.",
    }),
  };
}
