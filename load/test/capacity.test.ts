// The capacity plan's arithmetic on a small made-up bench whose answers are worked out by
// hand below, so that a wrong weight, rounding or threshold shows as a wrong number.
//
// Mix: item-read 3 : item-write 1. Per request, weighted: app 0.75*0.2 + 0.25*0.6 = 0.3 ms,
// Redis 1.25 commands, 0.75 replica and 0.5 primary statements. Login: 100 ms, 4 commands,
// 1 statement. nginx 0.05 ms (the ramp shape). Default assumptions.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { assumptions, bottleneck, latestBench, main, mixCosts, plan, walls } from "../capacity.ts";

const bench = {
  startedAt: "2026-01-01T00:00:00Z",
  quick: false,
  durationS: 10,
  mix: [
    { endpoint: "item-read", weight: 3 },
    { endpoint: "item-write", weight: 1 },
  ],
  endpoints: [
    {
      name: "item-read",
      cpuMsPerRequest: 0.2,
      redisCommandsPerRequest: 1,
      pgReplicaStatementsPerRequest: 1,
      redisCpuMsPerRequest: 0.01,
      pgReplicaCpuMsPerRequest: 0.05,
    },
    {
      name: "item-write",
      cpuMsPerRequest: 0.6,
      redisCommandsPerRequest: 2,
      pgPrimaryStatementsPerRequest: 2,
      pgPrimaryCpuMsPerRequest: 0.1,
    },
    { name: "login", cpuMsPerRequest: 100, redisCommandsPerRequest: 4, pgPrimaryStatementsPerRequest: 1 },
  ],
  shapes: [{ shape: "ramp", cpuMsPerRequest: { nginx: 0.05 }, requests: 1 }],
  anchors: { express: { cpuMsPerRequest: 0.1 }, nodeHttp: { cpuMsPerRequest: 0.05 } },
} as unknown as Parameters<typeof plan>[0];

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);

describe("mixCosts", () => {
  it("weights each endpoint's costs by the mix", () => {
    const c = mixCosts(bench);
    close(c.appCpuMs, 0.3, "app CPU");
    close(c.redisCmds, 1.25, "Redis commands");
    close(c.redisCpuMs, 0.0075, "Redis CPU");
    close(c.pgReplica, 0.75, "replica statements");
    close(c.pgPrimary, 0.5, "primary statements");
    close(c.pgReplicaCpuMs, 0.0375, "replica CPU");
    close(c.pgPrimaryCpuMs, 0.025, "primary CPU");
    assert.deepEqual(c.login, { appCpuMs: 100, redisCmds: 4, pgPrimary: 1 });
    assert.equal(c.nginxCpuMs, 0.05);
  });

  it("uses the given mix over the bench's, and names an endpoint the bench lacks", () => {
    close(mixCosts(bench, [{ endpoint: "item-write", weight: 7 }]).appCpuMs, 0.6, "write-only mix");
    assert.throws(() => mixCosts(bench, [{ endpoint: "work", weight: 1 }]), {
      message: "the bench has no measurement of work",
    });
    // Without a mix of its own, the bench is weighed by the shapes' API mix, which has more routes.
    assert.throws(() => mixCosts({ ...bench, mix: undefined }), /the bench has no measurement of item-list/);
  });

  it("falls back to stated login and ingress costs when the bench has none", () => {
    const bare = {
      ...bench,
      endpoints: bench.endpoints.filter((e) => e.name !== "login"),
      shapes: [],
    } as typeof bench;
    const c = mixCosts(bare);
    assert.deepEqual(c.login, { appCpuMs: 200, redisCmds: 8, pgPrimary: 1 });
    assert.equal(c.nginxCpuMs, 0.1);
  });
});

