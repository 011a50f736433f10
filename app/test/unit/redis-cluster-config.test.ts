// REDIS_CLUSTER_NODES: what selects the Cluster client, and the one line a mix of Redis
// settings gets (the app would otherwise pick one silently and talk to the wrong Redis).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.ts";

const base = {
  DATABASE_URL: "postgres://app@db.internal:5432/app",
  SESSION_SECRETS: "first-secret-0123456789",
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("REDIS_CLUSTER_NODES", () => {
  it("selects a cluster of those nodes, with the password and command timeout", () => {
    const config = loadConfig({
      ...base,
      REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7001,",
      REDIS_PASSWORD: "cluster-secret",
      REDIS_COMMAND_TIMEOUT_MS: "750",
    });
    assert.deepEqual(config.redis, {
      kind: "cluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
      ],
      password: "cluster-secret",
      commandTimeoutMs: 750,
    });
  });

  it("is enough on its own: no REDIS_URL needed", () => {
    assert.equal(loadConfig({ ...base, REDIS_CLUSTER_NODES: "r:7000" }).redis.kind, "cluster");
  });

  it("refuses to be set beside REDIS_URL or REDIS_SENTINELS, in one line naming them", () => {
    const cluster = { ...base, REDIS_CLUSTER_NODES: "r:7000" };
    assert.deepEqual(problemsOf({ ...cluster, REDIS_URL: "redis://r:6379/0" }), [
      "REDIS_CLUSTER_NODES: set it alone, not with REDIS_URL (one Redis per app)",
    ]);
    assert.deepEqual(
      problemsOf({ ...cluster, REDIS_URL: "redis://r:6379/0", REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_MASTER: "m" }),
      ["REDIS_CLUSTER_NODES: set it alone, not with REDIS_URL or REDIS_SENTINELS (one Redis per app)"],
    );
  });

  it("names a node that is not host:port", () => {
    const problems = problemsOf({ ...base, REDIS_CLUSTER_NODES: "r:7000,no-port" });
    assert.equal(problems.length, 1);
    assert.match(problems[0] as string, /^REDIS_CLUSTER_NODES: expected host:port/);
  });

  it("is named when no Redis is set at all", () => {
    assert.deepEqual(problemsOf(base), ["REDIS_URL: required (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES)"]);
  });
});
