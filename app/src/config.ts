import { availableParallelism, hostname } from "node:os";
import { z } from "zod";

// Every setting the app reads, parsed once at start-up. The names are the contract with the
// chart's ConfigMap/Secret and the local topology (DESIGN.md, "Environment").

const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { error: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { error: `expected a whole number from ${min} to ${max}` })
        .max(max, { error: `expected a whole number from ${min} to ${max}` }),
    );

const url = (protocols: readonly string[]) =>
  z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      { error: `expected a URL starting with ${protocols.join(" or ")}//` },
    );

const list = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .transform((value) =>
      value
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part !== ""),
    )
    .pipe(z.array(item));

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, { error: "expected host:port" })
  .transform((value) => {
    const [host = "", port = ""] = value.split(":");
    return { host, port: Number(port) };
  });

const postgresUrl = url(["postgres:", "postgresql:"]);
const redisUrl = url(["redis:", "rediss:"]);

const envSchema = z.object({
  NODE_ENV: z.enum(["production", "development", "test"]).default("production"),
  PORT: integer(1, 65535).default(3000),
  // Interface to listen on; unset means every interface (what a pod needs).
  HOST: z.string().trim().min(1).optional(),
  INSTANCE_NAME: z.string().trim().min(1).max(253).optional(),
  // Set by PM2 in cluster mode: which worker this process is (0, 1, ...).
  NODE_APP_INSTANCE: integer(0, 4095).optional(),
  // When set, /metrics and the /readyz dependency detail are served only on METRICS_PORT +
  // NODE_APP_INSTANCE, never on the port a load balancer routes to the public; each PM2 worker
  // is scraped on its own, so sums across workers are right.
  METRICS_PORT: integer(1, 65535).optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  // Share of ordinary requests (2xx-4xx, faster than ACCESS_LOG_SLOW_MS) that get an access log
  // line; 5xx, aborted (499) and slow requests always do. The ingress logs every request
  // already, and a line per request cost more than the rest of GET /livez; 1 logs them all.
  ACCESS_LOG_SAMPLE_RATE: z
    .string()
    .trim()
    .regex(/^(0(\.\d+)?|1(\.0+)?)$/, { error: "expected a number from 0 to 1" })
    .transform(Number)
    .default(0.01),
  // A request that takes at least this long is always logged.
  ACCESS_LOG_SLOW_MS: integer(0, 3_600_000).default(1000),

  REDIS_URL: redisUrl.optional(),
  REDIS_SENTINELS: list(hostPort).optional(),
  REDIS_SENTINEL_MASTER: z.string().trim().min(1).optional(),
  // A Redis Cluster's nodes (`host:port,...`; a few are enough, the client learns the rest from
  // CLUSTER SLOTS). Selects ioredis's Cluster client instead of REDIS_URL or REDIS_SENTINELS,
  // for when one primary cannot carry the load; REDIS_PASSWORD applies to every node.
  REDIS_CLUSTER_NODES: list(hostPort).optional(),
  // Kept apart from REDIS_URL so that a Kubernetes Secret can supply it without URL-encoding.
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_COMMAND_TIMEOUT_MS: integer(10, 60_000).default(500),

  DATABASE_URL: postgresUrl,
  DATABASE_REPLICA_URLS: list(postgresUrl).default([]),
  PG_POOL_MAX: integer(1, 1000).default(10),
  PG_CONNECT_TIMEOUT_MS: integer(100, 60_000).default(2000),
  PG_STATEMENT_TIMEOUT_MS: integer(100, 3_600_000).default(15_000),
  PG_IDLE_TIMEOUT_MS: integer(1000, 3_600_000).default(30_000),
  // The primary itself, for `migrate` only (default DATABASE_URL): migrations hold a
  // session-level advisory lock, which a transaction-mode pooler cannot keep on one session.
  DATABASE_MIGRATE_URL: postgresUrl.optional(),
  // "on" when DATABASE_URL and the replicas lead to a transaction-mode pooler (PgBouncer). The
  // app then sends no statement_timeout at connect (PgBouncer refuses startup parameters it
  // does not know); the pooler sets it on its server connections instead (PgBouncer's
  // connect_query, as local/pgbouncer.ts does).
  PG_TRANSACTION_POOLING: z.enum(["off", "on"]).default("off"),
  // "on" names every parameterised query, so that each connection parses and plans it once.
  // Off by default: under a transaction-mode pooler the next transaction may run on another
  // server connection, where that name does not exist; PgBouncer before 1.21 (Debian 12 ships
  // 1.18) cannot follow them, 1.21+ can with max_prepared_statements set.
  PG_PREPARED_STATEMENTS: z.enum(["off", "on"]).default("off"),
  // A replica further behind than this is skipped for reads (they go to the primary).
  REPLICA_MAX_LAG_MS: integer(0, 3_600_000).default(5000),
  REPLICA_POLL_INTERVAL_MS: integer(50, 60_000).default(250),
  // The largest NDJSON import accepted; it is streamed, so this bounds time, not memory.
  IMPORT_MAX_BYTES: integer(1024, 10 * 1024 ** 3).default(1024 ** 3),
  // Exports and imports in flight per instance. Each holds a database connection for as long
  // as its client takes, so they get a share of PG_POOL_MAX and point reads keep the rest.
  // Unset: a third of PG_POOL_MAX, at least 1.
  STREAMS_MAX: integer(1, 1000).optional(),
  // An export whose client stops reading, or an import whose client stops sending, is cut off
  // after this long without progress, so a slow client cannot hold a connection for ever.
  STREAM_STALL_TIMEOUT_MS: integer(100, 3_600_000).default(30_000),

  SESSION_SECRETS: list(z.string().min(16, { error: "each secret needs at least 16 characters" })).optional(),
  SESSION_TTL_SECONDS: integer(60, 31_536_000).default(86_400),
  // "auto" marks the cookie Secure whenever the request arrived over TLS (X-Forwarded-Proto).
  COOKIE_SECURE: z.enum(["auto", "true", "false"]).default("auto"),
  // Login attempts, right or wrong, per client IP per minute (each costs a password hash).
  LOGIN_RATE_LIMIT_PER_MINUTE: integer(1, 100_000).default(10),
  // Failed logins from one client IP within LOGIN_FAILURE_WINDOW_SECONDS before that IP is
  // refused for LOGIN_BLOCK_SECONDS.
  LOGIN_FAILURES_PER_IP: integer(1, 1_000_000).default(50),
  // Failed logins of one username, from any IP, within the window before that username is
  // refused for LOGIN_BLOCK_SECONDS (guessing from many IPs); a successful login clears them.
  LOGIN_FAILURES_PER_USERNAME: integer(1, 1_000_000).default(10),
  LOGIN_FAILURE_WINDOW_SECONDS: integer(1, 604_800).default(900),
  LOGIN_BLOCK_SECONDS: integer(1, 604_800).default(900),
  // Registrations per client IP per minute (each costs a password hash).
  REGISTER_RATE_LIMIT_PER_MINUTE: integer(1, 100_000).default(5),
  // POST /api/work requests per client IP per minute.
  WORK_RATE_LIMIT_PER_MINUTE: integer(1, 1_000_000).default(600),
  // Number of proxy hops in front of the app whose X-Forwarded-* headers are trusted. 0 (the
  // default) takes the client IP from the connection: with no proxy in front, a trusted
  // X-Forwarded-For would let any client pick its IP and walk around every per-IP limit. Set it
  // to the number of proxies that do stand in front (1 behind an ingress controller or nginx).
  TRUST_PROXY: integer(0, 10).default(0),

  WORKER_THREADS: integer(1, 256).optional(),
  WORKER_QUEUE_MAX: integer(0, 100_000).default(256),
  // Bytes of POST /api/work bodies held at once (read, queued or running); past it, 503 before
  // the body is read. 256 queued 3 MB bodies would otherwise outgrow a 512 MiB pod.
  WORK_INFLIGHT_MAX_BYTES: integer(3 * 1024 ** 2, 4 * 1024 ** 3).default(64 * 1024 ** 2),

  SHUTDOWN_DRAIN_MS: integer(0, 600_000).default(5000),
  // Longer than the load balancer's idle timeout (nginx upstream keepalive_timeout is 60 s),
  // so that the balancer, never the app, closes an idle connection.
  KEEP_ALIVE_TIMEOUT_MS: integer(1000, 600_000).default(65_000),
  // Hard stop for in-flight work once the server has stopped accepting.
  SHUTDOWN_TIMEOUT_MS: integer(1000, 600_000).default(10_000),
});