describe("plan", () => {
  it("sizes every part for 10,000 req/s", () => {
    const p = plan(bench, 10_000, assumptions({}));
    assert.equal(p.targetRps, 10_000);
    close(p.logins, 10, "logins/s");
    close(p.app.cores, 4, "app cores: (10,000 x 0.3 + 10 x 100) ms/s");
    assert.deepEqual(
      { pods: p.app.pods, rpsPerPod: p.app.rpsPerPod, minPods: p.app.minPods, maxPods: p.app.maxPods },
      { pods: 7, rpsPerPod: 1500, minPods: 2, maxPods: 10 },
    );
    assert.equal(p.app.coresAtMax, 10);
    close(p.ingress.cores, (0.05 * 10) / 0.6, "ingress cores");
    assert.equal(p.ingress.pods, 2);
    assert.deepEqual(p.redis, { opsPerS: 12_540, shards: 1, shardOps: 50_000 });
    assert.equal(p.pg.readsPerS, 7500);
    close(p.pg.readCores, 1.25, "replica cores");
    assert.equal(p.pg.replicas, 1);
    assert.equal(p.pg.writesPerS, 5010);
    close(p.pg.primaryCores, 5010 / 2400, "primary cores");
    assert.equal(p.pg.primaryFits, true);
    assert.equal(p.pg.connectionsPerServer, 100);
    assert.equal(p.pg.needsPooler, false);
    close(p.load["app pods (HPA)"], 7, "app load");
    close(p.load["ingress controller"], (0.05 * 10) / 0.6 / 2, "ingress load");
    close(p.load["Redis (one shard)"], 12_540 / 50_000, "Redis load");
    close(p.load["PostgreSQL replica reads"], 1.25 / 8, "replica load");
    close(p.load["PostgreSQL primary writes"], 5010 / 2400 / 64, "primary load");
    close(p.load["PostgreSQL connections"], 100 / 500, "connection load");
  });

  it("keeps two pods at least, and follows the assumptions", () => {
    const tiny = plan(bench, 100, assumptions({}));
    assert.deepEqual([tiny.app.pods, tiny.app.minPods, tiny.app.maxPods, tiny.ingress.pods], [1, 2, 2, 2]);
    assert.equal(tiny.redis.shards, 1);
    assert.equal(tiny.pg.replicas, 1);
    const faster = plan(
      bench,
      10_000,
      assumptions({ CPU_SPEED: "2", POD_CPU: "2", HEADROOM: "2", MIN_FRACTION: "0.5" }),
    );
    close(faster.app.cores, 2, "half the cores on cores twice as fast");
    assert.deepEqual([faster.app.pods, faster.app.minPods, faster.app.maxPods], [2, 2, 4]);
  });

  it("finds every wall at 1,000,000 req/s, hardest to fix first", () => {
    const p = plan(bench, 1_000_000, assumptions({}));
    assert.deepEqual(
      {
        pods: p.app.pods,
        maxPods: p.app.maxPods,
        ingress: p.ingress.pods,
        shards: p.redis.shards,
        replicas: p.pg.replicas,
      },
      { pods: 667, maxPods: 868, ingress: 42, shards: 26, replicas: 16 },
    );
    assert.equal(p.pg.primaryFits, false);
    assert.equal(p.pg.needsPooler, true);
    const found = walls(p, assumptions({}));
    assert.deepEqual(
      found.map((w) => [w.name, Number(w.severity.toFixed(3))]),
      [
        ["PostgreSQL primary (writes)", 3.262],
        ["Redis", 25.08],
        ["PostgreSQL connections", 17.36],
        ["PostgreSQL reads", 15.625],
        ["ingress", 20.833],
        ["app CPU", 333.5],
      ],
    );
    assert.deepEqual(
      found.map((w) => w.action),
      [
        "209 cores of writes: more than one primary; shard writes (Citus) or batch them through a queue",
        "26 shards: Redis Cluster (the chart's Redis is one primary + replicas, Sentinel for failover)",
        "8,680 per server: PgBouncer (transaction pooling) in front of PostgreSQL, or a lower PG_POOL_MAX",
        "postgresql.readReplicas.replicaCount=16; the app spreads reads over DATABASE_REPLICA_URLS",
        "42 controller replicas",
        "HPA 67..868 pods (stateless: sessions in Redis)",
      ],
    );
    assert.equal(bottleneck(p).name, "PostgreSQL primary (writes)");
  });

  it("names the app's CPU as the only wall at 10,000 req/s, and nothing below two pods", () => {
    const p = plan(bench, 10_000, assumptions({}));
    assert.deepEqual(walls(p, assumptions({})), [
      { name: "app CPU", action: "HPA 2..10 pods (stateless: sessions in Redis)", severity: 3.5 },
    ]);
    assert.equal(bottleneck(p).name, "app CPU");
    const idle = bottleneck(plan(bench, 100, assumptions({})));
    assert.deepEqual(idle, {
      name: "nothing yet",
      action: "the HPA minimum (2 pods, for the PodDisruptionBudget) idles; one Redis, one primary, one replica",
      severity: 0,
    });
  });

  it("puts a wall exactly past one unit: 3 app pods, 3 ingress pods, 2 shards, 2 replicas, 501 connections", () => {
    const A = assumptions({});
    const p = plan(bench, 10_000, A);
    const names = (q: typeof p) => walls(q, A).map((w) => w.name);
    assert.deepEqual(names({ ...p, app: { ...p.app, pods: 2 } }), []);
    assert.deepEqual(names({ ...p, ingress: { ...p.ingress, pods: 3 } }), ["ingress", "app CPU"]);
    assert.deepEqual(names({ ...p, redis: { ...p.redis, shards: 2 } }), ["Redis", "app CPU"]);
    assert.deepEqual(names({ ...p, pg: { ...p.pg, replicas: 2 } }), ["PostgreSQL reads", "app CPU"]);
    assert.deepEqual(names({ ...p, pg: { ...p.pg, needsPooler: true, connectionsPerServer: 501 } }), [
      "PostgreSQL connections",
      "app CPU",
    ]);
    const atLimit = plan(bench, 10_000, assumptions({ PG_MAX_CONNECTIONS: "100" }));
    assert.equal(atLimit.pg.needsPooler, false, "exactly max_connections still fits");
    const atCores = plan(bench, 10_000, assumptions({ PG_PRIMARY_MAX_CORES: String(5010 / 2400) }));
    assert.equal(atCores.pg.primaryFits, true, "exactly the largest primary still fits");
  });
});

