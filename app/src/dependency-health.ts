import type pg from "pg";
import type { Database, NamedPool } from "./db/pools.ts";
import { pingRedis, type RedisClient } from "./redis.ts";

// What /readyz reports about Redis and each PostgreSQL pool, sampled in the background so
// that the probe itself answers from memory: a readiness probe that waits on a dependency
// times out exactly when the dependency is slow or the pool is busy, and every pod fails it
// together. The sample never queues behind requests for a pool connection: a pool with no
// free connection is reported `busy` without being touched.

export type DependencyStatus = "up" | "down" | "busy" | "unknown";

export type DependencySnapshot = {
  redis: DependencyStatus;
  primary: DependencyStatus;
  replicas: Record<string, DependencyStatus>;
  /** When the last sample finished (ISO 8601); null before the first one. */
  checkedAt: string | null;
};

export type DependencyHealth = {
  /** The last sample; never waits. */
  snapshot(): DependencySnapshot;
  /** Samples now (the background loop calls this; tests may too). Never runs two at once. */
  refresh(): Promise<void>;
  start(): void;
  stop(): void;
};

export type DependencyHealthOptions = {
  /** Time between the end of one sample and the start of the next. */
  intervalMs: number;
  /** The most one check of one dependency may take. */
  timeoutMs: number;
};

/** A pool with no idle connection and no room for a new one, or with requests already queued. */
export function poolSaturated(pool: pg.Pool): boolean {
  const full = pool.idleCount === 0 && pool.totalCount >= (pool.options.max ?? 10);
  return full || pool.waitingCount > 0;
}

/** The promise's value, or "timeout" when it takes longer than ms. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function probePool(pool: pg.Pool, timeoutMs: number): Promise<DependencyStatus> {
  if (poolSaturated(pool)) return "busy";
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch {
    return "down";
  }
  const answer = await within(
    client.query("select 1").then(
      () => "up" as const,
      () => "failed" as const,
    ),
    timeoutMs,
  );
  // A connection that failed or is still busy on the server is dropped rather than reused.
  client.release(answer === "up" ? undefined : true);
  return answer === "up" ? "up" : "down";
}

async function probeRedis(redis: RedisClient, timeoutMs: number): Promise<DependencyStatus> {
  // A disconnected client fails commands at once (no offline queue); skip the round trip.
  if (redis.status !== "ready") return "down";
  const reply = await within(
    pingRedis(redis).catch(() => false),
    timeoutMs,
  );
  return reply === true ? "up" : "down";
}

export function createDependencyHealth(
  deps: { redis: RedisClient; db: Database },
  options: DependencyHealthOptions,
): DependencyHealth {
  const replicaNames = deps.db.replicas.map(({ name }) => name);
  let current: DependencySnapshot = {
    redis: "unknown",
    primary: "unknown",
    replicas: Object.fromEntries(replicaNames.map((name) => [name, "unknown" as const])),
    checkedAt: null,
  };
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;

  const probe = ({ pool }: NamedPool) => probePool(pool, options.timeoutMs);

  async function sample(): Promise<void> {
    const [redis, primary, ...replicas] = await Promise.all([
      probeRedis(deps.redis, options.timeoutMs),
      probe(deps.db.primary),
      ...deps.db.replicas.map(probe),
    ]);
    current = {
      redis: redis ?? "unknown",
      primary: primary ?? "unknown",
      replicas: Object.fromEntries(replicaNames.map((name, i) => [name, replicas[i] ?? "unknown"])),
      checkedAt: new Date().toISOString(),
    };
  }

  function refresh(): Promise<void> {
    running ??= sample().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    timer = setTimeout(() => {
      refresh().finally(() => {
        if (!stopped) schedule();
      });
    }, options.intervalMs);
    timer.unref();
  }

  return {
    snapshot: () => current,
    refresh,
    start() {
      if (!stopped) return;
      stopped = false;
      void refresh();
      schedule();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