// Rules across variables, checked on what is set so that they are reported together with
// every other problem rather than after them.
function crossVariableProblems(env: Record<string, string>, command: Command): string[] {
  const problems: string[] = [];
  // A session-level advisory lock through a transaction-mode pooler would not guard anything.
  if (command === "migrate" && env.PG_TRANSACTION_POOLING === "on" && env.DATABASE_MIGRATE_URL === undefined) {
    problems.push("DATABASE_MIGRATE_URL: required with PG_TRANSACTION_POOLING=on (migrate needs the primary itself)");
  }
  // Migrations touch only the database, so the migrate initContainer needs no Redis or session secret.
  if (command === "migrate") return problems;
  if (env.REDIS_URL === undefined && env.REDIS_SENTINELS === undefined && env.REDIS_CLUSTER_NODES === undefined) {
    problems.push("REDIS_URL: required (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES)");
  }
  const besideCluster = ["REDIS_URL", "REDIS_SENTINELS"].filter((name) => env[name] !== undefined);
  if (env.REDIS_CLUSTER_NODES !== undefined && besideCluster.length > 0) {
    problems.push(`REDIS_CLUSTER_NODES: set it alone, not with ${besideCluster.join(" or ")} (one Redis per app)`);
  }
  if (env.REDIS_SENTINELS !== undefined && env.REDIS_SENTINEL_MASTER === undefined) {
    problems.push("REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS");
  }
  const streams = Number(env.STREAMS_MAX);
  const poolMax = Number(env.PG_POOL_MAX ?? 10);
  if (env.STREAMS_MAX !== undefined && Number.isInteger(streams) && Number.isInteger(poolMax) && streams >= poolMax) {
    problems.push(`STREAMS_MAX: must be below PG_POOL_MAX (${poolMax}), so that point reads keep a connection`);
  }
  if ((env.NODE_ENV ?? "production") !== "development" && env.SESSION_SECRETS === undefined) {
    problems.push("SESSION_SECRETS: required outside development");
  }
  return problems;
}