describe("assumptions", () => {
  it("take a positive number from the environment, the default when unset or empty", () => {
    const A = assumptions({ POD_CPU: "2", HEADROOM: "" });
    assert.equal(A.POD_CPU?.value, 2);
    assert.equal(A.HEADROOM?.value, 1.3);
    assert.equal(A.TARGET_UTILIZATION?.value, 0.6);
    assert.equal(Object.keys(A).length, 16);
    for (const a of Object.values(A)) {
      assert.ok(a.unit.length > 0 && a.why.length > 0, `${a.key} says what it is`);
      assert.ok(a.value > 0);
    }
  });

  for (const raw of ["abc", "0", "-1", "Infinity"])
    it(`refuse ${raw} with one line naming the variable`, () => {
      assert.throws(() => assumptions({ REDIS_UTILIZATION: raw }), {
        message: `REDIS_UTILIZATION=${raw}: expected a positive number`,
      });
    });
});

describe("latestBench", () => {
  it("picks the newest full run, a quick one only when there is nothing else", () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-test-"));
    try {
      assert.equal(latestBench(join(dir, "missing")), null);
      assert.equal(latestBench(dir), null);
      writeFileSync(join(dir, "2026-01-02.json"), JSON.stringify({ quick: true }));
      assert.equal(latestBench(dir), join(dir, "2026-01-02.json"));
      writeFileSync(join(dir, "2026-01-01.json"), JSON.stringify({ quick: false }));
      writeFileSync(join(dir, "2026-01-03.json"), JSON.stringify({ quick: true }));
      writeFileSync(join(dir, "2026-01-04.html"), "<html>");
      assert.equal(latestBench(dir), join(dir, "2026-01-01.json"));
      writeFileSync(join(dir, "2026-01-05.json"), JSON.stringify({ quick: false }));
      assert.equal(latestBench(dir), join(dir, "2026-01-05.json"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("make capacity", () => {
  // In process, so that a mutation test sees what the printing code does; one run below goes
  // through the real command line.
  const run = (env: Record<string, string>, args: string[] = []) => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-cli-"));
    const file = join(dir, "bench.json");
    writeFileSync(file, JSON.stringify(bench));
    const stdout: string[] = [];
    const stderr: string[] = [];
    try {
      const status = main(
        args,
        { BENCH_JSON: file, ...env },
        (s) => stdout.push(`${s}\n`),
        (s) => stderr.push(`${s}\n`),
      );
      return { status, stdout: stdout.join(""), stderr: stderr.join("") };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("prints the plan for TARGET_RPS: needs, HPA range and the walls", () => {
    const r = run({ TARGET_RPS: "10000" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^capacity from .*bench\.json \(bench of 2026-01-01T00:00:00Z\)$/m);
    assert.match(r.stdout, /^ {2}app {15}4\.0 cores busy -> 7 pods of 1 core at 60 % \(1,500 req\/s per pod\)$/m);
    assert.match(r.stdout, /^ {2}HPA {15}minReplicas 2, maxReplicas 10 \(10 cores at max\)$/m);
    assert.match(r.stdout, /^ {2}Redis {13}12,540 ops\/s -> 1 shard\(s\) at 50,000 ops\/s each$/m);
    assert.match(r.stdout, /^walls, hardest to fix first .*the first is the bottleneck:$/m);
    assert.match(r.stdout, /^ {2}app CPU {22}x3\.5 {4}HPA 2\.\.10 pods/m);
  });

  it("says when nothing is a wall yet", () => {
    const r = run({ TARGET_RPS: "100" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^bottleneck: nothing yet: the HPA minimum/m);
  });

  it("walks 100 to 1,000,000 req/s in decades, one table row each", () => {
    const r = run({}, ["--walk"]);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.split("\n").filter((l) => /^\| [\d,]+ \|/.test(l));
    assert.deepEqual(
      rows.map((l) => l.split("|")[1]?.trim()),
      ["100", "1,000", "10,000", "100,000", "1,000,000"],
    );
    assert.match(rows[4] ?? "", /\| PostgreSQL primary \(writes\) \|.*; also: Redis, PostgreSQL connections/);
  });

  it("refuses a TARGET_RPS that is not a number of at least 1, in one line and before any output", () => {
    for (const raw of ["abc", "0"]) {
      const r = run({ TARGET_RPS: raw });
      assert.equal(r.status, 2);
      assert.equal(r.stderr, `capacity: TARGET_RPS=${raw}: expected a number >= 1\n`);
      assert.equal(r.stdout, "");
    }
  });

  it("runs as a command: exit code and output through the process", () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-cli-"));
    const file = join(dir, "bench.json");
    writeFileSync(file, JSON.stringify(bench));
    try {
      const script = join(import.meta.dirname, "..", "capacity.ts");
      const env = { PATH: process.env.PATH, BENCH_JSON: file };
      const ok = spawnSync(process.execPath, [script], { env: { ...env, TARGET_RPS: "10000" }, encoding: "utf8" });
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /^ {2}HPA {15}minReplicas 2, maxReplicas 10 \(10 cores at max\)$/m);
      const bad = spawnSync(process.execPath, [script], { env: { ...env, TARGET_RPS: "abc" }, encoding: "utf8" });
      assert.equal(bad.status, 2);
      assert.equal(bad.stderr, "capacity: TARGET_RPS=abc: expected a number >= 1\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
