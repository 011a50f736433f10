import { type RedisClient, redisUnavailable } from "../redis.ts";

// Sessions in Redis, one key each (`sess:<id>`), written at login and deleted at logout.
//
// There is no touch: a session lives `ttlSeconds` after its login, so that reads never turn
// into Redis writes.
//
// The value keeps express-session's layout (`cookie.expires` beside the data), which this
// store served before: during a rollout from that version either side reads the other's
// sessions, and nobody is logged out.
//
// On a Redis Cluster: every call names one key, so no hash tag is needed, and none is used: a
// tag would put every session in one slot, on one shard, which is the load a cluster is there
// to spread.

export type StoredSession = { userId?: number; username?: string; expires: Date };

export class RedisSessionStore {
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #ttlSeconds: number;

  constructor(options: { redis: RedisClient; ttlSeconds: number; prefix?: string }) {
    this.#redis = options.redis;
    this.#ttlSeconds = options.ttlSeconds;
    this.#prefix = options.prefix ?? "sess:";
  }

  /** The session, or null when there is none (expired, logged out, or not a session). */
  async get(id: string): Promise<StoredSession | null> {
    const text = await this.#redis.get(this.#prefix + id).catch((error: unknown) => {
      throw redisUnavailable(error);
    });
    return text === null ? null : parseSession(text);
  }

  async set(id: string, session: StoredSession, cookie: { secure: boolean }): Promise<void> {
    const expiresInMs = session.expires.getTime() - Date.now();
    const value = {
      cookie: {
        originalMaxAge: this.#ttlSeconds * 1000,
        expires: session.expires.toISOString(),
        secure: cookie.secure,
        httpOnly: true,
        path: "/",
        sameSite: "lax",
      },
      userId: session.userId,
      username: session.username,
    };
    // An expiry already past (a clock step) gets the full TTL rather than a key that never
    // exists; otherwise the key ends with its cookie, rounded up to whole seconds.
    const seconds = expiresInMs > 0 ? Math.ceil(expiresInMs / 1000) : this.#ttlSeconds;
    await this.#redis.set(this.#prefix + id, JSON.stringify(value), "EX", seconds).catch((error: unknown) => {
      throw redisUnavailable(error);
    });
  }

  async destroy(id: string): Promise<void> {
    await this.#redis.del(this.#prefix + id).catch((error: unknown) => {
      throw redisUnavailable(error);
    });
  }
}

// A value that is not a session (written by something else, or truncated) reads as no
// session: the user logs in again rather than the request failing.
function parseSession(text: string): StoredSession | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { userId, username, cookie } = value as {
    userId?: unknown;
    username?: unknown;
    cookie?: { expires?: unknown };
  };
  const expires = new Date(typeof cookie?.expires === "string" ? cookie.expires : Number.NaN);
  return {
    userId: typeof userId === "number" ? userId : undefined,
    username: typeof username === "string" ? username : undefined,
    expires: Number.isNaN(expires.getTime()) ? new Date(0) : expires,
  };
}
