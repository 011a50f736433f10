import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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
    assert.deepEqual(problemsOf(withoutRedis), ["REDIS_URL: required (or REDIS_SENTINELS)"]);
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
