import { type SessionData, Store } from "express-session";
import { type RedisClient, redisUnavailable } from "../redis.ts";

// An express-session Store over ioredis. connect-redis 9+ supports only node-redis; keeping
// one Redis client (ioredis, already used for the rate limit and Sentinel) is simpler than
// running two, and a Store is three commands.
//
// There is deliberately no `touch`: express-session calls it on every request whose session
// did not change, which would turn every read into a Redis write. A session therefore lives
// `ttlSeconds` after its last change (its login).
//
// On a Redis Cluster: every call names one key (`sess:<sid>`), so no hash tag is needed, and
// none is used: a tag would put every session in one slot, on one shard, which is the load a
// cluster is there to spread.

type Callback<T = void> = (error?: unknown, value?: T) => void;

export class RedisSessionStore extends Store {
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #ttlSeconds: number;

  constructor(options: { redis: RedisClient; ttlSeconds: number; prefix?: string }) {
    super();
    this.#redis = options.redis;
    this.#ttlSeconds = options.ttlSeconds;
    this.#prefix = options.prefix ?? "sess:";
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.#redis.get(this.#prefix + sid).then(
      (text) => callback(undefined, text === null ? null : parseSession(text)),
      (error: unknown) => callback(redisUnavailable(error)),
    );
  }

  override set(sid: string, session: SessionData, callback?: Callback): void {
    this.#redis.set(this.#prefix + sid, JSON.stringify(session), "EX", this.#expiry(session)).then(
      () => callback?.(),
      (error: unknown) => callback?.(redisUnavailable(error)),
    );
  }

  override destroy(sid: string, callback?: Callback): void {
    this.#redis.del(this.#prefix + sid).then(
      () => callback?.(),
      (error: unknown) => callback?.(redisUnavailable(error)),
    );
  }

  #expiry(session: SessionData): number {
    const expires = session.cookie?.expires;
    if (expires) {
      const seconds = Math.ceil((new Date(expires).getTime() - Date.now()) / 1000);
      if (seconds > 0) return seconds;
    }
    return this.#ttlSeconds;
  }
}

// A value that is not a session (written by something else, or truncated) reads as no
// session: the user logs in again rather than the request failing.
function parseSession(text: string): SessionData | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as SessionData) : null;
  } catch {
    return null;
  }
}
