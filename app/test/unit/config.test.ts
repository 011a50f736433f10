import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { availableParallelism, hostname } from "node:os";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Command, ConfigError, loadConfig } from "../../src/config.ts";

const valid = {
  DATABASE_URL: "postgres://app@db.internal:5432/app",
  REDIS_URL: "redis://cache.internal:6379/0",
  SESSION_SECRETS: "first-secret-0123456789,second-secret-0123456789",
};

function problemsOf(env: Record<string, string>, command: Command = "serve"): string[] {
  try {
    loadConfig(env, command);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig(valid);
    assert.equal(config.port, 3000);
    assert.equal(config.shutdown.drainMs, 5000);
    assert.equal(config.keepAliveTimeoutMs, 65_000);
    assert.deepEqual(config.database.replicaUrls, []);
    assert.deepEqual(config.session.secrets, ["first-secret-0123456789", "second-secret-0123456789"]);
    assert.ok(config.workers.threads >= 1);
    assert.equal(config.redis.kind, "standalone");
  });

  it("gives every variable its documented default when only the required ones are set", () => {
    assert.deepEqual(loadConfig(valid), {
      env: "production",
      port: 3000,
      host: undefined,
      instanceName: hostname(),
      metricsPort: undefined,
      logLevel: "info",
      accessLog: { sampleRate: 0.01, slowMs: 1000 },
      redis: { kind: "standalone", url: valid.REDIS_URL, password: undefined, commandTimeoutMs: 500 },
      database: {
        primaryUrl: valid.DATABASE_URL,
        replicaUrls: [],
        poolMax: 10,
        connectTimeoutMs: 2000,
        statementTimeoutMs: 15_000,
        idleTimeoutMs: 30_000,
        migrateUrl: valid.DATABASE_URL,
        transactionPooling: false,
        preparedStatements: false,
        replicaMaxLagMs: 5000,
        replicaPollIntervalMs: 250,
      },
      importMaxBytes: 1024 ** 3,
      // A third of PG_POOL_MAX's default 10.
      streams: { max: 3, stallTimeoutMs: 30_000 },
      session: {
        secrets: ["first-secret-0123456789", "second-secret-0123456789"],
        ttlSeconds: 86_400,
        cookieSecure: "auto",
        loginRateLimitPerMinute: 10,
      },
      rateLimits: {
        login: {
          attemptsPerMinute: 10,
          failuresPerIp: 50,
          failuresPerUsername: 10,
          failureWindowSeconds: 900,
          blockSeconds: 900,
        },
        registerPerMinute: 5,
        workPerMinute: 600,
      },
      // No proxy is trusted unless one is declared: X-Forwarded-For would pick the client IP.
      trustProxy: 0,
      workers: { threads: Math.max(1, availableParallelism() - 1), queueMax: 256, inflightMaxBytes: 64 * 1024 ** 2 },
      shutdown: { drainMs: 5000, timeoutMs: 10_000 },
      keepAliveTimeoutMs: 65_000,
    });
  });

  it("reads every variable it documents", () => {
    const config = loadConfig({
      ...valid,
      NODE_ENV: "test",
      PORT: "8081",
      HOST: "127.0.0.1",
      INSTANCE_NAME: "pod-a",
      NODE_APP_INSTANCE: "3",
      METRICS_PORT: "9100",
      LOG_LEVEL: "warn",
      REDIS_PASSWORD: "redis-secret",
      REDIS_COMMAND_TIMEOUT_MS: "750",
      DATABASE_REPLICA_URLS: "postgres://r1:5432/a",
      PG_POOL_MAX: "4",
      PG_CONNECT_TIMEOUT_MS: "300",
      PG_STATEMENT_TIMEOUT_MS: "900",
      PG_IDLE_TIMEOUT_MS: "1500",
      REPLICA_MAX_LAG_MS: "0",
      REPLICA_POLL_INTERVAL_MS: "50",
      DATABASE_MIGRATE_URL: "postgres://direct:5432/a",
      PG_TRANSACTION_POOLING: "on",
      PG_PREPARED_STATEMENTS: "on",
      IMPORT_MAX_BYTES: "2048",
      STREAMS_MAX: "3",
      STREAM_STALL_TIMEOUT_MS: "250",
      SESSION_TTL_SECONDS: "60",
      COOKIE_SECURE: "true",
      LOGIN_RATE_LIMIT_PER_MINUTE: "3",
      LOGIN_FAILURES_PER_IP: "7",
      LOGIN_FAILURES_PER_USERNAME: "4",
      LOGIN_FAILURE_WINDOW_SECONDS: "120",
      LOGIN_BLOCK_SECONDS: "300",
      REGISTER_RATE_LIMIT_PER_MINUTE: "2",
      WORK_RATE_LIMIT_PER_MINUTE: "30",
      TRUST_PROXY: "2",
      WORKER_THREADS: "2",
      WORKER_QUEUE_MAX: "0",
      WORK_INFLIGHT_MAX_BYTES: "4194304",
      SHUTDOWN_DRAIN_MS: "0",
      KEEP_ALIVE_TIMEOUT_MS: "1000",
      SHUTDOWN_TIMEOUT_MS: "1000",
    });
    assert.deepEqual(
      [config.env, config.port, config.host, config.instanceName, config.logLevel, config.trustProxy],
      ["test", 8081, "127.0.0.1", "pod-a", "warn", 2],
    );
    assert.deepEqual(config.redis, {
      kind: "standalone",
      url: valid.REDIS_URL,
      password: "redis-secret",
      commandTimeoutMs: 750,
    });
    assert.deepEqual(config.database, {
      primaryUrl: valid.DATABASE_URL,
      replicaUrls: ["postgres://r1:5432/a"],
      poolMax: 4,
      connectTimeoutMs: 300,
      statementTimeoutMs: 900,
      idleTimeoutMs: 1500,
      migrateUrl: "postgres://direct:5432/a",
      transactionPooling: true,
      preparedStatements: true,
      replicaMaxLagMs: 0,
      replicaPollIntervalMs: 50,
    });
    assert.equal(config.importMaxBytes, 2048);
    assert.deepEqual(config.streams, { max: 3, stallTimeoutMs: 250 });
    assert.deepEqual(config.session, {
      secrets: ["first-secret-0123456789", "second-secret-0123456789"],
      ttlSeconds: 60,
      cookieSecure: "true",
      loginRateLimitPerMinute: 3,
    });
    assert.deepEqual(config.rateLimits, {
      login: {
        attemptsPerMinute: 3,
        failuresPerIp: 7,
        failuresPerUsername: 4,
        failureWindowSeconds: 120,
        blockSeconds: 300,
      },
      registerPerMinute: 2,
      workPerMinute: 30,
    });
    assert.deepEqual(config.workers, { threads: 2, queueMax: 0, inflightMaxBytes: 4 * 1024 ** 2 });
    assert.deepEqual(config.shutdown, { drainMs: 0, timeoutMs: 1000 });
    assert.equal(config.keepAliveTimeoutMs, 1000);
  });

  it("gives each PM2 worker its own metrics port and name", () => {
    const worker = (index: string, extra: Record<string, string> = {}) =>
      loadConfig({ ...valid, METRICS_PORT: "9100", NODE_APP_INSTANCE: index, ...extra });
    assert.equal(worker("0").metricsPort, 9100);
    assert.equal(worker("2").metricsPort, 9102);
    assert.equal(worker("2").instanceName, `${hostname()}-2`);
    assert.equal(worker("2", { INSTANCE_NAME: "named" }).instanceName, "named");
    assert.equal(loadConfig({ ...valid, METRICS_PORT: "9100" }).metricsPort, 9100, "outside PM2, the port itself");
    assert.equal(loadConfig({ ...valid, NODE_APP_INSTANCE: "1" }).metricsPort, undefined, "no METRICS_PORT, none");
  });

  it("keeps STREAMS_MAX below PG_POOL_MAX, so point reads keep a connection", () => {
    assert.equal(loadConfig({ ...valid, PG_POOL_MAX: "1" }).streams.max, 1, "unset: at least one stream");
    assert.equal(loadConfig({ ...valid, PG_POOL_MAX: "30" }).streams.max, 10, "unset: a third of the pool");
    assert.throws(
      () => loadConfig({ ...valid, PG_POOL_MAX: "4", STREAMS_MAX: "4" }),
      /STREAMS_MAX: must be below PG_POOL_MAX \(4\)/,
    );
  });

  it("accepts only auto, true or false for COOKIE_SECURE", () => {
    for (const value of ["auto", "true", "false"])
      assert.equal(loadConfig({ ...valid, COOKIE_SECURE: value }).session.cookieSecure, value);
    assert.deepEqual(problemsOf({ ...valid, COOKIE_SECURE: "yes" }).length, 1);
    assert.match(problemsOf({ ...valid, COOKIE_SECURE: "yes" })[0] ?? "", /^COOKIE_SECURE: /);
    for (const rate of ["1.5", "-0.1", "half", "1e-2", "0.5.1"]) {
      assert.deepEqual(
        problemsOf({ ...valid, ACCESS_LOG_SAMPLE_RATE: rate }),
        [`ACCESS_LOG_SAMPLE_RATE: expected a number from 0 to 1 (got "${rate}")`],
        rate,
      );
    }
    for (const [rate, parsed] of [
      ["0", 0],
      ["1", 1],
      ["0.25", 0.25],
      ["1.0", 1],
    ] as const) {
      assert.equal(loadConfig({ ...valid, ACCESS_LOG_SAMPLE_RATE: rate }).accessLog.sampleRate, parsed, rate);
    }
  });

  for (const [variable, low, high] of [
    ["PORT", "0", "65536"],
    ["PG_POOL_MAX", "0", "1001"],
    ["REPLICA_POLL_INTERVAL_MS", "49", "60001"],
    ["SESSION_TTL_SECONDS", "59", "31536001"],
    ["WORKER_THREADS", "0", "257"],
    ["KEEP_ALIVE_TIMEOUT_MS", "999", "600001"],
  ] as const) {
    it(`refuses ${variable} outside its range (${low}, ${high}) and names the range`, () => {
      for (const value of [low, high, "1.5", "-1"]) {
        const [problem] = problemsOf({ ...valid, [variable]: value });
        assert.match(problem ?? "", new RegExp(`^${variable}: expected a whole number from \\d+ to \\d+`), value);
      }
    });
  }

  it("splits replica URLs and ignores blanks between commas", () => {
    const config = loadConfig({ ...valid, DATABASE_REPLICA_URLS: "postgres://r1:5432/a, ,postgres://r2:5432/a," });
    assert.deepEqual(config.database.replicaUrls, ["postgres://r1:5432/a", "postgres://r2:5432/a"]);
  });

  it("names every bad variable in one error", () => {
    const problems = problemsOf({ PORT: "abc", REDIS_URL: "redis://x:1", WORKER_THREADS: "0" });
    assert.deepEqual(
      problems.map((p) => p.split(":")[0]),
      ["PORT", "DATABASE_URL", "WORKER_THREADS", "SESSION_SECRETS"],
    );
    assert.match(problems[0] ?? "", /PORT: expected a whole number from 1 to 65535 \(got "abc"\)/);
    assert.match(problems[1] ?? "", /DATABASE_URL: required/);
  });

  it("never echoes a secret or a URL that may hold a password", () => {
    const problems = problemsOf({ ...valid, SESSION_SECRETS: "tooshort", DATABASE_URL: "mysql://u:hunter2@h/db" });
    const text = problems.join(" ");
    assert.doesNotMatch(text, /tooshort|hunter2/);
    assert.match(text, /SESSION_SECRETS/);
    assert.match(text, /DATABASE_URL/);
  });

  it("treats an empty variable as unset", () => {
    assert.deepEqual(problemsOf({ ...valid, DATABASE_URL: "" }), ["DATABASE_URL: required"]);
  });

  it("requires session secrets outside development only", () => {
    const { SESSION_SECRETS: _, ...withoutSecrets } = valid;
    assert.deepEqual(problemsOf(withoutSecrets), ["SESSION_SECRETS: required outside development"]);
    assert.equal(loadConfig({ ...withoutSecrets, NODE_ENV: "development" }).session.secrets.length, 1);
  });

  it("accepts Sentinel instead of a Redis URL, and needs the master name with it", () => {
    const { REDIS_URL: _, ...withoutRedis } = valid;
    assert.deepEqual(problemsOf(withoutRedis), ["REDIS_URL: required (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES)"]);
    assert.deepEqual(problemsOf({ ...withoutRedis, REDIS_SENTINELS: "s1:26379" }), [
      "REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS",
    ]);
    const config = loadConfig({
      ...withoutRedis,
      REDIS_SENTINELS: "s1:26379,s2:26379",
      REDIS_SENTINEL_MASTER: "mymaster",
    });
    assert.deepEqual(config.redis.kind === "sentinel" && config.redis.sentinels, [
      { host: "s1", port: 26379 },
      { host: "s2", port: 26379 },
    ]);
  });
});