type Env = z.infer<typeof envSchema>;

export type RedisConfig =
  | { kind: "standalone"; url: string; password?: string; commandTimeoutMs: number }
  | { kind: "cluster"; nodes: { host: string; port: number }[]; password?: string; commandTimeoutMs: number }
  | {
      kind: "sentinel";
      sentinels: { host: string; port: number }[];
      masterName: string;
      password?: string;
      commandTimeoutMs: number;
    };

export type Config = ReturnType<typeof toConfig>;

function toConfig(env: Env) {
  const redis: RedisConfig =
    env.REDIS_CLUSTER_NODES !== undefined
      ? {
          kind: "cluster",
          nodes: env.REDIS_CLUSTER_NODES,
          password: env.REDIS_PASSWORD,
          commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
        }
      : env.REDIS_SENTINELS !== undefined && env.REDIS_SENTINEL_MASTER !== undefined
        ? {
            kind: "sentinel",
            sentinels: env.REDIS_SENTINELS,
            masterName: env.REDIS_SENTINEL_MASTER,
            password: env.REDIS_PASSWORD,
            commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
          }
        : {
            kind: "standalone",
            url: env.REDIS_URL ?? "",
            password: env.REDIS_PASSWORD,
            commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
          };
  return {
    env: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    instanceName:
      env.INSTANCE_NAME ??
      (env.NODE_APP_INSTANCE === undefined ? hostname() : `${hostname()}-${env.NODE_APP_INSTANCE}`),
    metricsPort: env.METRICS_PORT === undefined ? undefined : env.METRICS_PORT + (env.NODE_APP_INSTANCE ?? 0),
    logLevel: env.LOG_LEVEL,
    accessLog: { sampleRate: env.ACCESS_LOG_SAMPLE_RATE, slowMs: env.ACCESS_LOG_SLOW_MS },
    redis,
    database: {
      primaryUrl: env.DATABASE_URL,
      replicaUrls: env.DATABASE_REPLICA_URLS,
      poolMax: env.PG_POOL_MAX,
      connectTimeoutMs: env.PG_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: env.PG_STATEMENT_TIMEOUT_MS,
      idleTimeoutMs: env.PG_IDLE_TIMEOUT_MS,
      migrateUrl: env.DATABASE_MIGRATE_URL ?? env.DATABASE_URL,
      transactionPooling: env.PG_TRANSACTION_POOLING === "on",
      preparedStatements: env.PG_PREPARED_STATEMENTS === "on",
      replicaMaxLagMs: env.REPLICA_MAX_LAG_MS,
      replicaPollIntervalMs: env.REPLICA_POLL_INTERVAL_MS,
    },
    importMaxBytes: env.IMPORT_MAX_BYTES,
    streams: {
      max: env.STREAMS_MAX ?? Math.max(1, Math.floor(env.PG_POOL_MAX / 3)),
      stallTimeoutMs: env.STREAM_STALL_TIMEOUT_MS,
    },
    session: {
      // Development gets a fixed secret so that `NODE_ENV=development` starts with no setup.
      secrets: env.SESSION_SECRETS ?? ["development-only-session-secret"],
      ttlSeconds: env.SESSION_TTL_SECONDS,
      cookieSecure: env.COOKIE_SECURE,
      loginRateLimitPerMinute: env.LOGIN_RATE_LIMIT_PER_MINUTE,
    },
    rateLimits: {
      login: {
        attemptsPerMinute: env.LOGIN_RATE_LIMIT_PER_MINUTE,
        failuresPerIp: env.LOGIN_FAILURES_PER_IP,
        failuresPerUsername: env.LOGIN_FAILURES_PER_USERNAME,
        failureWindowSeconds: env.LOGIN_FAILURE_WINDOW_SECONDS,
        blockSeconds: env.LOGIN_BLOCK_SECONDS,
      },
      registerPerMinute: env.REGISTER_RATE_LIMIT_PER_MINUTE,
      workPerMinute: env.WORK_RATE_LIMIT_PER_MINUTE,
    },
    trustProxy: env.TRUST_PROXY,
    workers: {
      // One core stays with the event loop; the rest run CPU tasks.
      threads: env.WORKER_THREADS ?? Math.max(1, availableParallelism() - 1),
      queueMax: env.WORKER_QUEUE_MAX,
      inflightMaxBytes: env.WORK_INFLIGHT_MAX_BYTES,
    },
    shutdown: {
      drainMs: env.SHUTDOWN_DRAIN_MS,
      timeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    },
    keepAliveTimeoutMs: env.KEEP_ALIVE_TIMEOUT_MS,
  };
}

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration: ${problems.join("; ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Parses the environment for `command`; throws a ConfigError naming every bad variable at
 * once.
 */
export type Command = "serve" | "migrate";

export function loadConfig(source: NodeJS.ProcessEnv, command: Command = "serve"): Config {
  // An empty variable means "not set", as it does for most twelve-factor apps.
  const present: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) if (value !== undefined && value !== "") present[name] = value;
  const parsed = envSchema.safeParse(present);
  const crossProblems = crossVariableProblems(present, command);
  if (!parsed.success || crossProblems.length > 0) {
    const problems = (parsed.error?.issues ?? []).map((issue) => {
      const variable = String(issue.path[0] ?? "environment");
      const received = present[variable];
      const isSecret = /SECRET|PASSWORD/.test(variable) || variable.endsWith("_URL") || variable.endsWith("_URLS");
      const shown = received === undefined || isSecret ? "" : ` (got ${JSON.stringify(received)})`;
      const message = received === undefined && issue.code === "invalid_type" ? "required" : issue.message;
      return `${variable}: ${message}${shown}`;
    });
    throw new ConfigError([...new Set([...problems, ...crossProblems])]);
  }
  return toConfig(parsed.data);
}