describe("loadConfig for migrate", () => {
  it("needs only the database", () => {
    const config = loadConfig({ DATABASE_URL: valid.DATABASE_URL }, "migrate");
    assert.equal(config.database.primaryUrl, valid.DATABASE_URL);
    assert.deepEqual(problemsOf({ PORT: "x" }, "migrate"), [
      'PORT: expected a whole number from 1 to 65535 (got "x")',
      "DATABASE_URL: required",
    ]);
  });

  it("needs the primary itself when the database URL leads to a transaction-mode pooler", () => {
    const pooled = { DATABASE_URL: valid.DATABASE_URL, PG_TRANSACTION_POOLING: "on" };
    assert.deepEqual(problemsOf(pooled, "migrate"), [
      "DATABASE_MIGRATE_URL: required with PG_TRANSACTION_POOLING=on (migrate needs the primary itself)",
    ]);
    const direct = "postgres://direct:5432/a";
    const config = loadConfig({ ...pooled, DATABASE_MIGRATE_URL: direct }, "migrate");
    assert.equal(config.database.migrateUrl, direct);
    assert.equal(config.database.primaryUrl, valid.DATABASE_URL);
  });
});

describe("start-up with a bad configuration", () => {
  it("prints one line naming each bad variable and exits non-zero", () => {
    const main = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
    const result = spawnSync(process.execPath, [main], {
      env: { PATH: process.env.PATH, PORT: "abc", REDIS_URL: "redis://127.0.0.1:1" },
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(result.status, 78);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? "", /^nodescale: invalid configuration: .*PORT: .*DATABASE_URL: required/);
  });

  it("rejects an unknown command with a usage exit code", () => {
    const main = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
    const result = spawnSync(process.execPath, [main, "serv"], { encoding: "utf8", timeout: 20_000 });
    assert.equal(result.status, 64);
    assert.match(result.stderr, /unknown command "serv"/);
  });
});
